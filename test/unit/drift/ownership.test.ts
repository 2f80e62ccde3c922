import { expect } from "chai";
import type { V1ManagedFieldsEntry, V1NetworkPolicy, V1ServiceAccount } from "@kubernetes/client-node";
import { desiredState } from "../../../src/desired/index.js";
import { sharedNamespaceStates } from "../../../src/desired/namespacestate.js";
import { childDrift } from "../../../src/drift/checks.js";
import { ownershipOf } from "../../../src/drift/ownership.js";
import { missingProof } from "../../../src/drift/orphans.js";
import { plan } from "../../../src/controller/plan.js";
import { sharedWrites } from "../../../src/drift/shared.js";
import type { Snapshot } from "../../../src/cluster/snapshot.js";
import { namespace, policy, snapshot } from "../builders/policy.js";

const MANAGED = { "app.kubernetes.io/managed-by": "csp-operator" };
const labelsFor = (p: string) => ({ ...MANAGED, "security.csp-operator.io/policy": p });
const refTo = (p: string, uid = `uid-${p}`) => ({
  apiVersion: "security.csp-operator.io/v1alpha1",
  kind: "ClusterSecurityPolicy",
  name: p,
  uid,
  controller: true,
});
/** What the API server records after the operator applied a deny NetworkPolicy. */
const appliedByOperator: V1ManagedFieldsEntry = {
  manager: "csp-operator",
  operation: "Apply",
  fieldsV1: { "f:spec": { "f:podSelector": {}, "f:policyTypes": {} } },
};

const p = policy("p")
  .spec({ networkPolicies: { defaultDenyEgress: false, allowDNS: false } })
  .build();
const base = { namespaces: [namespace("a")] };
const denyName = (s: Snapshot) => desiredState(p, s).children[0]!.metadata.name;

function deny(meta: V1NetworkPolicy["metadata"], spec: V1NetworkPolicy["spec"] = { podSelector: {} }) {
  return { metadata: { name: denyName(snapshot(base)), namespace: "a", ...meta }, spec };
}
const key = () => `NetworkPolicy/a/${denyName(snapshot(base))}`;
const driftOf = (s: Snapshot) => childDrift(p, desiredState(p, s).children, s);

