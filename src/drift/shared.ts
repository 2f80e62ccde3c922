import type { KubernetesObject } from "@kubernetes/client-node";
import { FIELD_MANAGER } from "../desired/metadata.js";
import type { SharedNamespaceState } from "../desired/namespacestate.js";
import type { Snapshot } from "../snapshot.js";
import { appliedPaths } from "./managedfields.js";

/** A server-side apply of a shared object (a namespace, a default ServiceAccount) with the union of wants. */
export interface SharedWrite {
  object: KubernetesObject & Record<string, unknown>;
  /** Why it is written, for events and logs. */
  reason: string;
}

const LABELS = "metadata.labels.";

/**
 * The writes that bring shared objects to the union state, for every namespace at once. Nothing is
 * written when the live object already matches, so a converged cluster costs zero writes; a key the
 * operator owns that no policy wants any more is released by applying without it.
 */
export function sharedWrites(
  snapshot: Snapshot,
  states: ReadonlyMap<string, SharedNamespaceState>,
): SharedWrite[] {
  const out: SharedWrite[] = [];
  for (const ns of snapshot.namespaces) {
    const name = ns.metadata?.name;
    const state = name ? states.get(name) : undefined;
    if (!name || !state || ns.metadata?.deletionTimestamp) continue;
    const observed = ns.metadata?.labels ?? {};
    const owned = [...appliedPaths(ns, FIELD_MANAGER)]
      .filter((p) => p.startsWith(LABELS)) // label keys have no children, but may contain dots
      .map((p) => p.slice(LABELS.length));
    const labels: Record<string, string> = { ...state.labels };
    for (const key of owned)
      if (!(key in labels) && state.retainLabels.has(key) && observed[key] !== undefined)
        labels[key] = observed[key];
    const changed = Object.entries(state.labels)
      .filter(([k, v]) => observed[k] !== v)
      .map(([k]) => k);
    const released = owned.filter((k) => !(k in labels));
    if (changed.length > 0 || released.length > 0) {
      const sorted = Object.fromEntries(Object.entries(labels).sort(([a], [b]) => a.localeCompare(b)));
      out.push({
        object: { apiVersion: "v1", kind: "Namespace", metadata: { name, labels: sorted } },
        reason: [
          changed.length ? `set ${changed.join(", ")}` : "",
          released.length ? `release ${released.join(", ")}` : "",
        ]
          .filter(Boolean)
          .join("; "),
      });
    }
    const sa = snapshot.serviceAccounts.find(
      (s) => s.metadata?.namespace === name && s.metadata.name === "default",
    );
    const ownsAutomount = sa ? appliedPaths(sa, FIELD_MANAGER).has("automountServiceAccountToken") : false;
    const wantFalse = state.disableDefaultTokenAutomount || (ownsAutomount && state.retainAutomount);
    const base = { apiVersion: "v1", kind: "ServiceAccount", metadata: { name: "default", namespace: name } };
    if (
      wantFalse &&
      sa?.automountServiceAccountToken !== false &&
      (sa || state.disableDefaultTokenAutomount)
    ) {
      out.push({
        object: { ...base, automountServiceAccountToken: false },
        reason: "set automountServiceAccountToken=false",
      });
    } else if (!wantFalse && ownsAutomount) {
      out.push({ object: base, reason: "release automountServiceAccountToken" });
    }
  }
  return out;
}
