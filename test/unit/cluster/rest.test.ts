import { expect } from "chai";
import {
  DEFAULT_RETRY,
  DEFAULT_TEXT_MAX_BYTES,
  DEFAULT_TIMEOUT_MS,
  ForbiddenError,
  RequestTimeoutError,
  ResponseTooLargeError,
  RestClient,
  ThrottledError,
  parseRetryAfter,
  retryDelay,
  withRetry,
  type RetryPolicy,
} from "../../../src/cluster/rest.js";
import { kubeConfigFor, useFakeApiBehindProxy } from "./fakeapi.js";

describe("RestClient limits (through the fault proxy)", () => {
  const { proxy } = useFakeApiBehindProxy();
  afterEach(() => proxy().clearRules());

  it("gives up on a stalled request after its default timeout, naming the request", async () => {
    expect(DEFAULT_TIMEOUT_MS).to.equal(30_000);
    proxy().addRule({ verb: "get", action: { stall: true } });
    const rest = new RestClient(kubeConfigFor(proxy().url), { defaultTimeoutMs: 300 });
    const err = await rest.request("GET", "/api/v1/namespaces/ns/configmaps/a").then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).to.be.instanceOf(RequestTimeoutError);
    expect(String(err)).to.contain("GET /api/v1/namespaces/ns/configmaps/a").and.contain("300 ms");
  });

  it("a per-call timeout overrides the default", async () => {
    proxy().addRule({ verb: "get", action: { stall: true } });
    const rest = new RestClient(kubeConfigFor(proxy().url));
    const err = await rest.request("GET", "/api/v1/namespaces/ns/configmaps/a", { timeoutMs: 200 }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).to.be.instanceOf(RequestTimeoutError);
  });

  it("refuses a text body over 16 MiB with an error naming the path, without reading it all", async () => {
    proxy().addRule({ path: /^\/metrics$/, action: { hugeBody: DEFAULT_TEXT_MAX_BYTES + 1024 * 1024 } });
    const rest = new RestClient(kubeConfigFor(proxy().url));
    const before = process.memoryUsage().rss;
    const err = await rest.text("/metrics").then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).to.be.instanceOf(ResponseTooLargeError);
    expect(String(err)).to.contain("GET /metrics").and.contain(String(DEFAULT_TEXT_MAX_BYTES));
    expect(process.memoryUsage().rss - before).to.be.lessThan(256 * 1024 * 1024);
  });

  it("caps JSON bodies too (per call), and reads ordinary ones", async () => {
    const rest = new RestClient(kubeConfigFor(proxy().url));
    const ok = await rest.request<{ items: unknown[] }>("GET", "/api/v1/namespaces/ns/configmaps");
    expect(ok.items).to.have.length(1);
    const err = await rest
      .request("GET", "/api/v1/namespaces/ns/configmaps", { maxBytes: 10 })
      .then(undefined, (e: unknown) => e);
    expect(err).to.be.instanceOf(ResponseTooLargeError);
  });

  it("turns a non-JSON error answer into an ApiError with its status", async () => {
    proxy().addRule({ verb: "get", action: { status: 401, body: "Unauthorized" } });
    const rest = new RestClient(kubeConfigFor(proxy().url));
    const err = await rest.request("GET", "/api/v1/namespaces/ns/configmaps/a").then(
      () => undefined,
      (e: unknown) => e as { code?: number; message?: string },
    );
    expect(err?.code).to.equal(401);
    expect(err?.message).to.contain("Unauthorized");
  });
});

