import { expect } from "chai";
import type { V1NetworkPolicy } from "@kubernetes/client-node";
import { desiredState } from "../../../src/desired/index.js";
import { sharedNamespaceStates } from "../../../src/desired/namespacestate.js";
import { childDrift, sharedDrift } from "../../../src/drift/checks.js";
import { sharedWrites } from "../../../src/drift/shared.js";
import { defaultSA, namespace, policy, snapshot } from "../builders/policy.js";

const denyOnly = { networkPolicies: { defaultDenyEgress: false, allowDNS: false } };

function observedDeny(
  spec: NonNullable<V1NetworkPolicy["spec"]>,
  managedFields: V1NetworkPolicy["metadata"] = {},
): V1NetworkPolicy {
  return {
    metadata: {
      name: "csp-p-default-deny",
      namespace: "a",
      labels: { "app.kubernetes.io/managed-by": "csp-operator", "security.csp-operator.io/policy": "p" },
      ownerReferences: [ownerRef("p")],
      ...managedFields,
    },
    spec,
  };
}

/** The controller ownerReference the operator puts on policy `name`'s children (builder uid `uid-<name>`). */
function ownerRef(name: string) {
  return {
    apiVersion: "security.csp-operator.io/v1alpha1",
    kind: "ClusterSecurityPolicy",
    name,
    uid: `uid-${name}`,
    controller: true,
  };
}

describe("child drift", () => {
  const p = policy("p").spec(denyOnly).build();
  const base = { namespaces: [namespace("a")] };

  it("reports a missing child with an apply repair", () => {
    const s = snapshot(base);
    const drift = childDrift(p, desiredState(p, s).children, s);
    expect(drift.map((d) => [d.reason, d.kind, d.namespace, d.name, d.repair?.action])).to.deep.equal([
      ["Missing", "NetworkPolicy", "a", "csp-p-default-deny", "apply"],
    ]);
  });

  it("finds nothing when the observed object matches after server defaults", () => {
    const s = snapshot({
      ...base,
      networkPolicies: [observedDeny({ podSelector: {}, policyTypes: ["Ingress"] })],
    });
    expect(childDrift(p, desiredState(p, s).children, s)).to.deep.equal([]);
  });

  it("reports a modified child with the changed fields and the manager that changed them", () => {
    const obs = observedDeny(
      { podSelector: {}, policyTypes: ["Ingress"], ingress: [{}] },
      {
        managedFields: [
          { manager: "csp-operator", operation: "Apply", fieldsV1: { "f:spec": { "f:policyTypes": {} } } },
          {
            manager: "kubectl-edit",
            operation: "Update",
            time: new Date(),
            fieldsV1: { "f:spec": { "f:ingress": {} } },
          },
        ],
      },
    );
    const s = snapshot({ ...base, networkPolicies: [obs] });
    const [d] = childDrift(p, desiredState(p, s).children, s);
    expect(d).to.deep.include({ reason: "Modified", fields: ["spec.ingress"], manager: "kubectl-edit" });
  });

  it("never touches an object it did not create (Unowned) and reports another policy's (Conflict)", () => {
    const s = snapshot({
      ...base,
      occupied: new Map([
        ["NetworkPolicy/a/csp-p-default-deny", { metadata: { name: "csp-p-default-deny", namespace: "a" } }],
      ]),
    });
    const [d] = childDrift(p, desiredState(p, s).children, s);
    expect(d?.reason).to.equal("Unowned");
    expect(d?.repair).to.equal(undefined);

    const other = observedDeny({ podSelector: {} });
    other.metadata!.labels!["security.csp-operator.io/policy"] = "q";
    other.metadata!.ownerReferences = [ownerRef("q")];
    const s2 = snapshot({ ...base, networkPolicies: [other] });
    const [c] = childDrift(p, desiredState(p, s2).children, s2);
    expect(c).to.deep.include({ reason: "Conflict" });
    expect(c?.message).to.match(/policy q\b/);
    expect(c?.repair).to.equal(undefined);
  });

  it("reports children the policy no longer wants as Orphaned, with a delete repair", () => {
    const s = snapshot({
      namespaces: [namespace("a", { gone: "x" })],
      networkPolicies: [observedDeny({ podSelector: {} })],
    });
    const q = policy("p")
      .spec({ ...denyOnly, namespaces: { selector: { matchLabels: { other: "y" } } } })
      .build();
    const drift = childDrift(q, desiredState(q, s).children, s);
    expect(drift.map((d) => [d.reason, d.repair?.action])).to.deep.equal([["Orphaned", "delete"]]);
  });

  it("never prunes a child in a namespace the cache does not know (a LIST that came back short)", () => {
    const s = snapshot({ namespaces: [], networkPolicies: [observedDeny({ podSelector: {} })] });
    const q = policy("p").spec(denyOnly).build();
    expect(childDrift(q, desiredState(q, s).children, s)).to.deep.equal([]);
  });
});

