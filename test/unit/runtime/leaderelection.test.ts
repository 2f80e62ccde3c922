import { expect } from "chai";
import {
  LeaderElector,
  microTime,
  type LeaseRecord,
  type LeaseStore,
  type StoredLease,
} from "../../../src/runtime/leaderelection.js";
import { realClock, type Clock } from "../../../src/runtime/clock.js";
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

  private check(timeoutMs?: number): void {
    if (this.down) throw new Error("connection refused");
    // As AbortSignal.timeout: a fractional timeout throws (the monotonic clock has fractions).
    if (timeoutMs !== undefined && !Number.isInteger(timeoutMs))
      throw new RangeError(`timeout must be an integer, got ${timeoutMs}`);
  }
  get(timeoutMs?: number): Promise<StoredLease | undefined> {
    this.check(timeoutMs);
    return Promise.resolve(this.lease && structuredClone(this.lease));
  }
  create(record: LeaseRecord, timeoutMs?: number): Promise<StoredLease> {
    this.check(timeoutMs);
    if (this.lease) return Promise.reject(new Error("409 AlreadyExists"));
    this.lease = { record: { ...record }, resourceVersion: String(++this.rv) };
    this.writes.push(record.holderIdentity ?? "");
    return Promise.resolve(structuredClone(this.lease));
  }
  update(record: LeaseRecord, resourceVersion: string, timeoutMs?: number): Promise<StoredLease> {
    this.check(timeoutMs);
    if (!this.lease || this.lease.resourceVersion !== resourceVersion)
      return Promise.reject(new Error("409 Conflict"));
    this.lease = { record: { ...record }, resourceVersion: String(++this.rv) };
    this.writes.push(record.holderIdentity ?? "");
    return Promise.resolve(structuredClone(this.lease));
  }
}

/** One candidate's view of the shared store, which a partition can cut off from the API server. */
function view(store: MemoryLeaseStore): LeaseStore & { cut: boolean } {
  const v = {
    cut: false,
    get: (t: number) => (v.cut ? Promise.reject(new Error("partitioned")) : store.get(t)),
    create: (r: LeaseRecord, t: number) =>
      v.cut ? Promise.reject(new Error("partitioned")) : store.create(r, t),
    update: (r: LeaseRecord, rv: string, t: number) =>
      v.cut ? Promise.reject(new Error("partitioned")) : store.update(r, rv, t),
  };
  return v;
}

interface Timing {
  leaseDurationMs?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
}

