import { expect } from "chai";
import type { V1NetworkPolicy } from "@kubernetes/client-node";
import type { SnapshotSources } from "../../../src/cluster/livereader.js";
import { liveBase, unheldChildren } from "../../../src/gitops/gather.js";
import { UID_PLACEHOLDER } from "../../../src/gitops/render.js";
import { defaultSA, namespace, policy } from "../builders/policy.js";

const now = new Date("2026-06-01T00:00:00Z");

function sources(s: Partial<SnapshotSources> = {}): SnapshotSources {
  return {
    namespaces: [],
    policies: [],
    networkPolicies: [],
    managedServiceAccounts: [],
    defaultServiceAccounts: [],
    roles: [],
    roleBindings: [],
    configMaps: [],
    ...s,
  };
}

const fromFile = () => {
  const p = policy("p")
    .spec({ networkPolicies: { defaultDenyIngress: true } })
    .build();
  delete p.metadata.uid;
  delete p.metadata.creationTimestamp;
  return p;
};

describe("render/diff live gather (pure parts)", () => {
  it("the policy from the file replaces the stored one, keeping its UID and creation time", () => {
    const stored = policy("p").createdAt("2025-01-01T00:00:00Z").build();
    const other = policy("q").build();
    const { base, mine } = liveBase(sources({ policies: [stored, other] }), fromFile(), now);
    expect(mine.metadata).to.deep.include({ uid: "uid-p", creationTimestamp: "2025-01-01T00:00:00Z" });
    expect(mine.spec?.networkPolicies).to.deep.equal({ defaultDenyIngress: true });
    expect(base.policies.map((p) => p.metadata.name)).to.deep.equal(["q", "p"]);
    expect(base.rbac?.clusterRoles).to.deep.equal([]);
  });

  it("a policy the cluster does not hold gets the placeholder UID", () => {
    const { mine, stored } = liveBase(sources(), fromFile(), now);
    expect(mine.metadata.uid).to.equal(UID_PLACEHOLDER);
    expect(stored).to.equal(undefined);
  });

  it("ServiceAccounts: every default one, plus the managed ones that are not `default` (no duplicates)", () => {
    const managedDefault = { ...defaultSA("a"), kind: "ServiceAccount" };
    const managed = { metadata: { name: "csp-p-reader", namespace: "a" }, kind: "ServiceAccount" };
    const { base } = liveBase(
      sources({
        defaultServiceAccounts: [{ ...defaultSA("a"), kind: "ServiceAccount" }],
        managedServiceAccounts: [managedDefault, managed],
      }),
      fromFile(),
      now,
    );
    expect(base.serviceAccounts.map((s) => `${s.metadata?.namespace}/${s.metadata?.name}`)).to.deep.equal([
      "a/default",
      "a/csp-p-reader",
    ]);
  });

  it("only children no labelled list holds are read at their name (occupancy)", () => {
    const namespaces = [namespace("a"), namespace("b")];
    const { base, mine } = liveBase(sources({ namespaces }), fromFile(), now);
    const unheld = unheldChildren(mine, base);
    const name = unheld.find((c) => c.kind === "NetworkPolicy")!.metadata.name;
    const named = (children: typeof unheld) =>
      children
        .filter((c) => c.kind === "NetworkPolicy" && c.metadata.name === name)
        .map((c) => c.metadata.namespace);
    expect(named(unheld)).to.deep.equal(["a", "b"]);
    const held: V1NetworkPolicy = {
      apiVersion: "networking.k8s.io/v1",
      kind: "NetworkPolicy",
      metadata: { name, namespace: "a" },
    };
    const after = liveBase(sources({ namespaces, networkPolicies: [held] }), fromFile(), now);
    const left = unheldChildren(after.mine, after.base);
    expect(named(left)).to.deep.equal(["b"]);
    expect(left).to.have.length(unheld.length - 1);
  });
});
