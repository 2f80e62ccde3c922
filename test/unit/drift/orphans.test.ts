import { expect } from "chai";
import type { KubernetesObject, V1ManagedFieldsEntry } from "@kubernetes/client-node";
import type { ClusterSecurityPolicy } from "../../../src/api/v1alpha1/policy.js";
import { plan } from "../../../src/controller/plan.js";
import { desiredState } from "../../../src/desired/index.js";
import { missingProof, unlabelledOrphans } from "../../../src/drift/orphans.js";
import type { Snapshot } from "../../../src/cluster/snapshot.js";
import { namespace, policy, snapshot } from "../builders/policy.js";

const refTo = (name: string, uid: string, controller = true) => ({
  apiVersion: "security.csp-operator.io/v1alpha1",
  kind: "ClusterSecurityPolicy",
  name,
  uid,
  controller,
});
const applied = (fields: Record<string, unknown>, operation = "Apply", manager = "csp-operator") =>
  ({ manager, operation, fieldsV1: fields }) as V1ManagedFieldsEntry;

/** Distinct v4-shaped UIDs: the first 13 characters are what status.childUIDs keeps. */
const uidN = (n: number) => `${String(n).padStart(8, "0")}-4e5f-4a6b-8c7d-0123456789ab`;
const mark = (uid: string) => uid.slice(0, 13);

interface Orphan {
  kind: string;
  object: KubernetesObject;
}
/** What the operator leaves behind of each kind when a user strips the managed-by label. */
function stripped(kind: string, name: string, uid: string, ns = "a"): Orphan {
  const fields: Record<string, Record<string, unknown>> = {
    NetworkPolicy: { "f:spec": { "f:podSelector": {} } },
    ServiceAccount: { "f:automountServiceAccountToken": {} },
    Role: { "f:rules": {} },
    RoleBinding: { "f:roleRef": {}, "f:subjects": {} },
  };
  return {
    kind,
    object: {
      // What a metadata-only cache holds: the delete must name the object's own kind.
      apiVersion: "meta.k8s.io/v1",
      kind: "PartialObjectMetadata",
      metadata: {
        name,
        namespace: ns,
        uid,
        ownerReferences: [refTo("p", "uid-p")],
        managedFields: [applied(fields[kind]!)],
      },
    },
  };
}

const base = policy("p")
  .spec({
    namespaces: { selector: { matchLabels: { team: "web" } } },
    networkPolicies: { defaultDenyIngress: true, defaultDenyEgress: false, allowDNS: false },
  })
  .build();
const remembering = (p: ClusterSecurityPolicy, uids: string[]): ClusterSecurityPolicy => ({
  ...p,
  status: { childUIDs: uids.map(mark).sort() },
});

function world(p: ClusterSecurityPolicy, orphans: Orphan[], extra: Partial<Snapshot> = {}): Snapshot {
  return snapshot({
    policies: [p],
    namespaces: [namespace("a", { team: "web" })],
    controlledUnlabelled: (uid) => (uid === "uid-p" ? orphans : []),
    ...extra,
  });
}
const orphansOf = (p: ClusterSecurityPolicy, s: Snapshot) =>
  unlabelledOrphans(p, desiredState(p, s).children, s, []);

