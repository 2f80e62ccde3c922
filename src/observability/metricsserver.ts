import { createHash } from "node:crypto";
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import type { Registry } from "prom-client";
import type { Logger } from "./logger.js";

/** Delegated authn/authz (see cluster/authreview.ts). */
export interface Reviewer {
  authenticate(token: string): Promise<{ username: string } | undefined>;
  authorize(user: { username: string }, verb: string, path: string): Promise<boolean>;
}

export interface MetricsServerOptions {
  registry: Registry;
  log: Logger;
  /** HTTPS with TokenReview + SubjectAccessReview (default). false: plain HTTP, no auth (development). */
  secure: boolean;
  reviewer?: Reviewer;
  /** PEM certificate and key; when absent with secure, a self-signed pair is generated in memory at start. */
  tls?: { cert: string; key: string };
  /** How long an authn/authz decision is reused for the same token (default 10 s, as kube-rbac-proxy). */
  cacheTtlMs?: number;
  /**
   * How long a token's last 200 is still honoured when the reviews fail (API server down or slow): Prometheus
   * keeps scraping through an API server outage instead of losing the very metrics that show it. Default 5 min.
   */
  staleAllowMs?: number;
  /** Token reviews in flight at most; requests beyond get 503 without calling the API server. Default 8. */
  maxReviewsInFlight?: number;
  /** Decisions remembered at most (least recently used evicted first). Default 1000. */
  maxCachedDecisions?: number;
}

/** Slow or stalled clients: limits a scraper never comes near (Prometheus sends a few hundred bytes). */
export const METRICS_SERVER_LIMITS = {
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 15_000,
  handshakeTimeoutMs: 10_000,
  maxConnections: 128,
} as const;

/**
 * Serves /metrics. Secure mode follows what kubebuilder scaffolds today (controller-runtime's
 * `filters.WithAuthenticationAndAuthorization`): HTTPS, the caller's bearer token checked with a TokenReview
 * and `get` on the non-resource URL /metrics checked with a SubjectAccessReview. 401 without a valid
 * token, 403 when not allowed. Decisions are cached per token hash for a few seconds so a scrape every
 * 15 s costs at most two small API calls.
 *
 * Against a flood or a slow client: at most `maxReviewsInFlight` reviews at once (503 beyond, so random
 * tokens cannot queue up work on the API server or delay a real scrape), a bounded LRU of decisions, and the
 * header/request/TLS-handshake timeouts and connection cap of METRICS_SERVER_LIMITS.
 */
export class MetricsServer {
  private server: Server | undefined;
  /** Insertion order is recency order: a hit moves the entry to the end, eviction takes the first. */
  private readonly decisions = new Map<string, { at: number; code: 200 | 401 | 403 }>();
  private readonly ttl: number;
  private readonly staleAllowMs: number;
  private readonly maxInFlight: number;
  private readonly maxCached: number;
  private inFlight = 0;

  constructor(private readonly opts: MetricsServerOptions) {
    this.ttl = opts.cacheTtlMs ?? 10_000;
    this.staleAllowMs = opts.staleAllowMs ?? 5 * 60_000;
    this.maxInFlight = opts.maxReviewsInFlight ?? 8;
    this.maxCached = opts.maxCachedDecisions ?? 1000;
    if (opts.secure && !opts.reviewer) throw new Error("secure metrics need a reviewer");
  }

