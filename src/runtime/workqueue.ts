import { realClock, type Clock } from "./clock.js";

/** What the queue reports to metrics (workqueue_* of client-go). Times in milliseconds. */
export interface QueueObserver {
  added(): void;
  /** A key was handed to a worker after waiting `waitedMs` in the queue. */
  started(waitedMs: number): void;
  /** A worker finished a key after `workedMs`. */
  finished(workedMs: number): void;
  /** A failed key was scheduled for a retry. */
  retried(): void;
}

/**
 * A keyed work queue with the guarantees controllers rely on (modelled on client-go's workqueue):
 * - a key is never processed by two workers at once;
 * - adding a key that is already waiting is a no-op (events collapse);
 * - adding a key while it is being processed marks it dirty, so it runs once more afterwards;
 * - delayed adds (requeue-after) keep only the earliest deadline per key, and an event may run the key
 *   sooner;
 * - a key that failed waits its retry delay whatever happens meanwhile: events, resyncs and the dirty
 *   mark of an event that arrived during the failed run shorten nothing (client-go's rate-limited
 *   requeue; without it a failing key loops hot in a busy cluster).
 */
export class WorkQueue {
  private readonly queue: string[] = [];
  private readonly waiting = new Set<string>();
  private readonly processing = new Set<string>();
  private readonly dirty = new Set<string>();
  private readonly timers = new Map<string, { at: number; timer: unknown }>();
  /** Keys waiting out a retry delay after a failure, with their timer. */
  private readonly held = new Map<string, unknown>();
  private readonly takers: ((key: string | undefined) => void)[] = [];
  private shuttingDown = false;
  /** When each waiting key entered the queue, and when each processing key was handed out. */
  private readonly enqueuedAt = new Map<string, number>();
  private readonly startedAt = new Map<string, number>();

  constructor(
    private readonly clock: Clock = realClock,
    private readonly observer?: QueueObserver,
  ) {}

  add(key: string): void {
    if (this.shuttingDown) return;
    // A failed key runs when its retry delay ends (the hold's timer adds it), not sooner.
    if (this.held.has(key)) return;
    if (this.processing.has(key)) {
      this.dirty.add(key);
      return;
    }
    if (this.waiting.has(key)) return;
    this.waiting.add(key);
    this.enqueuedAt.set(key, this.clock.now());
    this.observer?.added();
    const taker = this.takers.shift();
    if (taker) {
      this.waiting.delete(key);
      this.begin(key);
      taker(key);
    } else {
      this.queue.push(key);
    }
  }

  /** Adds `key` after `ms`; an earlier pending deadline for the same key wins. */
  addAfter(key: string, ms: number): void {
    if (this.shuttingDown) return;
    if (ms <= 0) return this.add(key);
    const at = this.clock.now() + ms;
    const existing = this.timers.get(key);
    if (existing && existing.at <= at) return;
    if (existing) this.clock.clearTimeout(existing.timer);
    const timer = this.clock.setTimeout(() => {
      this.timers.delete(key);
      this.add(key);
    }, ms);
    this.timers.set(key, { at, timer });
  }

  /**
   * `key` failed: it runs again after `ms`, and nothing before then (an event, a resync, the dirty mark
   * of an event during the failed run, a pending requeue-after) makes it run sooner.
   */
  retryAfter(key: string, ms: number): void {
    if (this.shuttingDown) return;
    const pending = this.timers.get(key);
    if (pending) {
      this.clock.clearTimeout(pending.timer);
      this.timers.delete(key);
    }
    this.dirty.delete(key);
    this.observer?.retried();
    const previous = this.held.get(key);
    if (previous !== undefined) this.clock.clearTimeout(previous);
    this.held.set(
      key,
      this.clock.setTimeout(
        () => {
          this.held.delete(key);
          this.add(key);
        },
        Math.max(0, ms),
      ),
    );
  }

  /**
   * The object behind `key` itself changed (a new generation of the policy: the user fixed what failed),
   * so a retry delay no longer applies: the key runs now. Only for changes the user made, never for
   * events of other objects, or a failing key would loop hot again.
   */
  expedite(key: string): void {
    if (this.shuttingDown) return;
    const held = this.held.get(key);
    if (held !== undefined) {
      this.clock.clearTimeout(held);
      this.held.delete(key);
    }
    this.add(key);
  }

  /** Keys waiting out a retry delay. */
  get retrying(): number {
    return this.held.size;
  }

  /** Resolves with the next key to process, or undefined once the queue shuts down. */
  get(): Promise<string | undefined> {
    // Shut down: keys still queued wait for reopen() (a new term), they are not run during the drain.
    if (this.shuttingDown) return Promise.resolve(undefined);
    const key = this.queue.shift();
    if (key !== undefined) {
      this.waiting.delete(key);
      this.begin(key);
      return Promise.resolve(key);
    }
    return new Promise((resolve) => this.takers.push(resolve));
  }

  /** Marks `key` finished; if it was added meanwhile (and did not fail), it is queued again. */
  done(key: string): void {
    this.processing.delete(key);
    const started = this.startedAt.get(key);
    this.startedAt.delete(key);
    if (started !== undefined) this.observer?.finished(this.clock.now() - started);
    if (this.dirty.delete(key)) this.add(key);
  }

  private begin(key: string): void {
    const now = this.clock.now();
    this.processing.add(key);
    this.startedAt.set(key, now);
    const queued = this.enqueuedAt.get(key);
    this.enqueuedAt.delete(key);
    this.observer?.started(queued === undefined ? 0 : now - queued);
  }

  /** How long each key now being processed has been running, in ms (workqueue_unfinished_work_seconds). */
  runningFor(): number[] {
    const now = this.clock.now();
    return [...this.startedAt.values()].map((t) => now - t);
  }

  /** Takes keys again after shutDown(): a new leadership term reuses the queue. */
  reopen(): void {
    this.shuttingDown = false;
  }

  get length(): number {
    return this.queue.length;
  }

  get inFlight(): number {
    return this.processing.size;
  }

  /** Stops handing out keys; workers blocked in get() receive undefined. Pending timers are dropped. */
  shutDown(): void {
    this.shuttingDown = true;
    for (const { timer } of this.timers.values()) this.clock.clearTimeout(timer);
    this.timers.clear();
    for (const timer of this.held.values()) this.clock.clearTimeout(timer);
    this.held.clear();
    for (const taker of this.takers.splice(0)) taker(undefined);
  }
}
