import { expect } from "chai";
import {
  DEFAULT_TEXT_MAX_BYTES,
  DEFAULT_TIMEOUT_MS,
  RequestTimeoutError,
  ResponseTooLargeError,
  RestClient,
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
