import type { Logger } from "../observability/logger.js";
import { realClock, type Clock } from "./clock.js";

/** The fields of a coordination.k8s.io/v1 Lease spec leader election reads and writes. */
export interface LeaseRecord {
  holderIdentity?: string;
  leaseDurationSeconds?: number;
  acquireTime?: string;
  renewTime?: string;
  leaseTransitions?: number;
}

/** A stored Lease: its spec and the resourceVersion an update must carry (optimistic concurrency). */
export interface StoredLease {
  record: LeaseRecord;
  resourceVersion: string;
}

/**
 * Reads and writes the one Lease. `update` must fail (throw) when `resourceVersion` is no longer current
 * (HTTP 409), so two candidates can never both believe they took the Lease over. Each call gets a timeout.
 */
export interface LeaseStore {
  get(timeoutMs: number): Promise<StoredLease | undefined>;
  create(record: LeaseRecord, timeoutMs: number): Promise<StoredLease>;
  update(record: LeaseRecord, resourceVersion: string, timeoutMs: number): Promise<StoredLease>;
}

export interface LeaderElectionOptions {
  /** Who this process is: the pod name, or hostname + a random suffix. */
  identity: string;
  /** How long a Lease holds after its last renewal, as seen by the others (client-go: 15 s). */
  leaseDurationMs?: number;
  /** How long the leader keeps trying to renew before it gives up leadership (client-go: 10 s). */
  renewDeadlineMs?: number;
  /** How often to try to acquire or renew (client-go: 2 s). */
  retryPeriodMs?: number;
  clock?: Clock;
  /** Called once leadership is acquired: start workers. */
  onStartedLeading: () => void;
  /** Called once leadership is lost or released: stop workers (writes are already fenced). */
  onStoppedLeading: () => void;
  /** Called when the observed holder changes (including to ""), for logs and metrics. */
  onNewLeader?: (identity: string) => void;
}

/** A released Lease (client-go's shape): no holder, a 1 s lease, acquireTime equal to renewTime. */
const RELEASE_LEASE_SECONDS = 1;

/**
 * True for the record `release()` writes. Anything else without a holder (a hand edit clearing only
 * holderIdentity) is not a release: the followers wait out the last holder's lease.
 */
export function isRelease(r: LeaseRecord): boolean {
  return (
    (r.holderIdentity ?? "") === "" &&
    r.leaseDurationSeconds === RELEASE_LEASE_SECONDS &&
    r.acquireTime !== undefined &&
    r.acquireTime === r.renewTime
  );
}

/** Formats a time as a Kubernetes MicroTime (six fractional digits; the API server rejects fewer). */
export function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, ".$1000Z");
}

/**
 * Lease-based leader election with client-go's algorithm and timing, written against a LeaseStore and a
 * Clock so it can be proven with a fake clock.
 *
 * Safety rests on two clocks never being compared: a follower takes an unexpired Lease over only after it
 * has seen the same record, unchanged, for a whole lease duration on ITS clock; the leader stops writing
 * once renewDeadline has passed on ITS clock since the start of its last successful renewal. The gap
 * (leaseDuration - renewDeadline, 5 s by default) covers a write already sent. `canWrite()` is checked
 * against the clock itself, not a timer, so a process that was frozen (SIGSTOP, a long GC pause, a blocked
 * event loop) writes nothing when it wakes up until it has renewed again.
 *
 * Every comparison uses the monotonic clock (`clock.now()`, performance.now()): a wall clock stepped back
 * cannot stretch leadership. The wall clock only formats acquireTime/renewTime, which nobody here compares.
 *
 * The follower waits the longer of its own lease duration and the one the holder wrote (a leader configured
 * with a longer lease is not cut short). A Lease that vanished (404), that names this process while it is
 * not leading, or that was emptied without the shape of a release this code writes, is treated as still
 * held by the last valid holder until that holder's lease has run out from when it was last seen changing:
 * a hand edit, a delete or a forgery cannot make two writers (the ValidatingAdmissionPolicy in config/rbac
 * also refuses such writes from anyone but the operator's ServiceAccount).
 */
export class LeaderElector {
  readonly identity: string;
  private readonly leaseDurationMs: number;
  private readonly renewDeadlineMs: number;
  private readonly retryPeriodMs: number;
  private readonly clock: Clock;
  /** Clock time at which the last successful acquire/renew was SENT; leadership is valid until + renewDeadline. */
  private renewedAt: number | undefined;
  private leading = false;
  /** The last record seen, when it was first seen (monotonic), and how long its holder's lease lasts. */
  private observed: { key: string; at: number; holder: string; durationMs: number } | undefined;
  private lastStored: StoredLease | undefined;
  private timer: unknown;
  private deadlineTimer: unknown;
  private stopped = true;
  private running: Promise<void> | undefined;
  private wake: (() => void) | undefined;

