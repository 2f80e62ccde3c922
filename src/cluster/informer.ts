import {
  ListWatch,
  Watch,
  type KubeConfig,
  type KubernetesObject,
  type KubernetesListObject,
} from "@kubernetes/client-node";
import type { Logger } from "../observability/logger.js";
import { Backoff } from "../runtime/backoff.js";
import { errorMessage } from "./client.js";
import { RestClient } from "./rest.js";

export interface InformerSpec {
  /** Watch path, e.g. /apis/networking.k8s.io/v1/networkpolicies (all namespaces). */
  path: string;
  apiVersion: string;
  kind: string;
  labelSelector?: string;
  fieldSelector?: string;
}

/**
 * A cache of one resource kept current by list+watch, that never stops by itself: client-node's
 * ListWatch relists on 410 Gone but stops for good on any other error (network, 403, 500), so this
 * restarts it with per-informer exponential backoff until stop() is called. Handlers only enqueue work.
 */
export class ResilientInformer<T extends KubernetesObject = KubernetesObject> {
  private readonly lw: ListWatch<T>;
  private stopped = false;
  private readonly backoff = new Backoff(500, 30_000);
  private restartTimer: NodeJS.Timeout | undefined;
  private synced = false;
  private failure: unknown;

  constructor(
    kc: KubeConfig,
    readonly spec: InformerSpec,
    onChange: (obj: T) => void,
    private readonly log: Logger,
  ) {
    // Lists travel as plain JSON, like watch events: client-node's models would rename fields (`_from`).
    const rest = new RestClient(kc);
    const query: Record<string, string> = {};
    if (spec.labelSelector) query["labelSelector"] = spec.labelSelector;
    if (spec.fieldSelector) query["fieldSelector"] = spec.fieldSelector;
    const list = () => rest.request<KubernetesListObject<T>>("GET", spec.path, { query });
    this.lw = new ListWatch<T>(spec.path, new Watch(kc), list, false, spec.labelSelector, spec.fieldSelector);
    this.lw.on("add", onChange);
    this.lw.on("update", onChange);
    this.lw.on("delete", onChange);
    this.lw.on("connect", () => {
      this.backoff.forget("w");
      this.failure = undefined;
    });
    this.lw.on("error", (err) => this.restart(err));
  }

  /** Lists (fills the cache) and starts watching; resolves once the first list is in the cache. */
  async start(): Promise<void> {
    this.stopped = false;
    await this.lw.start();
    this.synced = true;
  }

  get hasSynced(): boolean {
    return this.synced;
  }

  /** The error that stopped the list or watch since it last (re)connected: a 403 means no permission. */
  get lastError(): unknown {
    return this.failure;
  }

  private restart(err: unknown): void {
    if (this.stopped) return;
    this.failure = err;
    const delay = this.backoff.next("w");
    this.log.warn("informer stopped; restarting", {
      kind: this.spec.kind,
      error: errorMessage(err),
      retryInMs: delay,
    });
    clearTimeout(this.restartTimer);
    this.restartTimer = setTimeout(() => {
      if (this.stopped) return;
      this.lw.start().catch((e: unknown) => this.restart(e));
    }, delay);
  }

  list(): readonly T[] {
    return this.lw.list();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.restartTimer);
    await this.lw.stop();
  }
}
