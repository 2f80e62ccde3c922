import { expect } from "chai";
import { WatchLiveness, type SilentWatch } from "../../../src/observability/watchliveness.js";
import { FakeClock, settle } from "../runtime/fakeclock.js";

/** A ping the test answers by hand. */
function manualPing() {
  const calls: { resolve: () => void; reject: (e: Error) => void }[] = [];
  return {
    calls,
    ping: () =>
      new Promise<unknown>((resolve, reject) => calls.push({ resolve: () => resolve(undefined), reject })),
  };
}

describe("WatchLiveness: a quiet API server vs a hung one", () => {
  const ns: SilentWatch = { description: "Namespace", silentMs: 160_000, timeouts: 0 };

  it("no silent watch: ready, and no ping is sent", () => {
    const p = manualPing();
    const w = new WatchLiveness({ silentWatches: () => [], ping: p.ping, clock: new FakeClock() });
    expect(w.reason()).to.equal(undefined);
    expect(p.calls).to.have.length(0);
  });

  it("silent but the API server answers: ready (a kind nobody writes gets no bookmarks)", async () => {
    const clock = new FakeClock();
    const p = manualPing();
    const w = new WatchLiveness({ silentWatches: () => [ns], ping: p.ping, clock });
    expect(w.reason()).to.equal(undefined);
    p.calls[0]!.resolve();
    await settle();
    await clock.advance(30_000);
    expect(w.reason()).to.equal(undefined);
    expect(p.calls).to.have.length(2); // one ping per interval at most
  });

  it("silent and the ping hangs: unready after the ping timeout, naming the kind; ready once it answers", async () => {
    const clock = new FakeClock();
    const p = manualPing();
    const w = new WatchLiveness({ silentWatches: () => [ns], ping: p.ping, clock });
    expect(w.reason()).to.equal(undefined);
    await clock.advance(4_999);
    expect(w.reason()).to.equal(undefined);
    await clock.advance(1);
    expect(w.reason()).to.match(/^watch of Namespace \(silent 160 s\): .* ping no answer for 5 s$/);
    expect(p.calls, "no second ping while one is pending").to.have.length(1);
    p.calls[0]!.resolve();
    await settle();
    expect(w.reason()).to.equal(undefined);
  });

  it("silent and the ping fails: unready with the error until a later ping succeeds", async () => {
    const clock = new FakeClock();
    const p = manualPing();
    const w = new WatchLiveness({
      silentWatches: () => [{ ...ns, timeouts: 3 }],
      ping: p.ping,
      clock,
    });
    w.reason();
    p.calls[0]!.reject(new Error("connect ECONNREFUSED"));
    await settle();
    expect(w.reason()).to.match(
      /Namespace \(silent 160 s, 3 timeouts in a row\).*failed: connect ECONNREFUSED/,
    );
    await clock.advance(10_000);
    expect(w.reason()).to.match(/failed/); // the new ping is pending; the last result still stands
    p.calls[1]!.resolve();
    await settle();
    expect(w.reason()).to.equal(undefined);
  });
});
