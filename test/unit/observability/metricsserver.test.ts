import { expect } from "chai";
import { request, type Server as HttpsServer } from "node:https";
import { Registry } from "prom-client";
import { createLogger } from "../../../src/observability/logger.js";
import {
  METRICS_SERVER_LIMITS,
  MetricsServer,
  jwtClaim,
  selfSigned,
  sourceKey,
  TokenBuckets,
  type Reviewer,
} from "../../../src/observability/metricsserver.js";

const log = createLogger("error");

/** A reviewer answering from a table; `hold` keeps every review pending until released. */
class TableReviewer implements Reviewer {
  calls = 0;
  inFlight = 0;
  maxInFlight = 0;
  failing = false;
  private held: (() => void)[] = [];
  hold = false;
  constructor(private readonly allowed: Set<string>) {}
  async authenticate(token: string): Promise<{ username: string } | undefined> {
    this.calls++;
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      if (this.hold) await new Promise<void>((r) => this.held.push(r));
      if (this.failing) throw new Error("the API server does not answer");
      return { username: token };
    } finally {
      this.inFlight--;
    }
  }
  authorize(user: { username: string }): Promise<boolean> {
    return Promise.resolve(this.allowed.has(user.username));
  }
  release(): void {
    this.hold = false;
    for (const r of this.held.splice(0)) r();
  }
}

/** GET /metrics with a bearer token from `from` (any 127.0.0.0/8 address is loopback); the status code. */
async function get(port: number, token: string, from = "127.0.0.1"): Promise<number> {
  return (await getWith(port, token, from)).code;
}

function getWith(
  port: number,
  token: string,
  from = "127.0.0.1",
): Promise<{ code: number; retryAfter?: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: "127.0.0.1",
        port,
        path: "/metrics",
        localAddress: from,
        rejectUnauthorized: false,
        headers: { Authorization: `Bearer ${token}` },
        agent: false,
      },
      (res) => {
        res.resume();
        const retryAfter = res.headers["retry-after"];
        res.on("end", () => resolve({ code: res.statusCode ?? 0, ...(retryAfter ? { retryAfter } : {}) }));
      },
    );
    req.on("error", reject);
    req.end();
  });
}

/** Rate limits high enough that only the in-flight cap is exercised. */
const UNLIMITED = {
  reviewsPerSource: { burst: 1000, perSecond: 1000 },
  reviewsTotal: { burst: 1000, perSecond: 1000 },
};

