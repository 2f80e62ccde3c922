import { GROUP } from "./v1alpha1/policy.js";

// The operator's shared vocabulary (API.md: names are promises). Every layer imports these from here, so
// the cluster layer does not reach into desired/, and desired/ does not reach into findings/.

/** The public ownership labels (API.md): on every object the operator creates. */
export const MANAGED_BY_LABEL = "app.kubernetes.io/managed-by";
export const MANAGED_BY_VALUE = "csp-operator";
export const POLICY_LABEL = `${GROUP}/policy`;
/** The field manager for every write the operator makes. */
export const FIELD_MANAGER = "csp-operator";
/** The operator's own namespace: never selected by any policy. */
export const OPERATOR_NAMESPACE = "csp-system";

/** The ownership labels of a child of `policyName`. */
export function ownershipLabels(policyName: string): Record<string, string> {
  return { [MANAGED_BY_LABEL]: MANAGED_BY_VALUE, [POLICY_LABEL]: policyName };
}

/** The ClusterRole that bounds what generated Roles may grant (config/rbac/grantable_cluster_role.yaml). */
export const GRANTABLE_CLUSTER_ROLE = "csp-operator-grantable";
