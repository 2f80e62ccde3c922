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
  /**
   * Decisions remembered at most, allows and denials each (least recently used evicted first): a flood of
   * bad tokens fills the denials and never evicts a scraper's allow. Default 1000.
   */
  maxCachedDecisions?: number;
  /**
   * Reviews of tokens not known to be allowed, per source IP: a token bucket of `burst` reviews refilled at
   * `perSecond`; past it 429 with Retry-After, without calling the API server. Default 10, 1/s.
   */
  reviewsPerSource?: { burst: number; perSecond: number };
  /**
   * The same over every source together (many addresses), charged only once a source spent its own first
   * review of the minute (see `reviewsNewSources`): a flood from many addresses cannot take the whole budget
   * from a scraper at an address of its own. Default 40, 10/s.
   */
  reviewsTotal?: { burst: number; perSecond: number };
  /**
   * The first review of a source in a minute (a scraper just started, or at a new address) is charged to
   * this bucket instead of `reviewsTotal`. Default 20, 5/s. IPv6 sources are keyed by their /64.
   */
  reviewsNewSources?: { burst: number; perSecond: number };
  /**
   * Reviews of a never-seen token whose claimed identity (the `iss` and `sub` of a JWT, as service-account
   * tokens are, read without verifying: the TokenReview verifies) was allowed within `knownClaimMs`: charged
   * to a bucket of that identity instead of the source's, so junk tokens from the scraper's own address do
   * not lock out its rotated token (projected tokens rotate every ~48 min). Default 4, 1 per 30 s.
   */
  reviewsPerKnownClaim?: { burst: number; perSecond: number };
  /** How long an allowed identity (JWT iss/sub) stays known for `reviewsPerKnownClaim`. Default 2 h. */
  knownClaimMs?: number;
  /** Time source of the rate limits, in ms (a fake one in tests). Default performance.now. */
  now?: () => number;
}

/**
 * Token buckets, one per key (a source address), each holding at most `burst` tokens and refilled at
 * `perSecond`. The buckets kept are bounded: the least recently used is forgotten first (it comes back
 * full, which a flood from that many addresses would also get from the total bucket's limit).
 */
export class TokenBuckets {
  /** Insertion order is recency order. */
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    private readonly burst: number,
    private readonly perSecond: number,
    private readonly now: () => number,
    private readonly maxKeys = 10_000,
  ) {
    if (!(burst >= 1) || !(perSecond > 0))
      throw new Error("a token bucket needs burst >= 1 and perSecond > 0");
  }

  /** Takes one token from `key`'s bucket: 0 when granted, else the seconds until one is there. */
  take(key: string): number {
    const t = this.now();
    const b = this.buckets.get(key) ?? { tokens: this.burst, at: t };
    b.tokens = Math.min(this.burst, b.tokens + (Math.max(0, t - b.at) / 1000) * this.perSecond);
    b.at = t;
    this.buckets.delete(key);
    this.buckets.set(key, b);
    while (this.buckets.size > this.maxKeys) {
      const oldest = this.buckets.keys().next().value;
      if (oldest === undefined) break;
      this.buckets.delete(oldest);
    }
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return (1 - b.tokens) / this.perSecond;
  }

  /** Gives back a token taken for nothing (another limit refused the request). */
  refund(key: string): void {
    const b = this.buckets.get(key);
    if (b) b.tokens = Math.min(this.burst, b.tokens + 1);
  }

  get size(): number {
    return this.buckets.size;
  }
}

/** An LRU map bounded to `max` entries: a hit moves the entry to the end, eviction takes the first. */
class Lru<V> {
  private readonly map = new Map<string, V>();
  constructor(private readonly max: number) {}
  get(key: string): V | undefined {
    const v = this.map.get(key);
    if (v !== undefined) {
      this.map.delete(key);
      this.map.set(key, v);
    }
    return v;
  }
  set(key: string, v: V): void {
    this.map.delete(key);
    this.map.set(key, v);
    while (this.map.size > this.max) {
      const oldest = this.map.keys().next().value;
      if (oldest === undefined) break;
      this.map.delete(oldest);
    }
  }
  delete(key: string): void {
    this.map.delete(key);
  }
}

type Decision = 200 | 401 | 403 | 429 | 503;