describe("MetricsServer (secure, table reviewer)", function () {
  this.timeout(20_000);
  let tls: { cert: string; key: string };
  const servers: MetricsServer[] = [];
  before(async () => {
    tls = await selfSigned();
  });
  after(async () => {
    for (const s of servers) await s.close();
  });
  async function serve(
    reviewer: Reviewer,
    extra: Partial<ConstructorParameters<typeof MetricsServer>[0]> = {},
  ) {
    const s = new MetricsServer({ registry: new Registry(), log, secure: true, reviewer, tls, ...extra });
    servers.push(s);
    return { s, port: await s.listen(0, "127.0.0.1") };
  }

  it("sets header, request and TLS handshake timeouts and a connection cap", async () => {
    const { s } = await serve(new TableReviewer(new Set()));
    const server = (s as unknown as { server: HttpsServer }).server;
    expect(server.headersTimeout).to.equal(METRICS_SERVER_LIMITS.headersTimeoutMs);
    expect(server.requestTimeout).to.equal(METRICS_SERVER_LIMITS.requestTimeoutMs);
    expect(server.maxConnections).to.equal(METRICS_SERVER_LIMITS.maxConnections);
    expect(METRICS_SERVER_LIMITS.headersTimeoutMs).to.be.at.most(10_000);
  });

  it("a flood of unknown tokens: at most 8 reviews in flight, the rest 503, a cached scraper still 200", async () => {
    const reviewer = new TableReviewer(new Set(["prometheus"]));
    const { port } = await serve(reviewer, UNLIMITED);
    expect(await get(port, "prometheus")).to.equal(200);
    reviewer.hold = true;
    const flood = Array.from({ length: 60 }, (_, i) => get(port, `random-${i}`));
    // While the flood waits on the API server, the known scraper is answered from its cached decision.
    for (let i = 0; i < 50 && reviewer.inFlight < 8; i++) await new Promise((r) => setTimeout(r, 20));
    expect(await get(port, "prometheus")).to.equal(200);
    reviewer.release();
    const codes = await Promise.all(flood);
    expect(reviewer.maxInFlight).to.equal(8);
    expect(codes.filter((c) => c === 503).length).to.be.greaterThan(40);
    expect(codes.every((c) => c === 503 || c === 403)).to.equal(true);
  });

  it("evicts the least recently used decision, not all of them", async () => {
    const reviewer = new TableReviewer(new Set(["a", "b", "c"]));
    const { port } = await serve(reviewer, { maxCachedDecisions: 2, ...UNLIMITED });
    await get(port, "a");
    await get(port, "b");
    await get(port, "a"); // a is now the most recent
    await get(port, "c"); // evicts b
    const before = reviewer.calls;
    await get(port, "a");
    expect(reviewer.calls, "a was still cached").to.equal(before);
    await get(port, "b");
    expect(reviewer.calls, "b was evicted").to.equal(before + 1);
  });

  it("keeps a token's last allow for a while when the review fails; a never-allowed token gets 500", async () => {
    const reviewer = new TableReviewer(new Set(["prometheus"]));
    const { port } = await serve(reviewer, { cacheTtlMs: 1 });
    expect(await get(port, "prometheus")).to.equal(200);
    reviewer.failing = true;
    await new Promise((r) => setTimeout(r, 5));
    expect(await get(port, "prometheus")).to.equal(200);
    expect(await get(port, "stranger")).to.equal(500);
    const strict = new TableReviewer(new Set(["prometheus"]));
    const { port: p2 } = await serve(strict, { cacheTtlMs: 1, staleAllowMs: 0 });
    expect(await get(p2, "prometheus")).to.equal(200);
    strict.failing = true;
    await new Promise((r) => setTimeout(r, 5));
    expect(await get(p2, "prometheus")).to.equal(500);
  });

  it("unknown tokens past a source's rate: 429 with Retry-After and no review; refilled with time", async () => {
    let t = 0;
    const reviewer = new TableReviewer(new Set(["prometheus"]));
    const { s, port } = await serve(reviewer, {
      now: () => t,
      reviewsPerSource: { burst: 3, perSecond: 0.5 },
      reviewsTotal: { burst: 100, perSecond: 100 },
    });
    expect(await get(port, "prometheus")).to.equal(200); // spends one of the 3
    const flood = [];
    for (let i = 0; i < 10; i++) flood.push(await getWith(port, `random-${i}`));
    expect(flood.map((r) => r.code)).to.deep.equal([403, 403, ...Array<number>(8).fill(429)]);
    expect(flood[2]!.retryAfter).to.equal("2");
    expect(reviewer.calls).to.equal(3);
    expect(s.refused.rateLimited).to.equal(8);
    // Another address has its own bucket.
    expect(await get(port, "random-x", "127.0.0.2")).to.equal(403);
    // The scraper's decision expired: it is reviewed again although its address is out of tokens.
    t += 20_000;
    expect(await get(port, "prometheus")).to.equal(200);
    expect(reviewer.calls).to.equal(5);
    // 20 s at 0.5/s refilled the bucket (to its burst of 3, not more).
    const later = [];
    for (let i = 0; i < 5; i++) later.push(await get(port, `later-${i}`));
    expect(later).to.deep.equal([403, 403, 403, 429, 429]);
  });

  it("a denial is cached (no review, no rate spent) and never evicts an allow", async () => {
    const reviewer = new TableReviewer(new Set(["prometheus"]));
    const { port } = await serve(reviewer, {
      maxCachedDecisions: 2,
      reviewsPerSource: { burst: 1000, perSecond: 1 },
    });
    expect(await get(port, "prometheus")).to.equal(200);
    for (let i = 0; i < 20; i++) expect(await get(port, `bad-${i}`)).to.equal(403);
    const calls = reviewer.calls;
    for (let i = 0; i < 50; i++) expect(await get(port, "bad-19")).to.equal(403);
    expect(await get(port, "prometheus")).to.equal(200);
    expect(reviewer.calls, "the repeated bad token and the scraper came from the caches").to.equal(calls);
  });

  it("all sources together are limited too (many addresses)", async () => {
    const reviewer = new TableReviewer(new Set());
    const { port } = await serve(reviewer, {
      now: () => 0,
      reviewsPerSource: { burst: 2, perSecond: 1 },
      reviewsTotal: { burst: 5, perSecond: 1 },
      reviewsNewSources: { burst: 1, perSecond: 1 },
    });
    const codes = [];
    for (let i = 0; i < 8; i++) codes.push(await get(port, `t-${i}`, `127.0.0.${10 + i}`));
    expect(codes).to.deep.equal([403, 403, 403, 403, 403, 403, 429, 429]);
    expect(reviewer.calls).to.equal(6);
  });

  it("a flood from many addresses cannot take a new source's first review (total bucket charged after it)", async () => {
    const reviewer = new TableReviewer(new Set(["prometheus"]));
    const { port } = await serve(reviewer, {
      now: () => 0,
      reviewsPerSource: { burst: 10, perSecond: 1 },
      reviewsTotal: { burst: 5, perSecond: 1 },
      reviewsNewSources: { burst: 5, perSecond: 1 },
    });
    // Four addresses, ten junk tokens each: their first reviews and then the whole total bucket.
    const junk = [];
    for (let a = 0; a < 4; a++)
      for (let i = 0; i < 10; i++) junk.push(await get(port, `junk-${a}-${i}`, `127.0.0.${20 + a}`));
    expect(junk.filter((c) => c === 403).length).to.equal(9);
    expect(junk.filter((c) => c === 429).length).to.equal(31);
    // A scraper at an address of its own (just restarted, nothing cached) is still reviewed.
    expect(await get(port, "prometheus", "127.0.0.9")).to.equal(200);
  });

  it("junk tokens from the scraper's own address do not lock out its rotated token (JWT iss/sub known)", async () => {
    let t = 0;
    const sa = "system:serviceaccount:monitoring:prometheus";
    const jwt = (sub: string, jti: string) =>
      [
        "e30",
        Buffer.from(JSON.stringify({ iss: "https://kubernetes.default.svc", sub, jti })).toString(
          "base64url",
        ),
        "sig",
      ].join(".");
    const valid = new Set([jwt(sa, "1"), jwt(sa, "2"), jwt(sa, "3")]);
    let reviews = 0;
    const reviewer: Reviewer = {
      authenticate: (token) => {
        reviews++;
        return Promise.resolve(valid.has(token) ? { username: sa } : undefined);
      },
      authorize: (user) => Promise.resolve(user.username === sa),
    };
    const { s, port } = await serve(reviewer, { now: () => t });
    expect(await get(port, jwt(sa, "1"))).to.equal(200);
    // Two minutes of junk from the same address, four a second: the address's bucket stays empty.
    for (; t < 120_000; t += 250) await get(port, `junk-${t}`);
    expect(s.refused.rateLimited).to.be.greaterThan(300);
    // The projected token rotated (and the operator did not see the old one for a while): a new token.
    expect(await get(port, jwt(sa, "2"))).to.equal(200);
    // Forged tokens claiming the same identity spend only that identity's small bucket, then the source's.
    for (let i = 0; i < 3; i++) await get(port, `junk-again-${i}`); // the source's bucket is empty now
    const before = reviews;
    const forged = [];
    for (let i = 0; i < 6; i++) forged.push(await get(port, jwt(sa, `forged-${i}`)));
    expect(forged).to.deep.equal([401, 401, 401, 429, 429, 429]);
    expect(reviews - before).to.equal(3);
    // An identity never allowed gets no such lane.
    expect(await get(port, jwt("system:serviceaccount:x:y", "1"))).to.equal(429);
  });

  it("a known token keeps its allow when the reviews in flight are at the cap; a 503 spends no rate", async () => {
    let t = 0;
    const reviewer = new TableReviewer(new Set(["prometheus"]));
    const { s, port } = await serve(reviewer, {
      now: () => t,
      maxReviewsInFlight: 2,
      reviewsPerSource: { burst: 1, perSecond: 0.001 },
    });
    expect(await get(port, "prometheus")).to.equal(200);
    t = 15_000; // the cached decision expired; the token is still known (stale allow)
    reviewer.hold = true;
    const pending = [get(port, "junk-a", "127.0.0.30"), get(port, "junk-b", "127.0.0.31")];
    for (let i = 0; i < 100 && reviewer.inFlight < 2; i++) await new Promise((r) => setTimeout(r, 10));
    expect(reviewer.inFlight).to.equal(2);
    expect(await get(port, "prometheus")).to.equal(200);
    expect(s.staleAllows).to.equal(1);
    expect(await getWith(port, "junk-c", "127.0.0.32")).to.deep.equal({ code: 503, retryAfter: "1" });
    reviewer.release();
    expect(await Promise.all(pending)).to.deep.equal([403, 403]);
    // The 503 took nothing from 127.0.0.32's bucket (burst 1): its next token is reviewed.
    expect(await get(port, "junk-d", "127.0.0.32")).to.equal(403);
  });
});

