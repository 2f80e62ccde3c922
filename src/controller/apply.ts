import type { KubernetesObject } from "@kubernetes/client-node";
import { errorMessage } from "../cluster/client.js";
import { withTypeMeta, type Child, type ChildKind } from "../desired/children.js";
import { ownedFieldDiff, type Drift } from "../drift/checks.js";
import type { SharedWrite } from "../drift/shared.js";
import type { Logger } from "../observability/logger.js";
import { objectKey } from "../cluster/snapshot.js";
import { settleBounded } from "./bounded.js";
import type { CorrectionLimiter } from "./corrections.js";
import type { WriteLedger } from "./ledger.js";
import { classify, type WriteFailure } from "./failures.js";
import type { ChildWrite, Plan } from "./plan.js";

/** The writes apply needs; the real one is the cluster layer's Applier. */
export interface PlanWriter {
  /** Server-side apply with force, as the operator's field manager unless another is given. */
  apply<T extends KubernetesObject>(obj: T, fieldManager?: string): Promise<T>;
  /** Creates a missing object (POST); undefined when its name is occupied (409): nothing written. */
  create<T extends KubernetesObject>(obj: T): Promise<T | undefined>;
  /** With `reclaim`, its ownerReferences become the child's (a foreign controller reference removed). */
  replaceOwned(child: Child, reclaim?: boolean): Promise<void>;
  delete(obj: KubernetesObject): Promise<void>;
}

/** What applying a plan achieved. */
export interface Applied {
  /** Shared objects (keys) whose writes all succeeded. */
  sharedDone: Set<string>;
  corrected: Drift[];
  /** Drift still present: the plan's `remaining` plus every write that failed. */
  remaining: Drift[];
  failures: WriteFailure[];
  /** UIDs of the children this apply wrote, to be remembered in status without waiting for the watch. */
  written: string[];
  /** Corrections held back because another writer keeps reverting the object: retry after this long. */
  retryAfterMs?: number;
  /** Objects not written because the other lane wrote them after this plan's snapshot, or is writing them. */
  skipped: string[];
  /** Of those, the ones the other lane holds claimed (writing them now, or about to): see whenReleased. */
  waiting?: string[];
}

/** The ledger both lanes share, and the epoch of the snapshot this plan was made from (see ledger.ts). */
export interface LedgerView {
  ledger: WriteLedger;
  epoch: number;
  /**
   * Claim every object of the plan before the first write, and hold each claim until its own write is
   * done (the full reconcile: its writes take seconds at thousands of namespaces, and a repair meanwhile
   * must not make a write it is about to make). Without it, each object is claimed just for its write.
   */
  claimAhead?: boolean;
  /**
   * Asked just before each write: false when what the plan was made for no longer holds (the repair lane
   * checks its policy and namespace in the cache). That write and every later one are skipped.
   */
  proceed?: () => boolean;
}

/** Correction budget per object, shared across reconciles (see corrections.ts); scoped by policy. */
export interface Corrections {
  limiter: CorrectionLimiter;
  now(): number;
}

/** Default bound on writes in flight within one reconcile (`--max-concurrent-writes`). */
export const DEFAULT_MAX_CONCURRENT_WRITES = 8;

/**
 * Executes a plan's writes with at most `limit` in flight, in order where order matters: shared writes
 * first (each object's writes in sequence: after a failed give-back, releasing the label would delete it),
 * then removals of bindings to foreign objects, then children in phases (ServiceAccounts and Roles before
 * the RoleBindings that bind them). A failed write never hides the others' results: each is recorded.
 */
