import type { ClusterSecurityPolicySpec } from "../api/v1alpha1/policy.js";

// The namespace's `default` ServiceAccount (spec.serviceAccounts): shared, never owned; a policy only sets
// automountServiceAccountToken=false in it (see drift/shared.ts for the write).

/** Whether the policy wants the default ServiceAccount's token not mounted automatically. */
export function disablesDefaultTokenAutomount(spec: ClusterSecurityPolicySpec): boolean {
  return spec.serviceAccounts?.automountDefaultToken === false;
}
