import { expect } from "chai";
import { Backoff } from "../../../src/runtime/backoff.js";
import { WorkQueue } from "../../../src/runtime/workqueue.js";
import { FakeClock } from "./fakeclock.js";

describe("WorkQueue", () => {
  it("collapses repeated adds of a waiting key", async () => {
    const q = new WorkQueue();
    q.add("a");
    q.add("a");
    q.add("b");
    expect(q.length).to.equal(2);
    expect(await q.get()).to.equal("a");
    expect(await q.get()).to.equal("b");
  });

  it("never hands out a key that is being processed; re-adds it once done", async () => {
    const q = new WorkQueue();
    q.add("a");
    const first = await q.get();
    q.add("a");
    q.add("a");
    expect(q.length).to.equal(0, "a is in flight, so it must not be queued again yet");
    q.done(first!);
    expect(q.length).to.equal(1);
    expect(await q.get()).to.equal("a");
    q.done("a");
    expect(q.length).to.equal(0);
  });

  it("wakes a blocked worker when a key arrives", async () => {
    const q = new WorkQueue();
    const pending = q.get();
    q.add("x");
    expect(await pending).to.equal("x");
    expect(q.inFlight).to.equal(1);
  });

  it("keeps the earliest deadline for delayed adds", async () => {
    const q = new WorkQueue();
    q.addAfter("k", 5000);
    q.addAfter("k", 10);
    const start = Date.now();
    expect(await q.get()).to.equal("k");
    expect(Date.now() - start).to.be.lessThan(2000);
    q.shutDown();
  });

  it("releases blocked workers on shutdown", async () => {
    const q = new WorkQueue();
    const pending = q.get();
    q.shutDown();
    expect(await pending).to.equal(undefined);
    q.add("late");
    expect(q.length).to.equal(0);
  });

  it("hands out no queued key after shutdown (a drain finishes in-flight work only); reopen resumes", async () => {
    const q = new WorkQueue();
    q.add("a");
    q.add("b");
    q.shutDown();
    expect(await q.get()).to.equal(undefined);
    expect(q.length).to.equal(2);
    q.reopen();
    expect(await q.get()).to.equal("a");
    q.shutDown();
  });
});

describe("Backoff", () => {
  it("doubles per failure up to the cap and forgets on success", () => {
    const b = new Backoff(100, 1000, () => 0.5);
    expect([b.next("k"), b.next("k"), b.next("k"), b.next("k"), b.next("k")]).to.deep.equal([
      100, 200, 400, 800, 1000,
    ]);
    expect(b.next("other")).to.equal(100, "keys back off independently");
    b.forget("k");
    expect(b.next("k")).to.equal(100);
  });
});

describe("WorkQueue.retryAfter", () => {
  it("holds a failed key for its delay: adds meanwhile shorten nothing; shutdown drops the hold", async () => {
    const clock = new FakeClock();
    const q = new WorkQueue(clock);
    q.add("k");
    expect(await q.get()).to.equal("k");
    q.add("k"); // an event during the failing run
    q.retryAfter("k", 1000);
    q.done("k");
    q.add("k");
    q.addAfter("k", 10);
    await clock.advance(999);
    expect(q.length).to.equal(0, "nothing may run the key before its retry delay ends");
    await clock.advance(1);
    expect(q.length).to.equal(1);
    expect(await q.get()).to.equal("k");
    q.retryAfter("k", 1000);
    q.done("k");
    q.shutDown();
    expect(q.retrying).to.equal(0);
    expect(clock.pending).to.equal(0);
  });

  it("runs a held key at once when its own object changed (expedite), exactly once", async () => {
    const clock = new FakeClock();
    const q = new WorkQueue(clock);
    q.add("k");
    expect(await q.get()).to.equal("k");
    q.retryAfter("k", 60_000);
    q.done("k");
    q.add("k");
    expect(q.length).to.equal(0, "an unrelated event does not shorten the hold");
    q.expedite("k");
    expect(q.length).to.equal(1, "a changed spec runs now");
    expect(q.retrying).to.equal(0);
    expect(await q.get()).to.equal("k");
    q.done("k");
    await clock.advance(60_000);
    expect(q.length).to.equal(0, "the old hold's timer was cancelled, so the key does not run twice");
  });
});
