import { expect } from "chai";
import { request } from "node:http";
import { HealthServer, parseBindAddress } from "../../../src/observability/health.js";

const get = (port: number, path: string) =>
  new Promise<{ status: number; body: string }>((resolve, reject) => {
    request({ host: "127.0.0.1", port, path }, (res) => {
      let body = "";
      res.on("data", (d: Buffer) => (body += d.toString()));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    })
      .on("error", reject)
      .end();
  });

describe("HealthServer", () => {
  let server: HealthServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  it("/readyz lists the failing checks with their reason; 200 once they pass", async () => {
    let reason: string | undefined = "cache not synced: Namespace (connection refused)";
    server = new HealthServer({ readiness: { informers: () => reason, other: () => undefined } });
    const port = await server.listen(0, "127.0.0.1");
    const r = await get(port, "/readyz");
    expect(r.status).to.equal(503);
    expect(r.body).to.contain("[-]informers: cache not synced: Namespace (connection refused)");
    expect(r.body).to.not.contain("other");
    reason = undefined;
    expect((await get(port, "/readyz")).status).to.equal(200);
    expect((await get(port, "/readyz?verbose")).body).to.contain("[+]informers ok");
    expect((await get(port, "/nope")).status).to.equal(404);
  });

  it("/healthz fails after the event loop was blocked longer than the threshold", async () => {
    server = new HealthServer({ readiness: {}, heartbeatMs: 20, blockedThresholdMs: 150 });
    const port = await server.listen(0, "127.0.0.1");
    expect((await get(port, "/healthz")).status).to.equal(200);
    const until = performance.now() + 400;
    while (performance.now() < until) {
      /* block the event loop */
    }
    const r = await get(port, "/healthz");
    expect(r.status).to.equal(500);
    expect(r.body).to.match(/event loop (was )?blocked for \d+ ms/);
  });

  it("/healthz fails while a liveness check names a reason (a sync stuck), and passes again after", async () => {
    let stuck: string | undefined = "a sync has been running for 601 s (limit 600 s)";
    server = new HealthServer({ readiness: {}, liveness: { sync: () => stuck } });
    const port = await server.listen(0, "127.0.0.1");
    const r = await get(port, "/healthz");
    expect(r.status).to.equal(500);
    expect(r.body).to.include("sync: a sync has been running for 601 s");
    stuck = undefined;
    expect((await get(port, "/healthz")).status).to.equal(200);
  });

  it("parses Go-style bind addresses and names the flag on a bad one", () => {
    expect(parseBindAddress("x", ":8081")).to.deep.equal({ port: 8081 });
    expect(parseBindAddress("x", "127.0.0.1:0")).to.deep.equal({ host: "127.0.0.1", port: 0 });
    expect(parseBindAddress("x", "[::1]:9")).to.deep.equal({ host: "::1", port: 9 });
    expect(parseBindAddress("x", "0")).to.equal(undefined);
    expect(() => parseBindAddress("metrics-bind-address", "8080")).to.throw(/--metrics-bind-address/);
    expect(() => parseBindAddress("metrics-bind-address", ":99999")).to.throw(/--metrics-bind-address/);
  });
});
