import type { KubernetesObject, V1Namespace } from "@kubernetes/client-node";
import { FIELD_MANAGER } from "../api/vocabulary.js";
import type { SharedNamespaceState } from "../desired/namespacestate.js";
import type { Snapshot } from "../cluster/snapshot.js";
import { drain, SLICE, type Steps } from "../desired/slices.js";
import { appliedPaths } from "./managedfields.js";
import { defaultServiceAccount } from "./checks.js";
import { namespaceLabelPlan, ORIGINALS_ANNOTATION, ownedLabelKeys, RESTORE_MANAGER } from "./podsecurity.js";

/** A server-side apply of a shared object (a namespace, a default ServiceAccount) with the union of wants. */
export interface SharedWrite {
  object: KubernetesObject & Record<string, unknown>;
  /** Why it is written, for events and logs. */
  reason: string;
  /** The field manager to apply as; the operator's own unless a label is being given back. */
  manager?: string;
}

/**
 * The writes that bring shared objects to the union state, for every namespace at once. Nothing is
 * written when the live object already matches, so a converged cluster costs zero writes; a key the
 * operator owns that no policy wants any more is released by applying without it, after its original value
 * (when it had one) was given back (see podsecurity.ts). Writes for one object are in the order to run them.
 */
export function sharedWrites(
  snapshot: Snapshot,
  states: ReadonlyMap<string, SharedNamespaceState>,
): SharedWrite[] {
  return drain(sharedWritesSteps(snapshot, states));
}

/** sharedWrites in steps (see desired/slices.ts). */
export function* sharedWritesSteps(
  snapshot: Snapshot,
  states: ReadonlyMap<string, SharedNamespaceState>,
): Steps<SharedWrite[]> {
  const out: SharedWrite[] = [];
  let n = 0;
  for (const ns of snapshot.namespaces) {
    if (++n % SLICE === 0) yield;
    const name = ns.metadata?.name;
    const state = name ? states.get(name) : undefined;
    if (!name || !state || ns.metadata?.deletionTimestamp) continue;
    out.push(...namespaceWrites(ns, name, state));
    const sa = defaultServiceAccount(snapshot, name);
    const applied = sa ? appliedPaths(sa, FIELD_MANAGER) : new Set<string>();
    const ownsAutomount = applied.has("automountServiceAccountToken");
    const wantFalse = state.disableDefaultTokenAutomount || (ownsAutomount && state.retainAutomount);
    const base = { apiVersion: "v1", kind: "ServiceAccount", metadata: { name: "default", namespace: name } };
    // Labels or an ownerReference the operator once applied (an earlier version treated `default` as a
    // child): the garbage collector would delete the ServiceAccount with the policy. The apply below
    // carries only the shared field, which releases them.
    const takenOver = [...applied].some(
      (p) => p.startsWith("metadata.labels.") || p.startsWith("metadata.ownerReferences"),
    );
    if (
      wantFalse &&
      (sa?.automountServiceAccountToken !== false || takenOver) &&
      (sa || state.disableDefaultTokenAutomount)
    ) {
      out.push({
        object: { ...base, automountServiceAccountToken: false },
        reason: "set automountServiceAccountToken=false",
      });
    } else if (!wantFalse && (ownsAutomount || takenOver)) {
      out.push({ object: base, reason: "release automountServiceAccountToken" });
    }
  }
  return out;
}

function namespaceWrites(ns: V1Namespace, name: string, state: SharedNamespaceState): SharedWrite[] {
  const out: SharedWrite[] = [];
  const observed = ns.metadata?.labels ?? {};
  const annotations = ns.metadata?.annotations ?? {};
  const plan = namespaceLabelPlan(ns, state);
  const owned = ownedLabelKeys(ns);
  const restored = Object.keys(plan.restore);
  if (restored.length > 0) {
    // Everything this manager already holds goes along: an apply without a key would delete it.
    const held: Record<string, string> = {};
    for (const key of ownedLabelKeys(ns, RESTORE_MANAGER))
      if (observed[key] !== undefined) held[key] = observed[key];
    out.push({
      object: {
        apiVersion: "v1",
        kind: "Namespace",
        metadata: { name, labels: sortedRecord({ ...held, ...plan.restore }) },
      },
      reason: `restore ${restored.map((k) => `${k}=${plan.restore[k]}`).join(", ")}`,
      manager: RESTORE_MANAGER,
    });
  }
  const changed = Object.entries(plan.labels)
    .filter(([k, v]) => observed[k] !== v)
    .map(([k]) => k);
  const released = [...owned].filter((k) => !(k in plan.labels));
  const ownsRecord = appliedPaths(ns, FIELD_MANAGER).has(`metadata.annotations.${ORIGINALS_ANNOTATION}`);
  const record = plan.annotations[ORIGINALS_ANNOTATION];
  const recordChanged = record !== undefined ? annotations[ORIGINALS_ANNOTATION] !== record : ownsRecord;
  if (changed.length > 0 || released.length > 0 || recordChanged) {
    out.push({
      object: {
        apiVersion: "v1",
        kind: "Namespace",
        metadata: {
          name,
          labels: plan.labels,
          ...(Object.keys(plan.annotations).length > 0 ? { annotations: plan.annotations } : {}),
        },
      },
      reason: [
        changed.length ? `set ${changed.join(", ")}` : "",
        released.length ? `release ${released.join(", ")}` : "",
        !changed.length && !released.length && recordChanged ? "record original Pod Security labels" : "",
      ]
        .filter(Boolean)
        .join("; "),
    });
  }
  return out;
}

function sortedRecord(o: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(o).sort(([a], [b]) => a.localeCompare(b)));
}
