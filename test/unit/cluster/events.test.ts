import { expect } from "chai";
import { EventAggregator, type EventKey } from "../../../src/cluster/events.js";

const key = (message: string, uid = "u1"): EventKey => ({
  uid,
  name: "baseline",
  type: "Normal",
  reason: "DriftCorrected",
  message,
});
const base = { metadata: { generateName: "baseline." }, involvedObject: { name: "baseline" } };
const at = (s: number) => new Date(Date.UTC(2026, 10, 23, 0, 0, s));

describe("EventAggregator", () => {
  it("creates the first event and bumps the count of the same one after", () => {
    const agg = new EventAggregator(60_000);
    const first = agg.next(key("Corrected 1"), { ...base, reason: "DriftCorrected" }, at(0));
    expect(first.action).to.equal("create");
    if (first.action !== "create") return;
    expect(first.body).to.deep.include({ count: 1, reason: "DriftCorrected" });
    first.remember("baseline.abc");
    const second = agg.next(key("Corrected 1"), base, at(5));
    expect(second).to.deep.equal({
      action: "patch",
      eventName: "baseline.abc",
      patch: { count: 2, lastTimestamp: at(5) },
    });
    const third = agg.next(key("Corrected 1"), base, at(9));
    expect(third.action === "patch" && third.patch.count).to.equal(3);
  });

  it("keeps different messages, policies and stale repeats apart", () => {
    const agg = new EventAggregator(60_000);
    const a = agg.next(key("A"), base, at(0));
    if (a.action === "create") a.remember("e1");
    expect(agg.next(key("B"), base, at(1)).action).to.equal("create");
    expect(agg.next(key("A", "other-uid"), base, at(1)).action).to.equal("create");
    // Not remembered (the create failed) -> still a create next time.
    expect(agg.next(key("B"), base, at(2)).action).to.equal("create");
    // Older than the window -> a new Event.
    expect(agg.next(key("A"), base, at(0 + 61)).action).to.equal("create");
  });

  it("forgets an Event that no longer exists and bounds its memory", () => {
    const agg = new EventAggregator(60_000, 2);
    for (const m of ["A", "B", "C"]) {
      const w = agg.next(key(m), base, at(0));
      if (w.action === "create") w.remember(`e-${m}`);
    }
    expect(agg.next(key("A"), base, at(1)).action).to.equal("create"); // evicted, oldest first
    expect(agg.next(key("C"), base, at(1)).action).to.equal("patch");
    agg.forget("e-C");
    expect(agg.next(key("C"), base, at(2)).action).to.equal("create");
  });
});