describe("ownership by identity, not labels", () => {
  it("restores its own child relabelled to another policy (ownerReference decides)", () => {
    const np = deny(
      { labels: labelsFor("q"), ownerReferences: [refTo("p")] },
      { podSelector: {}, ingress: [{}] },
    );
    const [d, ...rest] = driftOf(snapshot({ ...base, networkPolicies: [np] }));
    expect(rest).to.deep.equal([]);
    expect(d).to.deep.include({ reason: "Modified" });
    expect(d?.fields).to.include.members(["spec.ingress", "metadata.labels.security.csp-operator.io/policy"]);
    expect(d?.repair?.action).to.equal("apply");
  });

  it("restores its own child relabelled to a policy that does not exist", () => {
    const np = deny({ labels: labelsFor("ghost"), ownerReferences: [refTo("p")] });
    const [d] = driftOf(snapshot({ ...base, networkPolicies: [np] }));
    expect(d).to.deep.include({
      reason: "Modified",
      fields: ["metadata.labels.security.csp-operator.io/policy"],
    });
    expect(d?.repair?.action).to.equal("apply");
  });

  it("re-adopts a child stripped of labels and ownerReferences: its UID remembered, managedFields show the operator applied it", () => {
    const uid = "0a1b2c3d-4e5f-4a6b-8c7d-0123456789ab";
    const np = deny({ uid, managedFields: [appliedByOperator] });
    const remembering = { ...p, status: { childUIDs: [uid.slice(0, 13)] } };
    const s = snapshot({ ...base, occupied: new Map([[key(), np]]) });
    const [d] = childDrift(remembering, desiredState(remembering, s).children, s);
    expect(d).to.deep.include({ reason: "Modified" });
    expect(d?.fields).to.include("metadata.ownerReferences");
    expect(d?.message).to.match(/per managedFields/);
    expect(d?.repair?.action).to.equal("apply");
    const applied = d?.repair?.action === "apply" ? d.repair.object : undefined;
    expect(applied?.metadata.ownerReferences).to.deep.equal([refTo("p")]);
  });

  it("never adopts a user's object at a child's name written as csp-operator (field-manager names are not authenticated)", () => {
    const uid = "0a1b2c3d-4e5f-4a6b-8c7d-0123456789ab";
    // `kubectl apply --server-side --field-manager=csp-operator` (Apply) or `kubectl create/patch
    // --field-manager=csp-operator` (Update): neither makes it the policy's without a remembered UID.
    for (const entry of [appliedByOperator, { ...appliedByOperator, operation: "Update" }]) {
      const np = deny({ uid, labels: { team: "mallory" }, managedFields: [entry] });
      const [d, ...rest] = driftOf(snapshot({ ...base, occupied: new Map([[key(), np]]) }));
      expect(rest).to.deep.equal([]);
      expect(d, entry.operation).to.deep.include({ reason: "Unowned" });
      expect(d?.repair).to.equal(undefined);
    }
    // Remembered but only an Update entry: the policy's (remembered), not "per managedFields".
    const remembering = { ...p, status: { childUIDs: [uid.slice(0, 13)] } };
    const np = deny({ uid, managedFields: [{ ...appliedByOperator, operation: "Update" }] });
    const s = snapshot({ ...base, occupied: new Map([[key(), np]]) });
    const [d] = childDrift(remembering, desiredState(remembering, s).children, s);
    expect(d?.repair).to.include({ action: "apply", reclaim: true });
  });

  it("never adopts an object carrying forged ownership labels (Unowned), nor deletes one it no longer wants", () => {
    const np = deny({ labels: labelsFor("p") });
    const [d] = driftOf(snapshot({ ...base, networkPolicies: [np] }));
    expect(d).to.deep.include({ reason: "Unowned" });
    expect(d?.repair).to.equal(undefined);
    const stray = {
      metadata: { name: "forged", namespace: "a", labels: labelsFor("p") },
      spec: { podSelector: {} },
    };
    expect(driftOf(snapshot({ ...base, networkPolicies: [stray] })).map((x) => x.reason)).to.deep.equal([
      "Missing",
    ]);
  });

  it("reports an object another policy controls as a Conflict naming it, whatever its labels say", () => {
    const np = deny({ labels: labelsFor("p"), ownerReferences: [refTo("q")] });
    const [d] = driftOf(snapshot({ ...base, networkPolicies: [np] }));
    expect(d).to.deep.include({ reason: "Conflict" });
    expect(d?.message).to.match(/policy q\b/);
    expect(d?.repair).to.equal(undefined);
  });

  it("deletes as Orphaned only what carries its UID, never another policy's object labelled with its name", () => {
    const gone = policy("p")
      .spec({
        networkPolicies: { defaultDenyEgress: false, allowDNS: false },
        namespaces: { selector: { matchLabels: { x: "y" } } },
      })
      .build();
    const mine = {
      metadata: { name: "old", namespace: "a", labels: labelsFor("q"), ownerReferences: [refTo("p")] },
    };
    const theirs = {
      metadata: { name: "theirs", namespace: "a", labels: labelsFor("p"), ownerReferences: [refTo("q")] },
    };
    const s = snapshot({ ...base, networkPolicies: [mine, theirs] });
    const drift = childDrift(gone, desiredState(gone, s).children, s);
    expect(drift.map((d) => [d.reason, d.name, d.repair?.action])).to.deep.equal([
      ["Orphaned", "old", "delete"],
    ]);
  });

  it("deletes as Orphaned an unlabelled allow-all NetworkPolicy pointing at it that it does not want (stripped child, forged reference)", () => {
    const summary = (name: string, meta: object) => ({
      apiVersion: "networking.k8s.io/v1",
      kind: "NetworkPolicy",
      metadata: { name, namespace: "a", uid: `uid-${name}`, ...meta },
      widens: ["Ingress" as const],
    });
    const labelled = {
      metadata: {
        name: "old",
        namespace: "a",
        uid: "uid-old",
        labels: labelsFor("p"),
        ownerReferences: [refTo("p")],
      },
    };
    const s = snapshot({
      ...base,
      networkPolicies: [labelled],
      wideningNetworkPolicies: [
        summary("stripped", { ownerReferences: [refTo("p")] }),
        summary("users-own", {}),
        summary("theirs", { ownerReferences: [refTo("q")] }),
        summary("old", { ownerReferences: [refTo("p")] }), // the labelled one, summarised too: once
        summary(denyName(snapshot(base)), { ownerReferences: [refTo("p")] }), // wanted: judged as a child
      ],
    });
    const drift = driftOf(s).filter((d) => d.reason === "Orphaned");
    expect(drift.map((d) => [d.name, d.repair?.action, d.repair?.object.metadata?.uid])).to.deep.equal([
      ["old", "delete", "uid-old"],
      ["stripped", "delete", "uid-stripped"],
    ]);
  });

  describe("the default ServiceAccount is never a child", () => {
    const grab = policy("p")
      .spec({
        rbac: {
          roles: [
            {
              name: "reader",
              serviceAccount: "default",
              rules: [{ apiGroups: [""], resources: ["pods"], verbs: ["get"] }],
            },
          ],
        },
      })
      .build();
    const labelled: V1ServiceAccount = {
      metadata: {
        name: "default",
        namespace: "a",
        labels: { team: "payments" },
        managedFields: [
          { manager: "csp-operator", operation: "Apply", fieldsV1: { "f:automountServiceAccountToken": {} } },
        ],
      },
      automountServiceAccountToken: false,
    };

    it("reports it Unowned and never writes labels or an ownerReference onto it", () => {
      const s = snapshot({ ...base, serviceAccounts: [labelled] });
      const drift = childDrift(grab, desiredState(grab, s).children, s);
      const sa = drift.find((d) => d.kind === "ServiceAccount" && d.name === "default");
      expect(sa).to.deep.include({ reason: "Unowned" });
      expect(sa?.repair).to.equal(undefined);
      expect(drift.filter((d) => d.repair?.object.metadata?.name === "default")).to.deep.equal([]);
    });

    it("never deletes it as Orphaned, even when an earlier version put the policy's ownerReference on it", () => {
      const takenOver = { ...labelled, metadata: { ...labelled.metadata, ownerReferences: [refTo("p")] } };
      const none = policy("p").build();
      const s = snapshot({ ...base, serviceAccounts: [takenOver] });
      const drift = childDrift(none, desiredState(none, s).children, s);
      expect(drift.filter((d) => d.kind === "ServiceAccount")).to.deep.equal([]);
    });
  });
});

