import { expect } from "chai";
import type { V1ServiceAccount } from "@kubernetes/client-node";
import { plan } from "../../../src/controller/plan.js";
import { SA_DEFAULT_OWNED_BY_POLICY } from "../../../src/findings/serviceaccounts.js";
import { namespace, policy, snapshot } from "../builders/policy.js";

describe("a policy ownerReference on the default ServiceAccount (pure)", () => {
  const p = policy("p")
    .spec({
      serviceAccounts: { automountDefaultToken: false },
      networkPolicies: { defaultDenyIngress: true },
    })
    .build();
  const ref = {
    apiVersion: "security.csp-operator.io/v1alpha1",
    kind: "ClusterSecurityPolicy",
    name: "p",
    uid: "uid-p",
  };
  const sa = (controller: boolean): V1ServiceAccount => ({
    metadata: {
      name: "default",
      namespace: "a",
      uid: "sa-uid",
      ownerReferences: [{ ...ref, controller }],
      managedFields: [
        {
          manager: "kubectl-patch",
          operation: "Update",
          fieldsV1: { "f:metadata": { "f:ownerReferences": {} } },
        },
      ],
    },
    automountServiceAccountToken: false,
  });

  for (const controller of [false, true])
    it(`is never counted as the policy's (controller: ${controller}): no write, no delete, a Medium finding`, () => {
      const pl = plan(
        "p",
        snapshot({ policies: [p], namespaces: [namespace("a")], serviceAccounts: [sa(controller)] }),
      );
      const touches = (o: { kind?: string; name?: string }) =>
        o.kind === "ServiceAccount" && o.name === "default";
      expect(pl.writes.filter((w) => touches(w.drift))).to.deep.equal([]);
      expect(pl.deletes).to.deep.equal([]);
      expect(pl.shared.map((w) => w.object.metadata)).to.not.deep.include({
        name: "default",
        namespace: "a",
      });
      expect(pl.childUIDs).to.not.include("sa-uid");
      expect(pl.findings.filter((f) => f.id === SA_DEFAULT_OWNED_BY_POLICY)).to.deep.equal([
        {
          id: SA_DEFAULT_OWNED_BY_POLICY,
          severity: "Medium",
          resource: "ServiceAccount/a/default",
          area: "serviceAccounts",
          message:
            "carries an ownerReference to ClusterSecurityPolicy p: the garbage collector would delete it (and invalidate every pod's token) with that policy; the operator never sets one, remove it",
        },
      ]);
    });

  it("the shared write to default never carries an ownerReference or labels", () => {
    const bare: V1ServiceAccount = { metadata: { name: "default", namespace: "a", uid: "sa-uid" } };
    const pl = plan("p", snapshot({ policies: [p], namespaces: [namespace("a")], serviceAccounts: [bare] }));
    const writes = pl.shared.filter((w) => w.object.kind === "ServiceAccount");
    expect(writes).to.have.length(1);
    expect(writes[0]!.object).to.deep.equal({
      apiVersion: "v1",
      kind: "ServiceAccount",
      metadata: { name: "default", namespace: "a" },
      automountServiceAccountToken: false,
    });
  });
});
