import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";

/** One readiness check: undefined when fine, else the reason it is not (shown in the /readyz body). */
export type ReadinessCheck = () => string | undefined;

export interface HealthOptions {
  /** The event loop counts as blocked when a 1 s heartbeat is late by more than this (default 5 s). */
  blockedThresholdMs?: number;
  /** How often the heartbeat runs (default 1 s). */
  heartbeatMs?: number;
  readiness: Record<string, ReadinessCheck>;
  /** Further /healthz checks (a sync stuck for ten minutes): undefined when fine, else why not live. */
  liveness?: Record<string, ReadinessCheck>;
}

/**
 * /healthz and /readyz, as the kubelet probes them.
 *
 * /healthz: the process and its event loop are alive. A loop that is blocked does not answer at all (the
 * probe times out); a loop that WAS blocked longer than the threshold (a heartbeat timer fired that late)
 * fails it for as long as the threshold again, so a process that blocks over and over is restarted even
 * when each probe happens to land in a gap.
 * /readyz: every readiness check passes (informers synced, watches healthy); otherwise 503 with one line
 * per failing check. `?verbose` lists the passing ones too.
 */
export class HealthServer {
  private server: Server | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private lastBeat = performance.now();
  private blocked: { ms: number; at: number } | undefined;
  private readonly thresholdMs: number;
  private readonly heartbeatMs: number;

  constructor(private readonly opts: HealthOptions) {
    this.thresholdMs = opts.blockedThresholdMs ?? 5_000;
    this.heartbeatMs = opts.heartbeatMs ?? 1_000;
  }

  /** Why the process is not live, or undefined. */
  liveness(): string | undefined {
    const now = performance.now();
    const lag = now - this.lastBeat - this.heartbeatMs;
    if (lag > this.thresholdMs) return `event loop blocked for ${Math.round(lag)} ms`;
    if (this.blocked && now - this.blocked.at < this.thresholdMs)
      return `event loop was blocked for ${Math.round(this.blocked.ms)} ms`;
    for (const [name, check] of Object.entries(this.opts.liveness ?? {})) {
      const why = check();
      if (why !== undefined) return `${name}: ${why}`;
    }
    return undefined;
  }

  /** Failing readiness checks as `name: reason`. */
  readiness(): string[] {
    const failed: string[] = [];
    for (const [name, check] of Object.entries(this.opts.readiness)) {
      let reason: string | undefined;
      try {
        reason = check();
      } catch (err) {
        reason = `check failed: ${err instanceof Error ? err.message : String(err)}`;
      }
      if (reason !== undefined) failed.push(`${name}: ${reason}`);
    }
    return failed;
  }

  /** Listens on host:port (port 0 = any); resolves with the bound port. */
  async listen(port: number, host?: string): Promise<number> {
    this.startHeartbeat();
    const server = createServer((req, res) => {
      const url = new URL(req.url ?? "/", "http://probe");
      res.setHeader("Content-Type", "text/plain; charset=utf-8");
      res.setHeader("Cache-Control", "no-store");
      if (req.method !== "GET" && req.method !== "HEAD") {
        res.writeHead(405).end("method not allowed\n");
        return;
      }
      if (url.pathname === "/healthz" || url.pathname === "/livez") {
        const why = this.liveness();
        res.writeHead(why ? 500 : 200).end(why ? `[-]ping failed: ${why}\nhealthz check failed\n` : "ok\n");
        return;
      }
      if (url.pathname === "/readyz") {
        const failed = this.readiness();
        if (failed.length === 0) {
          const lines = url.searchParams.has("verbose")
            ? Object.keys(this.opts.readiness)
                .map((n) => `[+]${n} ok\n`)
                .join("")
            : "";
          res.writeHead(200).end(`${lines}ok\n`);
        } else res.writeHead(503).end(`${failed.map((f) => `[-]${f}`).join("\n")}\nreadyz check failed\n`);
        return;
      }
      res.writeHead(404).end("not found\n");
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, host, () => resolve());
    });
    return (server.address() as AddressInfo).port;
  }

  private startHeartbeat(): void {
    if (this.heartbeat) return;
    this.lastBeat = performance.now();
    this.heartbeat = setInterval(() => {
      const now = performance.now();
      const lag = now - this.lastBeat - this.heartbeatMs;
      if (lag > this.thresholdMs) this.blocked = { ms: lag, at: now };
      this.lastBeat = now;
    }, this.heartbeatMs);
    this.heartbeat.unref();
  }

  async close(): Promise<void> {
    clearInterval(this.heartbeat);
    this.heartbeat = undefined;
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

/** Parses a Go-style bind address (`:8081`, `127.0.0.1:8081`, `[::1]:8081`, `0` = disabled). */
export function parseBindAddress(flag: string, value: string): { host?: string; port: number } | undefined {
  if (value === "0" || value === "") return undefined;
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(value);
  const port = Number(m?.[3]);
  if (!m || !Number.isInteger(port) || port < 0 || port > 65535)
    throw new Error(`--${flag} must be [host]:port or 0 to disable, got ${JSON.stringify(value)}`);
  const host = m[1] ?? m[2];
  return host ? { host, port } : { port };
}
