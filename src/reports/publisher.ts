import type { KubeConfig } from "@kubernetes/client-node";
import type { ClusterSecurityPolicy } from "../api/v1alpha1/policy.js";
import { errorMessage, statusCode } from "../cluster/client.js";
import type { Logger } from "../observability/logger.js";
import { Controller } from "../runtime/controller.js";
import { describeKind, type ReportKind } from "./kinds.js";
import { policyReports } from "./model.js";
import { ReportNotOwnedError, ReportWriter } from "./writer.js";

/** How often the API server's discovery is asked which report kinds it serves (CRDs installed later). */
export const REPORTS_RECHECK_MS = 30_000;
/** Every policy's reports are compared with the cluster this often (a report deleted by hand comes back). */
export const REPORTS_RESYNC_MS = 5 * 60_000;

/** Where a policy's reports stand, for its `ReportsPublished` condition. */
export type PublishState =
  | { state: "Published"; kinds: readonly string[]; reports: number }
  | { state: "Failed"; reason: string; message: string };

export interface ReportsOptions {
  recheckMs?: number;
  resyncMs?: number;
}

/**
 * The reports controller: its own small work queue (one worker, per-policy backoff), separate from the
 * policy reconcile. It reads each policy's status from the operator's policy cache (what the reconcile
 * already computed and bounded) and publishes it as reports; it never writes the policy. It publishes only
 * while this replica leads (startPublishing/stopPublishing follow the leadership term), and detection of the
 * report kinds (read-only discovery) runs on every replica so a new leader starts knowing them.
 *
 * `onStateChanged(policy)` is called when a policy's publish state changes (and for every policy when the
 * installed kinds change): the operator enqueues that policy, whose reconcile folds the state into the
 * `ReportsPublished` condition. The status thus has one writer.
 */
export class ReportsPublisher {
  readonly controller: Controller;
  private readonly writer: ReportWriter;
  private kindsNow: ReportKind[] | undefined;
  private detectError: string | undefined;
  private readonly states = new Map<string, PublishState>();
  /** Per policy: the content last published and when the cluster was last compared with it. */
  private readonly last = new Map<string, { content: string; at: number }>();
  private timer: NodeJS.Timeout | undefined;
  private detecting: Promise<void> | undefined;
  private readonly recheckMs: number;
  private readonly resyncMs: number;
  /** Counters for tests and logs: publishes that compared the cluster, and those skipped as unchanged. */
  readonly stats = { published: 0, skipped: 0, detections: 0 };

  constructor(
    kc: KubeConfig,
    private readonly policies: () => readonly ClusterSecurityPolicy[] | undefined,
    private readonly onStateChanged: (policy: string | undefined) => void,
    private readonly log: Logger,
    opts: ReportsOptions = {},
  ) {
    this.writer = new ReportWriter(kc);
    this.recheckMs = opts.recheckMs ?? REPORTS_RECHECK_MS;
    this.resyncMs = opts.resyncMs ?? REPORTS_RESYNC_MS;
    this.controller = new Controller(
      (key) => this.publish(key),
      () => (this.policies() ?? []).map((p) => p.metadata.name),
      { workers: 1, resyncMs: this.resyncMs },
      log.child({ controller: "reports" }),
    );
  }

  /** The report kinds found by the last discovery; undefined before the first one answered. */
  get kinds(): readonly ReportKind[] | undefined {
    return this.kindsNow;
  }

  /** Why discovery failed last, while it has never answered. */
  get detectionError(): string | undefined {
    return this.detectError;
  }

  stateOf(policy: string): PublishState | undefined {
    return this.states.get(policy);
  }

  /** First discovery, then a re-check every recheckMs. Read-only: runs on every replica. */
  async startDetection(): Promise<void> {
    await this.detect();
    this.timer ??= setInterval(() => void this.detect(), this.recheckMs);
  }

  /** This replica leads: publish every policy now, and each one again when it changes. */
  startPublishing(): void {
    this.controller.start();
    this.controller.resync();
  }

  async stopPublishing(): Promise<void> {
    await this.controller.stop();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.detecting;
    await this.controller.stop();
  }

  /** A policy (or, with undefined, every policy) may have a new status: publish it if it changed. */
  enqueue(policy: string | undefined): void {
    if (policy) this.controller.queue.add(policy);
    else this.controller.resync();
  }

  /** Asks discovery which report kinds are served; a change re-publishes every policy. */
  detect(): Promise<void> {
    this.detecting ??= (async () => {
      try {
        const found = await this.writer.detect();
        this.stats.detections++;
        this.detectError = undefined;
        const before = (this.kindsNow ?? []).map(describeKind).join(", ");
        const after = found.map(describeKind).join(", ");
        const first = this.kindsNow === undefined;
        this.kindsNow = found;
        if (first || before !== after) {
          this.log.info("policy report kinds", { kinds: after || "(none installed)" });
          this.last.clear();
          if (!first || found.length > 0) this.controller.resync();
          this.onStateChanged(undefined);
        }
      } catch (err) {
        // Keep what was known: a failed discovery is no evidence that the CRDs went away.
        this.detectError = errorMessage(err);
        this.log.warn("policy report discovery failed", { error: this.detectError });
      } finally {
        this.detecting = undefined;
      }
    })();
    return this.detecting;
  }

  private setState(policy: string, next: PublishState | undefined): void {
    const prev = this.states.get(policy);
    if (next) this.states.set(policy, next);
    else this.states.delete(policy);
    if (JSON.stringify(prev) !== JSON.stringify(next)) this.onStateChanged(policy);
  }

  private async publish(name: string): Promise<void> {
    const policy = (this.policies() ?? []).find((p) => p.metadata.name === name);
    // A deleted policy's reports go with it (ownerReferences): nothing to do here.
    if (!policy || policy.metadata.deletionTimestamp) {
      this.states.delete(name);
      this.last.delete(name);
      return;
    }
    const kinds = this.kindsNow ?? [];
    if (kinds.length === 0) {
      this.setState(name, undefined);
      return;
    }
    const now = new Date();
    const content = JSON.stringify([
      policyReports(policy, now),
      policy.metadata.uid,
      kinds.map(describeKind),
    ]);
    const last = this.last.get(name);
    // Unchanged and compared with the cluster recently: skip. The periodic resync always compares again.
    if (last && last.content === content && now.getTime() - last.at < this.resyncMs / 2) {
      this.stats.skipped++;
      return;
    }
    try {
      const out = await this.writer.publish(policy, kinds, now);
      this.stats.published++;
      this.last.set(name, { content, at: now.getTime() });
      if (out.written || out.deleted)
        this.log.info("policy reports published", {
          policy: name,
          written: out.written,
          deleted: out.deleted,
        });
      this.setState(name, { state: "Published", kinds: kinds.map(describeKind), reports: out.reports });
    } catch (err) {
      this.last.delete(name);
      const code = statusCode(err);
      const reason =
        err instanceof ReportNotOwnedError
          ? "ReportNotOwned"
          : code === 401 || code === 403
            ? "Forbidden"
            : "PublishFailed";
      this.setState(name, { state: "Failed", reason, message: errorMessage(err).slice(0, 600) });
      // A CRD removed since the last discovery: look again now rather than at the next re-check.
      if (code === 404) void this.detect();
      throw err;
    }
  }
}
