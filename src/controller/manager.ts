import type { KubeConfig, V1Namespace } from "@kubernetes/client-node";
import { Applier } from "../cluster/applier.js";
import { isReviewPath } from "../cluster/authreview.js";
import { CacheNotSyncedError, ClusterCache } from "../cluster/cache.js";
import { KubeLeaseStore, LEADER_LEASE_NAME, leasePath } from "../cluster/lease.js";
import type { AreaFactory, AreaReconciler } from "./areas.js";
import { CorrectionLimiter } from "./corrections.js";
import { laneKey, repairReconciler, REPAIR_CONTROLLER_NAME } from "./lane.js";
import { WriteLedger } from "./ledger.js";
import { reconcile, type ReconcileDeps } from "./reconcile.js";
import { reportsArea } from "./reports.js";
import { OPERATOR_NAMESPACE } from "../desired/metadata.js";
import type { Logger } from "../observability/logger.js";
import type { OperatorMetrics } from "../observability/metrics.js";
import { ReportsPublisher, type ReportsOptions } from "../reports/publisher.js";
import { instrumentRequests } from "../observability/restmetrics.js";
import { WatchLiveness } from "../observability/watchliveness.js";
import { RestClient } from "../cluster/rest.js";
import { Controller } from "../runtime/controller.js";
import { LeaderElector } from "../runtime/leaderelection.js";
import { fenceWrites } from "../runtime/writefence.js";

export interface LeaderElectionConfig {
  /** This process's identity in the Lease (pod name, or hostname + random suffix). */
  identity: string;
  /** Namespace of the Lease; default csp-system. */
  namespace?: string;
  leaseDurationMs?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
}

/**
 * How long a repair's request for a full reconcile of its policy waits, so a burst of repairs (or of
 * children created by a converge) coalesces into one full reconcile.
 */
export const FULL_RECONCILE_AFTER_REPAIR_MS = 1000;

/** Two bookmark intervals (the API server sends one about every minute to a kind with writes) and slack. */
export const DEFAULT_WATCH_SILENCE_MS = 150_000;

export interface OperatorOptions {
  workers: number;
  /** Namespaces repaired in parallel by the repair lane (default 2; see controller/lane.ts). */
  repairWorkers?: number;
  /** Writes in flight within one reconcile (default 8). */
  maxConcurrentWrites?: number;
  resyncMs: number;
  /** Areas beyond namespaced children; each adds its own file (see controller/areas.ts). */
  areas?: readonly AreaFactory[];
  /** Run as one of several replicas: only the Lease holder runs workers and writes. */
  leaderElection?: LeaderElectionConfig;
  /** Where controller, queue, REST and product metrics go. */
  metrics?: OperatorMetrics;
  /** Policy reports (openreports.io / wgpolicyk8s.io, whichever are installed); `false` turns them off. */
  reports?: ReportsOptions | false;
  /**
   * A watch that sent no event or bookmark for this long makes the replica unready if the API server then
   * does not answer a ping either (default 150 s).
   */
  watchSilenceMs?: number;
}

/**
 * The running operator: caches, work queue and workers wired together.
 *
 * With leader election every replica keeps its informers warm (a takeover starts from a synced cache), but
 * only the Lease holder runs workers; and every mutating request any client of `kc` sends passes a write
 * fence that refuses it unless this process holds a Lease renewed less than renewDeadline ago (see
 * runtime/leaderelection.ts and runtime/writefence.ts). Losing the Lease stops the workers (a write
 * already in a reconcile fails at the fence) and the replica goes back to campaigning.
 */