export async function applyPlan(
  p: Plan,
  writer: PlanWriter,
  log: Logger,
  limit: number = DEFAULT_MAX_CONCURRENT_WRITES,
  corrections?: Corrections,
  ledger?: LedgerView,
): Promise<Applied> {
  // Writes finish in any order: their failures are sorted below, so the status they produce is stable.
  const failures: WriteFailure[] = [];
  const sharedDone = new Set<string>();

  let retryAt: number | undefined;
  const remaining: Drift[] = [...p.remaining];
  const now = () => corrections?.now() ?? 0;
  // A revert: drift another field manager made, or Modified drift again on an object corrected within the
  // window (field-manager names are not authenticated: a rival writing as csp-operator leaves no other
  // manager to name). Every correction of Modified drift is recorded, so the second one is recognised.
  const isRevert = (d: Drift, budgetKey: string): boolean =>
    d.reason === "Modified" &&
    (d.manager !== undefined || !!corrections?.limiter.recent(budgetKey, corrections.now()));
  const contested = (d: Drift, admission: { retryAt: number; corrections: number }): Drift => {
    retryAt = Math.min(retryAt ?? Infinity, admission.retryAt);
    return {
      ...d,
      reason: "Contested",
      message:
        `${d.message}; reverted by ${d.manager ?? "a writer using csp-operator's field manager"} ` +
        `${admission.corrections} time(s) within a minute after ` +
        `csp-operator corrected it: corrections wait until ${new Date(admission.retryAt).toISOString()}`,
    };
  };

  const byObject = new Map<string, SharedWrite[]>();
  for (const w of p.shared) {
    const key = objectKey(w.object.kind!, w.object.metadata?.namespace, w.object.metadata!.name!);
    byObject.set(key, [...(byObject.get(key) ?? []), w]);
  }
  const sharedReverts = new Map<string, Drift[]>();
  const sharedModified = new Set<string>();
  const sharedRevertDrift = new Set<Drift>();
  for (const d of p.sharedDrift) {
    const key = objectKey(d.kind, d.namespace, d.name);
    if (d.reason === "Modified") sharedModified.add(key);
    if (isRevert(d, `shared:${key}`)) {
      sharedRevertDrift.add(d);
      sharedReverts.set(key, [...(sharedReverts.get(key) ?? []), d]);
    }
  }
  const sharedHeld = new Set<string>();
  const skipped: string[] = [];
  const waiting: string[] = [];
  // Claimed ahead (see LedgerView.claimAhead): released as each write ends, the rest at the end.
  const held = new Set<string>();
  const busy = new Set<string>();
  if (ledger?.claimAhead)
    for (const key of new Set([
      ...byObject.keys(),
      ...p.deletes.map((d) => d.key),
      ...p.writes.map((w) => w.key),
    ]))
      (ledger.ledger.claim(key, p.name) ? held : busy).add(key);
  /** Takes an object for this write, or records it skipped (see ledger.ts). */
  let halted = false;
  const take = (key: string, seen: string | null | undefined): boolean => {
    if (!ledger) return true;
    if (halted || (ledger.proceed && !ledger.proceed())) {
      halted = true;
      skipped.push(key);
      return false;
    }
    const free = held.has(key) || (!busy.has(key) && ledger.ledger.claim(key, p.name));
    if (free && !ledger.ledger.stale(key, seen, ledger.epoch)) return true;
    if (free) done(key);
    else waiting.push(key);
    skipped.push(key);
    return false;
  };
  /** Ends this plan's claim on `key`, recording the write when it went through. */
  const done = (key: string, result?: Parameters<WriteLedger["release"]>[1]): void => {
    held.delete(key);
    ledger?.ledger.release(key, result);
  };
  try {
    return await applyClaimed();
  } finally {
    for (const key of [...held]) done(key);
  }

  async function applyClaimed(): Promise<Applied> {
    const rv = (o: unknown): string | undefined =>
      (o as KubernetesObject | undefined)?.metadata?.resourceVersion ?? undefined;
    await settleBounded([...byObject], limit, async ([key, writes]) => {
      const seen = p.sharedSeen?.get(key);
      if (!take(key, seen)) return;
      let after: string | undefined;
      try {
        after = await writeShared(key, writes);
      } finally {
        done(key, after === undefined ? undefined : { before: seen, after });
      }
    });
    /** The object's writes in order; the resourceVersion the last one left, or undefined when not all ran. */
    async function writeShared(key: string, writes: SharedWrite[]): Promise<string | undefined> {
      // A shared object's fields are the union of every policy's: one budget per object.
      const reverts = sharedReverts.get(key);
      const budgetKey = `shared:${key}`;
      if (reverts && corrections) {
        const admission = corrections.limiter.admit(budgetKey, now());
        if (!admission.ok) {
          sharedHeld.add(key);
          remaining.push(...reverts.map((d) => contested(d, admission)));
          return undefined;
        }
      }
      let last: string | undefined;
      for (const w of writes) {
        try {
          const result = await (w.manager ? writer.apply(w.object, w.manager) : writer.apply(w.object));
          last = rv(result) ?? "";
          log.info("shared object written", { object: key, change: w.reason });
        } catch (err) {
          failures.push(classify(err, key));
          return undefined;
        }
      }
      sharedDone.add(key);
      if (sharedModified.has(key)) corrections?.limiter.corrected(budgetKey, now());
      return last;
    }

    await settleBounded(p.deletes, limit, async ({ key, object }) => {
      const seen = rv(object) ?? null;
      if (!take(key, seen)) return;
      let deleted = false;
      try {
        await writer.delete(withTypeMeta("RoleBinding", object));
        deleted = true;
        log.info("binding to an object that is not the policy's removed", { object: key });
      } catch (err) {
        failures.push(classify(err, key));
      } finally {
        done(key, deleted ? { before: seen, after: null } : undefined);
      }
    });

    const corrected: Drift[] = [];
    const written: string[] = [];
    const write = async (w: ChildWrite): Promise<void> => {
      // Another writer keeps reverting this object: wait instead of answering every revert with a write.
      // Only reverts count (see isRevert): creating a missing child, or a first correction after a change of
      // the policy itself, is never held.
      const budgetKey = `${p.policy?.metadata.name ?? ""}:${w.key}`;
      const revert = isRevert(w.drift, budgetKey);
      const admission = revert ? corrections?.limiter.admit(budgetKey, now()) : undefined;
      if (admission && !admission.ok) {
        remaining.push(contested(w.drift, admission));
        return;
      }
      if (!take(w.key, w.seen)) return;
      let after: string | null | undefined;
      try {
        if (w.action === "delete") {
          await writer.delete(withTypeMeta(w.drift.kind as ChildKind, w.object));
          after = null;
        } else {
          const child = w.object as Child;
          // A second controller reference would be refused: the rewritten ones go first.
          if (w.reclaim) await writer.replaceOwned(child, true);
          // A Missing child is created, never applied: an object someone put at its name meanwhile is left alone.
          const missing = w.drift.reason === "Missing";
          const result = missing ? await writer.create(child) : await writer.apply(child);
          if (!result) {
            remaining.push({
              ...w.drift,
              message: `${w.drift.message}; an object appeared at its name: not written`,
            });
            return;
          }
          after = rv(result) ?? "";
          const uid = (result as KubernetesObject | undefined)?.metadata?.uid;
          if (uid && (missing || uid === child.metadata.uid)) {
            written.push(uid);
            // Remembered at once for both lanes' plans, before status holds it (see WriteLedger.rememberChild).
            const policyUid = p.policy?.metadata.uid;
            if (policyUid) ledger?.ledger.rememberChild(policyUid, uid);
          }
          // Fields another manager added survive an apply; replace them when they are still there.
          if (ownedFieldDiff(child, result).length > 0) {
            // The replace leaves a newer resourceVersion than the apply's: not known here, so only the
            // epoch rule holds off the other lane until the cache shows it.
            after = "";
            await writer.replaceOwned({ ...child, metadata: { ...child.metadata, ...(uid ? { uid } : {}) } });
          }
        }
        corrected.push(w.drift);
        if (w.drift.reason === "Modified") corrections?.limiter.corrected(budgetKey, now());
      } catch (err) {
        failures.push(classify(err, w.key, w.field));
        remaining.push({ ...w.drift, message: `${w.drift.message}; write failed: ${errorMessage(err)}` });
      } finally {
        done(w.key, after === undefined ? undefined : { before: w.seen, after });
      }
    };
    for (const phase of [0, 1] as const)
      await settleBounded(
        p.writes.filter((w) => w.phase === phase),
        limit,
        write,
      );

    // Shared drift is repaired by the union write to its object, when that write succeeded.
    const skippedSet = new Set(skipped);
    for (const d of p.sharedDrift) {
      const key = objectKey(d.kind, d.namespace, d.name);
      if (sharedHeld.has(key) && sharedRevertDrift.has(d)) continue; // reported as Contested above
      if (skippedSet.has(key)) continue; // the other lane's write: it reports it
      (sharedDone.has(key) ? corrected : remaining).push(d);
    }
    const byKey = (a: Drift, b: Drift) =>
      objectKey(a.kind, a.namespace, a.name).localeCompare(objectKey(b.kind, b.namespace, b.name));
    return {
      sharedDone,
      skipped: skipped.sort(),
      ...(waiting.length ? { waiting: waiting.sort() } : {}),
      written,
      corrected: corrected.sort(byKey),
      remaining,
      failures: [...p.failures, ...failures.sort((a, b) => a.message.localeCompare(b.message))],
      ...(retryAt !== undefined && corrections
        ? { retryAfterMs: Math.max(0, retryAt - corrections.now()) }
        : {}),
    };
  }
}