function candidate(identity: string, store: LeaseStore, clock: FakeClock, timing: Timing = {}) {
  const events: string[] = [];
  const e = new LeaderElector(
    store,
    {
      identity,
      clock,
      ...timing,
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
    // An empty holder that is not the shape of a release is waited out for a lease duration first.
    await clock.advance(20_000);
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

  it("the real clock is monotonic: a wall clock stepped back does not move it", () => {
    const realDateNow = Date.now.bind(Date);
    const before = realClock.now();
    Date.now = () => realDateNow() - 3_600_000;
    try {
      expect(realClock.now()).to.be.at.least(before);
      expect(realClock.wallNow?.()).to.be.below(realDateNow() - 3_500_000);
    } finally {
      Date.now = realDateNow;
    }
  });

  it("a wall clock stepped back 20 s while partitioned does not stretch leadership (D1)", async () => {
    const clock = new FakeClock();
    const store = new MemoryLeaseStore();
    const av = view(store);
    const a = candidate("a", av, clock);
    a.e.start();
    await settle();
    // Lease timestamps are wall-clock times other processes can read.
    expect(store.lease?.record.renewTime).to.equal(microTime(clock.wallNow()));
    const b = candidate("b", view(store), clock);
    b.e.start();
    await clock.advance(1_000);
    av.cut = true;
    clock.stepWall(-20_000);
    let bothWrote = false;
    for (let i = 0; i < 400; i++) {
      await clock.advance(100);
      if (a.e.canWrite() && b.e.canWrite()) bothWrote = true;
    }
    expect(bothWrote, "two writers at once").to.equal(false);
    expect(a.e.canWrite()).to.equal(false);
    expect(b.e.canWrite()).to.equal(true);
    expect(a.events).to.deep.equal(["started", "stopped"]);
    // b's renewTime is the stepped wall time; a's deadline never read it.
    expect(Date.parse(store.lease?.record.renewTime ?? "")).to.be.closeTo(clock.wallNow(), 2_500);
  });

  /** Runs two candidates, applies `tamper` once a leads, and checks at every 50 ms that never both may write. */
  async function tamperRun(tamper: (store: MemoryLeaseStore) => void, totalMs = 30_000) {
    const clock = new FakeClock();
    const store = new MemoryLeaseStore();
    const a = candidate("a", view(store), clock);
    a.e.start();
    await settle();
    const b = candidate("b", view(store), clock);
    b.e.start();
    await clock.advance(3_000);
    expect(a.e.isLeader).to.equal(true);
    const tamperedAt = clock.now();
    tamper(store);
    let overlaps = 0;
    let bLedAt: number | undefined;
    for (let t = 0; t < totalMs; t += 50) {
      await clock.advance(50);
      if (a.e.canWrite() && b.e.canWrite()) overlaps++;
      if (bLedAt === undefined && b.e.canWrite()) bLedAt = clock.now() - tamperedAt;
    }
    return { a, b, store, overlaps, bLedAt };
  }

  it("a Lease forged to name the follower: the leader stops at once, the follower waits a lease duration (D2)", async () => {
    const r = await tamperRun((store) => {
      store.lease = {
        record: { ...store.lease!.record, holderIdentity: "b" },
        resourceVersion: "forged",
      };
    });
    expect(r.overlaps).to.equal(0);
    expect(r.a.events.slice(0, 2)).to.deep.equal(["started", "stopped"]);
    // Nobody writes until the forged record has stood unchanged for 15 s on the follower's clock.
    expect(r.bLedAt === undefined || r.bLedAt >= 15_000, `b led after ${r.bLedAt} ms`).to.equal(true);
    expect([r.a.e.canWrite(), r.b.e.canWrite()].filter(Boolean)).to.have.length(1);
  });

  it("a deleted Lease: the follower waits out the last holder's lease; the leader recreates it (D2)", async () => {
    const r = await tamperRun((store) => {
      store.lease = undefined;
    });
    expect(r.overlaps).to.equal(0);
    expect(r.b.e.canWrite()).to.equal(false);
    expect(r.a.e.canWrite()).to.equal(true);
    expect(r.store.lease?.record.holderIdentity).to.equal("a");
  });

  it("a Lease whose holder was cleared by hand (not a release) is still held by the last holder (D2)", async () => {
    const r = await tamperRun((store) => {
      store.lease = {
        record: { ...store.lease!.record, holderIdentity: "" },
        resourceVersion: "edited",
      };
    });
    expect(r.overlaps).to.equal(0);
    expect(r.a.events.slice(0, 2)).to.deep.equal(["started", "stopped"]);
    expect(r.bLedAt === undefined || r.bLedAt >= 15_000, `b led after ${r.bLedAt} ms`).to.equal(true);
  });

  it("a Lease forged to name a process that is not leading does not make it leader at once (D2)", async () => {
    const clock = new FakeClock();
    const store = new MemoryLeaseStore();
    store.lease = {
      record: { holderIdentity: "c", leaseDurationSeconds: 15, renewTime: microTime(clock.wallNow()) },
      resourceVersion: "1",
    };
    const c = candidate("c", view(store), clock);
    c.e.start();
    await clock.advance(14_000);
    expect(c.e.canWrite(), "own name, but another process of that name may still be writing").to.equal(false);
    await clock.advance(4_000);
    expect(c.e.canWrite()).to.equal(true);
  });

  it("a follower waits the holder's longer lease duration, not only its own (D3)", async () => {
    const clock = new FakeClock();
    const store = new MemoryLeaseStore();
    const av = view(store);
    const a = candidate("a", av, clock, {
      leaseDurationMs: 6_000,
      renewDeadlineMs: 5_000,
      retryPeriodMs: 1_000,
    });
    a.e.start();
    await settle();
    const b = candidate("b", view(store), clock, {
      leaseDurationMs: 1_500,
      renewDeadlineMs: 1_000,
      retryPeriodMs: 500,
    });
    b.e.start();
    await clock.advance(2_000);
    av.cut = true;
    let overlaps = 0;
    for (let t = 0; t < 12_000; t += 50) {
      await clock.advance(50);
      if (a.e.canWrite() && b.e.canWrite()) overlaps++;
    }
    expect(overlaps).to.equal(0);
    expect(b.e.canWrite()).to.equal(true);
  });

  it("renews on a monotonic clock with fractional milliseconds (request timeouts are whole ms)", async () => {
    const clock = new FakeClock();
    clock.jump(1234.5678);
    const store = new MemoryLeaseStore();
    const a = candidate("a", view(store), clock);
    a.e.start();
    await clock.advance(0.3);
    await clock.advance(30_000.7);
    expect(a.e.canWrite()).to.equal(true);
    expect(a.events).to.deep.equal(["started"]);
    expect(store.writes.length).to.be.greaterThan(10);
  });

  /** The elector's view of `clock` whose long timers fire `early` ms before due, or never (`early` null). */
  function skewedTimers(clock: FakeClock, early: number | null): Clock {
    return {
      now: () => clock.now(),
      wallNow: () => clock.wallNow(),
      clearTimeout: (h) => clock.clearTimeout(h),
      setTimeout: (fn, ms) =>
        ms <= 2_000
          ? clock.setTimeout(fn, ms)
          : early === null
            ? undefined
            : clock.setTimeout(fn, ms - early),
    };
  }

  /** The store, each call answered after `delays` of its kind on the fake clock (a hung call: Infinity). */
  function slowStore(store: MemoryLeaseStore, clock: FakeClock) {
    const delays = { get: 0, update: 0 };
    const timeouts: string[] = [];
    const after = <T>(ms: number, f: () => Promise<T>): Promise<T> =>
      ms === 0
        ? f()
        : new Promise<T>((resolve, reject) => {
            if (Number.isFinite(ms)) clock.setTimeout(() => void f().then(resolve, reject), ms);
          });
    const s: LeaseStore = {
      get: (t) => {
        timeouts.push(`get ${t}`);
        return after(delays.get, () => store.get(t));
      },
      create: (r, t) => store.create(r, t),
      update: (r, rv, t) => {
        timeouts.push(`update ${t}`);
        return after(delays.update, () => store.update(r, rv, t));
      },
    };
    return { s, delays, timeouts };
  }

  it("a deadline timer that fires early is armed again: leadership ends at the deadline, not later (RT D6)", async () => {
    const clock = new FakeClock();
    const store = new MemoryLeaseStore();
    const slow = slowStore(store, clock);
    const events: string[] = [];
    const a = new LeaderElector(
      slow.s,
      {
        identity: "a",
        clock: skewedTimers(clock, 1),
        onStartedLeading: () => events.push("started"),
        onStoppedLeading: () => events.push(`stopped at ${clock.now()}`),
      },
      log,
    );
    a.start();
    await settle();
    const renewedAt = clock.now();
    slow.delays.get = Infinity; // every request hangs from now on
    await clock.advance(10_000);
    expect(events).to.deep.equal(["started", `stopped at ${renewedAt + 10_000}`]);
    // (not stopped: its GET hangs for ever, and only the fake clock's timers are pending)
  });

  it("a renewal's update gets only the time left after its GET, not the GET's timeout again (RT D6)", async () => {
    const clock = new FakeClock();
    const store = new MemoryLeaseStore();
    const slow = slowStore(store, clock);
    const a = candidate("a", slow.s, clock);
    a.e.start();
    await settle();
    slow.timeouts.length = 0;
    slow.delays.get = 3_000;
    await clock.advance(2_000 + 3_000); // next renewal sent at +2 s, its GET answered at +5 s
    expect(slow.timeouts).to.deep.equal(["get 8000", "update 5000"]);
    await a.e.stop();
  });

  it("a renewal answered after the leader's deadline ends leadership even if no timer ran (RT D6)", async () => {
    const clock = new FakeClock();
    const store = new MemoryLeaseStore();
    const slow = slowStore(store, clock);
    const events: string[] = [];
    const a = new LeaderElector(
      slow.s,
      {
        identity: "a",
        clock: skewedTimers(clock, null), // the deadline timer never runs (a blocked event loop)
        onStartedLeading: () => events.push("started"),
        onStoppedLeading: () => events.push(`stopped at ${clock.now()}`),
      },
      log,
    );
    a.start();
    await settle();
    const renewedAt = clock.now();
    slow.delays.update = 8_500; // sent at +2 s, answered at +10.5 s: within its own 10 s, past the leader's
    await clock.advance(2_000 + 8_500);
    expect(events).to.deep.equal(["started", `stopped at ${renewedAt + 10_500}`]);
    expect(a.canWrite()).to.equal(false);
    await a.stop();
  });
});
