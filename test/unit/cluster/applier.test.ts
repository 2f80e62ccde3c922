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

/**
 * A status write guarded by the policy's uid (a JSON Patch testing /metadata/uid): the fake API server
 * answers the PATCH as the test says, and a GET with the policy it holds now.
 */
describe("Applier.patchStatus: written only to the policy object it was computed for", () => {
  let server: Server;
  let url = "";
  let patchAnswer = 200;
  let holds: { uid: string } | undefined;
  const seen: { method: string; type?: string; body: string }[] = [];
  before(async () => {
    server = createServer((req, res) => {
      let body = "";
      req.on("data", (c: Buffer) => (body += c.toString()));
      req.on("end", () => {
        seen.push({
          method: req.method ?? "",
          ...(req.headers["content-type"] ? { type: req.headers["content-type"] } : {}),
          body,
        });
        const answer = (code: number, o: object) =>
          res.writeHead(code, { "Content-Type": "application/json" }).end(JSON.stringify(o));
        const status = (code: number) =>
          answer(code, { kind: "Status", apiVersion: "v1", code, message: `code ${code}` });
        if (req.method === "PATCH") return patchAnswer === 200 ? answer(200, {}) : status(patchAnswer);
        if (!holds) return status(404);
        answer(200, {
          apiVersion: "security.csp-operator.io/v1alpha1",
          kind: "ClusterSecurityPolicy",
          metadata: { name: "p", uid: holds.uid },
        });
      });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  });
  beforeEach(() => {
    seen.length = 0;
    patchAnswer = 200;
    holds = { uid: "u1" };
  });
  const write = () => new Applier(kubeConfigFor(url)).patchStatus("p", { observedGeneration: 3 }, "u1");

  it("sends a JSON Patch that tests metadata.uid before it sets status", async () => {
    expect(await write()).to.equal(true);
    expect(seen).to.have.length(1);
    expect(seen[0]!.type).to.equal("application/json-patch+json");
    expect(JSON.parse(seen[0]!.body)).to.deep.equal([
      { op: "test", path: "/metadata/uid", value: "u1" },
      { op: "add", path: "/status", value: { observedGeneration: 3 } },
    ]);
  });

  it("without a uid, a merge patch of status as before", async () => {
    await new Applier(kubeConfigFor(url)).patchStatus("p", { observedGeneration: 3 });
    expect(seen[0]!.type).to.equal("application/merge-patch+json");
    expect(JSON.parse(seen[0]!.body)).to.deep.equal({ status: { observedGeneration: 3 } });
  });

  it("the policy gone (404): false, nothing retried", async () => {
    patchAnswer = 404;
    expect(await write()).to.equal(false);
    expect(seen.map((s) => s.method)).to.deep.equal(["PATCH"]);
  });

  it("the test failed (422) on a policy re-created under the name, or deleted since: false", async () => {
    patchAnswer = 422;
    holds = { uid: "u2" };
    expect(await write()).to.equal(false);
    expect(seen.map((s) => s.method)).to.deep.equal(["PATCH", "GET"]);
    holds = undefined;
    expect(await write()).to.equal(false);
  });

  it("a 422 on the same policy (a status the schema refuses) is thrown, not hidden", async () => {
    patchAnswer = 422;
    const err = await write().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect((err as { code?: number }).code).to.equal(422);
  });
});
