import type { KubeConfig } from "@kubernetes/client-node";
import { Applier } from "./cluster/applier.js";
import { ClusterCache } from "./cluster/cache.js";
import type { AreaFactory, AreaReconciler } from "./controller/areas.js";
import { reconcile } from "./controller/reconcile.js";
import type { Logger } from "./observability/logger.js";
import { Controller } from "./runtime/controller.js";

export interface OperatorOptions {
  workers: number;
  /** Writes in flight within one reconcile (default 8). */
  maxConcurrentWrites?: number;
  resyncMs: number;
  /** Areas beyond namespaced children; each adds its own file (see controller/areas.ts). */
  areas?: readonly AreaFactory[];
}

/** The running operator: caches, work queue and workers wired together. */
export class Operator {
  readonly cache: ClusterCache;
  readonly applier: Applier;
  readonly controller: Controller;
  readonly areas: readonly AreaReconciler[];

  constructor(
    kc: KubeConfig,
    opts: OperatorOptions,
    private readonly log: Logger,
  ) {
    this.applier = new Applier(kc);
    this.controller = new Controller(
      (key, reconcileId) =>
        reconcile(key, {
          snapshot: () => this.cache.snapshot(),
          writer: this.applier,
          log: log.child({ policy: key, reconcileId }),
          areas: this.areas,
          ...(opts.maxConcurrentWrites ? { maxConcurrentWrites: opts.maxConcurrentWrites } : {}),
        }),
      () => this.cache.policies.list().map((p) => p.metadata.name),
      { workers: opts.workers, resyncMs: opts.resyncMs },
      log,
    );
    // Events only enqueue; a missing policy name means "every policy" (namespaces, shared objects, RBAC).
    const enqueue = (policy: string | undefined, specChanged = false): void => {
      if (policy && specChanged) this.controller.queue.expedite(policy);
      else if (policy) this.controller.queue.add(policy);
      else if (this.cache?.policies.hasSynced) this.controller.resync();
    };
    this.cache = new ClusterCache(kc, log, enqueue);
    this.areas = (opts.areas ?? []).map((make) => make({ kc, log, enqueue }));
  }

  /**
   * Fills the caches, then starts the workers and reconciles every policy once. Workers start only once
   * every cache has synced (a first LIST that fails is retried with backoff meanwhile); stop() before
   * that leaves them unstarted.
   */
  async start(): Promise<void> {
    const [synced] = await Promise.all([this.cache.start(), ...this.areas.map((a) => a.start?.())]);
    if (!synced || this.stopping) return;
    this.log.info("caches synced; starting workers");
    this.controller.start();
    this.controller.resync();
  }

  private stopping = false;

  /** Drains in-flight reconciles and stops the watches. */
  async stop(): Promise<void> {
    this.stopping = true;
    await this.controller.stop();
    await Promise.all([this.cache.stop(), ...this.areas.map((a) => a.stop?.())]);
  }
}