describe("shared namespace state", () => {
  const strict = policy("strict")
    .spec({ podSecurity: { enforce: "restricted" } })
    .createdAt("2026-02-01T00:00:00Z")
    .build();
  const lax = policy("lax")
    .spec({ podSecurity: { enforce: "baseline" } })
    .createdAt("2026-01-01T00:00:00Z")
    .build();

  it("resolves two policies deterministically: the stricter level wins, both report Conflict", () => {
    const s = snapshot({
      policies: [strict, lax],
      namespaces: [namespace("a")],
      serviceAccounts: [defaultSA("a", false)],
    });
    const states = sharedNamespaceStates(s);
    expect(states.get("a")?.labels).to.deep.equal({ "pod-security.kubernetes.io/enforce": "restricted" });
    const reversed = sharedNamespaceStates(snapshot({ ...s, policies: [lax, strict] }));
    expect(reversed.get("a")?.labels).to.deep.equal(
      states.get("a")?.labels,
      "order of policies must not matter",
    );
    for (const p of [strict, lax]) {
      const [d] = sharedDrift(p, ["a"], s, states);
      expect(d).to.deep.include({ reason: "Conflict", kind: "Namespace", name: "a" });
    }
  });

  it("writes the union of wants once, and nothing when the namespace already matches", () => {
    const s = snapshot({
      policies: [strict],
      namespaces: [namespace("a")],
      serviceAccounts: [defaultSA("a")],
    });
    const writes = sharedWrites(s, sharedNamespaceStates(s));
    expect(writes.map((w) => w.object)).to.deep.equal([
      {
        apiVersion: "v1",
        kind: "Namespace",
        metadata: {
          name: "a",
          labels: { "pod-security.kubernetes.io/enforce": "restricted" },
          // The label was absent before: releasing it removes it.
          annotations: {
            "security.csp-operator.io/pod-security-originals": '{"pod-security.kubernetes.io/enforce":null}',
          },
        },
      },
      {
        apiVersion: "v1",
        kind: "ServiceAccount",
        metadata: { name: "default", namespace: "a" },
        automountServiceAccountToken: false,
      },
    ]);
    const converged = snapshot({
      policies: [strict],
      namespaces: [namespace("a", { "pod-security.kubernetes.io/enforce": "restricted" })],
      serviceAccounts: [defaultSA("a", false)],
    });
    expect(sharedWrites(converged, sharedNamespaceStates(converged))).to.deep.equal([]);
  });

  it("releases labels it owns once no policy wants them, but an Audit policy freezes them", () => {
    const owned = namespace("a", { "pod-security.kubernetes.io/enforce": "restricted" });
    owned.metadata!.managedFields = [
      {
        manager: "csp-operator",
        operation: "Apply",
        fieldsV1: { "f:metadata": { "f:labels": { "f:pod-security.kubernetes.io/enforce": {} } } },
      },
    ];
    const none = snapshot({ policies: [], namespaces: [owned], serviceAccounts: [defaultSA("a")] });
    expect(sharedWrites(none, sharedNamespaceStates(none)).map((w) => w.object)).to.deep.equal([
      { apiVersion: "v1", kind: "Namespace", metadata: { name: "a", labels: {} } },
    ]);
    const audit = policy("strict")
      .audit()
      .spec({ podSecurity: { enforce: "restricted" } })
      .build();
    const frozen = snapshot({ policies: [audit], namespaces: [owned], serviceAccounts: [defaultSA("a")] });
    expect(sharedWrites(frozen, sharedNamespaceStates(frozen))).to.deep.equal([]);
  });

  it("reports a label someone else changed with their manager name", () => {
    const ns = namespace("a", { "pod-security.kubernetes.io/enforce": "privileged" });
    ns.metadata!.managedFields = [
      {
        manager: "kubectl-label",
        operation: "Update",
        fieldsV1: { "f:metadata": { "f:labels": { "f:pod-security.kubernetes.io/enforce": {} } } },
      },
    ];
    const s = snapshot({ policies: [strict], namespaces: [ns], serviceAccounts: [defaultSA("a", false)] });
    expect(sharedDrift(strict, ["a"], s, sharedNamespaceStates(s))[0]).to.deep.include({
      reason: "Modified",
      manager: "kubectl-label",
    });
  });
});
