import { expect } from "chai";
import { silentLogger } from "../../../src/observability/logger.js";
import { Backoff } from "../../../src/runtime/backoff.js";
import { Controller, type ReconcileResult } from "../../../src/runtime/controller.js";
import { FakeClock, settle } from "./fakeclock.js";

/** A controller on a fake clock whose reconcile is scripted by the test; backoff 500 ms doubling, no jitter. */
function harness(
  reconcile: (key: string, c: Controller) => ReconcileResult | void | Promise<ReconcileResult | void>,
) {
  const clock = new FakeClock();
  const runs: { key: string; at: number }[] = [];
  const c: Controller = new Controller(
    async (key): Promise<ReconcileResult | void> => {
      runs.push({ key, at: clock.now() });
      // A hot loop never yields to timers: give up after a bounded number of runs so the test can fail.
      if (runs.length > 50) return;
      return reconcile(key, c);
    },
    () => ["p"],
    { workers: 2, resyncMs: 3_600_000, clock, backoff: new Backoff(500, 8_000, () => 0.5) },
    silentLogger(),
  );
  return { c, clock, runs };
}

describe("Controller", () => {
  let stop: (() => Promise<void>) | undefined;
  afterEach(async () => {
    await stop?.();
    stop = undefined;
  });

  it("a key that failed while an event arrived still waits its backoff (no hot loop)", async () => {
    const h = harness((_key, ctl) => {
      ctl.queue.add("p"); // an event for the same policy arrives while it is being reconciled
      throw new Error("apply failed");
    });
    const c = h.c;
    stop = () => c.stop();
    c.start();
    c.queue.add("p");
    await settle();
    expect(h.runs.map((r) => r.at)).to.deep.equal([0], "one run, then backoff");
    await h.clock.advance(499);
    expect(h.runs).to.have.length(1, "the event during the failed run must not bypass the 500 ms backoff");
    await h.clock.advance(1);
    expect(h.runs.map((r) => r.at)).to.deep.equal([0, 500]);
    // Second failure: 1000 ms. Events arriving meanwhile shorten nothing.
    c.queue.add("p");
    c.resync();
    await h.clock.advance(999);
    expect(h.runs).to.have.length(2, "events and resyncs during backoff must wait for it");
    await h.clock.advance(1);
    expect(h.runs.map((r) => r.at)).to.deep.equal([0, 500, 1500]);
  });

  it("backoff grows per failure up to its cap and is forgotten after a success", async () => {
    let failing = true;
    const h = harness(() => {
      if (failing) throw new Error("boom");
    });
    stop = () => h.c.stop();
    h.c.start();
    h.c.queue.add("p");
    await h.clock.advance(20_000);
    const gaps = h.runs.slice(1).map((r, i) => r.at - h.runs[i]!.at);
    expect(gaps.slice(0, 6)).to.deep.equal([500, 1000, 2000, 4000, 8000, 8000].slice(0, gaps.length));
    expect(gaps.length).to.be.greaterThan(3);
    failing = false;
    await h.clock.advance(8_000);
    const n = h.runs.length;
    h.c.queue.add("p");
    await settle();
    expect(h.runs.length).to.equal(n + 1, "after a success an event runs the key at once");
    expect(h.c.stats.failures).to.be.greaterThan(3);
  });

  it("a key changed while a successful reconcile runs is reconciled once more, at once", async () => {
    let first = true;
    const h = harness((_key, ctl) => {
      if (first) {
        first = false;
        ctl.queue.add("p");
        ctl.queue.add("p");
      }
    });
    const c = h.c;
    stop = () => c.stop();
    c.start();
    c.queue.add("p");
    await settle();
    expect(h.runs.map((r) => r.at)).to.deep.equal([0, 0], "dirty after success: exactly one more run");
  });

  it("requeueAfter of a successful reconcile is shortened by an event", async () => {
    let calls = 0;
    const h = harness(() => (++calls === 1 ? { requeueAfterMs: 60_000 } : undefined));
    stop = () => h.c.stop();
    h.c.start();
    h.c.queue.add("p");
    await settle();
    await h.clock.advance(1_000);
    h.c.queue.add("p");
    await settle();
    expect(h.runs.map((r) => r.at)).to.deep.equal([0, 1_000], "waiting on something external, not backoff");
  });

  it("never runs one key on two workers at once, and stop() waits for the reconcile in flight", async () => {
    let inFlight = 0;
    let maxInFlight = 0;
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const h = harness(async () => {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      await gate;
      inFlight--;
    });
    h.c.start();
    h.c.queue.add("p");
    await settle();
    h.c.queue.add("p");
    await settle();
    expect(maxInFlight).to.equal(1);
    let stopped = false;
    const stopping = h.c.stop().then(() => (stopped = true));
    await settle();
    expect(stopped).to.equal(false, "stop waits for the reconcile in flight");
    release();
    await stopping;
    expect(maxInFlight).to.equal(1);
  });
});

