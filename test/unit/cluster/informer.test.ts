import { expect } from "chai";
import { KubeConfig, type V1ConfigMap } from "@kubernetes/client-node";
import { HEALTHY_WATCH_MS, ResilientInformer } from "../../../src/cluster/informer.js";
import { silentLogger } from "../../../src/observability/logger.js";
import { Backoff } from "../../../src/runtime/backoff.js";
import type { Clock } from "../../../src/runtime/clock.js";
import { eventually } from "../../support/eventually.js";
import { kubeConfigFor, useFakeApiBehindProxy } from "./fakeapi.js";

/** Polls a synchronous condition. */
const until = (what: string, fn: () => boolean, timeoutMs?: number) =>
  eventually(what, () => Promise.resolve(fn()), timeoutMs);

const SPEC = { path: "/api/v1/namespaces/ns/configmaps", apiVersion: "v1", kind: "ConfigMap" };

/** The real clock, recording every delay asked for; delays are cut to `cutMs` so the test runs fast. */
function recordingClock(cutMs = 5): Clock & { delays: number[]; skew: number } {
  const delays: number[] = [];
  const clock = {
    delays,
    /** Added to the real time, to jump forward without waiting. */
    skew: 0,
    now: () => Date.now() + clock.skew,
    setTimeout: (fn: () => void, ms: number) => {
      delays.push(ms);
      return setTimeout(fn, Math.min(ms, cutMs));
    },
    clearTimeout: (h: unknown) => clearTimeout(h as NodeJS.Timeout),
  };
  return clock;
}

