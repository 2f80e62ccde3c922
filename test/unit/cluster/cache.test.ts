import { expect } from "chai";
import { CacheNotSyncedError, ClusterCache } from "../../../src/cluster/cache.js";
import { silentLogger } from "../../../src/observability/logger.js";
import { eventually } from "../../support/eventually.js";
import { kubeConfigFor, useFakeApiBehindProxy } from "./fakeapi.js";

describe("ClusterCache.snapshot (client side, through the fault proxy)", () => {
  const { proxy } = useFakeApiBehindProxy();

  it("refuses a snapshot while one cache has not synced, naming it; start() waits for every cache", async () => {
    const failing = proxy().addRule({ verb: "list", resource: "namespaces", action: { status: 503 } });
    const cache = new ClusterCache(kubeConfigFor(proxy().url), silentLogger(), () => {});
    let started: boolean | undefined;
    const starting = cache.start().then((s) => (started = s));
    try {
      await eventually("two failed LISTs of namespaces", () => Promise.resolve(failing.hits >= 2), 10_000);
      expect(started).to.equal(undefined, "start() must wait for the namespaces cache");
      const snapshotError = () => {
        try {
          cache.snapshot();
          return undefined;
        } catch (e) {
          return e;
        }
      };
      expect(snapshotError()).to.be.instanceOf(CacheNotSyncedError);
      // The other caches list fine: in time the error names the namespaces cache alone.
      const err = await eventually("only Namespace unsynced", () => {
        const e = snapshotError();
        return Promise.resolve(
          e instanceof CacheNotSyncedError && e.informers.join() === "Namespace" ? e : undefined,
        );
      });
      expect(String(err)).to.contain("Namespace").and.contain("503");
      failing.remove();
      expect(await starting).to.equal(true);
      expect(cache.snapshot().namespaces).to.have.length(1);
    } finally {
      failing.remove();
      await cache.stop();
      await starting;
    }
  });
});