describe("retry of 429 and Retry-After answers (pure policy, fake sleep)", () => {
  const policy = (waits: number[], random = () => 0.5): RetryPolicy => ({
    ...DEFAULT_RETRY,
    sleep: (ms) => {
      waits.push(ms);
      return Promise.resolve();
    },
    random,
  });

  it("reads Retry-After as seconds or an HTTP date, and nothing else", () => {
    expect(parseRetryAfter("3")).to.equal(3000);
    expect(parseRetryAfter(" 0 ")).to.equal(0);
    expect(parseRetryAfter(new Date(10_000).toUTCString(), 4_000)).to.equal(6_000);
    expect(parseRetryAfter(new Date(0).toUTCString(), 4_000)).to.equal(0);
    for (const bad of [undefined, "", "-1", "1.5", "soon", "99999999999"])
      expect(parseRetryAfter(bad), String(bad)).to.equal(undefined);
  });

  it("retries 429 for every method, 5xx only with Retry-After and never for POST, nothing else", () => {
    const p = { ...DEFAULT_RETRY, random: () => 0 };
    for (const m of ["GET", "POST", "PUT", "PATCH", "DELETE"])
      expect(retryDelay(p, 1, m, 429, 1000), m).to.equal(1000);
    expect(retryDelay(p, 1, "GET", 503, 2000)).to.equal(2000);
    expect(retryDelay(p, 1, "PATCH", 500, 2000)).to.equal(2000);
    expect(retryDelay(p, 1, "POST", 503, 2000)).to.equal(undefined);
    expect(retryDelay(p, 1, "GET", 503, undefined)).to.equal(undefined);
    for (const s of [400, 401, 403, 404, 409, 422, undefined])
      expect(retryDelay(p, 1, "GET", s, 1000), String(s)).to.equal(undefined);
  });

  it("honours Retry-After up to the cap, backs off exponentially without one, and stops after maxAttempts", () => {
    const p = { ...DEFAULT_RETRY, random: () => 0 };
    // Retry-After: 0 (or an HTTP date in the past, parsed as 0) still waits the base backoff.
    expect(retryDelay(p, 1, "GET", 429, 0)).to.equal(DEFAULT_RETRY.baseWaitMs);
    expect(retryDelay(p, 3, "GET", 429, 0)).to.equal(DEFAULT_RETRY.baseWaitMs);
    expect(retryDelay(p, 1, "GET", 429, 200)).to.equal(DEFAULT_RETRY.baseWaitMs);
    expect(retryDelay(p, 1, "GET", 429, 32_000)).to.equal(5_000); // cut to the cap
    expect([1, 2, 3, 4, 5].map((n) => retryDelay(p, n, "GET", 429, undefined))).to.deep.equal([
      500, 1000, 2000, 4000, 5000,
    ]);
    expect(retryDelay(p, DEFAULT_RETRY.maxAttempts, "GET", 429, 1000)).to.equal(undefined);
    // Jitter only ever adds to a Retry-After (never retries early), and no wait passes the cap.
    for (const r of [0, 0.3, 0.999]) {
      const q = { ...DEFAULT_RETRY, random: () => r };
      expect(retryDelay(q, 1, "GET", 429, 2000)).to.be.within(2000, 2500);
      expect(retryDelay(q, 1, "GET", 429, 60_000)).to.be.within(4000, DEFAULT_RETRY.maxWaitMs);
      expect(retryDelay(q, 9, "GET", 429, undefined)).to.be.at.most(DEFAULT_RETRY.maxWaitMs);
    }
    expect(DEFAULT_RETRY.maxAttempts).to.equal(10);
  });

  it("withRetry: gives up after 10 tries with the last error, waiting the capped Retry-After each time", async () => {
    const waits: number[] = [];
    let calls = 0;
    const err = await withRetry(
      "GET",
      () => {
        calls++;
        return Promise.reject(new ThrottledError(429, { message: "slow down" }, "32"));
      },
      policy(waits, () => 0),
    ).then(undefined, (e: unknown) => e);
    expect(err).to.be.instanceOf(ThrottledError);
    expect(calls).to.equal(10);
    expect(waits).to.deep.equal(Array(9).fill(5000));
  });

  it("withRetry: Retry-After 0 or a past date is no burst of tries (the base backoff at least)", async () => {
    for (const ra of ["0", new Date(0).toUTCString()]) {
      const waits: number[] = [];
      await withRetry(
        "PATCH",
        () => Promise.reject(new ThrottledError(429, {}, ra)),
        policy(waits, () => 0),
      ).then(undefined, () => undefined);
      expect(waits, ra).to.deep.equal(Array(9).fill(DEFAULT_RETRY.baseWaitMs));
    }
  });

  it("withRetry: returns the first success; a non-retryable error is thrown at once", async () => {
    const waits: number[] = [];
    let calls = 0;
    const v = await withRetry(
      "PUT",
      () => (++calls < 3 ? Promise.reject(new ThrottledError(429, {}, "1")) : Promise.resolve("ok")),
      policy(waits, () => 0),
    );
    expect([v, calls, waits]).to.deep.equal(["ok", 3, [1000, 1000]]);
    calls = 0;
    const err = await withRetry(
      "GET",
      () => {
        calls++;
        return Promise.reject(new ForbiddenError(403, {}));
      },
      policy(waits),
    ).then(undefined, (e: unknown) => e);
    expect(err).to.be.instanceOf(ForbiddenError);
    expect(calls).to.equal(1);
  });

  it("withRetry: tries and waits stay within the budget (a Lease renewal is never kept past its deadline)", async () => {
    let now = 0;
    const waits: number[] = [];
    const budgets: number[] = [];
    const clock: RetryPolicy = {
      ...DEFAULT_RETRY,
      now: () => now,
      random: () => 0,
      sleep: (ms) => {
        waits.push(ms);
        now += ms;
        return Promise.resolve();
      },
    };
    const err = await withRetry(
      "PUT",
      (remainingMs) => {
        budgets.push(remainingMs);
        now += 100; // each try takes 100 ms to be answered 429
        return Promise.reject(new ThrottledError(429, {}, "2"));
      },
      clock,
      10_000,
    ).then(undefined, (e: unknown) => e);
    expect(err).to.be.instanceOf(ThrottledError);
    // Tries answered at 0.1, 2.2, 4.3, 6.4 and 8.5 s; a fifth wait would end at 10.5 s, past the 10 s budget
    // (less the 1 s a try needs): not started, the last 429 is the answer.
    expect(waits).to.deep.equal([2000, 2000, 2000, 2000]);
    expect(budgets).to.deep.equal([10_000, 7_900, 5_800, 3_700, 1_600]);
    expect(now).to.be.at.most(10_000);
  });

  it("withRetry: reads client-node's ApiException (code, headers in any case)", async () => {
    const waits: number[] = [];
    let calls = 0;
    await withRetry(
      "PATCH",
      () =>
        ++calls === 1
          ? Promise.reject(
              Object.assign(new Error("HTTP-Code: 429"), { code: 429, headers: { "Retry-After": "2" } }),
            )
          : Promise.resolve(undefined),
      policy(waits, () => 0),
    );
    expect([calls, waits]).to.deep.equal([2, [2000]]);
  });
});