export class Operator {
  readonly cache: ClusterCache;
  readonly applier: Applier;
  readonly controller: Controller;
  /** The repair lane: one namespace of one policy per item, apart from full reconciles (lane.ts). */
  readonly repairs: Controller;
  /** What either lane wrote lately, so the other does not write it again (ledger.ts). */
  readonly ledger = new WriteLedger();
  /**
   * Namespaces each policy selected since its last full reconcile started: covering them is that
   * reconcile's (one plan, one status write, one Event for all), so repairs there wait for it.
   */
  private readonly uncovered = new Map<string, Set<string>>();
  readonly areas: readonly AreaReconciler[];
  readonly elector: LeaderElector | undefined;
  /** Publishes each policy's status as policy reports, on the leader only (src/reports/publisher.ts). */
  readonly reports: ReportsPublisher | undefined;
  /** Per-object correction budget against rival writers, kept across reconciles. */
  readonly corrections = new CorrectionLimiter();
  private readonly watchLiveness: WatchLiveness;
  private synced: Promise<boolean> | undefined;
  /** Serializes worker start/stop across leadership terms. */
  private term: Promise<void> = Promise.resolve();
  private stopping = false;

  constructor(
    kc: KubeConfig,
    opts: OperatorOptions,
    private readonly log: Logger,
  ) {
    const metrics = opts.metrics;
    if (metrics) instrumentRequests(kc, (method, host, code) => metrics.request(method, host, code));
    if (opts.leaderElection) {
      const le = opts.leaderElection;
      const namespace = le.namespace ?? OPERATOR_NAMESPACE;
      const elector = new LeaderElector(
        new KubeLeaseStore(kc, namespace, LEADER_LEASE_NAME),
        {
          identity: le.identity,
          ...(le.leaseDurationMs !== undefined ? { leaseDurationMs: le.leaseDurationMs } : {}),
          ...(le.renewDeadlineMs !== undefined ? { renewDeadlineMs: le.renewDeadlineMs } : {}),
          ...(le.retryPeriodMs !== undefined ? { retryPeriodMs: le.retryPeriodMs } : {}),
          onStartedLeading: () => this.startTerm(),
          onStoppedLeading: () => this.endTerm(),
          onNewLeader: (holder) => log.info("leader observed", { leader: holder || "(none)" }),
        },
        log,
      );
      this.elector = elector;
      const leases = leasePath(namespace);
      fenceWrites(
        kc,
        () => elector.canWrite(),
        (path) => path.startsWith(`${leases}/`) || path === leases || isReviewPath(path),
      );
    }
    const watchSilenceMs = opts.watchSilenceMs ?? DEFAULT_WATCH_SILENCE_MS;
    const probe = new RestClient(kc);
    this.watchLiveness = new WatchLiveness({
      silentWatches: () => this.cache.silentWatches(watchSilenceMs),
      // Allowed to every authenticated user (system:public-info-viewer); nothing is written.
      ping: (timeoutMs) => probe.text("/livez", { timeoutMs, maxBytes: 64 * 1024 }),
    });
    this.applier = new Applier(kc);
    const writer: ReconcileDeps["writer"] = metrics
      ? Object.assign(Object.create(this.applier) as ReconcileDeps["writer"], {
          event: async (...args: Parameters<ReconcileDeps["writer"]["event"]>) => {
            await this.applier.event(...args);
            metrics.event(args[0].metadata.name, args[2], args[3]);
          },
        })
      : this.applier;
    this.controller = new Controller(
      (key, reconcileId) => {
        // Its snapshot is taken after this: it covers every namespace selected until now.
        this.uncovered.delete(key);
        return reconcile(key, {
          snapshot: () => this.cache.snapshot(),
          writer,
          log: log.child({ policy: key, reconcileId }),
          areas: this.areas,
          corrections: { limiter: this.corrections, now: () => Date.now() },
          ledger: this.ledger,
          ...(opts.maxConcurrentWrites ? { maxConcurrentWrites: opts.maxConcurrentWrites } : {}),
          currentPolicy: (p) => this.cache.policy(p),
        });
      },
      () => this.resyncKeys(),
      {
        workers: opts.workers,
        resyncMs: opts.resyncMs,
        ...(metrics ? { observer: metrics.controllerObserver() } : {}),
      },
      log,
    );
    const repairLog = log.child({ lane: REPAIR_CONTROLLER_NAME });
    this.repairs = new Controller(
      repairReconciler(
        (policy, reconcileId) => ({
          namespaceSnapshot: (ns) => this.cache.namespaceSnapshot(ns),
          writer,
          log: repairLog.child({ policy, reconcileId }),
          corrections: { limiter: this.corrections, now: () => Date.now() },
          ledger: this.ledger,
          ...(opts.maxConcurrentWrites ? { maxConcurrentWrites: opts.maxConcurrentWrites } : {}),
          uncovered: (p, ns) => this.uncovered.get(p)?.has(ns) ?? false,
          current: (p, ns) => ({ policy: this.cache.policy(p), namespace: this.cache.namespace(ns) }),
          reconcilePolicy: (p, reasons) => {
            repairLog.debug("full reconcile requested", { policy: p, reasons });
            this.controller.queue.addAfter(p, FULL_RECONCILE_AFTER_REPAIR_MS);
          },
        }),
        // Writes left to the full reconcile's claims: looked at again once it has made them.
        (item, claimed) => this.ledger.whenReleased(claimed, () => this.repairs.queue.add(item)),
      ),
      // No resync of its own: the policy lane's resync recomputes everything.
      () => [],
      {
        workers: opts.repairWorkers ?? 2,
        resyncMs: Math.max(opts.resyncMs, 60_000),
        ...(metrics ? { observer: metrics.controllerObserver(REPAIR_CONTROLLER_NAME) } : {}),
      },
      repairLog,
    );
    const repair = (policy: string, namespace: string, selected?: boolean) => {
      if (!selected) return this.repairs.queue.add(laneKey(policy, namespace));
      const set = this.uncovered.get(policy) ?? new Set<string>();
      set.add(namespace);
      this.uncovered.set(policy, set);
    };
    // Events only enqueue; a missing policy name means "every policy" (namespaces, shared objects, RBAC).
    const enqueue = (policy: string | undefined, specChanged = false): void => {
      this.reports?.enqueue(policy);
      if (policy && specChanged) this.controller.queue.expedite(policy);
      else if (policy) this.controller.queue.add(policy);
      else if (this.cache?.policies.hasSynced) this.controller.resync();
    };
    this.reports =
      opts.reports === false
        ? undefined
        : new ReportsPublisher(
            kc,
            () => (this.cache.policies.hasSynced ? this.cache.policies.list() : undefined),
            // A publish state changed: the policy's reconcile writes it into ReportsPublished.
            (policy) => (policy ? this.controller.queue.add(policy) : this.controller.resync()),
            log,
            opts.reports,
          );
    // A namespace event: a deleted policy's leftover on it is released (see AreaReconciler.orphans).
    const namespaceChanged = (ns: V1Namespace) => {
      // Before the policies are listed every owner would look deleted; the first resync looks anyway.
      if (!this.cache.policies.hasSynced) return;
      const input = { namespaces: [ns], policies: this.cache.policies.list() };
      for (const area of this.areas)
        for (const n of area.orphans?.(input) ?? []) this.controller.queue.add(n);
    };
    // The echo of a policy's own write repairs nothing of that policy; an event for an object it is
    // writing now is decided when the write ends (WriteLedger.observe, defer). Other policies' repairs run.
    this.cache = new ClusterCache(kc, log, enqueue, namespaceChanged, repair, (key, rv, deleted) => {
      const verdict = this.ledger.observe(key, rv, deleted);
      if (verdict.kind === "new") return;
      return (policy, namespace) => {
        if (policy !== verdict.by) return repair(policy, namespace);
        if (verdict.kind === "echo") return;
        const item = laneKey(policy, namespace);
        this.ledger.defer(key, item, () => this.repairs.queue.add(item));
      };
    });
    this.areas = [
      ...(opts.areas ?? []).map((make) =>
        make({ kc, log, enqueue, ...(metrics ? { observer: metrics } : {}) }),
      ),
      ...(this.reports ? [reportsArea(this.reports)] : []),
    ];
    metrics?.attach({
      policies: () => (this.cache.policies.hasSynced ? this.cache.policies.list() : []),
      queueDepth: () => this.controller.queue.length,
      runningFor: () => this.controller.queue.runningFor(),
      activeWorkers: () => this.controller.activeWorkers,
      maxConcurrentReconciles: () => this.controller.workerCount,
      isLeader: () => (this.elector ? this.elector.isLeader : !this.stopping),
      cacheSynced: () => this.cache.hasSynced,
    });
  }

