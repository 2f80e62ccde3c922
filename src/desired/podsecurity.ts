import type { ClusterSecurityPolicy, PodSecurityLevel } from "../api/v1alpha1/policy.js";
import { effectiveSpec } from "./spec.js";

// Pod Security Admission labels a policy wants on the namespaces it selects (spec.podSecurity).

export const PSA_PREFIX = "pod-security.kubernetes.io/";
const LEVEL_RANK: Record<PodSecurityLevel, number> = { privileged: 0, baseline: 1, restricted: 2 };

/** Labels one policy wants on a namespace it selects. */
export function wantedNamespaceLabels(policy: ClusterSecurityPolicy): Record<string, string> {
  const ps = effectiveSpec(policy).podSecurity;
  const labels: Record<string, string> = {};
  if (!ps) return labels;
  for (const mode of ["enforce", "audit", "warn"] as const) {
    const level = ps[mode];
    if (level) {
      labels[`${PSA_PREFIX}${mode}`] = level;
      if (ps.version) labels[`${PSA_PREFIX}${mode}-version`] = ps.version;
    }
  }
  return labels;
}

/**
 * The value that wins a label several policies want, given their wishes in policy order: the stricter
 * Pod Security level for a level key; the oldest policy's value otherwise (`version`).
 */
export function winningLabelValue(key: string, wants: readonly { value: string }[]): string {
  const levelKey = /^pod-security\.kubernetes\.io\/(enforce|audit|warn)$/.test(key);
  if (levelKey) {
    return wants.reduce((best, w) =>
      (LEVEL_RANK[w.value as PodSecurityLevel] ?? -1) > (LEVEL_RANK[best.value as PodSecurityLevel] ?? -1)
        ? w
        : best,
    ).value;
  }
  return wants[0]!.value; // wants are in policy order: the oldest policy wins
}
