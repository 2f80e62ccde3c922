import { MAX_REMEMBERED_CHILDREN, type ClusterSecurityPolicy } from "../api/v1alpha1/policy.js";
import { rememberedSetOf, uidMark } from "../drift/ownership.js";

/**
 * What the operator wrote lately, per object, shared by the two lanes (the policy lane and the repair
 * lane, see lane.ts) so neither repeats a write the other just made.
 *
 * Two ways a plan goes stale, and the rule for each:
 * - a write made after the plan's snapshot was taken: the plan's view of that object predates it (the plan
 *   records `epoch()` when its snapshot is taken; a write recorded later has a higher sequence number);
 * - a plan made after the write, from a cache whose watch has not delivered it yet: the cache still shows
 *   the resourceVersion the writer saw before writing (or still nothing, for a create).
 * Either way the write is skipped: if the object still differs once the cache catches up, its watch event
 * starts a repair. A write in flight in one lane is skipped by the other (`claim`). A remembered write
 * is forgotten as soon as the cache's watch delivers it or anything newer (`observe`), and after `ttlMs`
 * (a watch that never delivers it must not hold repairs back for ever). Absence is the one state that
 * recurs (created by us, deleted by someone else): only `observe` tells the two apart, and it may tell
 * before the write is recorded (the watch event often arrives before the write's response is handled):
 * events taken in while a write is in flight are kept with its claim, so a write the cache had already
 * passed at release is recorded for the epoch rule alone.
 *
 * Echoes (observe's verdict): the watch event a write of the operator's own produces asks the repair lane
 * for nothing (the write is what that lane would make). An event for an object being written now is
 * `deferred`: the repair-lane items it would enqueue are kept with the claim (`defer`) and decided at
 * release: dropped when every event seen meanwhile was the write's own result (its resourceVersion, or a
 * delete for a delete), enqueued otherwise (a user's change made while the object was claimed, a delete
 * right after the write, a write that failed or was skipped). An event for a recorded write whose
 * resourceVersion is the one the write produced is an `echo`. A repair that left an object to the other
 * lane's claim waits for its release (`whenReleased`) instead of polling.
 *
 * It also remembers the children the operator just created, until the policy's status does
 * (`rememberChild`).
 */
export class WriteLedger {
  private seq = 0;
  private readonly written = new Map<
    string,
    { seq: number; before: string | null; after: string | null; at: number; passed?: boolean; by?: string }
  >();
  /**
   * For each object being written now: the newest resourceVersion the caches took in meanwhile (null:
   * only a delete, or an event without a numeric one). A write the cache has already passed when it is
   * released (its own event, or anything newer: a delete made just after it) is not recorded.
   */
  private readonly inFlight = new Map<string, Flight>();
  /** Repairs waiting for claims to end (see whenReleased), by the key each still waits for. */
  private readonly waiters = new Map<string, Set<Waiter>>();
  /** Counters for metrics and tests: echoes, deferred items dropped at release and enqueued then. */
  readonly stats = { echoes: 0, deferredDropped: 0, deferredEnqueued: 0, waitersWoken: 0 };
  /** See rememberChild(). Keyed by policy UID, then by UID mark; values: when written. */
  private readonly children = new Map<string, Map<string, number>>();
  /** When each policy's newest child was remembered. */
  private readonly childrenAt = new Map<string, number>();
  /**
   * The last answer of unrememberedChildren per policy UID, reused while nothing it depends on changed (the
   * same status list, no child remembered since, younger than a second): a repair per namespace asks it.
   */
  private readonly lastUnremembered = new Map<
    string,
    { list: readonly string[] | undefined; version: number; at: number; marks: string[] }
  >();
  private childrenVersion = 0;

  constructor(
    private readonly now: () => number = Date.now,
    private readonly ttlMs = 30_000,
    private readonly maxEntries = 50_000,
    private readonly childTtlMs = 600_000,
  ) {}