  async listen(port: number, host?: string): Promise<number> {
    const handler = (req: IncomingMessage, res: ServerResponse) => {
      this.handle(req, res).catch((err: unknown) => {
        this.opts.log.warn("metrics request failed", {
          error: err instanceof Error ? err.message : String(err),
        });
        if (!res.headersSent) res.writeHead(500).end("internal error\n");
      });
    };
    let server: Server;
    if (this.opts.secure) {
      const tls = this.opts.tls ?? (await selfSigned());
      server = createHttpsServer(
        {
          cert: tls.cert,
          key: tls.key,
          minVersion: "TLSv1.2",
          handshakeTimeout: METRICS_SERVER_LIMITS.handshakeTimeoutMs,
        },
        handler,
      );
    } else server = createHttpServer(handler);
    server.headersTimeout = METRICS_SERVER_LIMITS.headersTimeoutMs;
    server.requestTimeout = METRICS_SERVER_LIMITS.requestTimeoutMs;
    server.maxConnections = METRICS_SERVER_LIMITS.maxConnections;
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, host, () => resolve());
    });
    return (server.address() as AddressInfo).port;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = new URL(req.url ?? "/", "http://metrics").pathname;
    if (path !== "/metrics") {
      res.writeHead(404).end("not found\n");
      return;
    }
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405).end("method not allowed\n");
      return;
    }
    if (this.opts.secure) {
      const code = await this.decide(req.headers.authorization);
      if (code !== 200) {
        res
          .writeHead(code, { "Content-Type": "text/plain", ...(code === 503 ? { "Retry-After": "1" } : {}) })
          .end(
            code === 401 ? "Unauthorized\n" : code === 403 ? "Forbidden\n" : "too many reviews in flight\n",
          );
        return;
      }
    }
    const body = await this.opts.registry.metrics();
    res.writeHead(200, { "Content-Type": this.opts.registry.contentType }).end(body);
  }

  private async decide(header: string | undefined): Promise<200 | 401 | 403 | 503> {
    const token = /^Bearer\s+(\S+)$/i.exec(header ?? "")?.[1];
    if (!token) return 401;
    const key = createHash("sha256").update(token).digest("hex");
    const now = performance.now();
    const cached = this.decisions.get(key);
    if (cached) {
      // Recently used: to the end of the eviction order.
      this.decisions.delete(key);
      this.decisions.set(key, cached);
      if (now - cached.at < this.ttl) return cached.code;
    }
    if (this.inFlight >= this.maxInFlight) return 503;
    const reviewer = this.opts.reviewer!;
    let code: 200 | 401 | 403;
    this.inFlight++;
    try {
      const user = await reviewer.authenticate(token);
      code = !user ? 401 : (await reviewer.authorize(user, "get", "/metrics")) ? 200 : 403;
    } catch (err) {
      // The API server cannot answer: a token allowed a moment ago stays allowed for a while.
      if (cached?.code === 200 && now - cached.at < this.staleAllowMs) {
        this.opts.log.warn("metrics auth review failed; reusing the last allow decision", {
          error: err instanceof Error ? err.message : String(err),
        });
        return 200;
      }
      throw err;
    } finally {
      this.inFlight--;
    }
    this.decisions.delete(key);
    this.decisions.set(key, { at: performance.now(), code });
    while (this.decisions.size > this.maxCached) {
      const oldest = this.decisions.keys().next().value;
      if (oldest === undefined) break;
      this.decisions.delete(oldest);
    }
    return code;
  }

  async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

/**
 * A self-signed serving certificate made in memory at start (EC P-256, valid one year, SANs for the
 * pod's hostname, localhost and loopback). Prometheus scrapes it with `insecureSkipVerify` or a real
 * certificate is given with --metrics-cert-dir (e.g. from cert-manager).
 */
export async function selfSigned(): Promise<{ cert: string; key: string }> {
  const { generate } = await import("selfsigned");
  const { hostname } = await import("node:os");
  const cn = "csp-operator-metrics";
  const pems = await generate([{ name: "commonName", value: cn }], {
    keyType: "ec",
    curve: "P-256",
    algorithm: "sha256",
    notAfterDate: new Date(Date.now() + 365 * 24 * 3600 * 1000),
    extensions: [
      { name: "basicConstraints", cA: false },
      { name: "keyUsage", digitalSignature: true, keyEncipherment: true },
      { name: "extKeyUsage", serverAuth: true },
      {
        name: "subjectAltName",
        altNames: [
          { type: 2, value: cn },
          { type: 2, value: hostname() },
          { type: 2, value: "localhost" },
          { type: 7, ip: "127.0.0.1" },
        ],
      },
    ],
  });
  return { cert: pems.cert, key: pems.private };
}
