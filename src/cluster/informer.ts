import {
  ListWatch,
  Watch,
  type RequestContext,
  type KubeConfig,
  type KubernetesObject,
  type KubernetesListObject,
} from "@kubernetes/client-node";
import type { Logger } from "../observability/logger.js";
import { Backoff } from "../runtime/backoff.js";
import { keepAliveClock, type Clock } from "../runtime/clock.js";
import { errorMessage } from "./client.js";
import { shareCommonParts } from "./intern.js";
import { RestClient } from "./rest.js";

export interface InformerSpec<T extends KubernetesObject = KubernetesObject> {
  /** Watch path, e.g. /apis/networking.k8s.io/v1/networkpolicies (all namespaces). */
  path: string;
  apiVersion: string;
  kind: string;
  labelSelector?: string;
  fieldSelector?: string;
  /**
   * Only metadata travels and is cached (PartialObjectMetadata): enough to tell who owns an object at a
   * name, at a fraction of the memory and bandwidth of the full objects.
   */
  metadataOnly?: boolean;
  /** Slims each object before it is cached (e.g. drop managedFields entries nobody reads). */
  transform?: (obj: T) => T;
  /**
   * After `transform`, the parts that repeat from object to object are shared and frozen (intern.ts): for
   * caches of many similar objects whose readers never change them in place. Off by default (few objects,
   * or objects someone copies and edits; never Secrets, whose values would outlive them in the tables).
   */
  share?: boolean;
}

/** The API server closes a watch after this many seconds; a random 5-10 minutes, as client-go picks. */
export function watchTimeoutSeconds(random: () => number = Math.random): number {
  return 300 + Math.floor(random() * 300);
}

const METADATA_LIST_ACCEPT = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1";
const METADATA_WATCH_ACCEPT = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1";

export interface InformerOptions {
  /** Restart delays after a failure; default 0.5 s doubling up to 30 s, with jitter. */
  backoff?: Backoff;
  /** Time source of the restart timer (a fake one in tests). */
  clock?: Clock;
  /**
   * Called each time the cache becomes synced again after a failure. Events that arrived while any cache was
   * unsynced may have been dropped by readers gating on sync, and a relist that finds nothing new fires no
   * event: the owner re-checks everything here instead of waiting for the next periodic resync.
   */
  onResynced?: () => void;
}

/**
 * A cache read while it has not synced since its last failure (its first LIST failed, or its list/watch
 * broke and has not been listed again). Retryable: the caller must act on nothing it read and try later.
 * Absence of an object in such a cache is no evidence that the object is absent.
 */
export class CacheNotSyncedError extends Error {
  constructor(
    /** The kinds (and selectors) of the caches that are not synced, e.g. `Namespace`. */
    readonly informers: readonly string[],
    /** Why, per cache, when known (the last list or watch error). */
    readonly reasons: readonly string[] = [],
  ) {
    super(
      `cache not synced: ${informers.join(", ")}${reasons.length ? ` (${reasons.join("; ")})` : ""}; ` +
        "nothing is decided from it until a LIST succeeds",
    );
    this.name = "CacheNotSyncedError";
  }
}

/**
 * How long a watch must stay up after a good LIST before the restart backoff is forgotten. A watch that
 * always fails right after its LIST (RBAC granting list but not watch, a proxy cutting watches) must be
 * retried ever more slowly, not relisted twice a second; client-go's reflector resets after 2 minutes.
 */
export const HEALTHY_WATCH_MS = 60_000;

/** A watch ERROR event other than 410 Gone: the stream can no longer be trusted to be complete. */
export class WatchErrorEvent extends Error {
  constructor(readonly status: { code?: number; reason?: string; message?: string }) {
    super(`watch ERROR ${status.code ?? "?"} ${status.reason ?? ""}: ${status.message ?? ""}`.trim());
    this.name = "WatchErrorEvent";
  }
}

/** A LIST may be large (every RoleBinding of a big cluster): its own timeout and size cap. */
const LIST_TIMEOUT_MS = 120_000;

/**
 * A watch stream silent this long is given up (the API server sends a bookmark about once a minute on an
 * idle watch when asked with allowWatchBookmarks): one and a half bookmark periods.
 */