  /** The sequence number a plan made from a snapshot taken now compares writes against. */
  epoch(): number {
    return this.seq;
  }

  /**
   * Whether a plan of `epoch` that saw `seen` at `key` (its resourceVersion; null: nothing there) is
   * outdated by a write recorded since, or by one its cache has not caught up with.
   */
  stale(key: string, seen: string | null | undefined, epoch: number): boolean {
    const w = this.written.get(key);
    if (!w) return false;
    if (this.now() - w.at > this.ttlMs) {
      this.written.delete(key);
      return false;
    }
    if (w.seq > epoch) return true;
    if (seen === undefined) return false;
    if (seen === w.after) {
      // The cache shows what was written: nothing to remember any more.
      this.written.delete(key);
      return false;
    }
    // A write the cache had passed before it was recorded: only plans older than it are outdated by it.
    return !w.passed && seen === w.before;
  }

  /**
   * Takes `key` for one write by policy `by` (whose repairs its echo would enqueue); false when the other
   * lane is writing it now.
   */
  claim(key: string, by?: string): boolean {
    if (this.inFlight.has(key)) return false;
    this.inFlight.set(key, { deleted: false, ...(by !== undefined ? { by } : {}) });
    return true;
  }

  /**
   * Ends a claim. `result`, when the write went through: the resourceVersion the plan saw (`before`, null
   * for nothing) and the one the write produced (`after`, null for a delete).
   */
  release(
    key: string,
    result?: { before: string | null | undefined; after: string | null | undefined },
  ): void {
    const seen = this.inFlight.get(key);
    this.inFlight.delete(key);
    if (seen?.deferred) this.settle(seen, result);
    this.wake(key);
    if (!result) return;
    const after = result.after ?? null;
    // A no-op apply (same resourceVersion): the cache already shows it, nothing to wait for.
    if (after !== null && after === result.before) return;
    // The cache took in this write, or something newer (a delete made just after it), while it was in
    // flight: what it shows now is not a view that predates the write, whatever it is (nothing again,
    // after a delete). Recorded for the epoch rule alone (a plan from an older snapshot is outdated).
    const passed =
      !!seen && (after === null ? seen.deleted : seen.rv !== undefined && notOlder(seen.rv, after));
    // Re-inserted, so the Map stays in the order entries were written: the oldest are at its front.
    this.written.delete(key);
    this.written.set(key, {
      seq: ++this.seq,
      before: result.before ?? null,
      after,
      at: this.now(),
      ...(passed ? { passed } : {}),
      ...(seen?.by !== undefined ? { by: seen.by } : {}),
    });
    this.expire();
    if (this.written.size > this.maxEntries) this.prune();
  }

  /**
   * The cache took in an event for `key` at `resourceVersion` (`deleted`: a delete event). It has caught up
   * with the remembered write when that is the written version, a newer one (resourceVersions are etcd
   * revisions: compared as integers when both are), or the deletion of what was written.
   *
   * Returns what the repair lane does with the event's items for the policy that wrote `key` (`by`; the
   * rest of what an event does is not the ledger's, nor are other policies' items: the write may change
   * what they see): `echo`: nothing, the event is exactly the result of that policy's last write of `key`;
   * `deferred`: `key` is being written now, its items go to defer(); `new`: enqueued as usual.
   */
  observe(key: string, resourceVersion: string | undefined, deleted = false): EventVerdict {
    const flying = this.inFlight.get(key);
    if (flying) {
      if (deleted) flying.deleted = true;
      if (resourceVersion !== undefined && (flying.rv === undefined || newer(resourceVersion, flying.rv)))
        flying.rv = resourceVersion;
      const events = (flying.events ??= []);
      if (events.length < MAX_EVENTS_IN_FLIGHT) events.push({ rv: resourceVersion, deleted });
      else flying.overflow = true;
    }
    const w = this.written.get(key);
    const deferred = flying?.by !== undefined ? { kind: "deferred" as const, by: flying.by } : NEW;
    if (!w || resourceVersion === undefined) return deferred;
    if (this.now() - w.at > this.ttlMs) {
      this.written.delete(key);
      return deferred;
    }
    // A write whose own event the cache took in while it was in flight has had its echo already; after a
    // delete, any later object at the name is someone else's: its delete is no echo either.
    const echo = !w.passed && (w.after === null ? deleted : !deleted && resourceVersion === w.after);
    if (w.after === null && !deleted) w.passed = true;
    if (
      (w.after === null && deleted) ||
      resourceVersion === w.after ||
      (w.after !== null && newer(resourceVersion, w.after))
    )
      this.written.delete(key);
    if (flying) return deferred;
    if (!echo || w.by === undefined) return NEW;
    this.stats.echoes++;
    return { kind: "echo", by: w.by };
  }

