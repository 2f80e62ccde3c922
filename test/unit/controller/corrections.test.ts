import { expect } from "chai";
import type { KubernetesObject } from "@kubernetes/client-node";
import { applyPlan } from "../../../src/controller/apply.js";
import type { Plan } from "../../../src/controller/plan.js";
import { silentLogger } from "../../../src/observability/logger.js";
import { CorrectionLimiter, DEFAULT_CORRECTION_LIMITS } from "../../../src/controller/corrections.js";

/** Simulates a rival reverting one object every `everyMs` for `forMs`; returns the correction times. */
function fight(limiter: CorrectionLimiter, everyMs: number, forMs: number, start = 0): number[] {
  const writes: number[] = [];
  for (let now = start; now < start + forMs; now += everyMs) {
    if (limiter.admit("NetworkPolicy/a/x", now).ok) {
      limiter.corrected("NetworkPolicy/a/x", now);
      writes.push(now);
    }
  }
  return writes;
}

describe("controller/corrections: a rival writer gets a bounded number of corrections", () => {
  it("corrects freely up to the burst, then holds with a doubling wait", () => {
    const l = new CorrectionLimiter();
    for (let i = 0; i < DEFAULT_CORRECTION_LIMITS.burst; i++) {
      expect(l.admit("k", i * 100).ok, `correction ${i}`).to.equal(true);
      l.corrected("k", i * 100);
    }
    const held = l.admit("k", 500);
    expect(held).to.deep.include({ ok: false, retryAt: 400 + DEFAULT_CORRECTION_LIMITS.minHoldMs });
    expect(l.admit("k", 400 + DEFAULT_CORRECTION_LIMITS.minHoldMs).ok).to.equal(true);
    l.corrected("k", 5400);
    expect(l.admit("k", 5401)).to.deep.include({ retryAt: 5400 + 2 * DEFAULT_CORRECTION_LIMITS.minHoldMs });
  });

  it("bounds writes per minute against a rival reverting 4 times a second (was one write per revert)", () => {
    const l = new CorrectionLimiter();
    const writes = fight(l, 250, 10 * 60_000);
    const perMinute = Array.from(
      { length: 10 },
      (_, m) => writes.filter((t) => Math.floor(t / 60_000) === m).length,
    );
    expect(perMinute[0]).to.be.at.most(9); // burst 5 + holds of 5, 10, 20 s
    for (const n of perMinute.slice(1)) expect(n).to.be.within(1, 3); // one per 30 s hold
  });

  it("frees an object after a quiet window, and other objects are never held by it", () => {
    const l = new CorrectionLimiter();
    fight(l, 250, 60_000);
    expect(l.admit("NetworkPolicy/a/y", 60_000).ok).to.equal(true);
    const quietUntil = 60_000 + DEFAULT_CORRECTION_LIMITS.windowMs + DEFAULT_CORRECTION_LIMITS.maxHoldMs;
    expect(l.admit("NetworkPolicy/a/x", quietUntil).ok).to.equal(true);
    expect(l.size).to.equal(0);
    // A fresh burst is allowed again after the quiet window.
    expect(fight(l, 250, 2000, quietUntil)).to.have.length(DEFAULT_CORRECTION_LIMITS.burst);
  });

  it("after the rival stops, the next correction comes within the longest hold", () => {
    const l = new CorrectionLimiter();
    const writes = fight(l, 250, 5 * 60_000);
    const stop = 5 * 60_000;
    const next = l.admit("NetworkPolicy/a/x", stop);
    const at = next.ok ? stop : next.retryAt;
    expect(at - stop).to.be.at.most(DEFAULT_CORRECTION_LIMITS.maxHoldMs);
    expect(writes.length).to.be.greaterThan(0);
  });
});

