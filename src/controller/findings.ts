import type { ClusterSecurityPolicy, ClusterSecurityPolicySpec } from "../api/v1alpha1/policy.js";
import type { Finding } from "../findings/finding.js";
import type { Snapshot } from "../snapshot.js";

/**
 * All findings for one policy, from the areas it enables. Each area contributes a pure function of the
 * snapshot; areas are added here as they land.
 */
export function policyFindings(_policy: ClusterSecurityPolicy, _spec: ClusterSecurityPolicySpec, _snapshot: Snapshot): Finding[] {
  return [];
}