describe("unlabelled orphans: pruned only when provably the policy's own", () => {
  const all = [
    stripped("NetworkPolicy", "narrow", uidN(1)),
    stripped("ServiceAccount", "worker", uidN(2)),
    stripped("Role", "reader", uidN(3)),
    stripped("RoleBinding", "reader", uidN(4)),
  ];
  const p = remembering(base, [uidN(1), uidN(2), uidN(3), uidN(4)]);

  it("deletes a stripped NetworkPolicy, ServiceAccount, Role and RoleBinding it no longer wants, by UID", () => {
    const pl = plan("p", world(p, all));
    const deletes = pl.writes.filter((w) => w.action === "delete");
    expect(deletes.map((w) => w.key).sort()).to.deep.equal([
      "NetworkPolicy/a/narrow",
      "Role/a/reader",
      "RoleBinding/a/reader",
      "ServiceAccount/a/worker",
    ]);
    for (const w of deletes) {
      expect(w.drift.reason).to.equal("Orphaned");
      expect(w.object.kind).to.equal(w.key.split("/")[0]);
      expect(w.object.metadata?.uid).to.be.a("string");
    }
    // Remembered until they are gone: a failed delete is proven again next time.
    expect(pl.childUIDs).to.include.members([uidN(1), uidN(2), uidN(3), uidN(4)].map(mark));
  });

  it("Audit mode reports them and deletes nothing", () => {
    const audit = remembering({ ...base, spec: { ...base.spec, mode: "Audit" } }, [uidN(1), uidN(3)]);
    const pl = plan("p", world(audit, [all[0]!, all[2]!]));
    expect(pl.writes.filter((w) => w.action === "delete")).to.deep.equal([]);
    expect(
      pl.remaining.filter((d) => d.reason === "Orphaned").map((d) => `${d.kind}/${d.name}`),
    ).to.have.members(["NetworkPolicy/narrow", "Role/reader"]);
    expect(pl.childUIDs).to.include.members([mark(uidN(1)), mark(uidN(3))]);
  });

  const variants: [string, (o: Orphan) => Orphan, string][] = [
    [
      "no controller ownerReference (a plain one only)",
      (o) => meta(o, { ownerReferences: [refTo("p", "uid-p", false)] }),
      "controllerReference",
    ],
    [
      "a controller ownerReference to another UID (an earlier policy of the same name)",
      (o) => meta(o, { ownerReferences: [refTo("p", "uid-old")] }),
      "controllerReference",
    ],
    [
      "a controller ownerReference of another kind with the policy's UID",
      (o) =>
        meta(o, { ownerReferences: [{ ...refTo("p", "uid-p"), kind: "Deployment", apiVersion: "apps/v1" }] }),
      "controllerReference",
    ],
    ["no managedFields", (o) => meta(o, { managedFields: [] }), "operatorApply"],
    [
      "csp-operator's entry is an Update (kubectl create --field-manager=csp-operator)",
      (o) =>
        meta(o, {
          managedFields: o.object.metadata!.managedFields!.map((e) => ({ ...e, operation: "Update" })),
        }),
      "operatorApply",
    ],
    [
      "the Apply entry is another manager's",
      (o) =>
        meta(o, {
          managedFields: o.object.metadata!.managedFields!.map((e) => ({ ...e, manager: "kubectl" })),
        }),
      "operatorApply",
    ],
    ["its UID is not remembered", (o) => meta(o, { uid: uidN(99) }), "rememberedUID"],
    [
      "no UID at all",
      (o) => ({ ...o, object: { metadata: { ...o.object.metadata, uid: "" } } }),
      "rememberedUID",
    ],
  ];
  function meta(o: Orphan, m: Partial<NonNullable<KubernetesObject["metadata"]>>): Orphan {
    return { ...o, object: { ...o.object, metadata: { ...o.object.metadata, ...m } } };
  }
  for (const [what, change, missing] of variants)
    it(`keeps each kind when ${what}`, () => {
      const forged = all.map(change);
      for (const o of forged) expect(missingProof(o.object, o.kind, p), `${o.kind}`).to.equal(missing);
      const pl = plan("p", world(p, forged));
      expect(pl.writes.filter((w) => w.action === "delete")).to.deep.equal([]);
      expect(pl.remaining.filter((d) => d.reason === "Orphaned")).to.deep.equal([]);
      // A UID the proof failed for is never added to what status remembers.
      if (missing === "rememberedUID") expect(pl.childUIDs).to.not.include(mark(uidN(99)));
    });

  it("keeps the `default` ServiceAccount whatever points at it", () => {
    const sa = stripped("ServiceAccount", "default", uidN(5));
    expect(missingProof(sa.object, "ServiceAccount", remembering(base, [uidN(5)]))).to.equal("shared");
    expect(orphansOf(remembering(base, [uidN(5)]), world(base, [sa])).drift).to.deep.equal([]);
  });

  it("keeps one in a namespace the cache does not know (a LIST that came back short)", () => {
    const o = stripped("Role", "reader", uidN(3), "unknown");
    expect(orphansOf(p, world(p, [o])).drift).to.deep.equal([]);
  });

  it("never deletes what the policy still wants (it is restored instead), nor another policy's", () => {
    const s = world(p, []);
    const deny = desiredState(p, s).children.find((c) => c.kind === "NetworkPolicy")!;
    const wanted = stripped("NetworkPolicy", deny.metadata.name, uidN(1));
    expect(orphansOf(p, world(p, [wanted])).drift).to.deep.equal([]);
    // controlledUnlabelled is asked by UID: another policy's stripped children never reach this one.
    const q = remembering({ ...base, metadata: { ...base.metadata, name: "q", uid: "uid-q" } }, [uidN(1)]);
    expect(orphansOf(q, world(q, all)).drift).to.deep.equal([]);
    expect(orphansOf(q, { ...world(q, []), controlledUnlabelled: () => all }).drift).to.deep.equal([]);
  });

  it("does not judge twice what childDrift pruned already (an allow-all one), but keeps remembering it", () => {
    const s = world(p, [all[0]!]);
    const judged = [
      {
        kind: "NetworkPolicy",
        namespace: "a",
        name: "narrow",
        reason: "Orphaned" as const,
        area: "networkPolicies" as const,
        message: "",
      },
    ];
    const r = unlabelledOrphans(p, desiredState(p, s).children, s, judged);
    expect(r.drift).to.deep.equal([]);
    expect(r.remembered).to.deep.equal([mark(uidN(1))]);
  });
});
