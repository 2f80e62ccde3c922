import type { V1Namespace } from "@kubernetes/client-node";
import { MAX_REMEMBERED_CHILDREN, type ClusterSecurityPolicy } from "../api/v1alpha1/policy.js";
import { selectNamespaces } from "../desired/namespaces.js";
import { effectiveSpec } from "../desired/spec.js";
import { objectKey, type Snapshot } from "../cluster/snapshot.js";
import type { Drift } from "../drift/checks.js";
import { rememberedSetOf, uidMark } from "../drift/ownership.js";
import { applyExemptions } from "../findings/exemptions.js";
import type { Finding } from "../findings/finding.js";
import type { Logger } from "../observability/logger.js";
import type { ReconcileResult } from "../runtime/controller.js";
import { applyPlan, DEFAULT_MAX_CONCURRENT_WRITES, type Applied, type Corrections } from "./apply.js";
import type { WriteLedger } from "./ledger.js";
import { plan, type Plan } from "./plan.js";
import { policyOutdated, SKIPPED_RECHECK_MS, withLedger, type ReconcileDeps } from "./reconcile.js";
import { driftCorrectedEvent } from "./report.js";

/**
 * The repair lane. An event that concerns one namespace (a managed child's, a `default` ServiceAccount's,
 * an occupant's, a selected Namespace's whose selection did not change) enqueues the item
 * `policy/namespace` in a queue of its own, with its own workers: it never waits behind a full reconcile
 * of the policy (which may take seconds at thousands of namespaces), and its cost does not grow with the
 * number of namespaces (it plans one).
 *
 * A repair plans the namespace from a snapshot of that namespace alone (ClusterCache.namespaceSnapshot),
 * with the same plan() as a full reconcile, and applies its writes with the same applyPlan (ordering,
 * correction limiter, ownership rules, the WriteLedger the lanes share). It writes no status: it records
 * at most one `DriftCorrected` Event, and asks for a full reconcile of the policy (coalesced by the
 * caller) only when the policy's status must change: see fullReconcileReasons().
 */

/** The repair lane's controller name in metrics (controller_runtime_*, workqueue_*). */
export const REPAIR_CONTROLLER_NAME = "csp-repair";

/** Policy names cannot hold a `/` (they are DNS subdomains): the first one separates the two parts. */
export function laneKey(policy: string, namespace: string): string {
  return `${policy}/${namespace}`;
}

export function parseLaneKey(key: string): { policy: string; namespace: string } | undefined {
  const i = key.indexOf("/");
  if (i <= 0 || i === key.length - 1) return undefined;
  return { policy: key.slice(0, i), namespace: key.slice(i + 1) };
}

/** Whether a drift concerns namespace `ns`: an object in it, or the Namespace itself. */
export function driftInNamespace(d: { kind: string; namespace?: string; name: string }, ns: string): boolean {
  return d.namespace === ns || (d.kind === "Namespace" && d.namespace === undefined && d.name === ns);
}

/** Whether a finding's resource (`Kind/namespace/name`, or `Namespace/name`) is in namespace `ns`. */
export function findingInNamespace(resource: string, ns: string): boolean {
  const parts = resource.split("/");
  return (parts.length === 3 && parts[1] === ns) || resource === `Namespace/${ns}`;
}

/**
 * The part of a plan that concerns namespace `ns`: its shared objects, its children, their drift. A plan
 * made from a one-namespace snapshot also carries policy-wide children (the rendered audit Policy in
 * csp-system): those are the full reconcile's.
 */
export function scopePlan(p: Plan, ns: string): Plan {
  const keyIn = (key: string) => {
    const [kind = "", a = "", b] = key.split("/");
    return b === undefined ? kind === "Namespace" && a === ns : a === ns;
  };
  const shared = p.shared.filter((w) =>
    driftInNamespace(
      {
        kind: w.object.kind ?? "",
        name: w.object.metadata?.name ?? "",
        ...nsOf(w.object.metadata?.namespace),
      },
      ns,
    ),
  );
  return {
    ...p,
    shared,
    writes: p.writes.filter((w) => keyIn(w.key)),
    deletes: p.deletes.filter((d) => keyIn(d.key)),
    remaining: p.remaining.filter((d) => driftInNamespace(d, ns)),
    sharedDrift: p.sharedDrift.filter((d) => driftInNamespace(d, ns)),
    reads: p.reads.filter((r) => r.namespace === ns),
    findings: p.findings.filter((f) => findingInNamespace(f.resource, ns)),
    ...(p.childUIDs ? { childUIDs: p.childUIDs } : {}),
  };
}

const nsOf = (namespace: string | undefined) => (namespace !== undefined ? { namespace } : {});

