import { expect } from "chai";
import type { KubernetesObject } from "@kubernetes/client-node";
import { applyPlan, type PlanWriter } from "../../../src/controller/apply.js";
import { plan } from "../../../src/controller/plan.js";
import { silentLogger } from "../../../src/observability/logger.js";
import { defaultSA, namespace, policy, snapshot } from "../builders/policy.js";

const deny = policy("p")
  .spec({ networkPolicies: { defaultDenyIngress: true, defaultDenyEgress: false, allowDNS: false } })
  .build();
const base = (extra: Parameters<typeof snapshot>[0] = {}) =>
  snapshot({ policies: [deny], namespaces: [namespace("a")], serviceAccounts: [defaultSA("a")], ...extra });

/** A writer that records every call about a NetworkPolicy (shared writes are not in question here); `create` and `apply` answer with what `answer` makes of the object. */
function recorder(answer: (o: KubernetesObject, verb: string) => KubernetesObject | undefined) {
  const calls: { verb: string; object: KubernetesObject }[] = [];
  const writer: PlanWriter = {
    apply: <T extends KubernetesObject>(o: T) => {
      if (o.kind === "NetworkPolicy") calls.push({ verb: "apply", object: o });
      return Promise.resolve(answer(o, "apply") as T);
    },
    create: <T extends KubernetesObject>(o: T) => {
      calls.push({ verb: "create", object: o });
      return Promise.resolve(answer(o, "create") as T | undefined);
    },
    replaceOwned: (o) => (calls.push({ verb: "replaceOwned", object: o }), Promise.resolve()),
    delete: (o) => (calls.push({ verb: "delete", object: o }), Promise.resolve()),
  };
  return { writer, calls };
}
const withUid = (o: KubernetesObject, uid: string) => ({ ...o, metadata: { ...o.metadata, uid } });

describe("apply: a child's write lands on the object observed, or nowhere", () => {
  it("creates a Missing child (never a forcing apply) and remembers the UID the 201 returned", async () => {
    const p = plan("p", base());
    expect(p.writes.map((w) => w.drift.reason)).to.deep.equal(["Missing"]);
    const { writer, calls } = recorder((o) => withUid(o, "u-new"));
    const applied = await applyPlan(p, writer, silentLogger());
    expect(calls.map((c) => c.verb)).to.deep.equal(["create"]);
    expect(applied.written).to.deep.equal(["u-new"]);
    expect(applied.corrected.filter((d) => d.kind === "NetworkPolicy")).to.have.length(1);
  });

  it("an occupied name (409 on create) is no failure and no write: the drift stays for the next plan", async () => {
    const p = plan("p", base());
    const { writer, calls } = recorder(() => undefined);
    const applied = await applyPlan(p, writer, silentLogger());
    expect(calls.map((c) => c.verb)).to.deep.equal(["create"], "no apply, no replace after the 409");
    expect(applied.failures).to.deep.equal([]);
    expect(applied.written).to.deep.equal([]);
    expect(applied.corrected.filter((d) => d.kind === "NetworkPolicy")).to.deep.equal([]);
    const np = applied.remaining.filter((d) => d.kind === "NetworkPolicy");
    expect(np.map((d) => d.reason)).to.deep.equal(["Missing"]);
    expect(np[0]!.message).to.match(/appeared at its name: not written/);
  });

  it("repairs an existing child with the observed UID in the apply, and counts only a uid-matched answer", async () => {
    const child = plan("p", base()).writes[0]!.object;
    const observed = { ...withUid(child, "u-seen"), spec: { podSelector: {}, ingress: [{}] } };
    const p = plan("p", base({ networkPolicies: [observed] }));
    expect(p.writes.map((w) => w.drift.reason)).to.deep.equal(["Modified"]);
    expect(p.writes[0]!.object.metadata?.uid).to.equal("u-seen");

    const same = recorder((o) => ({ ...o }));
    const ok = await applyPlan(p, same.writer, silentLogger());
    expect(same.calls.map((c) => c.verb)).to.deep.equal(["apply"]);
    expect(same.calls[0]!.object.metadata?.uid).to.equal("u-seen", "the precondition travels in the body");
    expect(ok.written).to.deep.equal(["u-seen"]);

    // An answer about another object (a namesake) never becomes a remembered child.
    const other = recorder((o) => withUid(o, "u-other"));
    const applied = await applyPlan(p, other.writer, silentLogger());
    expect(applied.written).to.deep.equal([]);
  });
});