export const WATCH_SILENCE_MS = 90_000;
const LIST_MAX_BYTES = 1024 * 1024 * 1024;

/**
 * A cache of one resource kept current by list+watch, that never stops by itself: client-node's
 * ListWatch relists on 410 Gone but stops for good on any other error (network, 401/403, 500), so this
 * restarts it with per-informer exponential backoff until stop() is called. Handlers only enqueue work.
 *
 * Synced means "a LIST succeeded since the last failure and is in the cache": false from the start
 * until the first successful LIST, false again from any list/watch error until the next successful
 * LIST (a restart always lists again). Readers must check it: an unsynced cache may be empty or stale.
 * The backoff is forgotten only when a failure comes after the watch stayed up HEALTHY_WATCH_MS, so a
 * LIST that keeps failing, or a watch that fails right after each good LIST, is retried ever more slowly.
 * A watch ERROR event other than 410 Gone (which client-node ignores, resuming from the same
 * resourceVersion) is a failure too: the cache is unsynced at once and listed again.
 */
export class ResilientInformer<T extends KubernetesObject = KubernetesObject> {
  private readonly lw: ListWatch<T>;
  private stopped = false;
  private readonly backoff: Backoff;
  private readonly clock: Clock;
  private restartTimer: unknown;
  /** A LIST succeeded since the last failure (its items go into the cache right after). */
  private listed = false;
  private synced = false;
  private readonly onResynced: (() => void) | undefined;
  private failure: unknown;
  private syncWaiters: ((synced: boolean) => void)[] = [];
  /** When the cache last became synced (clock time), to tell a healthy watch from one failing at once. */
  private syncedAt: number | undefined;
  /** Monotonic time the watch last proved alive: it started, or sent an event or a bookmark. */
  private lastHeard: number;
  /** Watches in a row that ended by client-side inactivity timeout without a single event. */
  private silentTimeouts = 0;
  /** What an object becomes before it is cached: the spec's transform, then its common parts shared. */
  private readonly store: ((obj: T) => T) | undefined;

  constructor(
    kc: KubeConfig,
    readonly spec: InformerSpec<T>,
    onChange: (obj: T) => void,
    private readonly log: Logger,
    opts: InformerOptions = {},
  ) {
    this.backoff = opts.backoff ?? new Backoff(500, 30_000);
    this.onResynced = opts.onResynced;
    this.clock = opts.clock ?? keepAliveClock;
    this.lastHeard = this.clock.now();
    const { transform, share = false } = spec;
    this.store = share ? (o: T) => shareCommonParts(transform ? transform(o) : o) : transform;
    // Lists travel as plain JSON, like watch events: client-node's models would rename fields (`_from`).
    const rest = new RestClient(kc);
    const query: Record<string, string> = {};
    if (spec.labelSelector) query["labelSelector"] = spec.labelSelector;
    if (spec.fieldSelector) query["fieldSelector"] = spec.fieldSelector;
    const list = async () => {
      const result = await rest.request<KubernetesListObject<T>>("GET", spec.path, {
        query,
        timeoutMs: LIST_TIMEOUT_MS,
        maxBytes: LIST_MAX_BYTES,
        ...(spec.metadataOnly ? { accept: METADATA_LIST_ACCEPT } : {}),
      });
      // An empty PartialObjectMetadataList comes with `items: null` (or none at all).
      if (
        spec.metadataOnly &&
        result &&
        typeof result === "object" &&
        (result.items === null || result.items === undefined)
      )
        result.items = [];
      if (!result || !Array.isArray(result.items))
        throw new Error(`LIST ${spec.path}: the response is not a list`);
      // ListWatch indexes items by metadata without checking; a malformed item would throw inside it.
      if (result.items.some((o) => typeof o?.metadata?.name !== "string"))
        throw new Error(`LIST ${spec.path}: an item has no metadata.name`);
      this.listed = true;
      if (this.store) result.items = result.items.map(this.store);
      return result;
    };
    this.lw = new ListWatch<T>(
      spec.path,
      this.guardedWatch(kc),
      list,
      false,
      spec.labelSelector,
      spec.fieldSelector,
    );
    const handler = (obj: T) => {
      try {
        onChange(obj);
      } catch (err) {
        this.log.error("informer handler failed", { kind: this.spec.kind, error: errorMessage(err) });
      }
    };
    this.lw.on("add", handler);
    this.lw.on("update", handler);
    this.lw.on("delete", handler);
    this.lw.on("error", (err) => {
      try {
        this.failed(err);
      } catch (e) {
        this.log.error("informer restart failed", { kind: this.spec.kind, error: errorMessage(e) });
      }
    });
  }

