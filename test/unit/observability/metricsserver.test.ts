import { expect } from "chai";
import { request, type Server as HttpsServer } from "node:https";
import { Registry } from "prom-client";
import { createLogger } from "../../../src/observability/logger.js";
import {
  METRICS_SERVER_LIMITS,
  MetricsServer,
  selfSigned,
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

function get(port: number, token: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: "127.0.0.1",
        port,
        path: "/metrics",
        rejectUnauthorized: false,
        headers: { Authorization: `Bearer ${token}` },
        agent: false,
      },
      (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode ?? 0));
      },
    );
    req.on("error", reject);
    req.end();
  });
}

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
    const { port } = await serve(reviewer);
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
    const { port } = await serve(reviewer, { maxCachedDecisions: 2 });
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
});