  /**
   * What a resync reconciles: every policy, and every deleted one whose leftovers an area still sees in
   * the synced caches (its `orphans`), so their release is retried from the cache, not from one LIST.
   */
  private resyncKeys(): string[] {
    const names = new Set(this.cache.policies.list().map((p) => p.metadata.name));
    if (!this.cache.hasSynced) return [...names];
    let snapshot;
    try {
      snapshot = this.cache.snapshot();
    } catch {
      return [...names];
    }
    for (const area of this.areas) for (const n of area.orphans?.(snapshot) ?? []) names.add(n);
    return [...names];
  }

  /**
   * Fills the caches, then starts the workers and reconciles every policy once. Workers start only once
   * every cache has synced (a first LIST that fails is retried with backoff meanwhile); stop() before
   * that leaves them unstarted. With leader election, workers start when (and each time) this process
   * becomes the leader, the caches being filled meanwhile either way.
   */
  async start(): Promise<void> {
    this.synced = Promise.all([this.cache.start(), ...this.areas.map((a) => a.start?.())]).then(
      ([synced]) => synced,
    );
    if (this.elector) {
      this.elector.start();
      await this.synced;
      return;
    }
    if (!(await this.synced) || this.stopping) return;
    this.log.info("caches synced; starting workers");
    this.controller.start();
    this.repairs.start();
    this.controller.resync();
    this.reports?.startPublishing();
  }

