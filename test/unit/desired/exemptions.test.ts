import { expect } from "chai";
import { desiredState } from "../../../src/desired/index.js";
import { sharedNamespaceStates } from "../../../src/desired/namespacestate.js";
import { sharedDrift } from "../../../src/drift/checks.js";
import { defaultSA, namespace, policy, snapshot } from "../builders/policy.js";

describe("area exemptions in the desired state", () => {
  const now = new Date("2026-06-01T00:00:00Z");
  const base = policy("p").spec({
    networkPolicies: { defaultDenyIngress: true, defaultDenyEgress: false },
    podSecurity: { enforce: "restricted" },
    serviceAccounts: { automountDefaultToken: false },
    rbac: { roles: [{ name: "reader", rules: [{ apiGroups: [""], resources: ["pods"], verbs: ["get"] }] }] },
  });
  const snap = (p: ReturnType<typeof base.build>) =>
    snapshot({
      policies: [p],
      namespaces: [namespace("legacy"), namespace("shop")],
      serviceAccounts: [defaultSA("legacy"), defaultSA("shop")],
      now,
    });
  const kindsIn = (p: ReturnType<typeof base.build>, ns: string) =>
    desiredState(p, snap(p))
      .children.filter((c) => c.metadata.namespace === ns)
      .map((c) => `${c.kind}/${c.metadata.name}`);

  it("takes an exempt area out of the named namespaces only, while the exemption lasts", () => {
    const exempt = base
      .spec({
        exemptions: [
          {
            area: "networkPolicies",
            namespaces: ["legacy"],
            reason: "migrating",
            expires: "2026-07-01T00:00:00Z",
          },
          { area: "podSecurity", namespaces: ["legacy"], reason: "privileged agent" },
          { area: "serviceAccounts", namespaces: ["legacy"], reason: "needs its token" },
        ],
      })
      .build();
    expect(kindsIn(exempt, "legacy")).to.deep.equal([
      "Role/reader",
      "RoleBinding/reader",
      "ServiceAccount/reader",
    ]);
    expect(kindsIn(exempt, "shop")).to.include("NetworkPolicy/csp-p-default-deny");
    const states = sharedNamespaceStates(snap(exempt));
    expect(states.get("legacy")?.labels).to.deep.equal({});
    expect(states.get("legacy")?.disableDefaultTokenAutomount).to.equal(false);
    expect(states.get("shop")?.labels).to.deep.include({
      "pod-security.kubernetes.io/enforce": "restricted",
    });
    expect(states.get("shop")?.disableDefaultTokenAutomount).to.equal(true);
    // Nothing is reported as missing where the area is exempt.
    const drift = sharedDrift(exempt, ["legacy", "shop"], snap(exempt), states);
    expect(drift.filter((d) => d.name === "legacy" || d.namespace === "legacy")).to.deep.equal([]);
    expect(drift.some((d) => d.name === "shop")).to.equal(true);
  });

  it("applies the area again once the exemption has expired", () => {
    const expired = base
      .spec({
        exemptions: [
          {
            area: "networkPolicies",
            namespaces: ["legacy"],
            reason: "migrating",
            expires: "2026-05-01T00:00:00Z",
          },
        ],
      })
      .build();
    expect(kindsIn(expired, "legacy")).to.include("NetworkPolicy/csp-p-default-deny");
  });

  it("does not treat a finding exemption or a cluster-wide area exemption as a namespace carve-out", () => {
    const findingOnly = base
      .spec({
        exemptions: [
          { findingId: "RBAC-WILDCARD", area: "rbac", namespaces: ["legacy"], reason: "vendor chart" },
          { area: "networkPolicies", reason: "findings only: no namespaces named" },
        ],
      })
      .build();
    expect(kindsIn(findingOnly, "legacy")).to.include("NetworkPolicy/csp-p-default-deny");
    expect(kindsIn(findingOnly, "legacy")).to.include("Role/reader");
  });
});