describe("controller/apply with the correction limiter", () => {
  const drift = (reason: "Missing" | "Modified", manager?: string) => ({
    kind: "NetworkPolicy",
    namespace: "a",
    name: "csp-p-default-deny",
    reason,
    message: "m",
    ...(manager ? { manager } : {}),
  });
  const planWith = (d: ReturnType<typeof drift>, shared = false): Plan =>
    ({
      name: "p",
      enforce: true,
      shared: shared
        ? [{ object: { apiVersion: "v1", kind: "Namespace", metadata: { name: "a" } }, reason: "r" }]
        : [],
      deletes: [],
      writes: shared
        ? []
        : [
            {
              key: "NetworkPolicy/a/csp-p-default-deny",
              drift: d,
              action: "apply",
              object: {
                apiVersion: "networking.k8s.io/v1",
                kind: "NetworkPolicy",
                metadata: { name: "csp-p-default-deny", namespace: "a", labels: {}, ownerReferences: [] },
                spec: { podSelector: {} },
              },
              phase: 0,
            },
          ],
      remaining: [],
      sharedDrift: shared ? [{ ...d, kind: "Namespace", namespace: undefined, name: "a" }] : [],
      failures: [],
      findings: [],
      namespaces: 1,
      managedObjects: 1,
      reads: [],
    }) as unknown as Plan;
  const writer = () => {
    const calls = { n: 0 };
    return {
      calls,
      apply: <T extends KubernetesObject>(o: T): Promise<T> => {
        calls.n++;
        return Promise.resolve(o);
      },
      create: <T extends KubernetesObject>(o: T): Promise<T | undefined> => {
        calls.n++;
        return Promise.resolve(o);
      },
      replaceOwned: () => Promise.resolve(),
      delete: () => Promise.resolve(),
    };
  };

  it("never holds the creation of a missing child, however often it is needed", async () => {
    const limiter = new CorrectionLimiter();
    const w = writer();
    for (let i = 0; i < 20; i++)
      await applyPlan(planWith(drift("Missing")), w, silentLogger(), 8, { limiter, now: () => i * 1000 });
    expect(w.calls.n).to.equal(20);
    expect(limiter.size).to.equal(0);
  });

  it("holds reverts by another field manager, as Contested drift naming it, with a retry time", async () => {
    const limiter = new CorrectionLimiter();
    const w = writer();
    let last: Awaited<ReturnType<typeof applyPlan>> | undefined;
    for (let i = 0; i < 20; i++)
      last = await applyPlan(planWith(drift("Modified", "rival")), w, silentLogger(), 8, {
        limiter,
        now: () => i * 250,
      });
    expect(last?.failures).to.deep.equal([]);
    expect(w.calls.n).to.equal(DEFAULT_CORRECTION_LIMITS.burst);
    expect(last?.remaining[0]).to.deep.include({ reason: "Contested", manager: "rival" });
    expect(last?.retryAfterMs).to.be.greaterThan(0);
  });

  it("holds reverts of a shared object (namespace labels, the default ServiceAccount) too", async () => {
    const limiter = new CorrectionLimiter();
    const w = writer();
    let last: Awaited<ReturnType<typeof applyPlan>> | undefined;
    for (let i = 0; i < 20; i++)
      last = await applyPlan(planWith(drift("Modified", "alice"), true), w, silentLogger(), 8, {
        limiter,
        now: () => i * 250,
      });
    expect(w.calls.n).to.equal(DEFAULT_CORRECTION_LIMITS.burst);
    expect(last?.remaining.map((d) => d.reason)).to.deep.equal(["Contested"]);
    expect(last?.corrected).to.deep.equal([]);
  });

  it("holds repeated Modified drift with no other manager to name (a rival writing as csp-operator)", async () => {
    for (const shared of [false, true]) {
      const limiter = new CorrectionLimiter();
      const w = writer();
      let last: Awaited<ReturnType<typeof applyPlan>> | undefined;
      for (let i = 0; i < 20; i++)
        last = await applyPlan(planWith(drift("Modified"), shared), w, silentLogger(), 8, {
          limiter,
          now: () => i * 250,
        });
      expect(w.calls.n, `shared=${shared}`).to.equal(DEFAULT_CORRECTION_LIMITS.burst);
      expect(last?.remaining[0]?.reason).to.equal("Contested");
      expect(last?.remaining[0]?.message).to.match(/a writer using csp-operator's field manager/);
    }
    // A single change of the policy (Modified, nobody else's) is corrected at once, and so is the next one
    // after a quiet window.
    const limiter = new CorrectionLimiter();
    const w = writer();
    await applyPlan(planWith(drift("Modified")), w, silentLogger(), 8, { limiter, now: () => 0 });
    const later = DEFAULT_CORRECTION_LIMITS.windowMs + 1;
    const r = await applyPlan(planWith(drift("Modified")), w, silentLogger(), 8, {
      limiter,
      now: () => later,
    });
    expect(w.calls.n).to.equal(2);
    expect(r.remaining).to.deep.equal([]);
  });

  it("forgets expired histories without being asked again (no growth per object ever corrected)", () => {
    const limiter = new CorrectionLimiter();
    for (let i = 0; i < 10_000; i++) limiter.corrected(`k${i}`, i);
    expect(limiter.size).to.equal(10_000);
    const later = 10_000 + DEFAULT_CORRECTION_LIMITS.windowMs + DEFAULT_CORRECTION_LIMITS.maxHoldMs;
    for (let i = 0; i < 512; i++) limiter.corrected(`fresh${i}`, later);
    expect(limiter.size).to.be.at.most(512);
  });
});
