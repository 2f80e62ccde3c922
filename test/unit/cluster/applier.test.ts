import { expect } from "chai";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Applier } from "../../../src/cluster/applier.js";
import { DEFAULT_RETRY, DEFAULT_TIMEOUT_MS, type RetryPolicy } from "../../../src/cluster/rest.js";
import { policy } from "../builders/policy.js";
import { kubeConfigFor } from "./fakeapi.js";

/** An API server that throttles every request (429, Retry-After 5): client-side retry behaviour only. */
describe("Applier: status and event writes retried within the request budget", () => {
  let server: Server;
  let url = "";
  let requests = 0;
  before(async () => {
    server = createServer((req, res) => {
      requests++;
      req.resume();
      res
        .writeHead(429, { "Retry-After": "5", "Content-Type": "application/json" })
        .end(JSON.stringify({ kind: "Status", apiVersion: "v1", code: 429, message: "too many requests" }));
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  });

  /** A fake clock: each wait moves it on at once. */
  function fakeClock(): RetryPolicy & { at: () => number } {
    let now = 0;
    return {
      ...DEFAULT_RETRY,
      random: () => 0,
      now: () => now,
      sleep: (ms) => {
        now += ms;
        return Promise.resolve();
      },
      at: () => now,
    };
  }

  it("patchStatus and event give up within DEFAULT_TIMEOUT_MS (6 tries 5 s apart), not after 10 tries", async () => {
    for (const write of [
      (a: Applier) => a.patchStatus("p", {}),
      (a: Applier) => a.event(policy("p").build(), "Normal", "Applied", "m"),
    ]) {
      const clock = fakeClock();
      requests = 0;
      const err = await write(new Applier(kubeConfigFor(url), clock)).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect((err as { code?: number }).code).to.equal(429);
      expect(requests).to.equal(6);
      expect(clock.at()).to.be.at.most(DEFAULT_TIMEOUT_MS);
    }
  });
});