/**
 * Why a repair of namespace `ns` must be followed by a full reconcile of the policy: exactly when the
 * policy's status (written only by the full reconcile) would change. Empty: status stays as it is.
 * - `not selected`: the policy does not select the namespace (any more): its count, releases, orphans;
 * - `live read needed`: an object at a child's name needs a live read (the full reconcile gathers them);
 * - `write failed`: a write failed (status reports the error; the full reconcile retries with backoff);
 * - `drift changed`: the drift left in the namespace (Audit mode's drift, Conflict, Unowned, Contested)
 *   differs from status.drift's entries for the namespace (by kind, name and reason), or status.drift is
 *   truncated and anything was found or corrected here;
 * - `findings changed`: likewise for the counted findings about objects in the namespace;
 * - `child not remembered`: a child of the policy in the namespace (one just created, among others) has a
 *   UID status.childUIDs does not remember yet.
 * Policy-wide state (spec errors, areas, RBAC findings on cluster-scoped objects) comes from other events,
 * which enqueue the full reconcile directly.
 */
export function fullReconcileReasons(
  policy: ClusterSecurityPolicy,
  ns: string,
  p: Plan,
  applied: Applied,
  counted: readonly Finding[],
): string[] {
  const reasons: string[] = [];
  if (p.namespaces === 0) return ["not selected"];
  if (p.reads.length > 0) return ["live read needed"];
  const status = policy.status;
  if (applied.failures.length > p.failures.length) reasons.push("write failed");

  const driftKey = (d: { kind: string; namespace?: string; name: string; reason: string }) =>
    `${objectKey(d.kind, d.namespace, d.name)}:${d.reason}`;
  const here = new Set(applied.remaining.filter((d) => driftInNamespace(d, ns)).map(driftKey));
  const listed = status?.drift ?? [];
  const reported = new Set(listed.filter((d) => driftInNamespace(d, ns)).map(driftKey));
  const driftTruncated = (status?.summary?.drifted ?? 0) > listed.length;
  if (
    !sameSet(here, reported) ||
    (driftTruncated && (here.size > 0 || applied.corrected.some((d) => driftInNamespace(d, ns))))
  )
    reasons.push("drift changed");

  const findingKey = (f: { id: string; resource: string }) => `${f.id} ${f.resource}`;
  const found = new Set(counted.filter((f) => findingInNamespace(f.resource, ns)).map(findingKey));
  const listedFindings = status?.findings ?? [];
  const shown = new Set(listedFindings.filter((f) => findingInNamespace(f.resource, ns)).map(findingKey));
  const total = Object.values(status?.summary?.findingsBySeverity ?? {}).reduce((a, b) => a + b, 0);
  const findingsTruncated = total > listedFindings.length;
  if (!sameSet(found, shown) || (findingsTruncated && found.size > 0)) reasons.push("findings changed");

  const remembered = status?.childUIDs ?? [];
  const known = rememberedSetOf(remembered);
  const last = remembered.length >= MAX_REMEMBERED_CHILDREN ? remembered[remembered.length - 1] : undefined;
  const marks = new Set([...(p.childUIDs ?? []), ...applied.written.map(uidMark)]);
  for (const m of marks)
    if (!known.has(m) && (last === undefined || m < last)) {
      reasons.push("child not remembered");
      break;
    }
  return reasons;
}

function sameSet(a: ReadonlySet<string>, b: ReadonlySet<string>): boolean {
  if (a.size !== b.size) return false;
  for (const x of a) if (!b.has(x)) return false;
  return true;
}

/** What a repair needs; the real ones are ClusterCache, the Applier and the operator's shared state. */
export interface RepairDeps {
  namespaceSnapshot(namespace: string): Snapshot;
  writer: Pick<ReconcileDeps["writer"], "apply" | "create" | "replaceOwned" | "delete" | "event">;
  log: Logger;
  maxConcurrentWrites?: number;
  corrections?: Corrections;
  ledger?: WriteLedger;
  /**
   * Whether the namespace was selected by the policy after its last full reconcile started: that one is
   * enqueued and covers it (a new namespace's children are created by one full reconcile, with one
   * status write and one Event, not by a repair per namespace). Repairs there wait for it.
   */
  uncovered?: (policy: string, namespace: string) => boolean;
  /**
   * The policy and the Namespace as the cache holds them now: checked before each write, so a write
   * planned before a switch to Audit, a deselection or the policy's deletion is not made.
   */
  current?: (
    policy: string,
    namespace: string,
  ) => { policy: ClusterSecurityPolicy | undefined; namespace: V1Namespace | undefined };
  /** Asks for a full reconcile of the policy (the caller coalesces these). */
  reconcilePolicy(policy: string, reasons: string[]): void;
}

/** What one repair did, for logs and tests. */
export interface RepairOutcome {
  corrected: Drift[];
  skipped: string[];
  /** Of those, the ones the other lane holds claimed: the repair looks again when it releases them. */
  waiting?: string[];
  fullReconcile: string[];
  /** Why it stopped before its last write (see planOutdated): the full reconcile it asked for covers it. */
  stopped?: string;
}

