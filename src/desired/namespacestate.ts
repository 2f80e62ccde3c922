import type { ClusterSecurityPolicy } from "../api/v1alpha1/policy.js";
import { areaExemptInNamespace } from "../api/exemptions.js";
import type { Snapshot } from "../cluster/snapshot.js";
import { disablesDefaultTokenAutomount } from "./defaultserviceaccount.js";
import { selectNamespacesSteps } from "./namespaces.js";
import { drain, SLICE, type Steps } from "./slices.js";
import { wantedNamespaceLabels, winningLabelValue } from "./podsecurity.js";

export { PSA_PREFIX, wantedNamespaceLabels } from "./podsecurity.js";
import { effectiveSpec, isDeleting, isEnforcing } from "./spec.js";

/** One value a policy wants on a shared object, e.g. a Pod Security label on a namespace. */
export interface Want {
  policy: string;
  value: string;
}

/**
 * Namespaces and `default` ServiceAccounts are shared: several policies may select the same namespace and
 * every write uses the one field manager `csp-operator`. A server-side apply replaces everything that
 * manager owns on the object, so each write must carry the union of what ALL enforcing policies want there,
 * or two policies would undo each other. This computes that union, resolving disagreements the same way on
 * every reconcile (no flapping): the stricter Pod Security level wins; for `version` and other values the
 * oldest policy wins (creation time, then name).
 */
export interface SharedNamespaceState {
  /** The labels the operator should own on this namespace (value = winner). */
  labels: Record<string, string>;
  /** Every policy's wish per label key, including the losers, for Conflict reporting. */
  wants: Record<string, Want[]>;
  /** Whether the operator should set automountServiceAccountToken=false on the default ServiceAccount. */
  disableDefaultTokenAutomount: boolean;
  /**
   * Label keys some policy in ANY mode still wants here. A policy switched to Audit freezes what is there
   * (Audit never writes), so what the operator owns is released only when no policy wants it any more.
   */
  retainLabels: Set<string>;
  retainAutomount: boolean;
}

function policyOrder(a: ClusterSecurityPolicy, b: ClusterSecurityPolicy): number {
  const ta = new Date(a.metadata.creationTimestamp ?? 0).getTime();
  const tb = new Date(b.metadata.creationTimestamp ?? 0).getTime();
  return ta - tb || a.metadata.name.localeCompare(b.metadata.name);
}

/**
 * The shared state of every namespace, from all policies that are enforcing and not being deleted.
 * Namespaces no enforcing policy selects get an empty state, which releases whatever the operator owned.
 */
export function sharedNamespaceStates(snapshot: Snapshot): Map<string, SharedNamespaceState> {
  return drain(sharedNamespaceStatesSteps(snapshot));
}

/** sharedNamespaceStates in steps (see slices.ts). */
export function* sharedNamespaceStatesSteps(snapshot: Snapshot): Steps<Map<string, SharedNamespaceState>> {
  let n = 0;
  const policies = snapshot.policies.filter((p) => !isDeleting(p)).sort(policyOrder);
  const states = new Map<string, SharedNamespaceState>();
  for (const ns of snapshot.namespaces) {
    if (!ns.metadata?.name) continue;
    states.set(ns.metadata.name, {
      labels: {},
      wants: {},
      disableDefaultTokenAutomount: false,
      retainLabels: new Set(),
      retainAutomount: false,
    });
    if (++n % SLICE === 0) yield;
  }
  for (const policy of policies) {
    const spec = effectiveSpec(policy);
    const labels = wantedNamespaceLabels(policy);
    const enforcing = isEnforcing(policy);
    const noAutomount = disablesDefaultTokenAutomount(spec);
    for (const name of yield* selectNamespacesSteps(spec, snapshot.namespaces)) {
      const state = states.get(name)!;
      const exempt = (area: string) => areaExemptInNamespace(spec.exemptions, area, name, snapshot.now);
      if (!exempt("podSecurity")) {
        for (const [key, value] of Object.entries(labels)) {
          state.retainLabels.add(key);
          if (enforcing) (state.wants[key] ??= []).push({ policy: policy.metadata.name, value });
        }
      }
      if (noAutomount && !exempt("serviceAccounts")) {
        state.retainAutomount = true;
        if (enforcing) state.disableDefaultTokenAutomount = true;
      }
      if (++n % SLICE === 0) yield;
    }
  }
  for (const state of states.values()) {
    for (const [key, wants] of Object.entries(state.wants)) state.labels[key] = winningLabelValue(key, wants);
    if (++n % SLICE === 0) yield;
  }
  return states;
}
