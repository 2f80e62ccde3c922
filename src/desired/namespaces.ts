import type { V1Namespace } from "@kubernetes/client-node";
import type { ClusterSecurityPolicySpec } from "../api/v1alpha1/policy.js";
import { OPERATOR_NAMESPACE } from "../api/vocabulary.js";

type Selector = NonNullable<NonNullable<ClusterSecurityPolicySpec["namespaces"]>["selector"]>;

/** Evaluates a metav1.LabelSelector against labels, with the API server's semantics. */
export function matchesSelector(
  selector: Selector | undefined,
  labels: Record<string, string> = {},
): boolean {
  if (!selector) return true;
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) if (labels[k] !== v) return false;
  for (const e of selector.matchExpressions ?? []) {
    const has = Object.hasOwn(labels, e.key);
    const value = labels[e.key];
    const values = e.values ?? [];
    switch (e.operator) {
      case "In":
        if (!has || !values.includes(value!)) return false;
        break;
      case "NotIn":
        if (has && values.includes(value!)) return false;
        break;
      case "Exists":
        if (!has) return false;
        break;
      case "DoesNotExist":
        if (has) return false;
        break;
    }
  }
  return true;
}

/**
 * The namespaces a policy applies to, sorted by name: those matching the selector, minus the excluded
 * ones, minus csp-system always, minus namespaces being deleted (writing into them only fails).
 */
export function selectNamespaces(
  spec: ClusterSecurityPolicySpec,
  namespaces: readonly V1Namespace[],
): string[] {
  const exclude = new Set([...(spec.namespaces?.exclude ?? []), OPERATOR_NAMESPACE]);
  return namespaces
    .filter((ns) => ns.metadata?.name && !exclude.has(ns.metadata.name))
    .filter((ns) => !ns.metadata?.deletionTimestamp && ns.status?.phase !== "Terminating")
    .filter((ns) => matchesSelector(spec.namespaces?.selector, ns.metadata?.labels))
    .map((ns) => ns.metadata!.name!)
    .sort();
}