  constructor(
    private readonly store: LeaseStore,
    private readonly opts: LeaderElectionOptions,
    private readonly log: Logger,
  ) {
    this.identity = opts.identity;
    this.leaseDurationMs = opts.leaseDurationMs ?? 15_000;
    this.renewDeadlineMs = opts.renewDeadlineMs ?? 10_000;
    this.retryPeriodMs = opts.retryPeriodMs ?? 2_000;
    this.clock = opts.clock ?? realClock;
    if (!(this.leaseDurationMs > this.renewDeadlineMs && this.renewDeadlineMs > this.retryPeriodMs))
      throw new Error("leader election needs leaseDuration > renewDeadline > retryPeriod");
  }

  /**
   * True only while this process holds the Lease and its last renewal started less than renewDeadline
   * ago by the clock right now. Every write the operator sends is gated on this.
   */
  canWrite(): boolean {
    return (
      this.leading && this.renewedAt !== undefined && this.clock.now() < this.renewedAt + this.renewDeadlineMs
    );
  }

  get isLeader(): boolean {
    return this.canWrite();
  }

  /** The holder last seen in the Lease ("" when released or unknown). */
  get observedLeader(): string {
    return this.observed?.holder ?? "";
  }

  /** Starts the acquire/renew loop. */
  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.running = this.loop();
  }

  /**
   * Stops the loop. `beforeRelease` runs first (stop workers, drain in-flight reconciles); then, when
   * still leading, the Lease is released (holderIdentity cleared) so another candidate takes over at its next
   * retry instead of waiting out the lease duration.
   */
  async stop(beforeRelease?: () => Promise<void>): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.clock.clearTimeout(this.timer);
    this.wake?.();
    await this.running;
    // In-flight reconciles may still write while the last renewal holds (at most renewDeadline): the
    // deadline timer ends leadership if the drain takes longer.
    await beforeRelease?.();
    const wasLeading = this.leading;
    if (wasLeading) this.lose("stopping");
    if (wasLeading) await this.release();
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      await this.tryAcquireOrRenew();
      if (this.stopped) return;
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        // Followers jitter their retries (client-go's JitterFactor 1.2) so candidates do not collide.
        const delay = this.leading ? this.retryPeriodMs : this.retryPeriodMs * (1 + Math.random() * 0.2);
        this.timer = this.clock.setTimeout(resolve, delay);
      });
    }
  }

  /** One attempt, as client-go's tryAcquireOrRenew. Never throws. */
  private async tryAcquireOrRenew(): Promise<void> {
    const sentAt = this.clock.now();
    try {
      let current = await this.store.get(this.timeLeft(sentAt));
      if (current === undefined) {
        // Deleted (or never created). Someone who was leading may still be writing: wait out its lease.
        if (!this.leading && this.heldByLastHolder()) return;
        const created = await this.store.create(this.desired(undefined), this.timeLeft(sentAt));
        this.succeeded(created, sentAt);
        return;
      }
      this.observe(current);
      const holder = current.record.holderIdentity ?? "";
      if (this.leading && holder !== this.identity) {
        // Someone else wrote the Lease: stop writing before anything else, whatever comes next.
        this.lose(holder ? `the Lease is held by ${holder}` : "the Lease was cleared by someone else");
      }
      const ours = holder === this.identity && this.leading;
      const released = holder === "" && isRelease(current.record);
      if (!ours && !released && !this.expired()) return;
      // The GET took what it took: a leader past its deadline sends nothing more.
      if (this.leading && !this.canWrite()) return this.checkDeadline();
      current = await this.store.update(
        this.desired(current.record),
        current.resourceVersion,
        this.timeLeft(sentAt),
      );
      this.succeeded(current, sentAt);
    } catch (err) {
      this.log.debug("leader election attempt failed", {
        identity: this.identity,
        error: err instanceof Error ? err.message : String(err),
      });
      this.checkDeadline();
    }
  }

  /**
   * The timeout of the next request of an attempt sent at `sentAt`: a request must not outlive our right to
   * act on its answer (the leader's renewedAt + renewDeadline, a candidate's sentAt + renewDeadline), and
   * each request gets only what is left after the previous ones. Whole milliseconds: the monotonic clock
   * has fractions, timers and AbortSignal.timeout want integers.
   */
  private timeLeft(sentAt: number): number {
    const end = (this.leading ? (this.renewedAt ?? sentAt) : sentAt) + this.renewDeadlineMs;
    return Math.max(1, Math.floor(end - this.clock.now()));
  }

  /** The observed record has not changed for the longer of our lease duration and its holder's. */
  private expired(): boolean {
    if (!this.observed) return true;
    return this.clock.now() >= this.observed.at + Math.max(this.leaseDurationMs, this.observed.durationMs);
  }

  /** After a 404: the last valid holder (anyone, even our own name from a previous process) has not expired. */
  private heldByLastHolder(): boolean {
    return this.observed !== undefined && this.observed.holder !== "" && !this.expired();
  }

  private wallNow(): number {
    return this.clock.wallNow?.() ?? Date.now();
  }

  private desired(old: LeaseRecord | undefined): LeaseRecord {
    const now = this.wallNow();
    const ours = old?.holderIdentity === this.identity;
    return {
      holderIdentity: this.identity,
      leaseDurationSeconds: Math.ceil(this.leaseDurationMs / 1000),
      acquireTime: ours && old?.acquireTime ? old.acquireTime : microTime(now),
      renewTime: microTime(now),
      leaseTransitions: (old?.leaseTransitions ?? 0) + (old && !ours && old.holderIdentity ? 1 : 0),
    };
  }

  private succeeded(stored: StoredLease, sentAt: number): void {
    this.observe(stored);
    if (this.stopped) return;
    // An answer that arrives after the deadline of its own request counts for nothing: the others may
    // already measure the Lease as expired from an earlier observation. Nor does one that arrives after the
    // leader's current deadline (its deadline timer late, or not run yet): leadership ended then.
    if (this.clock.now() >= sentAt + this.renewDeadlineMs || (this.leading && !this.canWrite())) {
      this.checkDeadline();
      return;
    }
    this.renewedAt = sentAt;
    this.armDeadline();
    if (!this.leading) {
      this.leading = true;
      this.log.info("became leader", { identity: this.identity });
      this.opts.onStartedLeading();
    }
  }

  /** Remembers when the record last changed, by our clock: the only time a takeover may be measured from. */
  private observe(stored: StoredLease): void {
    this.lastStored = stored;
    const r = stored.record;
    const key = `${r.holderIdentity ?? ""}|${r.renewTime ?? ""}|${r.acquireTime ?? ""}|${r.leaseTransitions ?? 0}`;
    if (this.observed?.key === key) return;
    const holder = r.holderIdentity ?? "";
    const changedHolder = this.observed?.holder !== holder;
    const seconds = r.leaseDurationSeconds;
    const durationMs =
      typeof seconds === "number" && Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : 0;
    this.observed = { key, at: this.clock.now(), holder, durationMs };
    if (changedHolder) this.opts.onNewLeader?.(holder);
  }

  /** Leadership ends at renewedAt + renewDeadline even if no attempt returns (a hung request). */
  private armDeadline(): void {
    this.clock.clearTimeout(this.deadlineTimer);
    if (this.renewedAt === undefined) return;
    this.deadlineTimer = this.clock.setTimeout(
      () => this.checkDeadline(),
      Math.max(0, this.renewedAt + this.renewDeadlineMs - this.clock.now()),
    );
  }

  /** Ends leadership past the deadline; a deadline timer that fired early (timers may) is armed again. */
  private checkDeadline(): void {
    if (!this.leading) return;
    if (!this.canWrite()) this.lose("could not renew the Lease before the renew deadline");
    else this.armDeadline();
  }

  private lose(reason: string): void {
    if (!this.leading) return;
    this.leading = false;
    this.renewedAt = undefined;
    this.clock.clearTimeout(this.deadlineTimer);
    this.log.warn("lost leadership; writes stopped", { identity: this.identity, reason });
    this.opts.onStoppedLeading();
  }

  /** Clears holderIdentity so the next candidate acquires at its next retry. Best effort. */
  private async release(): Promise<void> {
    const current = this.lastStored;
    if (!current || current.record.holderIdentity !== this.identity) return;
    const now = this.wallNow();
    const stamp = microTime(now);
    try {
      await this.store.update(
        {
          holderIdentity: "",
          leaseDurationSeconds: RELEASE_LEASE_SECONDS,
          acquireTime: stamp,
          renewTime: stamp,
          leaseTransitions: current.record.leaseTransitions ?? 0,
        },
        current.resourceVersion,
        this.retryPeriodMs,
      );
      this.log.info("released the Lease", { identity: this.identity });
      this.opts.onNewLeader?.("");
    } catch (err) {
      this.log.warn("could not release the Lease; the next leader waits for it to expire", {
        error: err instanceof Error ? err.message : String(err),
      });
    }
  }
}
