import type { Logger } from "../observability/logger.js";
import { Backoff } from "./backoff.js";
import { realClock, type Clock } from "./clock.js";
import { WorkQueue, type QueueObserver } from "./workqueue.js";

/** What the controller reports to metrics (controller_runtime_* of controller-runtime). */
export interface ControllerObserver {
  queue?: QueueObserver;
  /** One reconcile ended: `success`, `error` or `requeue_after`, after `ms`. */
  reconciled(key: string, result: "success" | "error" | "requeue_after", ms: number): void;
}

/** What a successful reconcile may ask for: to run again after a delay (waiting on something external). */
export interface ReconcileResult {
  requeueAfterMs?: number;
}

export interface ControllerOptions {
  /** Parallel reconciles (of different keys; one key is never reconciled twice at once). */
  workers: number;
  /** Every key is re-enqueued this often, catching anything a watch missed. */
  resyncMs: number;
  /** Time source of the queue and backoff (a fake one in tests). */
  clock?: Clock;
  /** Per-key retry delays; default 0.5 s doubling up to 60 s, with jitter. */
  backoff?: Backoff;
  observer?: ControllerObserver;
}

/**
 * Drives a reconcile function from a work queue: N workers, per-key exponential backoff on failure,
 * periodic resync of every known key, and a graceful stop that lets in-flight reconciles finish.
 */
export class Controller {
  readonly queue: WorkQueue;
  private readonly backoff: Backoff;
  private readonly clock: Clock;
  private workers: Promise<void>[] = [];
  private resyncTimer: unknown;
  /** Counters for metrics and tests. */
  readonly stats = { reconciles: 0, failures: 0 };
  /** Workers now inside a reconcile. */
  activeWorkers = 0;
  private running = false;

  constructor(
    private readonly reconcile: (key: string, reconcileId: string) => Promise<ReconcileResult | void>,
    private readonly keys: () => string[],
    private readonly opts: ControllerOptions,
    private readonly log: Logger,
  ) {
    this.clock = opts.clock ?? realClock;
    this.queue = new WorkQueue(this.clock, opts.observer?.queue);
    this.backoff = opts.backoff ?? new Backoff(500, 60_000);
  }

  get workerCount(): number {
    return this.opts.workers;
  }

  /** Starts the workers; after stop() it may start again (a new leadership term). */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.queue.reopen();
    this.workers = [];
    for (let i = 0; i < this.opts.workers; i++) this.workers.push(this.work());
    this.scheduleResync();
  }

  /** The periodic resync runs on the controller's clock (a fake one in tests), one timer at a time. */
  private scheduleResync(): void {
    this.clock.clearTimeout(this.resyncTimer);
    this.resyncTimer = this.clock.setTimeout(() => {
      if (!this.running) return;
      this.resync();
      this.scheduleResync();
    }, this.opts.resyncMs);
  }

  /** Enqueues every known key now. */
  resync(): void {
    for (const k of this.keys()) this.queue.add(k);
  }

  private async work(): Promise<void> {
    for (;;) {
      // One turn of the event loop between reconciles. A queued key is handed over in a microtask, so a
      // worker whose reconciles need no I/O (a large policy recomputed on every RBAC event) would otherwise
      // starve everything queued with setImmediate: Node delivers PerformanceObserver entries that way, and
      // prom-client's GC-duration observer then held every GC entry (~5 KB each) until the heap ran out
      // (5000 namespaces, 10,000 RoleBindings created, 153 MiB heap: docs/benchmarks-memory.md).
      await new Promise<void>((resolve) => setImmediate(resolve));
      const key = await this.queue.get();
      if (key === undefined) return;
      const started = this.clock.now();
      const reconcileId = Math.random().toString(36).slice(2, 10);
      this.activeWorkers++;
      try {
        this.stats.reconciles++;
        const result = await this.reconcile(key, reconcileId);
        this.backoff.forget(key);
        this.opts.observer?.reconciled(
          key,
          result?.requeueAfterMs !== undefined ? "requeue_after" : "success",
          this.clock.now() - started,
        );
        if (result?.requeueAfterMs !== undefined) this.queue.addAfter(key, result.requeueAfterMs);
        this.log.debug("reconcile done", { policy: key, reconcileId, ms: this.clock.now() - started });
      } catch (err) {
        this.stats.failures++;
        this.opts.observer?.reconciled(key, "error", this.clock.now() - started);
        const delay = this.backoff.next(key);
        this.log.warn("reconcile failed; retrying", {
          policy: key,
          reconcileId,
          error: err instanceof Error ? err.message : String(err),
          attempt: this.backoff.failuresOf(key),
          retryInMs: delay,
        });
        // Not addAfter: an event that arrived meanwhile must not cut the backoff short.
        this.queue.retryAfter(key, delay);
      } finally {
        this.activeWorkers--;
        this.queue.done(key);
      }
    }
  }

  /** Stops taking work and waits for in-flight reconciles to finish. */
  async stop(): Promise<void> {
    this.running = false;
    this.clock.clearTimeout(this.resyncTimer);
    this.resyncTimer = undefined;
    this.queue.shutDown();
    await Promise.all(this.workers);
  }
}
