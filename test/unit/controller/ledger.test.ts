import { expect } from "chai";
import fc from "fast-check";
import { WriteLedger, type EventVerdict } from "../../../src/controller/ledger.js";
import type { ClusterSecurityPolicy } from "../../../src/api/v1alpha1/policy.js";

/**
 * The ledger's echo rules (controller/ledger.ts): the watch event of the operator's own write asks the
 * repair lane for nothing, whether it arrives before the write is recorded (deferred with the claim) or
 * after; anything else seen while an object was claimed is repaired once the claim ends; a repair that
 * left an object to the other lane's claim is woken by its release, once.
 */
describe("write ledger: echoes of the operator's own writes", () => {
  it("a foreign delete at a name the operator deleted is no echo, whether its own event came in flight or not", () => {
    let now = 0;
    const ledger = new WriteLedger(() => now);
    const key = "NetworkPolicy/ns/csp-p-allow-same-namespace";
    // Its own delete event arrives before the response is handled (the usual order).
    expect(ledger.claim(key, "p")).to.equal(true);
    expect(ledger.observe(key, "100", true).kind).to.equal("deferred");
    ledger.release(key, { before: "90", after: null });
    // A user creates an object at that name, then deletes it: a repair, not an echo.
    now += 1000;
    expect(ledger.observe(key, "200", false)).to.deep.equal({ kind: "new" });
    expect(ledger.observe(key, "201", true)).to.deep.equal({ kind: "new" });
    // The same once its own event came after the response: the create at the name ends the record.
    const other = "NetworkPolicy/ns/csp-p-default-deny";
    ledger.claim(other, "p");
    ledger.release(other, { before: "90", after: null });
    expect(ledger.observe(other, "300", true)).to.deep.equal({ kind: "echo", by: "p" });
    expect(ledger.observe(other, "301", false)).to.deep.equal({ kind: "new" });
    expect(ledger.observe(other, "302", true)).to.deep.equal({ kind: "new" });
  });

  it("a write older than the TTL makes no echo (an idle operator records nothing that would expire it)", () => {
    let now = 0;
    const ledger = new WriteLedger(() => now, 30_000);
    const key = "NetworkPolicy/ns/x";
    ledger.claim(key, "p");
    ledger.release(key, { before: "90", after: null });
    now += 3_600_000;
    expect(ledger.observe(key, "5001", true)).to.deep.equal({ kind: "new" });
    expect(ledger.size).to.equal(0);
  });

  it("forgets a policy's children once none was written for childTtlMs (a deleted policy is never asked again)", () => {
    let now = 0;
    const ledger = new WriteLedger(() => now, 30_000, 50_000, 600_000);
    const gone: ClusterSecurityPolicy = {
      apiVersion: "security.csp-operator.io/v1alpha1",
      kind: "ClusterSecurityPolicy",
      metadata: { name: "gone", uid: "uid-gone" },
      spec: {},
    };
    ledger.rememberChild("uid-gone", "0123abcd-0001");
    expect(ledger.unrememberedChildren(gone)).to.have.length(1);
    expect(ledger.policiesRemembered).to.equal(2, "its marks and the last answer");
    now += 600_001;
    ledger.rememberChild("uid-other", "0123abcd-0002");
    expect(ledger.policiesRemembered).to.equal(1, "only the other policy's marks");
  });

  const kind = (v: EventVerdict) => v.kind;
  /** A deferred item's enqueue, counted. */
  const item = () => {
    const fired: string[] = [];
    return { fired, run: (name: string) => () => fired.push(name) };
  };

  it("an echo arriving after the write was recorded is dropped, once; anything else is new", () => {
    const ledger = new WriteLedger();
    /** A write of `key` by policy p, from `before` to `after`. */
    const write = (key: string, before: string | null, after: string | null) => {
      expect(ledger.claim(key, "p")).to.equal(true);
      ledger.release(key, { before, after });
    };
    expect(kind(ledger.observe("k", "1"))).to.equal("new", "nothing written: an ordinary event");
    write("k", "1", "2");
    expect(ledger.observe("k", "2")).to.deep.equal({ kind: "echo", by: "p" });
    expect(ledger.stats.echoes).to.equal(1);
    expect(kind(ledger.observe("k", "2"))).to.equal(
      "new",
      "forgotten once seen: a repeat is not taken for one",
    );
    expect(ledger.size).to.equal(0);
    write("k", "2", "4");
    expect(kind(ledger.observe("k", "5"))).to.equal("new", "someone wrote after us");
    write("k", "5", "6");
    expect(kind(ledger.observe("k", "6", true))).to.equal("new", "a delete is no echo of an apply");
    write("d", "7", null);
    expect(kind(ledger.observe("d", "8", true))).to.equal("echo", "the delete's own event");
    // A write whose policy is not known (a claim without one): its echo is an ordinary event.
    ledger.claim("u");
    ledger.release("u", { before: "1", after: "9" });
    expect(kind(ledger.observe("u", "9"))).to.equal("new");
    ledger.claim("v");
    expect(kind(ledger.observe("v", "10"))).to.equal("new", "nor deferred");
    ledger.release("v");
  });

  it("an echo of a write forgotten after its TTL is an ordinary event", () => {
    let now = 0;
    const ledger = new WriteLedger(() => now, 1000);
    ledger.claim("k", "p");
    ledger.release("k", { before: "1", after: "2" });
    now = 2000;
    ledger.release("other", { before: "1", after: "3" }); // expires the old entries
    expect(kind(ledger.observe("k", "2"))).to.equal("new");
  });

  it("an echo arriving before the write is recorded is deferred, and dropped at release", () => {
    const ledger = new WriteLedger();
    const { fired, run } = item();
    expect(ledger.claim("k", "p")).to.equal(true);
    expect(kind(ledger.observe("k", "2"))).to.equal("deferred");
    ledger.defer("k", "p/a", run("p/a"));
    ledger.defer("k", "q/a", run("q/a"));
    ledger.release("k", { before: "1", after: "2" });
    expect(fired).to.deep.equal([]);
    expect(ledger.stats.deferredDropped).to.equal(2);
    expect(ledger.pending).to.deep.equal({ claims: 0, waiters: 0 });
    // Recorded as passed: the cache showed it already, nothing to wait for.
    expect(ledger.stale("k", "2", ledger.epoch())).to.equal(false);
  });

  it("an echo plus a user's change while the object was claimed: the deferred items run once, at release", () => {
    const ledger = new WriteLedger();
    const { fired, run } = item();
    ledger.claim("k", "p");
    expect(kind(ledger.observe("k", "2"))).to.equal("deferred");
    ledger.defer("k", "p/a", run("p/a"));
    expect(kind(ledger.observe("k", "3"))).to.equal("deferred", "a user's change right after our write");
    ledger.defer("k", "p/a", run("p/a"));
    expect(fired).to.deep.equal([], "nothing before the claim ends");
    ledger.release("k", { before: "1", after: "2" });
    expect(fired).to.deep.equal(["p/a"], "one item, enqueued once");
    // A user's change that came BEFORE our write, while the full reconcile held the claim ahead: repaired too.
    ledger.claim("m", "p");
    expect(kind(ledger.observe("m", "10"))).to.equal("deferred");
    ledger.defer("m", "p/b", run("p/b"));
    ledger.release("m", { before: "9", after: "11" });
    expect(fired).to.deep.equal(["p/a", "p/b"]);
    expect(ledger.stats.deferredEnqueued).to.equal(2);
  });

  it("a delete while claimed: dropped for our own delete, enqueued right after our write", () => {
    const ledger = new WriteLedger();
    const { fired, run } = item();
    ledger.claim("d", "p");
    expect(kind(ledger.observe("d", "40", true))).to.equal("deferred");
    ledger.defer("d", "p/a", run("own delete"));
    ledger.release("d", { before: "39", after: null });
    expect(fired).to.deep.equal([]);
    // The child we create, deleted by a user before our write is recorded: it must come back.
    ledger.claim("c", "p");
    expect(kind(ledger.observe("c", "50"))).to.equal("deferred");
    ledger.defer("c", "p/a", run("create"));
    expect(kind(ledger.observe("c", "51", true))).to.equal("deferred");
    ledger.defer("c", "p/a", run("create"));
    ledger.release("c", { before: null, after: "50" });
    expect(fired).to.deep.equal(["create"]);
    // An update seen while our delete was in flight is not its own result either.
    ledger.claim("e", "p");
    ledger.observe("e", "60");
    ledger.defer("e", "p/a", run("update then delete"));
    ledger.observe("e", "61", true);
    ledger.release("e", { before: "59", after: null });
    expect(fired).to.deep.equal(["create", "update then delete"]);
  });

  it("a failed or skipped write with events seen enqueues what they deferred; without events, nothing", () => {
    const ledger = new WriteLedger();
    const { fired, run } = item();
    ledger.claim("k", "p");
    ledger.observe("k", "7");
    ledger.defer("k", "p/a", run("failed"));
    ledger.release("k"); // the write failed (or the plan was stale): no result
    expect(fired).to.deep.equal(["failed"]);
    ledger.claim("k", "p");
    ledger.release("k");
    expect(fired).to.deep.equal(["failed"]);
    // Deferred after the claim ended (an event handled in between): enqueued at once.
    ledger.defer("k", "p/b", run("late"));
    expect(fired).to.deep.equal(["failed", "late"]);
    // A write whose resourceVersion is unknown (after an owned-field replace: "") is never matched.
    ledger.claim("r", "p");
    ledger.observe("r", "80");
    ledger.defer("r", "p/a", run("replaced"));
    ledger.release("r", { before: "79", after: "" });
    expect(fired).to.deep.equal(["failed", "late", "replaced"]);
  });

  it("more events than it keeps while claimed: enqueued, never assumed to be the write's own", () => {
    const ledger = new WriteLedger();
    const { fired, run } = item();
    ledger.claim("k", "p");
    for (let i = 0; i < 20; i++) ledger.observe("k", "2");
    ledger.defer("k", "p/a", run("many"));
    ledger.release("k", { before: "1", after: "2" });
    expect(fired).to.deep.equal(["many"]);
  });

  it("a waiter on claims runs once, when the last of them is released, and at once when none is held", () => {
    const ledger = new WriteLedger();
    let woken = 0;
    ledger.claim("a", "p");
    ledger.claim("b", "p");
    ledger.whenReleased(["a", "b", "c"], () => woken++);
    expect(ledger.pending).to.deep.equal({ claims: 2, waiters: 2 }, "c was not claimed: not waited for");
    ledger.release("a", { before: "1", after: "2" });
    expect(woken).to.equal(0);
    ledger.release("b"); // a failed write wakes it too
    expect(woken).to.equal(1);
    ledger.claim("b", "p");
    ledger.release("b");
    expect(woken).to.equal(1, "once");
    ledger.whenReleased(["a", "b"], () => woken++);
    expect(woken).to.equal(2, "nothing claimed: at once");
    expect(ledger.pending).to.deep.equal({ claims: 0, waiters: 0 });
    expect(ledger.stats.waitersWoken).to.equal(1);
  });

  it("nothing is left once every claim ended, whatever the events and results (property)", () => {
    const step = fc.oneof(
      fc.record({ op: fc.constant("claim" as const), key: fc.constantFrom("a", "b", "c") }),
      fc.record({
        op: fc.constant("event" as const),
        key: fc.constantFrom("a", "b", "c"),
        rv: fc.integer({ min: 1, max: 9 }),
        deleted: fc.boolean(),
      }),
      fc.record({
        op: fc.constant("release" as const),
        key: fc.constantFrom("a", "b", "c"),
        after: fc.option(fc.integer({ min: 1, max: 9 })),
        ok: fc.boolean(),
      }),
      fc.record({ op: fc.constant("wait" as const), keys: fc.subarray(["a", "b", "c"]) }),
    );
    fc.assert(
      fc.property(fc.array(step, { maxLength: 40 }), (steps) => {
        const ledger = new WriteLedger();
        const ran = new Map<string, number>();
        let n = 0;
        const once = () => {
          const id = `w${n++}`;
          ran.set(id, 0);
          return () => ran.set(id, ran.get(id)! + 1);
        };
        const held = new Set<string>();
        for (const s of steps) {
          if (s.op === "claim") {
            if (ledger.claim(s.key, "p")) held.add(s.key);
          } else if (s.op === "event") {
            const verdict = ledger.observe(s.key, String(s.rv), s.deleted);
            expect(verdict.kind === "deferred").to.equal(held.has(s.key));
            if (verdict.kind === "deferred") ledger.defer(s.key, `p/${s.key}`, once());
          } else if (s.op === "release") {
            if (!held.delete(s.key)) continue;
            const after = s.after === null ? null : String(s.after);
            ledger.release(s.key, s.ok ? { before: "0", after } : undefined);
          } else ledger.whenReleased(s.keys, once());
        }
        for (const k of held) ledger.release(k);
        expect(ledger.pending).to.deep.equal({ claims: 0, waiters: 0 });
        for (const [id, times] of ran) expect(times, id).to.be.at.most(1);
      }),
    );
  });
});
