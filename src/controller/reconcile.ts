import type { KubernetesObject } from "@kubernetes/client-node";
import type { ClusterSecurityPolicy } from "../api/v1alpha1/policy.js";
import type { Logger } from "../observability/logger.js";
import type { ReconcileResult } from "../runtime/controller.js";
import { objectKey, type Snapshot } from "../cluster/snapshot.js";
import { isDeleting } from "../desired/spec.js";
import { applyPlan, DEFAULT_MAX_CONCURRENT_WRITES, type Corrections, type PlanWriter } from "./apply.js";
import { releaseAreas, runAreas, type AreaReconciler } from "./areas.js";
import { settleBounded } from "./bounded.js";
import type { WriteLedger } from "./ledger.js";
import { planYielding, type Plan } from "./plan.js";
import { driftCorrectedEvent, reportYielding, type PlannedEvent } from "./report.js";

export { BLOCKED_RECHECK_MS } from "./plan.js";
export { GRANTABLE_CLUSTER_ROLE } from "./failures.js";

/** What reconcile needs from the cluster layer; the real ones are ClusterCache and Applier. */
export interface ReconcileDeps {
  snapshot(): Snapshot;
  writer: PlanWriter & {
    /** A live read, only for an object the caches hold too little of (see Plan.reads). */
    read(
      apiVersion: string,
      kind: string,
      namespace: string | undefined,
      name: string,
    ): Promise<KubernetesObject | undefined>;
    /**
     * Writes status to the policy object `uid` only; false (or nothing written, the fakes' void) when
     * that object is gone or was replaced by another of the same name (see Applier.patchStatus).
     */
    patchStatus(
      name: string,
      status: NonNullable<ClusterSecurityPolicy["status"]>,
      uid?: string,
    ): Promise<boolean | void>;
    event(
      policy: ClusterSecurityPolicy,
      type: "Normal" | "Warning",
      reason: string,
      message: string,
    ): Promise<void>;
  };
  log: Logger;
  /** Areas beyond namespaced children (encryption, control plane, hygiene); see areas.ts. */
  areas?: readonly AreaReconciler[];
  /** Writes in flight within one reconcile (`--max-concurrent-writes`). */
  maxConcurrentWrites?: number;
  /** Per-object correction budget against rival writers (kept across reconciles by the operator). */
  corrections?: Corrections;
  /** What the repair lane (and this one) wrote lately: neither repeats the other's write (ledger.ts). */
  ledger?: WriteLedger;
  /**
   * The policy as the cache holds it now (ClusterCache.policy): asked before each write, so a switch to
   * Audit, a deletion or any new generation stops this reconcile's remaining writes (see policyOutdated).
   */
  currentPolicy?: (name: string) => ClusterSecurityPolicy | undefined;
}

/** A failure worth retrying with backoff (the queue does the waiting). */
export class RetryableError extends Error {}

/** A snapshot that also knows the children the operator just created (see WriteLedger.rememberChild). */
export function withLedger(snapshot: Snapshot, ledger: WriteLedger | undefined): Snapshot {
  return ledger ? { ...snapshot, unrememberedChildren: (p) => ledger.unrememberedChildren(p) } : snapshot;
}

/**
 * Why a plan made for `planned` must not write any more, given the policy the cache holds `now`: gone,
 * being deleted or re-created (another uid), or a new generation (a switch to Audit among others).
 * Undefined: the plan still holds.
 */
export function policyOutdated(
  planned: ClusterSecurityPolicy,
  now: ClusterSecurityPolicy | undefined,
): string | undefined {
  if (!now || isDeleting(now) || now.metadata.uid !== planned.metadata.uid) return "policy gone";
  if (now.metadata.generation !== planned.metadata.generation) return "policy changed";
  return undefined;
}

/** How soon a reconcile that skipped a write (the other lane's, see ledger.ts) looks again. */
export const SKIPPED_RECHECK_MS = 1000;

/**
 * Gather: the caches' snapshot, plus the few objects it holds too little of, read live in parallel
 * (none in steady state: occupancy comes from a metadata-only cache). Returns the plan made from it.
 */
async function gatherAndPlan(
  name: string,
  deps: ReconcileDeps,
  limit: number,
): Promise<{ snapshot: Snapshot; plan: Plan }> {
  const snapshot = withLedger(deps.snapshot(), deps.ledger);
  const first = await planYielding(name, snapshot);
  if (first.reads.length === 0) return { snapshot, plan: first };
  const occupied = new Map(snapshot.occupied ?? []);
  const results = await settleBounded(first.reads, limit, (r) =>
    deps.writer.read(r.apiVersion, r.kind, r.namespace, r.name),
  );
  for (const [i, r] of first.reads.entries()) {
    const result = results[i]!;
    if (result.status === "rejected") throw result.reason;
    // Gone since the cache saw it: nothing there, as the occupancy cache will say soon.
    if (result.value) occupied.set(r.key, result.value);
  }
  const occupant = snapshot.occupant;
  const read = new Set(first.reads.map((r) => r.key));
  const gathered: Snapshot = {
    ...snapshot,
    occupied,
    ...(occupant
      ? {
          occupant: (kind: string, ns: string | undefined, n: string) =>
            read.has(objectKey(kind, ns, n)) ? undefined : occupant(kind, ns, n),
        }
      : {}),
  };
  return { snapshot: gathered, plan: await planYielding(name, gathered) };
}