  private startTerm(): void {
    this.term = this.term.then(async () => {
      if (!(await this.synced) || this.stopping || !this.elector?.canWrite()) return;
      this.log.info("leading with synced caches; starting workers");
      this.controller.start();
      this.repairs.start();
      this.controller.resync();
      this.reports?.startPublishing();
    });
  }

  private endTerm(): void {
    this.term = this.term.then(async () => {
      await Promise.all([this.controller.stop(), this.repairs.stop(), this.reports?.stopPublishing()]);
      this.log.info("workers stopped; following");
    });
  }

  /**
   * Readiness: every cache synced since its last failure, and no watch silent past --watch-silence-timeout
   * while the API server fails to answer a ping; otherwise why not (naming the kind).
   */
  notReadyReason(): string | undefined {
    if (this.cache.hasSynced) return this.watchLiveness.reason();
    try {
      this.cache.snapshot();
      return undefined;
    } catch (err) {
      return err instanceof CacheNotSyncedError ? err.message : String(err);
    }
  }

  /**
   * Drains in-flight reconciles and stops the watches. A leader hands its Lease over after the drain
   * (holderIdentity cleared) so another replica takes over within its retry period.
   */
  async stop(): Promise<void> {
    this.stopping = true;
    if (this.elector)
      await this.elector.stop(async () => {
        await this.term;
        await Promise.all([this.controller.stop(), this.repairs.stop(), this.reports?.stopPublishing()]);
      });
    else await Promise.all([this.controller.stop(), this.repairs.stop(), this.reports?.stopPublishing()]);
    await Promise.all([this.cache.stop(), ...this.areas.map((a) => a.stop?.())]);
  }
}