const REFUSALS: Record<Exclude<Decision, 200>, string> = {
  401: "Unauthorized\n",
  403: "Forbidden\n",
  429: "too many token reviews from this source; retry later\n",
  503: "too many reviews in flight\n",
};

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
 * Against a flood or a slow client: a token not known to be allowed is reviewed only within a rate per
 * source IP and in total (429 beyond, with Retry-After), at most `maxReviewsInFlight` reviews at once (503
 * beyond), so random tokens cannot queue up work on the API server or delay a real scrape; denials are
 * cached apart from allows (a flood of bad tokens never evicts a scraper's allow), both bounded LRUs; and
 * the header/request/TLS-handshake timeouts and connection cap of METRICS_SERVER_LIMITS.
 */
export class MetricsServer {
  private server: Server | undefined;
  private readonly allowed: Lru<{ at: number }>;
  private readonly denied: Lru<{ at: number; code: 401 | 403 }>;
  private readonly ttl: number;
  private readonly staleAllowMs: number;
  private readonly maxInFlight: number;
  private readonly perSource: TokenBuckets;
  private readonly total: TokenBuckets;
  private readonly firstOfSource: TokenBuckets;
  private readonly newSources: TokenBuckets;
  private readonly perClaim: TokenBuckets;
  /** JWT identities (iss + sub) allowed lately, with the time of the last allow. */
  private readonly allowedClaims: Lru<{ at: number }>;
  private readonly knownClaimMs: number;
  private readonly now: () => number;
  private inFlight = 0;
  /** Requests refused by each limit, for tests and logs. */
  readonly refused = { rateLimited: 0, inFlight: 0 };
  /** Known tokens answered from their last allow because the review cap was reached. */
  staleAllows = 0;

  constructor(private readonly opts: MetricsServerOptions) {
    this.ttl = opts.cacheTtlMs ?? 10_000;
    this.staleAllowMs = opts.staleAllowMs ?? 5 * 60_000;
    this.maxInFlight = opts.maxReviewsInFlight ?? 8;
    const maxCached = opts.maxCachedDecisions ?? 1000;
    this.allowed = new Lru(maxCached);
    this.denied = new Lru(maxCached);
    this.now = opts.now ?? (() => performance.now());
    const perSource = opts.reviewsPerSource ?? { burst: 10, perSecond: 1 };
    const total = opts.reviewsTotal ?? { burst: 40, perSecond: 10 };
    this.perSource = new TokenBuckets(perSource.burst, perSource.perSecond, this.now);
    this.total = new TokenBuckets(total.burst, total.perSecond, this.now, 1);
    const fresh = opts.reviewsNewSources ?? { burst: 20, perSecond: 5 };
    this.newSources = new TokenBuckets(fresh.burst, fresh.perSecond, this.now, 1);
    this.firstOfSource = new TokenBuckets(1, 1 / 60, this.now);
    const claim = opts.reviewsPerKnownClaim ?? { burst: 4, perSecond: 1 / 30 };
    this.perClaim = new TokenBuckets(claim.burst, claim.perSecond, this.now, maxCached);
    this.allowedClaims = new Lru(maxCached);
    this.knownClaimMs = opts.knownClaimMs ?? 2 * 3600_000;
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
      const decision = await this.decide(req.headers.authorization, req.socket.remoteAddress ?? "");
      if (decision.code !== 200) {
        const retry = decision.retryAfter !== undefined ? { "Retry-After": String(decision.retryAfter) } : {};
        res.writeHead(decision.code, { "Content-Type": "text/plain", ...retry }).end(REFUSALS[decision.code]);
        return;
      }
    }
    const body = await this.opts.registry.metrics();
    res.writeHead(200, { "Content-Type": this.opts.registry.contentType }).end(body);
  }

  private async decide(
    header: string | undefined,
    source: string,
  ): Promise<{ code: Decision; retryAfter?: number }> {
    const token = /^Bearer\s+(\S+)$/i.exec(header ?? "")?.[1];
    if (!token) return { code: 401 };
    const key = createHash("sha256").update(token).digest("hex");
    const now = this.now();
    const allow = this.allowed.get(key);
    if (allow && now - allow.at < this.ttl) return { code: 200 };
    const deny = this.denied.get(key);
    if (deny && now - deny.at < this.ttl) return { code: deny.code };
    // A token allowed recently (a scraper whose decision expired) is reviewed again without a rate limit:
    // a flood from the same address must not lock it out. Any other token spends from the rate limits.
    const known = allow !== undefined && now - allow.at < this.staleAllowMs;
    if (this.inFlight >= this.maxInFlight) {
      // A token allowed within staleAllowMs keeps its allow while the reviews are saturated (a flood, or a
      // slow API server): the same stale allow as when the review fails. Nothing is charged for a 503.
      if (known) {
        this.staleAllows++;
        return { code: 200 };
      }
      this.refused.inFlight++;
      return { code: 503, retryAfter: 1 };
    }
    const claim = jwtClaim(token);
    if (!known) {
      const refusal = this.charge(sourceKey(source), claim, now);
      if (refusal !== undefined) {
        this.refused.rateLimited++;
        return { code: 429, retryAfter: Math.max(1, Math.ceil(refusal)) };
      }
    }
    const reviewer = this.opts.reviewer!;
    let code: 200 | 401 | 403;
    this.inFlight++;
    try {
      const user = await reviewer.authenticate(token);
      code = !user ? 401 : (await reviewer.authorize(user, "get", "/metrics")) ? 200 : 403;
    } catch (err) {
      // The API server cannot answer: a token allowed a moment ago stays allowed for a while.
      if (known) {
        this.opts.log.warn("metrics auth review failed; reusing the last allow decision", {
          error: err instanceof Error ? err.message : String(err),
        });
        return { code: 200 };
      }
      throw err;
    } finally {
      this.inFlight--;
    }
    const at = this.now();
    if (code === 200) {
      this.allowed.set(key, { at });
      this.denied.delete(key);
      if (claim !== undefined) this.allowedClaims.set(claim, { at });
    } else {
      this.denied.set(key, { at, code });
      this.allowed.delete(key);
    }
    return { code };
  }

  /**
   * Charges the review of a token not known to be allowed: to its claimed identity's bucket when that
   * identity was allowed lately, else to the source's bucket and then either the new-sources bucket (the
   * source's first review of the minute) or the total one. undefined when granted, else the seconds to wait.
   */
  private charge(source: string, claim: string | undefined, now: number): number | undefined {
    if (claim !== undefined) {
      const seen = this.allowedClaims.get(claim);
      if (seen && now - seen.at < this.knownClaimMs && this.perClaim.take(claim) === 0) return undefined;
    }
    const wait = this.perSource.take(source);
    if (wait > 0) return wait;
    const first = this.firstOfSource.take(source) === 0;
    if (first && this.newSources.take("") === 0) return undefined;
    const waitTotal = this.total.take("");
    if (waitTotal === 0) return undefined;
    this.perSource.refund(source);
    if (first) this.firstOfSource.refund(source);
    return waitTotal;
  }

  async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

/** The rate-limit key of a source: the address, or its /64 for IPv6 (one host holds a whole /64). */
export function sourceKey(address: string): string {
  const a = address.startsWith("::ffff:") && address.includes(".") ? address.slice(7) : address;
  if (!a.includes(":")) return a;
  const [head = "", tail] = a.split("::");
  const left = head === "" ? [] : head.split(":");
  const right = tail === undefined || tail === "" ? [] : tail.split(":");
  const groups =
    tail === undefined
      ? left
      : [...left, ...Array<string>(Math.max(0, 8 - left.length - right.length)).fill("0"), ...right];
  return (
    groups
      .slice(0, 4)
      .map((g) => (g.replace(/^0+/, "") || "0").toLowerCase())
      .join(":") + "::/64"
  );
}

/**
 * The identity a JWT claims (`iss` and `sub`), unverified: only a key for rate limits, the TokenReview
 * decides. undefined for anything else.
 */
export function jwtClaim(token: string): string | undefined {
  const parts = token.split(".");
  if (parts.length !== 3 || parts[1]!.length > 4096) return undefined;
  try {
    const payload: unknown = JSON.parse(Buffer.from(parts[1]!, "base64url").toString("utf8"));
    if (typeof payload !== "object" || payload === null) return undefined;
    const { iss, sub } = payload as { iss?: unknown; sub?: unknown };
    if (typeof sub !== "string" || sub === "") return undefined;
    return `${typeof iss === "string" ? iss : ""}\n${sub}`;
  } catch {
    return undefined;
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
