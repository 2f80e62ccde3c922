import { expect } from "chai";
import {
  LeaderElector,
  microTime,
  type LeaseRecord,
  type LeaseStore,
  type StoredLease,
} from "../../../src/runtime/leaderelection.js";
import { createLogger } from "../../../src/observability/logger.js";
import { FakeClock, settle } from "./fakeclock.js";

const log = createLogger("error");

/** One Lease in memory with resourceVersion preconditions (409 on a stale update), and a switch to fail. */
class MemoryLeaseStore implements LeaseStore {
  lease: StoredLease | undefined;
  private rv = 0;
  /** While set, every call rejects (the API server is unreachable). */
  down = false;
  writes: string[] = [];

  private check(): void {
    if (this.down) throw new Error("connection refused");
  }
  get(): Promise<StoredLease | undefined> {
    this.check();
    return Promise.resolve(this.lease && structuredClone(this.lease));
  }
  create(record: LeaseRecord): Promise<StoredLease> {
    this.check();
    if (this.lease) return Promise.reject(new Error("409 AlreadyExists"));
    this.lease = { record: { ...record }, resourceVersion: String(++this.rv) };
    this.writes.push(record.holderIdentity ?? "");
    return Promise.resolve(structuredClone(this.lease));
  }
  update(record: LeaseRecord, resourceVersion: string): Promise<StoredLease> {
    this.check();
    if (!this.lease || this.lease.resourceVersion !== resourceVersion)
      return Promise.reject(new Error("409 Conflict"));
    this.lease = { record: { ...record }, resourceVersion: String(++this.rv) };
    this.writes.push(record.holderIdentity ?? "");
    return Promise.resolve(structuredClone(this.lease));
  }
}

function candidate(identity: string, store: LeaseStore, clock: FakeClock) {
  const events: string[] = [];
  const e = new LeaderElector(
    store,
    {
      identity,
      clock,
      onStartedLeading: () => events.push("started"),
      onStoppedLeading: () => events.push("stopped"),
    },
    log,
  );
  return { e, events };
}

