import type { Exemption } from "./v1alpha1/policy.js";

/** What an exemption is matched against: a finding's id, area and `Kind/namespace/name` resource. */
export interface Exemptible {
  id: string;
  area: string;
  resource: string;
}

/** An exemption applies until it expires; an expired one stops applying and is itself reported. */
export function isActive(e: Exemption, now: Date): boolean {
  return !e.expires || new Date(e.expires).getTime() > now.getTime();
}

function namespaceOf(resource: string): string | undefined {
  const parts = resource.split("/");
  return parts.length === 3 ? parts[1] : undefined;
}

/** Whether an active exemption covers a finding (by id or area, narrowed by namespaces or resource). */
export function exempts(e: Exemption, f: Exemptible): boolean {
  if (e.findingId && e.findingId !== f.id) return false;
  if (e.area && e.area !== f.area) return false;
  if (e.resource && e.resource !== f.resource) return false;
  if (e.namespaces?.length) {
    const ns = namespaceOf(f.resource);
    if (!ns || !e.namespaces.includes(ns)) return false;
  }
  return true;
}

/** Whether an active exemption takes a whole area out of a namespace (e.g. no default-deny there). */
export function areaExemptInNamespace(
  exemptions: readonly Exemption[] | undefined,
  area: string,
  namespace: string,
  now: Date,
): boolean {
  return (exemptions ?? []).some(
    (e) =>
      isActive(e, now) &&
      !e.findingId &&
      e.area === area &&
      !e.resource &&
      (e.namespaces ?? []).includes(namespace),
  );
}
