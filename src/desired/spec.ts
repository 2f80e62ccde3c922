import { applyDefaults } from "../api/defaults.js";
import {
  specSchema,
  type ClusterSecurityPolicy,
  type ClusterSecurityPolicySpec,
} from "../api/v1alpha1/policy.js";

/**
 * The policy's spec with every default filled in, exactly as the API server would have defaulted it.
 * Pure code reads specs only through this, so a policy loaded from a file behaves like a stored one.
 */
export function effectiveSpec(policy: ClusterSecurityPolicy): ClusterSecurityPolicySpec {
  return applyDefaults(specSchema.openapi, policy.spec ?? {}) as ClusterSecurityPolicySpec;
}

export function isEnforcing(policy: ClusterSecurityPolicy): boolean {
  return effectiveSpec(policy).mode !== "Audit";
}

export function isDeleting(policy: ClusterSecurityPolicy): boolean {
  return policy.metadata.deletionTimestamp !== undefined && policy.metadata.deletionTimestamp !== null;
}
