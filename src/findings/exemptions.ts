import type { Exemption } from "../api/v1alpha1/policy.js";
import { objectKey } from "../snapshot.js";
import type { Finding } from "./finding.js";

export const EXEMPTION_EXPIRED = "EXEMPTION-EXPIRED";

/** An exemption applies until it expires; an expired one stops applying and is itself reported. */
export function isActive(e: Exemption, now: Date): boolean {
  return !e.expires || new Date(e.expires).getTime() > now.getTime();
}

function namespaceOf(resource: string): string | undefined {
  const parts = resource.split("/");
  return parts.length === 3 ? parts[1] : undefined;
}

/** Whether an active exemption covers a finding (by id or area, narrowed by namespaces or resource). */
export function exempts(e: Exemption, f: Finding): boolean {
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

/** Splits findings into those that count and those exempted; expired exemptions become findings. */
export function applyExemptions(
  findings: readonly Finding[],
  exemptions: readonly Exemption[] | undefined,
  now: Date,
  policyName: string,
): { counted: Finding[]; exempted: Finding[] } {
  const active = (exemptions ?? []).filter((e) => isActive(e, now));
  const counted: Finding[] = [];
  const exempted: Finding[] = [];
  for (const f of findings) (active.some((e) => exempts(e, f)) ? exempted : counted).push(f);
  (exemptions ?? []).forEach((e, i) => {
    if (isActive(e, now)) return;
    counted.push({
      id: EXEMPTION_EXPIRED,
      severity: "Medium",
      area: e.area ?? "exemptions",
      resource: objectKey("ClusterSecurityPolicy", undefined, policyName),
      message: `spec.exemptions[${i}] (${e.findingId ?? e.area}) expired at ${e.expires}: the exempted checks apply again; renew it or fix the cause (reason was: ${e.reason})`,
    });
  });
  return { counted, exempted };
}
