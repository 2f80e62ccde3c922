import { expect } from "chai";
import type { KubernetesObject } from "@kubernetes/client-node";
import { rbacEventPolicies } from "../../../src/cluster/cache.js";
import type { ClusterSecurityPolicySpec } from "../../../src/api/v1alpha1/policy.js";
import { namespace, policy } from "../builders/policy.js";

const binding = (ns: string): KubernetesObject => ({
  apiVersion: "rbac.authorization.k8s.io/v1",
  kind: "RoleBinding",
  metadata: { name: "b", namespace: ns },
});
const clusterRole: KubernetesObject = {
  apiVersion: "rbac.authorization.k8s.io/v1",
  kind: "ClusterRole",
  metadata: { name: "c" },
};
const selecting = { namespaces: { selector: { matchLabels: { team: "web" } } } };
/** An audit switched off. Today's CRD defaults spec.rbac.audit to {}, so a stored policy always audits. */
const noAudit = (spec: ClusterSecurityPolicySpec) =>
  policy("p")
    .spec({ ...spec, rbac: { ...spec.rbac, audit: null as never } })
    .build();
const roles = [{ name: "r", rules: [{ apiGroups: [""], resources: ["pods"], verbs: ["get"] }] }];

describe("RBAC events: which policies they concern", () => {
  it("a policy auditing RBAC (the CRD default) is concerned by every RBAC object, selected or not", () => {
    const p = policy("p").spec(selecting).build();
    expect(rbacEventPolicies([p], binding("elsewhere"), namespace("elsewhere"))).to.deep.equal(["p"]);
    expect(rbacEventPolicies([p], clusterRole, undefined)).to.deep.equal(["p"]);
  });

  it("without an audit, a Role or RoleBinding concerns only the policies selecting its namespace", () => {
    const p = noAudit(selecting);
    expect(rbacEventPolicies([p], binding("elsewhere"), namespace("elsewhere"))).to.deep.equal([]);
    expect(rbacEventPolicies([p], binding("shop"), namespace("shop", { team: "web" }))).to.deep.equal(["p"]);
    expect(rbacEventPolicies([p], binding("gone"), undefined)).to.deep.equal([]);
  });

  it("without an audit, a ClusterRole concerns only the policies generating Roles (what they may grant)", () => {
    expect(rbacEventPolicies([noAudit(selecting)], clusterRole, undefined)).to.deep.equal([]);
    const generating = noAudit({ ...selecting, rbac: { roles } });
    expect(rbacEventPolicies([generating], clusterRole, undefined)).to.deep.equal(["p"]);
  });

  it("a policy being deleted is concerned by nothing", () => {
    const p = policy("p").spec(selecting).build();
    p.metadata.deletionTimestamp = "2026-01-01T00:00:00Z";
    expect(rbacEventPolicies([p], binding("shop"), namespace("shop", { team: "web" }))).to.deep.equal([]);
  });
});