describe("a default ServiceAccount an earlier version took over", () => {
  it("is given back: the shared apply drops the operator's labels and ownerReference", () => {
    const takenOver: V1ServiceAccount = {
      metadata: {
        name: "default",
        namespace: "a",
        labels: labelsFor("p"),
        ownerReferences: [refTo("p")],
        managedFields: [
          {
            manager: "csp-operator",
            operation: "Apply",
            fieldsV1: {
              "f:automountServiceAccountToken": {},
              "f:metadata": {
                "f:labels": { "f:app.kubernetes.io/managed-by": {}, "f:security.csp-operator.io/policy": {} },
                "f:ownerReferences": { 'k:{"uid":"uid-p"}': {} },
              },
            },
          },
        ],
      },
      automountServiceAccountToken: false,
    };
    const s = snapshot({ policies: [policy("p").build()], ...base, serviceAccounts: [takenOver] });
    expect(sharedWrites(s, sharedNamespaceStates(s)).map((w) => w.object)).to.deep.equal([
      {
        apiVersion: "v1",
        kind: "ServiceAccount",
        metadata: { name: "default", namespace: "a" },
        automountServiceAccountToken: false,
      },
    ]);
  });
});

describe("children remembered by UID in the policy's status (where namespace users cannot write)", () => {
  const uid = "0a1b2c3d-4e5f-4a6b-8c7d-0123456789ab";
  const remembering = (uids: string[]) => ({ ...p, status: { childUIDs: uids } });
  // What an edit user leaves: a controller ownerReference to their own object, managedFields rewritten.
  const hijacked = () =>
    deny(
      {
        uid,
        labels: { team: "x" },
        ownerReferences: [{ apiVersion: "v1", kind: "ConfigMap", name: "mine", uid: "cm", controller: true }],
        managedFields: [{ manager: "kubectl", operation: "Update", fieldsV1: { "f:spec": {} } }],
      },
      { podSelector: {}, ingress: [{}] },
    );

  it("a remembered UID is the policy's child whatever its marks say: Modified, restored with its references replaced", () => {
    const pol = remembering([uid.slice(0, 13)]);
    const s = snapshot({ ...base, networkPolicies: [hijacked()] });
    const d = childDrift(pol, desiredState(pol, s).children, s);
    expect(d).to.have.length(1);
    expect(d[0]).to.include({ reason: "Modified" });
    expect(d[0]!.fields).to.include("metadata.ownerReferences");
    expect(d[0]!.repair).to.include({ action: "apply", reclaim: true });
  });

  it("without the remembered UID the same object stays Unowned and is never written", () => {
    for (const uids of [[], ["ffffffff-ffff"]]) {
      const pol = remembering(uids);
      const s = snapshot({ ...base, networkPolicies: [hijacked()] });
      const d = childDrift(pol, desiredState(pol, s).children, s);
      expect(d.map((x) => x.reason)).to.deep.equal(["Unowned"]);
      expect(d[0]!.repair).to.equal(undefined);
    }
  });

  it("never makes the shared default ServiceAccount the policy's, even if its UID were remembered", () => {
    const sa: V1ServiceAccount = { metadata: { name: "default", namespace: "a", uid } };
    const pol = remembering([uid.slice(0, 13)]);
    const s = snapshot({ ...base, serviceAccounts: [sa] });
    expect(
      childDrift(pol, desiredState(pol, s).children, s).some((x) => x.kind === "ServiceAccount"),
    ).to.equal(false);
  });
});

