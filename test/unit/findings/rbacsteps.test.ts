import type { V1ClusterRole, V1ClusterRoleBinding, V1RoleBinding } from "@kubernetes/client-node";
import { expect } from "chai";
import { sortFindings } from "../../../src/findings/finding.js";
import {
  clearRbacFindingsMemo,
  rbacFindings,
  rbacFindingsSteps,
  type RbacInventory,
} from "../../../src/findings/rbac.js";
import { SLICE } from "../../../src/desired/slices.js";

const OPTS = { ignoreManagedBy: "csp-operator" };
const clusterRoles: V1ClusterRole[] = [
  { metadata: { name: "view" }, rules: [{ apiGroups: [""], resources: ["pods"], verbs: ["get", "list"] }] },
  { metadata: { name: "edit" }, rules: [{ apiGroups: ["*"], resources: ["*"], verbs: ["*"] }] },
];
const clusterRoleBindings: V1ClusterRoleBinding[] = [
  {
    metadata: { name: "ops-admin" },
    roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "edit" },
    subjects: [{ kind: "User", apiGroup: "rbac.authorization.k8s.io", name: "ops" }],
  },
];
/** `n` RoleBindings over 500 namespaces, one in ten granting wildcards; `reads` counts metadata reads. */
function roleBindings(n: number, reads = { n: 0 }): V1RoleBinding[] {
  return Array.from({ length: n }, (_, i) => {
    const metadata = { name: `rb-${i}`, namespace: `ns-${i % 500}`, uid: `u${i}` };
    return {
      get metadata() {
        reads.n++;
        return metadata;
      },
      roleRef: {
        apiGroup: "rbac.authorization.k8s.io",
        kind: "ClusterRole",
        name: i % 10 === 0 ? "edit" : "view",
      },
      subjects: [{ kind: "User", apiGroup: "rbac.authorization.k8s.io", name: `user-${i}` }],
    };
  });
}
const full = (bindings: V1RoleBinding[]): RbacInventory => ({
  clusterRoles,
  clusterRoleBindings,
  roles: [],
  roleBindings: bindings,
});
/** A repair's inventory: one namespace's bindings, no ClusterRoleBinding (ClusterCache.namespaceSnapshot). */
const namespaceOnly = (bindings: V1RoleBinding[], ns: string): RbacInventory => ({
  clusterRoles,
  clusterRoleBindings: [],
  roles: [],
  roleBindings: bindings.filter((b) => b.metadata?.namespace === ns),
});

describe("rbacFindings: memo per scope, and the binding walk in steps", () => {
  beforeEach(() => clearRbacFindingsMemo());

  it("the whole cluster's findings survive repairs of many namespaces (no recomputation)", () => {
    const bindings = roleBindings(2000);
    const first = rbacFindings(full(bindings), {}, OPTS);
    expect(first.length).to.be.greaterThan(0);
    // More namespaces than the namespace memo keeps, with the very same audit configuration.
    for (let i = 0; i < 100; i++) rbacFindings(namespaceOnly(bindings, `ns-${i}`), {}, OPTS);
    const again = rbacFindings(full(bindings), {}, OPTS);
    // A memo hit hands the very same finding objects; a recomputation makes new ones.
    expect(again).to.have.length(first.length);
    expect(again.every((f, i) => f === first[i])).to.equal(true);
  });

  it("a namespace's findings are judged from its own inventory, apart from the cluster's", () => {
    const bindings = roleBindings(1000);
    const all = rbacFindings(full(bindings), {}, OPTS);
    const ns0 = rbacFindings(namespaceOnly(bindings, "ns-0"), {}, OPTS);
    expect(ns0.length).to.be.greaterThan(0);
    expect(ns0.every((f) => f.resource.startsWith("RoleBinding/ns-0/"))).to.equal(true);
    expect(ns0.length).to.be.lessThan(all.length);
  });

  it("a changed inventory is judged again (the memo compares the objects)", () => {
    const bindings = roleBindings(100);
    const before = rbacFindings(full(bindings), {}, OPTS);
    const after = rbacFindings(full(bindings.slice(1)), {}, OPTS);
    expect(before.some((f) => f.resource === "RoleBinding/ns-0/rb-0")).to.equal(true);
    expect(after.some((f) => f.resource === "RoleBinding/ns-0/rb-0")).to.equal(false);
    expect(after.length).to.be.lessThan(before.length);
  });

  it("in steps: the result is sortFindings' order, and no step judges more than SLICE bindings", () => {
    const reads = { n: 0 };
    const bindings = roleBindings(10_000, reads);
    const steps = rbacFindingsSteps(full(bindings), {}, OPTS);
    let yields = 0;
    let most = 0;
    let result;
    for (;;) {
      reads.n = 0;
      const r = steps.next();
      most = Math.max(most, reads.n);
      if (r.done) {
        result = r.value;
        break;
      }
      yields++;
    }
    expect(yields).to.be.at.least(10_000 / SLICE);
    // viewOf reads a binding's metadata a few times: a step reads at most that many per binding it judges.
    expect(most).to.be.at.most(SLICE * 4);
    expect(result).to.deep.equal(sortFindings(result));
    expect(result.filter((f) => f.resource.startsWith("RoleBinding/")).length).to.be.greaterThan(999);
  });
});
