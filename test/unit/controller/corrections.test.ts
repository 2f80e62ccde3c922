import { expect } from "chai";
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