describe("RestClient retries a 429 on the wire (through the fault proxy)", () => {
  const { proxy } = useFakeApiBehindProxy();
  afterEach(() => proxy().clearRules());

  it("retries a throttled LIST after its Retry-After, then succeeds", async () => {
    const waits: number[] = [];
    const rule = proxy().addRule({
      verb: "list",
      action: {
        status: 429,
        body: "Too many requests, please try again later.\n",
        headers: { "Retry-After": "1" },
      },
      times: 2,
    });
    const retry: RetryPolicy = {
      ...DEFAULT_RETRY,
      sleep: (ms) => (waits.push(ms), Promise.resolve()),
      random: () => 0,
    };
    const rest = new RestClient(kubeConfigFor(proxy().url), { retry });
    const list = await rest.request<{ items: unknown[] }>("GET", "/api/v1/namespaces/ns/configmaps");
    expect(list.items).to.have.length(1);
    expect(rule.hits).to.equal(2);
    expect(waits).to.deep.equal([1000, 1000]);
  });

  it("does not retry a 500 without Retry-After, nor a POST's 503 with one", async () => {
    const rest = new RestClient(kubeConfigFor(proxy().url), {
      retry: { ...DEFAULT_RETRY, sleep: () => Promise.resolve() },
    });
    const r500 = proxy().addRule({ verb: "get", action: { status: 500 } });
    const e1 = await rest
      .request("GET", "/api/v1/namespaces/ns/configmaps/a")
      .then(undefined, (e: unknown) => e);
    expect((e1 as { code?: number }).code).to.equal(500);
    expect(r500.hits).to.equal(1);
    const r503 = proxy().addRule({
      verb: "create",
      action: { status: 503, headers: { "Retry-After": "1" } },
    });
    const e2 = await rest
      .request("POST", "/api/v1/namespaces/ns/configmaps", { body: { metadata: { name: "b" } } })
      .then(undefined, (e: unknown) => e);
    expect((e2 as { code?: number }).code).to.equal(503);
    expect(r503.hits).to.equal(1);
  });
});