/** Repairs one namespace of one policy (see the top of this file). */
export async function repairNamespace(
  policyName: string,
  ns: string,
  deps: RepairDeps,
): Promise<RepairOutcome> {
  if (deps.uncovered?.(policyName, ns)) {
    // The full reconcile the selection enqueued covers it; it asks for nothing more.
    return { corrected: [], skipped: [], fullReconcile: ["newly selected"] };
  }
  const epoch = deps.ledger?.epoch() ?? 0;
  const snapshot = withLedger(deps.namespaceSnapshot(ns), deps.ledger);
  const full = plan(policyName, snapshot);
  if (!full.policy || !full.spec) {
    // Gone or being deleted: children go with it; releases are the full reconcile's.
    deps.reconcilePolicy(policyName, ["policy gone"]);
    return { corrected: [], skipped: [], fullReconcile: ["policy gone"] };
  }
  const p = scopePlan(full, ns);
  if (p.namespaces === 0 || p.reads.length > 0) {
    const why = p.namespaces === 0 ? ["not selected"] : ["live read needed"];
    deps.reconcilePolicy(policyName, why);
    return { corrected: [], skipped: [], fullReconcile: why };
  }
  let changed: string | undefined;
  const current = deps.current;
  const proceed = current
    ? () => (changed ??= planOutdated(full.policy!, ns, current(policyName, ns))) === undefined
    : undefined;
  const applied = await applyPlan(
    p,
    deps.writer,
    deps.log,
    deps.maxConcurrentWrites ?? DEFAULT_MAX_CONCURRENT_WRITES,
    deps.corrections,
    deps.ledger ? { ledger: deps.ledger, epoch, ...(proceed ? { proceed } : {}) } : undefined,
  );
  if (changed !== undefined) {
    // What is left is the full reconcile's, planned from what the policy and namespace are now.
    deps.log.info("repair stopped: its plan is outdated", { namespace: ns, why: changed });
    deps.reconcilePolicy(policyName, [changed]);
  }
  const event = driftCorrectedEvent(applied.corrected);
  if (event) {
    deps.log.info("drift corrected", { namespace: ns, corrected: applied.corrected.length });
    await deps.writer.event(full.policy, event.type, event.reason, event.message);
  }
  const counted = applyExemptions(p.findings, full.spec.exemptions, snapshot.now, policyName).counted;
  const reasons =
    changed !== undefined ? [changed] : fullReconcileReasons(full.policy, ns, p, applied, counted);
  if (reasons.length > 0 && changed === undefined) deps.reconcilePolicy(policyName, reasons);
  deps.log.debug("repaired", {
    namespace: ns,
    corrected: applied.corrected.length,
    skipped: applied.skipped.length,
    ...(reasons.length ? { fullReconcile: reasons } : {}),
  });
  return {
    corrected: applied.corrected,
    skipped: applied.skipped,
    ...(applied.waiting ? { waiting: applied.waiting } : {}),
    fullReconcile: reasons,
    ...(changed !== undefined ? { stopped: changed } : {}),
  };
}

/**
 * Why a repair planned for `planned` in namespace `ns` must not write any more, given the policy and the
 * Namespace the cache holds now: the policy gone, being deleted or recreated, its spec changed (a switch
 * to Audit among others), or the namespace no longer selected. Undefined: the plan still holds.
 */
export function planOutdated(
  planned: ClusterSecurityPolicy,
  ns: string,
  now: { policy: ClusterSecurityPolicy | undefined; namespace: V1Namespace | undefined },
): string | undefined {
  const policy = now.policy;
  const outdated = policyOutdated(planned, policy);
  if (outdated !== undefined || !policy) return outdated ?? "policy gone";
  if (!now.namespace || !selectNamespaces(effectiveSpec(policy), [now.namespace]).includes(ns))
    return "not selected";
  return undefined;
}

/**
 * The repair lane's reconcile function for a Controller: parses the key and runs repairNamespace. A
 * repair that left writes to the other lane's claims is enqueued again when those claims end (`wake`: the
 * caller enqueues `key` once none of `claimed` is claimed, see WriteLedger.whenReleased), not polled; one
 * that skipped a write its cache has not caught up with looks again after SKIPPED_RECHECK_MS.
 */
export function repairReconciler(
  deps: (policy: string, reconcileId: string) => RepairDeps,
  wake?: (key: string, claimed: readonly string[]) => void,
): (key: string, reconcileId: string) => Promise<ReconcileResult | void> {
  return async (key, reconcileId) => {
    const parsed = parseLaneKey(key);
    if (!parsed) return;
    const outcome = await repairNamespace(parsed.policy, parsed.namespace, deps(parsed.policy, reconcileId));
    if (outcome.skipped.length === 0 || outcome.stopped !== undefined) return;
    const claimed = wake ? (outcome.waiting ?? []) : [];
    if (claimed.length > 0) wake!(key, claimed);
    // A write skipped as stale (the cache has not shown the other lane's write yet): what that write left
    // (a delete made just after it) may come with no event that starts this repair again, so look again soon.
    if (outcome.skipped.length > claimed.length) return { requeueAfterMs: SKIPPED_RECHECK_MS };
  };
}
