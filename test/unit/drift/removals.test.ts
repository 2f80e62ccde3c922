import { expect } from "chai";
import type { Child } from "../../../src/desired/children.js";
import { ownedFieldDiff, withRemovals } from "../../../src/drift/checks.js";

const deny = (): Child =>
  ({
    apiVersion: "networking.k8s.io/v1",
    kind: "NetworkPolicy",
    metadata: { name: "d", namespace: "a", labels: { x: "y" }, ownerReferences: [] },
    spec: { podSelector: {}, policyTypes: ["Ingress"] },
  }) as unknown as Child;

describe("the repairing apply removes what another manager added (pure)", () => {
  it("sets every field the observed object holds and the policy does not to null, recursively", () => {
    const observed = {
      spec: { podSelector: { matchLabels: { a: "b" } }, policyTypes: ["Ingress"], ingress: [{}] },
    };
    const out = withRemovals(deny(), observed) as unknown as { spec: Record<string, unknown> };
    expect(out.spec).to.deep.equal({
      podSelector: { matchLabels: null },
      policyTypes: ["Ingress"],
      ingress: null,
    });
    // The nulls count as absent: once the server dropped the fields, nothing differs.
    expect(
      ownedFieldDiff(out as unknown as Child, {
        ...deny(),
        spec: { podSelector: {}, policyTypes: ["Ingress"] },
      }),
    ).to.deep.equal([]);
  });

  it("leaves the desired object as it is when nothing was added, server defaults included", () => {
    const d = deny();
    // policyTypes defaulted by the server, ports' protocol too: not additions.
    expect(withRemovals({ ...d, spec: { podSelector: {} } }, d)).to.deep.equal({
      ...d,
      spec: { podSelector: {} },
    });
    expect(withRemovals(d, { spec: { podSelector: {}, policyTypes: ["Ingress"] } })).to.equal(d);
  });

  it("removes a whole owned field the policy no longer declares, and extra keys of a map", () => {
    const cm = {
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "c", namespace: "csp-system", labels: {}, ownerReferences: [] },
      data: { "policy.yaml": "x" },
    } as unknown as Child;
    expect(
      (withRemovals(cm, { data: { "policy.yaml": "x", extra: "y" } }) as unknown as { data: unknown }).data,
    ).to.deep.equal({
      "policy.yaml": "x",
      extra: null,
    });
    const noData = { ...cm, data: undefined } as unknown as Child;
    expect((withRemovals(noData, { data: { a: "b" } }) as unknown as { data: unknown }).data).to.equal(null);
  });
});