describe("ResilientInformer (client side, through the fault proxy)", () => {
  const { api, proxy } = useFakeApiBehindProxy();
  let informer: ResilientInformer<V1ConfigMap> | undefined;
  afterEach(async () => {
    await informer?.stop();
    informer = undefined;
    proxy().clearRules();
  });

  it("is not synced while its LIST fails, and retries ever more slowly (not every 0.5 s forever)", async () => {
    proxy().addRule({ verb: "list", action: { status: 503 } });
    const clock = recordingClock();
    informer = new ResilientInformer<V1ConfigMap>(
      kubeConfigFor(proxy().url),
      SPEC,
      () => {},
      silentLogger(),
      {
        clock,
        backoff: new Backoff(500, 30_000, () => 0.5),
      },
    );
    await informer.start();
    expect(informer.hasSynced).to.equal(false, "a failed first LIST is not a sync");
    await until("six retries", () => clock.delays.length >= 6, 10_000);
    expect(informer.hasSynced).to.equal(false);
    expect(clock.delays.slice(0, 6)).to.deep.equal([500, 1000, 2000, 4000, 8000, 16000]);
    expect(String(informer.lastError)).to.contain("503");
    proxy().clearRules();
    await until("synced", () => informer!.hasSynced, 10_000);
    expect(informer.list().map((c) => c.metadata?.name)).to.deep.equal(["a"]);
    expect(informer.lastError).to.equal(undefined);
  });

  it("waitForSync resolves only after a successful LIST, and false when stopped first", async () => {
    proxy().addRule({ verb: "list", action: { status: 503 }, times: 2 });
    informer = new ResilientInformer<V1ConfigMap>(
      kubeConfigFor(proxy().url),
      SPEC,
      () => {},
      silentLogger(),
      {
        clock: recordingClock(),
      },
    );
    const lists = proxy().count("list", "configmaps");
    await informer.start();
    expect(await informer.waitForSync()).to.equal(true);
    expect(proxy().count("list", "configmaps") - lists).to.equal(
      3,
      "two failures, then the LIST that synced",
    );

    proxy().addRule({ verb: "list", action: { status: 503 } });
    const never = new ResilientInformer<V1ConfigMap>(
      kubeConfigFor(proxy().url),
      SPEC,
      () => {},
      silentLogger(),
    );
    await never.start();
    const waiting = never.waitForSync();
    await never.stop();
    expect(await waiting).to.equal(false);
  });

  it("is unsynced from a watch failure until a new LIST succeeds (no resume from a stale cache)", async () => {
    const clock = recordingClock();
    let resynced = 0;
    informer = new ResilientInformer<V1ConfigMap>(
      kubeConfigFor(proxy().url),
      SPEC,
      () => {},
      silentLogger(),
      {
        clock,
        onResynced: () => resynced++,
      },
    );
    await informer.start();
    await until("synced", () => informer!.hasSynced && api().openWatches > 0);
    expect(resynced).to.equal(0, "the first sync is not a recovery");
    proxy().addRule({ verb: "list", action: { status: 503 } });
    const lists = proxy().count("list", "configmaps");
    proxy().dropStreams(); // the watch connection breaks
    await until("unsynced", () => !informer!.hasSynced);
    await until("relisting", () => proxy().count("list", "configmaps") >= lists + 3);
    expect(informer.hasSynced).to.equal(
      false,
      "a failing LIST after a broken watch must not count as synced",
    );
    proxy().clearRules();
    await until("synced again", () => informer!.hasSynced);
    // A relist that finds nothing new fires no event: the owner is told so it can re-check everything.
    expect(resynced).to.equal(1);
  });

  it("a watch that fails right after each good LIST backs off (no relist twice a second); a healthy one resets", async function () {
    this.timeout(20_000);
    const rule = proxy().addRule({ verb: "watch", action: { status: 403 } });
    const clock = recordingClock();
    informer = new ResilientInformer<V1ConfigMap>(
      kubeConfigFor(proxy().url),
      SPEC,
      () => {},
      silentLogger(),
      { clock, backoff: new Backoff(500, 30_000, () => 0.5) },
    );
    await informer.start();
    await until("five restarts", () => clock.delays.length >= 5, 15_000);
    expect(clock.delays.slice(0, 5)).to.deep.equal(
      [500, 1000, 2000, 4000, 8000],
      "each LIST succeeded, yet the watch failed at once: the backoff must keep growing",
    );
    rule.remove();
    await until("watching", () => informer!.hasSynced && api().openWatches > 0, 10_000);
    // The watch stays up longer than HEALTHY_WATCH_MS: its next failure starts the backoff afresh.
    clock.skew += HEALTHY_WATCH_MS;
    const before = clock.delays.length;
    proxy().addRule({ verb: "watch", action: { status: 403 }, times: 1 });
    api().endWatches();
    await until("a restart after the healthy watch", () => clock.delays.length > before, 10_000);
    expect(clock.delays[before]).to.equal(500);
  });

  it("a watch ERROR event other than 410 unsyncs the cache and relists (never acts on a stale cache)", async () => {
    const clock = recordingClock();
    informer = new ResilientInformer<V1ConfigMap>(
      kubeConfigFor(proxy().url),
      SPEC,
      () => {},
      silentLogger(),
      { clock },
    );
    await informer.start();
    await until("watching", () => informer!.hasSynced && api().openWatches > 0);
    const lists = proxy().count("list", "configmaps");
    proxy().addRule({ verb: "list", action: { status: 503 } });
    api().sendToWatches({
      type: "ERROR",
      object: {
        kind: "Status",
        apiVersion: "v1",
        status: "Failure",
        code: 500,
        reason: "InternalError",
        message: "etcd unavailable",
      },
    });
    await until("unsynced", () => !informer!.hasSynced);
    await until("relisting", () => proxy().count("list", "configmaps") > lists);
    expect(informer.hasSynced).to.equal(false, "no sync before a LIST succeeds");
    proxy().clearRules();
    await until("synced again", () => informer!.hasSynced);
  });

  it("credentials failing at watch reconnect are a handled, retried error (the process keeps running)", async () => {
    let revoked = false;
    class RevocableConfig extends KubeConfig {
      override async applySecurityAuthentication(
        ...args: Parameters<KubeConfig["applySecurityAuthentication"]>
      ) {
        if (revoked) throw new Error("exec plugin: credentials revoked (401)");
        return super.applySecurityAuthentication(...args);
      }
    }
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    const mochaHandlers = process.listeners("unhandledRejection");
    process.removeAllListeners("unhandledRejection");
    process.on("unhandledRejection", onUnhandled);
    try {
      const clock = recordingClock();
      informer = new ResilientInformer<V1ConfigMap>(
        kubeConfigFor(proxy().url, new RevocableConfig()),
        SPEC,
        () => {},
        silentLogger(),
        { clock },
      );
      await informer.start();
      await until("watching", () => informer!.hasSynced && api().openWatches > 0);
      revoked = true;
      const retries = clock.delays.length;
      api().endWatches(); // the server ends the watch; the reconnect cannot authenticate
      await until("a retry scheduled", () => clock.delays.length > retries + 1);
      expect(informer.hasSynced).to.equal(false);
      expect(String(informer.lastError)).to.contain("credentials revoked");
      revoked = false;
      await until("synced again", () => informer!.hasSynced);
      await new Promise((r) => setImmediate(r));
      expect(unhandled.map(String)).to.deep.equal([]);
    } finally {
      process.removeListener("unhandledRejection", onUnhandled);
      for (const h of mochaHandlers) process.on("unhandledRejection", h);
    }
  });
});
