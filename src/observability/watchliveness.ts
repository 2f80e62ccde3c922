import { realClock, type Clock } from "../runtime/clock.js";

/** A watch that has brought nothing for a while: its description and for how long (ms). */
export interface SilentWatch {
  description: string;
  silentMs: number;
  /** Inactivity timeouts in a row without an event. */
  timeouts: number;
}

export interface WatchLivenessOptions {
  /** The watches silent past the threshold right now (see ResilientInformer.silence). */
  silentWatches: () => SilentWatch[];
  /** One cheap request the API server answers when it is alive (GET /livez); rejects otherwise. */
  ping: (timeoutMs: number) => Promise<unknown>;
  clock?: Clock;
  /** How long a ping may take before the API server counts as hung (default 5 s). */
  pingTimeoutMs?: number;
  /** At most one ping per this interval (default 10 s, the kubelet's default probe period). */
  pingIntervalMs?: number;
}

/**
 * Tells a quiet API server from a hung one. A watch that brings nothing (no event, no bookmark) for a long
 * time may just watch a kind nobody changes: the API server sends bookmarks only once something has been
 * written to that kind since it started. So silence alone proves nothing; silence while the API server
 * does not answer a ping does. Pings are sent only while some watch is silent, from the readiness check
 * itself, at most one every `pingIntervalMs`.
 */
export class WatchLiveness {
  private readonly clock: Clock;
  private readonly pingTimeoutMs: number;
  private readonly pingIntervalMs: number;
  private pending: { startedAt: number } | undefined;
  private last: { at: number; ok: boolean; error?: string } | undefined;

  constructor(private readonly opts: WatchLivenessOptions) {
    this.clock = opts.clock ?? realClock;
    this.pingTimeoutMs = opts.pingTimeoutMs ?? 5_000;
    this.pingIntervalMs = opts.pingIntervalMs ?? 10_000;
  }

  /** Undefined when fine; otherwise why not ready, naming the silent kinds. */
  reason(): string | undefined {
    const silent = this.opts.silentWatches();
    if (silent.length === 0) return undefined;
    const now = this.clock.now();
    if (!this.pending && (!this.last || now - this.last.at >= this.pingIntervalMs)) this.ping(now);
    const hungFor = this.pending ? now - this.pending.startedAt : 0;
    const failed = this.last && !this.last.ok;
    if (hungFor < this.pingTimeoutMs && !failed) return undefined;
    const what = silent
      .map((w) =>
        w.timeouts > 0
          ? `${w.description} (silent ${Math.round(w.silentMs / 1000)} s, ${w.timeouts} timeouts in a row)`
          : `${w.description} (silent ${Math.round(w.silentMs / 1000)} s)`,
      )
      .join(", ");
    const why =
      hungFor >= this.pingTimeoutMs
        ? `no answer for ${Math.round(hungFor / 1000)} s`
        : `failed: ${this.last?.error ?? "unknown"}`;
    return `watch of ${what}: no event or bookmark, and the API server ping ${why}`;
  }

  private ping(now: number): void {
    const pending = { startedAt: now };
    this.pending = pending;
    const settle = (ok: boolean, error?: string) => {
      if (this.pending !== pending) return;
      this.pending = undefined;
      this.last = { at: this.clock.now(), ok, ...(error ? { error } : {}) };
    };
    this.opts.ping(Math.max(1, Math.floor(this.pingTimeoutMs * 2))).then(
      () => settle(true),
      (err: unknown) => settle(false, err instanceof Error ? err.message : String(err)),
    );
  }
}