describe("sourceKey and jwtClaim", () => {
  it("keys IPv4 by address and IPv6 by its /64", () => {
    expect(sourceKey("10.0.0.5")).to.equal("10.0.0.5");
    expect(sourceKey("::ffff:10.0.0.5")).to.equal("10.0.0.5");
    expect(sourceKey("2001:db8:0:1::5")).to.equal("2001:db8:0:1::/64");
    expect(sourceKey("2001:DB8:0000:1:aaaa::9")).to.equal("2001:db8:0:1::/64");
    expect(sourceKey("::1")).to.equal("0:0:0:0::/64");
  });
  it("reads iss and sub of a JWT, nothing of anything else", () => {
    const p = Buffer.from(JSON.stringify({ iss: "i", sub: "s" })).toString("base64url");
    expect(jwtClaim(`h.${p}.sig`)).to.equal("i\ns");
    expect(jwtClaim("opaque-token")).to.equal(undefined);
    expect(jwtClaim("a.b.c")).to.equal(undefined);
    expect(jwtClaim(`h.${Buffer.from("[1]").toString("base64url")}.s`)).to.equal(undefined);
  });
});

describe("TokenBuckets", () => {
  it("grants the burst, then one token per 1/perSecond; reports the wait", () => {
    let t = 0;
    const b = new TokenBuckets(2, 4, () => t);
    expect([b.take("a"), b.take("a")]).to.deep.equal([0, 0]);
    expect(b.take("a")).to.equal(0.25);
    t += 250;
    expect(b.take("a")).to.equal(0);
    t += 10_000; // never more than the burst
    expect([b.take("a"), b.take("a"), b.take("a") > 0]).to.deep.equal([0, 0, true]);
  });

  it("keeps at most maxKeys buckets, forgetting the least recently used", () => {
    const b = new TokenBuckets(1, 1, () => 0, 3);
    for (const k of ["a", "b", "c", "d"]) b.take(k);
    expect(b.size).to.equal(3);
    expect(b.take("b")).to.be.greaterThan(0); // still remembered (empty)
    expect(b.take("a")).to.equal(0); // forgotten: a full bucket again
  });

  it("a refund gives a token back, up to the burst", () => {
    const b = new TokenBuckets(1, 1, () => 0);
    b.take("a");
    b.refund("a");
    b.refund("a");
    expect([b.take("a"), b.take("a") > 0]).to.deep.equal([0, true]);
  });

  it("refuses a bucket that could never grant", () => {
    expect(() => new TokenBuckets(0, 1, () => 0)).to.throw(/burst/);
    expect(() => new TokenBuckets(1, 0, () => 0)).to.throw(/perSecond/);
  });
});