describe("a UID another policy's status remembers is that policy's child, whatever its controller reference says", () => {
  const uid = "0a1b2c3d-4e5f-4a6b-8c7d-0123456789ab";
  const mark = uid.slice(0, 13);
  const named = (name: string, uids: string[]) => {
    const b = policy(name)
      .spec({
        networkPolicies: { defaultDenyIngress: false, defaultDenyEgress: false, allowDNS: false },
        rbac: {
          roles: [{ name: "reader", rules: [{ apiGroups: [""], resources: ["pods"], verbs: ["get"] }] }],
        },
      })
      .build();
    return { ...b, status: { childUIDs: uids } };
  };
  // An edit user pointed p's ServiceAccount's controller reference at q (q wants one of the same name).
  const sa = (meta: V1ServiceAccount["metadata"]): V1ServiceAccount => ({
    metadata: { name: "reader", namespace: "a", uid, managedFields: [], ...meta },
  });
  const repointed = (to: string) => sa({ labels: labelsFor(to), ownerReferences: [refTo(to)] });

  it("q, whose controller reference the object now carries but which never remembered it: Conflict", () => {
    const p1 = named("p", [mark]);
    const q = named("q", []);
    const obj = repointed("q");
    expect(ownershipOf(obj, "ServiceAccount", q)).to.deep.include({ kind: "ours" }); // without the others
    expect(ownershipOf(obj, "ServiceAccount", q, [p1, q])).to.deep.equal({
      kind: "otherPolicy",
      policy: "p",
      uid: "uid-p",
      remembered: true,
    });
    expect(ownershipOf(obj, "ServiceAccount", p1, [p1, q])).to.deep.equal({
      kind: "ours",
      via: "remembered",
    });
    // childDrift reports it, and writes nothing; the plan never remembers it for q.
    const s = snapshot({ ...base, policies: [p1, q], serviceAccounts: [obj] });
    const d = childDrift(q, desiredState(q, s).children, s).filter((x) => x.kind === "ServiceAccount");
    expect(d.map((x) => x.reason)).to.deep.equal(["Conflict"]);
    expect(d[0]!.message).to.contain("is a child of policy p");
    expect(d[0]!.message).to.contain("not written by csp-operator");
    expect(d[0]!.repair).to.equal(undefined);
    expect(plan("q", s).childUIDs ?? []).to.not.include(mark);
    const saWrites = (x: ReturnType<typeof plan>) =>
      x.writes.filter((w) => w.key.startsWith("ServiceAccount/"));
    expect(saWrites(plan("q", s))).to.deep.equal([]);
    expect(plan("p", s).childUIDs).to.include(mark);
    // Were q ever to stop wanting it, nothing would delete it as q's orphan.
    const qNone = named("q", []);
    const none = { ...qNone, spec: { ...qNone.spec, rbac: {} } };
    const s2 = snapshot({ ...base, policies: [p1, none], serviceAccounts: [obj] });
    expect(plan("q", s2).deletes).to.deep.equal([]);
    expect(plan("q", s2).writes).to.deep.equal([]);
    expect(plan("q", s2).remaining).to.deep.equal([]);
  });

  it("q never deletes p's RoleBinding pointed at q as a binding on objects that are not q's", () => {
    const rbUid = "9a8b7c6d-5e4f-4a3b-8c2d-0123456789ab";
    const p1 = named("p", [mark, rbUid.slice(0, 13)]);
    const q = named("q", []);
    const binding = {
      metadata: {
        name: "reader",
        namespace: "a",
        uid: rbUid,
        labels: labelsFor("q"),
        ownerReferences: [refTo("q")],
      },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "reader" },
      subjects: [{ kind: "ServiceAccount", name: "reader", namespace: "a" }],
    };
    const s = snapshot({
      ...base,
      policies: [p1, q],
      serviceAccounts: [sa({ labels: labelsFor("p"), ownerReferences: [refTo("p")] })],
      roleBindings: [binding],
    });
    expect(plan("q", s).deletes).to.deep.equal([]);
    expect(plan("q", s).writes.filter((w) => w.key.startsWith("RoleBinding/"))).to.deep.equal([]);
  });

  it("both remembering it (an earlier version's state): exactly one keeps it", () => {
    const p1 = named("p", [mark]);
    const q = named("q", [mark]);
    const judge = (obj: V1ServiceAccount) =>
      [p1, q].map((x) => ownershipOf(obj, "ServiceAccount", x, [p1, q]).kind);
    // The controller reference names one of them: that one.
    expect(judge(repointed("q"))).to.deep.equal(["otherPolicy", "ours"]);
    expect(judge(repointed("p"))).to.deep.equal(["ours", "otherPolicy"]);
    // Neither (a user's controller): the first name.
    const foreign = sa({
      ownerReferences: [{ apiVersion: "v1", kind: "ConfigMap", name: "mine", uid: "cm", controller: true }],
    });
    expect(judge(foreign)).to.deep.equal(["ours", "otherPolicy"]);
    // The plan of the one that lost no longer remembers it.
    // (every child seen: while one is not, what status remembers is kept as it is)
    const s = snapshot({
      ...base,
      policies: [p1, q],
      serviceAccounts: [repointed("q")],
      roles: [{ metadata: { name: "reader", namespace: "a", uid: "r" } }],
      roleBindings: [
        {
          metadata: { name: "reader", namespace: "a", uid: "rb" },
          roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "reader" },
        },
      ],
    });
    expect(plan("p", s).childUIDs ?? []).to.not.include(mark);
    expect(plan("q", s).childUIDs).to.include(mark);
  });

  it("an unlabelled orphan another policy also remembers is not provably this one's", () => {
    const p1 = named("p", [mark]);
    const q = named("q", [mark]);
    const obj = {
      metadata: {
        name: "gone",
        namespace: "a",
        uid,
        ownerReferences: [refTo("q")],
        managedFields: [appliedByOperator],
      },
      spec: { podSelector: {} },
    };
    const ns = "NetworkPolicy";
    expect(missingProof(obj, ns, q)).to.equal(undefined);
    expect(missingProof(obj, ns, q, [p1, q])).to.equal("rememberedElsewhere");
    expect(missingProof(obj, ns, q, [named("p", []), q])).to.equal(undefined);
  });
});