describe("LeaderElector (fake clock)", () => {
  it("formats Lease times as MicroTime with six fractional digits", () => {
    expect(microTime(Date.UTC(2026, 0, 2, 3, 4, 5, 678))).to.equal("2026-01-02T03:04:05.678000Z");
  });

  it("the first candidate creates the Lease and leads; a second one follows", async () => {
    const clock = new FakeClock();
    const store = new MemoryLeaseStore();
    const a = candidate("a", store, clock);
    a.e.start();
    await settle();
    expect(a.e.isLeader).to.equal(true);
    expect(a.events).to.deep.equal(["started"]);
    expect(store.lease?.record).to.include({ holderIdentity: "a", leaseDurationSeconds: 15 });
    const b = candidate("b", store, clock);
    b.e.start();
    await clock.advance(30_000); // a keeps renewing every 2 s: b never gets it
    expect(b.e.isLeader).to.equal(false);
    expect(b.events).to.deep.equal([]);
    expect(a.e.isLeader).to.equal(true);
    expect(b.e.observedLeader).to.equal("a");
  });

  it("a leader that cannot renew stops writing exactly at the renew deadline, before anyone may take over", async () => {
    const clock = new FakeClock();
    const store = new MemoryLeaseStore();
    const a = candidate("a", store, clock);
    a.e.start();
    await settle();
    const renewedAt = clock.now();
    store.down = true;
    await clock.advance(9_999);
    expect(a.e.canWrite()).to.equal(true);
    await clock.advance(1);
    expect(a.e.canWrite(), "at renewedAt + 10 s").to.equal(false);
    expect(a.events).to.deep.equal(["started", "stopped"]);
    expect(clock.now() - renewedAt).to.equal(10_000);
  });

  it("a follower takes over only after the record stayed unchanged for a lease duration on its own clock", async () => {
    const clock = new FakeClock();
    const store = new MemoryLeaseStore();
    const a = candidate("a", store, clock);
    a.e.start();
    await settle();
    const b = candidate("b", store, clock);
    b.e.start();
    await clock.advance(1_000);
    // a freezes (SIGSTOP): it neither renews nor runs timers. Simulated by stopping its loop silently.
    await a.e.stop(() => {
      (a.e as unknown as { leading: boolean }).leading = false; // no release: a crash, not a handover
      return Promise.resolve();
    });
    const frozenAt = clock.now();
    await clock.advance(14_000);
    expect(b.e.isLeader, "before the lease expired").to.equal(false);
    await clock.advance(4_000); // lease 15 s after b last saw a change + retry period (with jitter)
    expect(b.e.isLeader).to.equal(true);
    expect(clock.now() - frozenAt).to.be.at.most(15_000 + 2_400 + 1_000);
    expect(store.lease?.record.holderIdentity).to.equal("b");
    expect(store.lease?.record.leaseTransitions).to.equal(1);
  });

  it("a frozen leader that wakes up past its deadline cannot write, even before any timer ran", async () => {
    const clock = new FakeClock();
    const store = new MemoryLeaseStore();
    const a = candidate("a", store, clock);
    a.e.start();
    await settle();
    expect(a.e.canWrite()).to.equal(true);
    // Time jumps without timers firing (the process was stopped): canWrite reads the clock itself.
    (clock as unknown as { t: number }).t += 20_000;
    expect(a.e.canWrite()).to.equal(false);
  });

  it("stop() releases the Lease so the other candidate leads at its next retry", async () => {
    const clock = new FakeClock();
    const store = new MemoryLeaseStore();
    const a = candidate("a", store, clock);
    a.e.start();
    await settle();
    const b = candidate("b", store, clock);
    b.e.start();
    await clock.advance(3_000);
    let drained = false;
    await a.e.stop(() => {
      drained = true;
      return Promise.resolve();
    });
    expect(drained).to.equal(true);
    expect(a.events).to.deep.equal(["started", "stopped"]);
    expect(store.lease?.record.holderIdentity).to.equal("");
    const releasedAt = clock.now();
    await clock.advance(2_400);
    expect(b.e.isLeader).to.equal(true);
    expect(clock.now() - releasedAt).to.be.at.most(2_400);
  });

  it("a leader that finds another holder in the Lease steps down at once", async () => {
    const clock = new FakeClock();
    const store = new MemoryLeaseStore();
    const a = candidate("a", store, clock);
    a.e.start();
    await settle();
    // Someone else wrote the Lease (a rival that took it over).
    store.lease = {
      record: { holderIdentity: "rival", leaseDurationSeconds: 15, renewTime: microTime(clock.now()) },
      resourceVersion: "999",
    };
    await clock.advance(2_000);
    expect(a.e.isLeader).to.equal(false);
    expect(a.events).to.deep.equal(["started", "stopped"]);
  });

  it("two candidates racing for a free Lease: exactly one wins (optimistic concurrency)", async () => {
    const clock = new FakeClock();
    const store = new MemoryLeaseStore();
    store.lease = { record: { holderIdentity: "" }, resourceVersion: "1" };
    const a = candidate("a", store, clock);
    const b = candidate("b", store, clock);
    a.e.start();
    b.e.start();
    await clock.advance(10_000);
    expect([a.e.isLeader, b.e.isLeader].filter(Boolean)).to.have.length(1);
  });

  it("rejects timings that cannot be safe", () => {
    const clock = new FakeClock();
    expect(
      () =>
        new LeaderElector(
          new MemoryLeaseStore(),
          {
            identity: "x",
            clock,
            leaseDurationMs: 10_000,
            renewDeadlineMs: 10_000,
            onStartedLeading: () => undefined,
            onStoppedLeading: () => undefined,
          },
          log,
        ),
    ).to.throw(/leaseDuration > renewDeadline/);
  });

  it("a renewal answered after its own deadline does not make the process leader", async () => {
    const clock = new FakeClock();
    const store = new MemoryLeaseStore();
    const slow: LeaseStore = {
      get: () => store.get(),
      create: async (r) => {
        await clock.advance(10_000); // the answer takes as long as the renew deadline
        return store.create(r);
      },
      update: (r, rv) => store.update(r, rv),
    };
    const a = candidate("a", slow, clock);
    a.e.start();
    await settle();
    expect(a.e.canWrite()).to.equal(false);
    expect(a.events).to.deep.equal([]);
  });
});