  /**
   * Keeps the repair-lane item `item` an event for `key` (being written now: observe said `deferred`)
   * would enqueue, until the claim ends (see settle). Run at once when `key` is not claimed any more.
   */
  defer(key: string, item: string, run: () => void): void {
    const flying = this.inFlight.get(key);
    if (!flying) return run();
    (flying.deferred ??= new Map()).set(item, run);
  }

  /**
   * Runs `run` once, when none of `keys` is claimed any more (at once when none is now): a repair that
   * left these objects to the other lane looks again when that lane is done with them.
   */
  whenReleased(keys: readonly string[], run: () => void): void {
    const waiter: Waiter = { pending: new Set(keys.filter((k) => this.inFlight.has(k))), run };
    if (waiter.pending.size === 0) return run();
    for (const k of waiter.pending) {
      const set = this.waiters.get(k) ?? new Set<Waiter>();
      set.add(waiter);
      this.waiters.set(k, set);
    }
  }

  /** Whether `key` is claimed now. */
  claimed(key: string): boolean {
    return this.inFlight.has(key);
  }

  /** Claims and waiters held now (for tests: nothing is left once every write ended). */
  get pending(): { claims: number; waiters: number } {
    return { claims: this.inFlight.size, waiters: this.waiters.size };
  }

  /**
   * Decides the items deferred while a claim was held: dropped when the write went through and every event
   * seen meanwhile was its own result, enqueued otherwise.
   */
  private settle(
    flight: Flight,
    result: { before: string | null | undefined; after: string | null | undefined } | undefined,
  ): void {
    const deferred = flight.deferred!;
    const after = result?.after ?? null;
    const own =
      result !== undefined &&
      !flight.overflow &&
      (flight.events ?? []).every((e) => (after === null ? e.deleted : !e.deleted && e.rv === after));
    if (own) {
      this.stats.deferredDropped += deferred.size;
      return;
    }
    this.stats.deferredEnqueued += deferred.size;
    for (const run of deferred.values()) run();
  }

  /** A claim on `key` ended: the waiters that waited for it alone run. */
  private wake(key: string): void {
    const set = this.waiters.get(key);
    if (!set) return;
    this.waiters.delete(key);
    for (const w of set) {
      w.pending.delete(key);
      if (w.pending.size > 0) continue;
      this.stats.waitersWoken++;
      w.run();
    }
  }

  /** Objects remembered (for tests and metrics). */
  get size(): number {
    return this.written.size;
  }

  /**
   * Remembers that the operator wrote the object `uid` as a child of the policy `policyUid` (the UID a
   * create or a UID-preconditioned apply returned: only the operator's own write responses come here).
   * Until the policy's status.childUIDs holds it (the full reconcile writes it a moment later), plans
   * judge ownership with it as if status held it: otherwise a namespace user who rewrites the
   * ownerReferences of a child the repair lane has just created would have it judged foreign for good.
   */
  rememberChild(policyUid: string, uid: string): void {
    const now = this.now();
    // Policies whose newest child is older than childTtlMs are forgotten (a deleted policy is never asked
    // about again): the memory stays bounded by the policies written to lately.
    for (const [other, at] of this.childrenAt)
      if (other !== policyUid && now - at > this.childTtlMs) this.forgetPolicy(other);
    this.childrenAt.set(policyUid, now);
    const marks = this.children.get(policyUid) ?? new Map<string, number>();
    this.children.set(policyUid, marks);
    marks.delete(uidMark(uid));
    marks.set(uidMark(uid), now);
    this.childrenVersion++;
    // Bounded like status.childUIDs: the oldest go first.
    for (const m of marks.keys()) {
      if (marks.size <= MAX_REMEMBERED_CHILDREN) break;
      marks.delete(m);
    }
  }

