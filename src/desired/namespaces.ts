import type { V1Namespace } from "@kubernetes/client-node";
import type { ClusterSecurityPolicySpec } from "../api/v1alpha1/policy.js";
import { OPERATOR_NAMESPACE } from "../api/vocabulary.js";
import { codeUnitOrder, drain, SLICE, sortedSteps, type Steps } from "./slices.js";

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
  return drain(selectNamespacesSteps(spec, namespaces));
}

/**
 * selectNamespaces in steps (see slices.ts). The answer for a frozen spec (effectiveSpec's) and the same
 * list of namespaces (a snapshot's, never changed) is kept: one plan asks several times.
 */
export function* selectNamespacesSteps(
  spec: Readonly<ClusterSecurityPolicySpec>,
  namespaces: readonly V1Namespace[],
): Steps<string[]> {
  const known = Object.isFrozen(spec) ? selections.get(spec) : undefined;
  if (known && known.of === namespaces && known.length === namespaces.length) return [...known.selected];
  const exclude = new Set([...(spec.namespaces?.exclude ?? []), OPERATOR_NAMESPACE]);
  const selector = spec.namespaces?.selector;
  const selected: string[] = [];
  let n = 0;
  for (const ns of namespaces) {
    const name = ns.metadata?.name;
    if (
      name &&
      !exclude.has(name) &&
      !ns.metadata?.deletionTimestamp &&
      ns.status?.phase !== "Terminating" &&
      matchesSelector(selector, ns.metadata?.labels)
    )
      selected.push(name);
    if (++n % SLICE === 0) yield;
  }
  const sorted = yield* sortedSteps(selected, codeUnitOrder);
  if (Object.isFrozen(spec))
    selections.set(spec, { of: namespaces, length: namespaces.length, selected: sorted });
  return [...sorted];
}

/** Per frozen spec: the last list of namespaces it selected from, and what it selected. */
const selections = new WeakMap<
  Readonly<ClusterSecurityPolicySpec>,
  { of: readonly V1Namespace[]; length: number; selected: readonly string[] }
>();