  /**
   * client-node's Watch, with two guarantees the ListWatch relies on but does not get: a failure before
   * the request is sent (credentials that cannot be loaded, a revoked exec plugin token) reaches the
   * ListWatch as an error instead of rejecting a promise nobody awaits (which ends the process), and the
   * moment a watch starts right after a successful LIST is recorded as the cache being synced.
   */
  private guardedWatch(kc: KubeConfig): Watch {
    const { metadataOnly } = this.spec;
    const transform = this.store;
    // Metadata-only watches ask for PartialObjectMetadata; everything else about the request is kc's.
    const config = metadataOnly
      ? Object.assign<KubeConfig, Partial<KubeConfig>>(Object.create(kc) as KubeConfig, {
          applySecurityAuthentication: async (ctx: RequestContext) => {
            await kc.applySecurityAuthentication(ctx);
            ctx.setHeaderParam("Accept", METADATA_WATCH_ACCEPT);
          },
        })
      : kc;
    const watch = new Watch(config);
    const original = watch.watch.bind(watch);
    watch.watch = async (path, queryParams, callback, done) => {
      // ListWatch calls watch() only after the LIST result is in its cache.
      this.markSyncedIfListed();
      // A long server-side timeout with bookmarks: an idle watch costs one request every 5-10 minutes,
      // and resumes from the last bookmark instead of relisting. Bookmarks arrive about once a minute, so
      // a stream silent for WATCH_SILENCE_MS is dead (a proxy or NAT that stopped forwarding without
      // closing): the client gives it up and resumes from its last resourceVersion.
      const timeoutSeconds = watchTimeoutSeconds();
      (watch as unknown as { requestTimeoutMs: number }).requestTimeoutMs = WATCH_SILENCE_MS;
      const params = { ...queryParams, timeoutSeconds, allowWatchBookmarks: true };
      let heard = false;
      // A non-410 ERROR event: the cache stops counting as synced now, the stream is cut, and the
      // ListWatch sees the error when it ends (so it restarts through failed(), with a LIST).
      let watchError: WatchErrorEvent | undefined;
      let request: AbortController | undefined;
      // client-node's ListWatch reconnects silently (same resourceVersion) after an inactivity timeout: count
      // those that brought nothing, so a hung API server shows in readiness.
      const guardedDone = (err: unknown) => {
        if (!heard && (err as { name?: string } | null)?.name === "TimeoutError") this.silentTimeouts++;
        done(watchError ?? err);
      };
      const guardedCallback = (phase: string, apiObj: unknown, watchObj?: unknown) => {
        // Any event, bookmarks included, proves the watch (and the API server behind it) alive.
        heard = true;
        this.lastHeard = this.clock.now();
        this.silentTimeouts = 0;
        if (phase === "ERROR") {
          const status = (apiObj ?? {}) as { code?: number; reason?: string; message?: string };
          if (status.code !== 410 && !watchError) {
            watchError = new WatchErrorEvent(status);
            this.synced = false;
            this.log.warn("watch ERROR event; relisting", {
              kind: this.spec.kind,
              error: watchError.message,
            });
            request?.abort();
          }
        }
        try {
          if (transform && (phase === "ADDED" || phase === "MODIFIED" || phase === "DELETED"))
            apiObj = transform(apiObj as T);
          const r = callback(phase, apiObj, watchObj) as unknown;
          if (r instanceof Promise) r.catch((err: unknown) => this.eventFailed(err));
        } catch (err) {
          this.eventFailed(err);
        }
      };
      try {
        request = await original(path, params, guardedCallback, guardedDone);
        if (watchError) request.abort();
        return request;
      } catch (err) {
        const controller = new AbortController();
        queueMicrotask(() => done(err));
        return controller;
      }
    };
    return watch;
  }

