import type { V1OwnerReference } from "@kubernetes/client-node";
import { API_VERSION, KIND, type ClusterSecurityPolicy } from "../api/v1alpha1/policy.js";

export {
  FIELD_MANAGER,
  MANAGED_BY_LABEL,
  MANAGED_BY_VALUE,
  OPERATOR_NAMESPACE,
  ownershipLabels,
  POLICY_LABEL,
} from "../api/vocabulary.js";
import { MANAGED_BY_LABEL, MANAGED_BY_VALUE, POLICY_LABEL } from "../api/vocabulary.js";

/**
 * The ownerReference that lets Kubernetes' garbage collector delete a child when its policy is deleted
 * (a cluster-scoped owner may own namespaced dependents). No blockOwnerDeletion: it would need extra
 * rights on the policy's finalizers and deletion order does not matter here.
 */
export function ownerReference(policy: ClusterSecurityPolicy): V1OwnerReference {
  return {
    apiVersion: API_VERSION,
    kind: KIND,
    name: policy.metadata.name,
    uid: policy.metadata.uid ?? "",
    controller: true,
  };
}

/** Names of children start with `csp-<policy>-` so two policies never collide on a name. */
export function childName(policyName: string, suffix: string): string {
  return `csp-${policyName}-${suffix}`;
}

/** True when the object carries the operator's labels for this policy. */
export function isOwnedBy(labels: Record<string, string> | undefined, policyName: string): boolean {
  return labels?.[MANAGED_BY_LABEL] === MANAGED_BY_VALUE && labels[POLICY_LABEL] === policyName;
}
