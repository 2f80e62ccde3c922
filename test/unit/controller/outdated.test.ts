import { expect } from "chai";
import { policyOutdated } from "../../../src/controller/reconcile.js";
import { policy } from "../builders/policy.js";

describe("policyOutdated: whether a full reconcile's plan still holds for the policy the cache holds now", () => {
  const planned = policy("p").build();
  it("the same object and generation (a status change, a label): the plan holds", () => {
    expect(
      policyOutdated(planned, { ...planned, metadata: { ...planned.metadata, labels: { a: "b" } } }),
    ).to.equal(undefined);
  });
  it("gone, being deleted or re-created under the name: policy gone", () => {
    expect(policyOutdated(planned, undefined)).to.equal("policy gone");
    const deleting = { ...planned, metadata: { ...planned.metadata, deletionTimestamp: new Date() } };
    expect(policyOutdated(planned, deleting)).to.equal("policy gone");
    expect(policyOutdated(planned, { ...planned, metadata: { ...planned.metadata, uid: "other" } })).to.equal(
      "policy gone",
    );
  });
  it("a new generation (a switch to Audit among others): policy changed", () => {
    const audit = policy("p").audit().build();
    audit.metadata.generation = 2;
    expect(policyOutdated(planned, audit)).to.equal("policy changed");
  });
});