  private eventFailed(err: unknown): void {
    this.log.error("informer could not apply a watch event", {
      kind: this.spec.kind,
      error: errorMessage(err),
    });
  }

  private markSyncedIfListed(): void {
    // A watch (re)starting right after a LIST counts as hearing from the API server.
    if (this.listed) this.lastHeard = this.clock.now();
    if (this.synced || !this.listed || this.stopped) return;
    this.synced = true;
    const recovered = this.failure !== undefined;
    if (recovered) this.log.info("informer synced again", { kind: this.spec.kind, path: this.spec.path });
    this.failure = undefined;
    this.syncedAt = this.clock.now();
    for (const w of this.syncWaiters.splice(0)) w(true);
    if (recovered) this.onResynced?.();
  }

  /** Lists (fills the cache) and starts watching; resolves after the first attempt, synced or not. */
  async start(): Promise<void> {
    this.stopped = false;
    await this.lw.start();
  }

  /** Resolves true once the cache is synced (now or later), false when the informer is stopped first. */
  waitForSync(): Promise<boolean> {
    if (this.synced) return Promise.resolve(true);
    if (this.stopped) return Promise.resolve(false);
    return new Promise((resolve) => this.syncWaiters.push(resolve));
  }

  /** A LIST succeeded since the last list/watch failure: the cache may be trusted. */
  get hasSynced(): boolean {
    return this.synced;
  }

  /**
   * How long the watch of a synced cache has brought nothing (no event, no bookmark; ms) and how many times
   * in a row it ended by inactivity timeout without an event; undefined while unsynced or stopped. A hung
   * API server (SIGSTOP, a half-open connection) looks exactly like a quiet one to the watch itself.
   */
  get silence(): { ms: number; timeouts: number } | undefined {
    if (!this.synced || this.stopped) return undefined;
    return { ms: this.clock.now() - this.lastHeard, timeouts: this.silentTimeouts };
  }

  /** The error that broke the list or watch, until the next successful LIST: a 403 means no permission. */
  get lastError(): unknown {
    return this.failure;
  }

  /** `Kind` with its selectors, for messages. */
  get description(): string {
    const sel = [this.spec.labelSelector, this.spec.fieldSelector].filter(Boolean).join(",");
    return sel ? `${this.spec.kind}(${sel})` : this.spec.kind;
  }

  private failed(err: unknown): void {
    this.synced = false;
    this.listed = false;
    // The next start must LIST again: only a successful LIST makes the cache trustworthy again.
    (this.lw as unknown as { resourceVersion: string }).resourceVersion = "";
    if (this.stopped) return;
    this.failure = err;
    // Forgotten only after a watch that stayed up a while: one failing right after its LIST backs off.
    if (this.syncedAt !== undefined && this.clock.now() - this.syncedAt >= HEALTHY_WATCH_MS)
      this.backoff.forget("w");
    this.syncedAt = undefined;
    const delay = this.backoff.next("w");
    this.log.warn("informer stopped; restarting", {
      kind: this.spec.kind,
      error: errorMessage(err),
      attempt: this.backoff.failuresOf("w"),
      retryInMs: delay,
    });
    this.clock.clearTimeout(this.restartTimer);
    this.restartTimer = this.clock.setTimeout(() => {
      if (this.stopped) return;
      this.lw.start().catch((e: unknown) => this.failed(e));
    }, delay);
  }

  /** Every cached object, or those of one namespace (client-node indexes them by namespace). */
  list(namespace?: string): readonly T[] {
    return this.lw.list(namespace);
  }

  /** The cached object at a name, if any. */
  get(name: string, namespace?: string): T | undefined {
    return this.lw.get(name, namespace);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.synced = false;
    this.clock.clearTimeout(this.restartTimer);
    for (const w of this.syncWaiters.splice(0)) w(false);
    await this.lw.stop();
  }
}
