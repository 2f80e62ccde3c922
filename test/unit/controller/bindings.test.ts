import { expect } from "chai";
import type { KubernetesObject, V1ClusterRole, V1Role, V1RoleBinding } from "@kubernetes/client-node";
import { reconcile } from "../../../src/controller/reconcile.js";
import { ownerReference, ownershipLabels } from "../../../src/desired/metadata.js";
import { bindingsOnForeignObjects } from "../../../src/drift/bindings.js";
import { silentLogger } from "../../../src/observability/logger.js";
import type { Snapshot } from "../../../src/cluster/snapshot.js";
import { namespace, policy, snapshot } from "../builders/policy.js";

const reader = policy("p")
  .spec({
    rbac: {
      roles: [
        {
          name: "reader",
          serviceAccount: "reader-sa",
          rules: [{ apiGroups: [""], resources: ["pods"], verbs: ["get"] }],
        },
      ],
    },
  })
  .build();
const grantable: V1ClusterRole = {
  metadata: { name: "csp-operator-grantable" },
  rules: [{ apiGroups: [""], resources: ["pods"], verbs: ["get", "list", "watch"] }],
};
/** A Role an administrator created at the generated name, granting far more than the policy's entry. */
const foreignRole: V1Role = {
  apiVersion: "rbac.authorization.k8s.io/v1",
  kind: "Role",
  metadata: { name: "reader", namespace: "shop", uid: "foreign" },
  rules: [{ apiGroups: [""], resources: ["secrets"], verbs: ["*"] }],
};

/** One reconcile against a writer that accepts everything; returns what it applied and deleted. */
async function run(roleBindings: V1RoleBinding[] = []) {
  const applied: string[] = [];
  const deleted: string[] = [];
  const key = (o: KubernetesObject) => `${o.kind}/${o.metadata?.namespace}/${o.metadata?.name}`;
  const snap: Snapshot = snapshot({
    policies: [reader],
    namespaces: [namespace("shop")],
    roleBindings,
    rbac: { clusterRoles: [grantable], clusterRoleBindings: [], roles: [], roleBindings },
    // The occupancy cache: a Role someone else created sits at the generated name.
    occupant: (kind, _ns, name) => (kind === "Role" && name === "reader" ? foreignRole : undefined),
  });
  let reads = 0;
  await reconcile("p", {
    snapshot: () => snap,
    log: silentLogger(),
    writer: {
      apply: <T extends KubernetesObject>(o: T) => (applied.push(key(o)), Promise.resolve(o)),
      create: <T extends KubernetesObject>(o: T) => (applied.push(key(o)), Promise.resolve(o)),
      replaceOwned: () => Promise.resolve(),
      delete: (o) => (deleted.push(key(o)), Promise.resolve()),
      read: () => (reads++, Promise.resolve(undefined)),
      patchStatus: () => Promise.resolve(),
      event: () => Promise.resolve(),
    },
  });
  return { applied, deleted, reads };
}

describe("generated RoleBindings bind only the policy's own Role and ServiceAccount", () => {
  it("names a binding whose Role or ServiceAccount is Unowned or another policy's", () => {
    const binding = {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "RoleBinding" as const,
      metadata: { name: "reader", namespace: "shop", labels: {}, ownerReferences: [] },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "reader" },
      subjects: [{ kind: "ServiceAccount", name: "reader-sa", namespace: "shop" }],
    };
    const drift = (kind: string, name: string, reason: "Unowned" | "Conflict" | "Missing") => ({
      kind,
      namespace: "shop",
      name,
      reason,
      area: "rbac" as const,
      message: "",
    });
    expect([...bindingsOnForeignObjects([binding], [drift("Role", "reader", "Unowned")])]).to.deep.equal([
      "RoleBinding/shop/reader",
    ]);
    expect(
      bindingsOnForeignObjects([binding], [drift("ServiceAccount", "reader-sa", "Conflict")]).size,
    ).to.equal(1);
    expect(bindingsOnForeignObjects([binding], [drift("Role", "reader", "Missing")]).size).to.equal(0);
  });

  it("never binds the generated ServiceAccount to a foreign Role at the Role's name", async () => {
    const { applied, reads } = await run();
    expect(reads).to.equal(0, "occupancy comes from the cache, not from a GET per child");
    expect(applied).to.include("ServiceAccount/shop/reader-sa");
    expect(applied).to.not.include("RoleBinding/shop/reader");
    expect(applied).to.not.include("Role/shop/reader");
  });

  it("removes a binding of its own that points at a foreign Role (made before the Role was taken)", async () => {
    const own: V1RoleBinding = {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "RoleBinding",
      metadata: {
        name: "reader",
        namespace: "shop",
        labels: ownershipLabels("p"),
        ownerReferences: [ownerReference(reader)],
      },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "reader" },
      subjects: [{ kind: "ServiceAccount", name: "reader-sa", namespace: "shop" }],
    };
    const { deleted, applied } = await run([own]);
    expect(deleted).to.deep.equal(["RoleBinding/shop/reader"]);
    expect(applied).to.not.include("RoleBinding/shop/reader");
  });
});
