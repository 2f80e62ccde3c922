import type { V1ServiceAccount } from "@kubernetes/client-node";
import { API_VERSION, KIND } from "../api/v1alpha1/policy.js";
import { drain, SLICE, type Steps } from "../desired/slices.js";
import type { Finding } from "./finding.js";

/** Finding id: a namespace's `default` ServiceAccount carries an ownerReference to a policy. */
export const SA_DEFAULT_OWNED_BY_POLICY = "SA-DEFAULT-OWNED-BY-POLICY";

/**
 * `default` ServiceAccounts in the policy's namespaces that carry an ownerReference to a
 * ClusterSecurityPolicy. The operator never sets one (the object belongs to the namespace) and never counts
 * it as a child; but someone who can edit the ServiceAccount can add one, and the garbage collector would
 * then delete `default` with the policy. Reported, not removed: the reference is not the operator's field.
 */
export function defaultServiceAccountOwnerFindings(
  namespaces: readonly string[],
  serviceAccounts: readonly V1ServiceAccount[],
): Finding[] {
  return drain(defaultServiceAccountOwnerFindingsSteps(namespaces, serviceAccounts));
}

/** defaultServiceAccountOwnerFindings in steps (see desired/slices.ts). */
export function* defaultServiceAccountOwnerFindingsSteps(
  namespaces: readonly string[],
  serviceAccounts: readonly V1ServiceAccount[],
): Steps<Finding[]> {
  const selected = new Set<string>();
  let n = 0;
  for (const ns of namespaces) {
    selected.add(ns);
    if (++n % SLICE === 0) yield;
  }
  const group = API_VERSION.split("/")[0];
  const out: Finding[] = [];
  for (const sa of serviceAccounts) {
    if (++n % SLICE === 0) yield;
    const ns = sa.metadata?.namespace;
    if (sa.metadata?.name !== "default" || !ns || !selected.has(ns)) continue;
    const refs = (sa.metadata.ownerReferences ?? []).filter(
      (r) => r.kind === KIND && r.apiVersion.split("/")[0] === group,
    );
    if (refs.length === 0) continue;
    out.push({
      id: SA_DEFAULT_OWNED_BY_POLICY,
      severity: "Medium",
      resource: `ServiceAccount/${ns}/default`,
      area: "serviceAccounts",
      message: `carries an ownerReference to ClusterSecurityPolicy ${refs.map((r) => r.name).join(", ")}: the garbage collector would delete it (and invalidate every pod's token) with that policy; the operator never sets one, remove it`,
    });
  }
  return out.sort((a, b) => a.resource.localeCompare(b.resource));
}