describe("Controller on a fake clock: resync, requeue, terms, metrics", () => {
  function make(keys: string[], reconcile: (key: string) => ReconcileResult | void = () => undefined) {
    const clock = new FakeClock();
    const runs: { key: string; at: number }[] = [];
    const results: string[] = [];
    const c = new Controller(
      (key) => {
        runs.push({ key, at: clock.now() });
        return Promise.resolve(reconcile(key));
      },
      () => keys,
      {
        workers: 1,
        resyncMs: 10_000,
        clock,
        backoff: new Backoff(500, 8_000, () => 0.5),
        observer: { reconciled: (key, result) => results.push(`${key}:${result}`) },
      },
      silentLogger(),
    );
    return { c, clock, runs, results };
  }

  it("resyncs every known key each resyncMs of the controller's clock, and not before", async () => {
    const h = make(["a", "b"]);
    h.c.start();
    await h.clock.advance(9_999);
    expect(h.runs).to.deep.equal([], "nothing before the first resync");
    await h.clock.advance(1);
    expect(h.runs).to.deep.equal([
      { key: "a", at: 10_000 },
      { key: "b", at: 10_000 },
    ]);
    await h.clock.advance(10_000);
    expect(h.runs.map((r) => r.at)).to.deep.equal([10_000, 10_000, 20_000, 20_000]);
    expect(h.c.stats.reconciles).to.equal(4);
    await h.c.stop();
    expect(h.clock.pending).to.equal(0, "stop leaves no timer behind");
  });

  it("a new term after stop() resyncs on one timer (no doubled resync), and a stopped one runs nothing", async () => {
    const h = make(["a"]);
    h.c.start();
    await h.c.stop();
    await h.clock.advance(30_000);
    expect(h.runs).to.deep.equal([], "stopped: no resync");
    h.c.start();
    h.c.start(); // a second start in the same term changes nothing
    await h.clock.advance(10_000);
    expect(h.runs.map((r) => r.at)).to.deep.equal([40_000]);
    await h.c.stop();
  });

  it("requeueAfter runs the key again at that time, reported as requeue_after, then success", async () => {
    let n = 0;
    const h = make(["a"], () => (++n === 1 ? { requeueAfterMs: 2_500 } : undefined));
    h.c.start();
    h.c.queue.add("a");
    await settle();
    await h.clock.advance(2_499);
    expect(h.runs.map((r) => r.at)).to.deep.equal([0]);
    await h.clock.advance(1);
    expect(h.runs.map((r) => r.at)).to.deep.equal([0, 2_500]);
    expect(h.results).to.deep.equal(["a:requeue_after", "a:success"]);
    await h.c.stop();
  });

  it("a failure is reported as error and counted, and the key retried after its backoff", async () => {
    let n = 0;
    const h = make(["a"], () => {
      if (++n === 1) throw new Error("boom");
    });
    h.c.start();
    h.c.queue.add("a");
    await h.clock.advance(500);
    expect(h.runs.map((r) => r.at)).to.deep.equal([0, 500]);
    expect(h.results).to.deep.equal(["a:error", "a:success"]);
    expect(h.c.stats).to.deep.equal({ reconciles: 2, failures: 1 });
    await h.c.stop();
  });
});