/**
 * Reconciles one policy: gather (a snapshot of the caches) -> plan (pure: desired state, drift, the
 * writes to make) -> apply (Enforce only, bounded parallel writes, ordered where order matters) ->
 * report (status written only when it changed, Events). Every call recomputes everything
 * (level-triggered); there is no shortcut on observedGeneration.
 */
export async function reconcile(name: string, deps: ReconcileDeps): Promise<ReconcileResult | void> {
  const { writer, log } = deps;
  const limit = deps.maxConcurrentWrites ?? DEFAULT_MAX_CONCURRENT_WRITES;
  // Taken before the snapshot: a write the repair lane makes from now on is newer than this plan's view.
  const epoch = deps.ledger?.epoch() ?? 0;
  const { snapshot, plan: p } = await gatherAndPlan(name, deps, limit);
  // Asked before each write: the policy may have changed (a switch to Audit to stop an outage) or gone
  // while this plan was made or is being applied, and its remaining writes must not land.
  let outdated: string | undefined;
  const planned = p.policy;
  const current = deps.currentPolicy;
  const proceed =
    planned && current
      ? () => (outdated ??= policyOutdated(planned, current(name))) === undefined
      : undefined;
  const applied = await applyPlan(
    p,
    writer,
    log,
    limit,
    deps.corrections,
    deps.ledger
      ? { ledger: deps.ledger, epoch, claimAhead: true, ...(proceed ? { proceed } : {}) }
      : undefined,
  );
  // Asked once more after the last write: the areas and status below would be this plan's too.
  // No status (it would describe an outdated plan), and no areas after a stop before them.
  const stopped = async (areaEvents: readonly PlannedEvent[] = []): Promise<ReconcileResult> => {
    log.info("reconcile stopped: its plan is outdated", {
      why: outdated,
      written: applied.corrected.length,
      skipped: applied.skipped.length,
    });
    // What it did write is still told: the children it corrected, the steps its areas took.
    const corrected = driftCorrectedEvent(applied.corrected);
    if (p.policy)
      for (const e of [...(corrected ? [corrected] : []), ...areaEvents])
        await writer.event(p.policy, e.type, e.reason, e.message);
    // The new generation's reconcile is already enqueued (the policy's event) and runs at once; one more a
    // second later sees what this one wrote should the caches lag behind it then (a namespace this one
    // annotated, which the new generation releases).
    return { requeueAfterMs: SKIPPED_RECHECK_MS };
  };
  if (proceed && !proceed()) return await stopped();
  if (!p.policy || !p.spec) {
    const failures = [
      ...applied.failures.map((f) => f.message),
      ...(await releaseAreas(deps.areas ?? [], { name, snapshot, log })),
    ];
    if (failures.length) throw new RetryableError(failures.join("; "));
    return;
  }
  const { policy, spec, enforce } = p;
  const areaReports = (
    await runAreas(deps.areas ?? [], {
      policy,
      spec,
      snapshot,
      enforce,
      log,
      ...(proceed ? { proceed } : {}),
    })
  ).map((r) => r.report);
  const r = await reportYielding(p, applied, areaReports, snapshot.now);
  // The areas take time (a write per namespace, a rewrite of stored objects): asked again before status.
  if (proceed && !proceed()) return await stopped(areaReports.flatMap((a) => a.events ?? []));
  if (r.status && (await writer.patchStatus(name, r.status, policy.metadata.uid)) === false)
    // Deleted, or replaced by a new policy of the same name, since the plan: its own reconcile runs.
    log.debug("status not written: the policy was deleted or replaced", { uid: policy.metadata.uid });
  if (applied.corrected.length > 0) log.info("drift corrected", { corrected: applied.corrected.length });
  for (const e of r.events) await writer.event(policy, e.type, e.reason, e.message);
  if (r.failure) {
    log.warn("reconcile incomplete", {
      reason: r.failure.reason,
      failures: r.failures.map((f) => f.message),
    });
    if (r.failure.reason !== "InvalidSpec" && !r.failure.terminal)
      throw new RetryableError(r.failure.message);
  }
  log.debug("reconciled", {
    namespaces: p.namespaces,
    drift: applied.remaining.length,
    corrected: applied.corrected.length,
  });
  // A skipped write is the other lane's, or one the cache has not caught up with: whatever it left (a
  // delete made just after it) may come with no event that starts a repair, so look again soon.
  const skippedRecheck = applied.skipped.length > 0 ? SKIPPED_RECHECK_MS : undefined;
  const requeue = [r.requeueAfterMs, applied.retryAfterMs, skippedRecheck].filter(
    (ms): ms is number => ms !== undefined,
  );
  return requeue.length === 0 ? undefined : { requeueAfterMs: Math.min(...requeue) };
}
