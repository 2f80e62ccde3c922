import type { ClusterSecurityPolicy } from "../api/v1alpha1/policy.js";
import { areaExemptInNamespace } from "../findings/exemptions.js";
import type { Snapshot } from "../snapshot.js";
import { auditPolicyConfigMap, renderAuditPolicyYaml } from "./auditpolicy.js";
import { API_VERSIONS, type Child, type ChildKind } from "./children.js";
import { ownerReference, ownershipLabels } from "./metadata.js";
import { selectNamespaces } from "./namespaces.js";
import { desiredNetworkPolicies } from "./networkpolicies.js";
import { desiredRoleObjects } from "./rbac.js";
import { effectiveSpec } from "./spec.js";

/** What one policy wants in the cluster: the namespaces it selects and the children it owns there. */
export interface DesiredState {
  namespaces: string[];
  children: Child[];
}

/**
 * Computes a policy's desired children from the snapshot. Pure and deterministic: children are sorted by
 * kind, namespace and name, and carry the ownership labels and ownerReference.
 */
export function desiredState(policy: ClusterSecurityPolicy, snapshot: Snapshot): DesiredState {
  const spec = effectiveSpec(policy);
  const namespaces = selectNamespaces(spec, snapshot.namespaces);
  const children: Child[] = [];
  for (const namespace of namespaces) {
    const child = (kind: ChildKind, name: string, fields: Record<string, unknown>): Child => ({
      apiVersion: API_VERSIONS[kind],
      kind,
      metadata: {
        name,
        namespace,
        labels: ownershipLabels(policy.metadata.name),
        ownerReferences: [ownerReference(policy)],
      },
      ...fields,
    });
    const exempt = (area: string) => areaExemptInNamespace(spec.exemptions, area, namespace, snapshot.now);
    if (spec.networkPolicies && !exempt("networkPolicies"))
      children.push(...desiredNetworkPolicies(policy.metadata.name, namespace, spec.networkPolicies, child));
    if (!exempt("rbac"))
      for (const role of spec.rbac?.roles ?? []) children.push(...desiredRoleObjects(role, namespace, child));
  }
  if (spec.auditPolicy) {
    // The rendered audit Policy, for the node agent (or a person) to place at --audit-policy-file.
    const cm = auditPolicyConfigMap(policy.metadata.name, renderAuditPolicyYaml(spec.auditPolicy));
    children.push({
      apiVersion: API_VERSIONS.ConfigMap,
      kind: "ConfigMap",
      metadata: {
        name: cm.metadata!.name!,
        namespace: cm.metadata!.namespace!,
        labels: ownershipLabels(policy.metadata.name),
        ownerReferences: [ownerReference(policy)],
      },
      data: cm.data,
    });
  }
  children.sort(
    (a, b) =>
      a.kind.localeCompare(b.kind) ||
      a.metadata.namespace.localeCompare(b.metadata.namespace) ||
      a.metadata.name.localeCompare(b.metadata.name),
  );
  return { namespaces, children };
}
