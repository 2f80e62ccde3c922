import type { ClusterSecurityPolicy, ClusterSecurityPolicySpec } from "../api/v1alpha1/policy.js";
import { MANAGED_BY_VALUE } from "../api/vocabulary.js";
import { selectNamespacesSteps } from "../desired/namespaces.js";
import { drain, type Steps } from "../desired/slices.js";
import { stricterNamespaceFindingsSteps } from "../drift/podsecurity.js";
import type { Finding } from "../findings/finding.js";
import { rbacFindingsSteps } from "../findings/rbac.js";
import type { Snapshot } from "../cluster/snapshot.js";

/**
 * All findings for one policy, from the areas it enables. Each area contributes a pure function of the
 * snapshot; areas are added here as they land.
 */
export function policyFindings(
  policy: ClusterSecurityPolicy,
  spec: ClusterSecurityPolicySpec,
  snapshot: Snapshot,
): Finding[] {
  return drain(policyFindingsSteps(policy, spec, snapshot));
}

/** policyFindings in steps (see desired/slices.ts). */
export function* policyFindingsSteps(
  policy: ClusterSecurityPolicy,
  spec: Readonly<ClusterSecurityPolicySpec>,
  snapshot: Snapshot,
): Steps<Finding[]> {
  const findings: Finding[] = [];
  if (spec.podSecurity) {
    const namespaces = yield* selectNamespacesSteps(spec, snapshot.namespaces);
    findings.push(...(yield* stricterNamespaceFindingsSteps(policy, namespaces, snapshot)));
  }
  if (spec.rbac?.audit && snapshot.rbac) {
    findings.push(
      ...(yield* rbacFindingsSteps(snapshot.rbac, spec.rbac.audit, { ignoreManagedBy: MANAGED_BY_VALUE })),
    );
  }
  return findings;
}