  /**
   * The UID marks the operator wrote as `policy`'s children that its status does not remember yet;
   * forgets those it remembers, and those older than `childTtlMs` (the full reconcile that writes them
   * into status follows within seconds; a status write failing for longer is retried from the cache).
   */
  unrememberedChildren(policy: ClusterSecurityPolicy): string[] {
    const uid = policy.metadata.uid;
    const marks = uid ? this.children.get(uid) : undefined;
    if (!uid || !marks) return [];
    const list = policy.status?.childUIDs;
    const now = this.now();
    const last = this.lastUnremembered.get(uid);
    if (last && last.list === list && last.version === this.childrenVersion && now - last.at < 1000)
      return last.marks;
    const remembered = rememberedSetOf(list ?? []);
    for (const [m, at] of marks) if (remembered.has(m) || now - at > this.childTtlMs) marks.delete(m);
    if (marks.size === 0) {
      this.forgetPolicy(uid);
      return [];
    }
    const result = [...marks.keys()];
    this.lastUnremembered.set(uid, { list, version: this.childrenVersion, at: now, marks: result });
    return result;
  }

  /** Forgets what is remembered of policy `uid`'s children (and the last answer about them). */
  private forgetPolicy(uid: string): void {
    this.children.delete(uid);
    this.childrenAt.delete(uid);
    this.lastUnremembered.delete(uid);
  }

  /** Policies with children remembered (for tests). */
  get policiesRemembered(): number {
    return this.children.size + this.lastUnremembered.size;
  }

  /** Forgets writes older than the TTL, from the front of the Map (the oldest). */
  private expire(): void {
    const now = this.now();
    for (const [k, w] of this.written) {
      if (now - w.at <= this.ttlMs) break;
      this.written.delete(k);
    }
  }

  private prune(): void {
    this.expire();
    // Still too many (a flood of writes within the TTL): the oldest go first (Map keeps insertion order).
    for (const k of this.written.keys()) {
      if (this.written.size <= this.maxEntries) break;
      this.written.delete(k);
    }
  }
}

/** What the repair lane does with an object event's items for policy `by` (see WriteLedger.observe). */
export type EventVerdict = { kind: "new" } | { kind: "echo" | "deferred"; by: string };

const NEW: EventVerdict = Object.freeze({ kind: "new" });

/** Events kept per claim to judge them at release; more, and they are not all the write's own. */
const MAX_EVENTS_IN_FLIGHT = 8;

/** A claim held now: what the caches took in meanwhile, and the repair-lane items its events deferred. */
interface Flight {
  /** The newest resourceVersion taken in (see release: a write the cache has passed). */
  rv?: string;
  deleted: boolean;
  /** The policy whose write this is (its repairs are the ones deferred). */
  by?: string;
  /** Created by the first event (a full reconcile claims thousands of objects ahead). */
  events?: { rv: string | undefined; deleted: boolean }[];
  overflow?: boolean;
  deferred?: Map<string, () => void>;
}

interface Waiter {
  pending: Set<string>;
  run: () => void;
}

/** Whether resourceVersion `a` is `b` or newer (compared as integers when both are). */
function notOlder(a: string, b: string): boolean {
  return a === b || newer(a, b);
}

function newer(a: string, b: string): boolean {
  return /^\d+$/.test(a) && /^\d+$/.test(b) && BigInt(a) > BigInt(b);
}
