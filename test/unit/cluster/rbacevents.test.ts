import { expect } from "chai";
import type {
  KubernetesObject,
  V1ClusterRole,
  V1ClusterRoleBinding,
  V1PolicyRule,
  V1Role,
  V1RoleBinding,
} from "@kubernetes/client-node";
import { rbacEventPolicies } from "../../../src/cluster/cache.js";
import {
  auditKey,
  findingsAudit,
  mayConcernOperator,
  RbacFindingsMemo,
  type RbacView,
} from "../../../src/cluster/rbacevents.js";
import type { ClusterSecurityPolicySpec } from "../../../src/api/v1alpha1/policy.js";
import { bindingFindings, rbacFindings } from "../../../src/findings/rbac.js";
import { namespace, policy } from "../builders/policy.js";

const binding = (ns: string, name = "b"): KubernetesObject =>
  ({
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "RoleBinding",
    metadata: { name, namespace: ns },
    roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "x" },
    subjects: [],
  }) as KubernetesObject;
const clusterRole = (name = "c"): KubernetesObject => ({
  apiVersion: "rbac.authorization.k8s.io/v1",
  kind: "ClusterRole",
  metadata: { name },
});
const selecting = { namespaces: { selector: { matchLabels: { team: "web" } } } };
/** An audit switched off. Today's CRD defaults spec.rbac.audit to {}, so a stored policy always audits. */
const noAudit = (spec: ClusterSecurityPolicySpec) =>
  policy("p")
    .spec({ ...spec, rbac: { ...spec.rbac, audit: null as never } })
    .build();
const roles = [{ name: "r", rules: [{ apiGroups: [""], resources: ["pods"], verbs: ["get"] }] }];

describe("RBAC events: which policies they concern", () => {
  it("a policy auditing RBAC (the CRD default) is concerned exactly when its findings moved", () => {
    const p = policy("p").spec(selecting).build();
    const key = auditKey(findingsAudit(p)!);
    expect(rbacEventPolicies([p], binding("elsewhere"), namespace("elsewhere"))).to.deep.equal(["p"]);
    expect(rbacEventPolicies([p], binding("elsewhere"), namespace("elsewhere"), new Set())).to.deep.equal([]);
    expect(
      rbacEventPolicies([p], binding("elsewhere"), namespace("elsewhere"), new Set([key])),
    ).to.deep.equal(["p"]);
    expect(rbacEventPolicies([p], clusterRole(), undefined, new Set(["{}-other"]))).to.deep.equal([]);
  });

  it("the control-plane area reads RBAC findings too (CIS 5.x), with `{}` when there is no audit", () => {
    const p = noAudit({ ...selecting, controlPlane: {} });
    expect(findingsAudit(p)).to.deep.equal({});
    expect(rbacEventPolicies([p], binding("x"), undefined, new Set([auditKey({})]))).to.deep.equal(["p"]);
    expect(findingsAudit(noAudit(selecting))).to.equal(undefined);
  });

  it("a Role or RoleBinding at a generated child's name, in a namespace it selects, concerns the policy", () => {
    const p = noAudit({ ...selecting, rbac: { roles } });
    const web = namespace("shop", { team: "web" });
    expect(rbacEventPolicies([p], binding("shop", "r"), web, new Set())).to.deep.equal(["p"]);
    expect(rbacEventPolicies([p], { ...binding("shop", "r"), kind: "Role" }, web, new Set())).to.deep.equal([
      "p",
    ]);
    // Another name, or a namespace it does not select: nothing depends on it.
    expect(rbacEventPolicies([p], binding("shop", "other"), web, new Set())).to.deep.equal([]);
    expect(
      rbacEventPolicies([p], binding("elsewhere", "r"), namespace("elsewhere"), new Set()),
    ).to.deep.equal([]);
    expect(rbacEventPolicies([noAudit(selecting)], binding("shop", "r"), web, new Set())).to.deep.equal([]);
  });

  it("a ClusterRole concerns the policies generating Roles only when it bounds what they may grant", () => {
    const generating = noAudit({ ...selecting, rbac: { roles } });
    expect(rbacEventPolicies([generating], clusterRole(), undefined, new Set())).to.deep.equal([]);
    expect(
      rbacEventPolicies([generating], clusterRole("csp-operator-grantable"), undefined, new Set()),
    ).to.deep.equal(["p"]);
    expect(
      rbacEventPolicies([noAudit(selecting)], clusterRole("csp-operator-grantable"), undefined, new Set()),
    ).to.deep.equal([]);
  });

  it("an unlabelled object concerns the policy its controller ownerReference names (a stripped child)", () => {
    const p = noAudit(selecting);
    const stripped = {
      ...binding("elsewhere"),
      metadata: {
        name: "b",
        namespace: "elsewhere",
        ownerReferences: [
          {
            apiVersion: "security.csp-operator.io/v1alpha1",
            kind: "ClusterSecurityPolicy",
            name: "p",
            uid: "uid-p",
            controller: true,
          },
        ],
      },
    };
    expect(rbacEventPolicies([p], stripped, namespace("elsewhere"), new Set())).to.deep.equal(["p"]);
  });

  it("a policy being deleted is concerned by nothing", () => {
    const p = policy("p").spec(selecting).build();
    p.metadata.deletionTimestamp = "2026-01-01T00:00:00Z";
    expect(rbacEventPolicies([p], binding("shop"), namespace("shop", { team: "web" }))).to.deep.equal([]);
  });
});

/** An in-memory RBAC cache: what the informers hold after each event. */
class Cache implements RbacView {
  clusterRoles = new Map<string, V1ClusterRole>();
  roles = new Map<string, V1Role>();
  crbs = new Map<string, V1ClusterRoleBinding>();
  rbs = new Map<string, V1RoleBinding>();
  clusterRole = (n: string) => this.clusterRoles.get(n);
  role = (ns: string, n: string) => this.roles.get(`${ns}/${n}`);
  clusterRoleBinding = (n: string) => this.crbs.get(n);
  roleBinding = (ns: string, n: string) => this.rbs.get(`${ns}/${n}`);
  clusterRoleBindings = () => [...this.crbs.values()];
  roleBindings = () => [...this.rbs.values()];
  put(o: KubernetesObject & { roleRef?: unknown; subjects?: unknown }): KubernetesObject {
    const { name, namespace: ns } = o.metadata!;
    const at = ns ? `${ns}/${name}` : name!;
    if (o.kind === "ClusterRole") this.clusterRoles.set(at, o);
    if (o.kind === "Role") this.roles.set(at, o);
    if (o.kind === "ClusterRoleBinding") this.crbs.set(at, o as V1ClusterRoleBinding);
    if (o.kind === "RoleBinding") this.rbs.set(at, o as V1RoleBinding);
    return o;
  }
  remove(o: KubernetesObject): KubernetesObject {
    const { name, namespace: ns } = o.metadata!;
    const at = ns ? `${ns}/${name}` : name!;
    for (const m of [this.clusterRoles, this.roles, this.crbs, this.rbs]) m.delete(at);
    return o;
  }
}
const role = (ns: string, name: string, rules: V1PolicyRule[]): V1Role => ({
  apiVersion: "rbac.authorization.k8s.io/v1",
  kind: "Role",
  metadata: { name, namespace: ns },
  rules,
});
const rb = (ns: string, name: string, roleName: string, user = "dev", kind = "Role"): V1RoleBinding => ({
  apiVersion: "rbac.authorization.k8s.io/v1",
  kind: "RoleBinding",
  metadata: { name, namespace: ns },
  roleRef: { apiGroup: "rbac.authorization.k8s.io", kind, name: roleName },
  subjects: [{ kind: "User", name: user, apiGroup: "rbac.authorization.k8s.io" }],
});
const READ_PODS = [{ apiGroups: [""], resources: ["pods"], verbs: ["get"] }];
const WILDCARD = [{ apiGroups: ["*"], resources: ["*"], verbs: ["*"] }];
/** A wildcard and nothing else a check judges (no escalation, no Secrets): only forbidWildcards sees it. */
const ANY_VERB_ON_PODS = [{ apiGroups: [""], resources: ["pods"], verbs: ["*"] }];

describe("RBAC findings memo: an event moves only the findings of the bindings it touches", () => {
  // Two policies with different audit configurations (as the CRD defaults them).
  const p = policy("p").spec(selecting).build();
  const q = policy("q")
    .spec({ ...selecting, rbac: { audit: { forbidWildcards: false } } })
    .build();
  const strict = findingsAudit(p)!;
  const lax = findingsAudit(q)!;
  const audits = new Map([
    [auditKey(strict), strict],
    [auditKey(lax), lax],
  ]);
  const setup = () => {
    const c = new Cache();
    c.put(role("app", "reader", READ_PODS));
    c.put(rb("app", "readers", "reader"));
    c.put({
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "ClusterRole",
      metadata: { name: "viewer" },
      rules: READ_PODS,
    } as V1ClusterRole);
    const memo = new RbacFindingsMemo();
    // The first event after start has nothing to compare with: every configuration counts as moved.
    expect(memo.moved(c.role("app", "reader")!, c, audits).size).to.equal(2);
    return { c, memo };
  };

  it("an unrelated RoleBinding creation moves nothing: no policy is reconciled", () => {
    const { c, memo } = setup();
    for (let i = 0; i < 50; i++)
      expect(
        memo.moved(c.put(rb("load", `b${i}`, "viewer", `user-${i}`, "ClusterRole")), c, audits).size,
        `binding ${i}`,
      ).to.equal(0);
    expect(memo.size).to.equal(0);
    expect(rbacEventPolicies([p, q], rb("load", "b1", "viewer"), namespace("load"), new Set())).to.deep.equal(
      [],
    );
  });

  it("a binding that grants a wildcard moves the findings of the audits that forbid wildcards only", () => {
    const { c, memo } = setup();
    c.put(role("app", "everything", ANY_VERB_ON_PODS));
    expect([...memo.moved(c.role("app", "everything")!, c, audits)]).to.deep.equal([]); // unbound: grants nothing
    const moved = memo.moved(c.put(rb("app", "devs", "everything")), c, audits);
    expect([...moved]).to.deep.equal([auditKey(strict)]);
    expect(rbacEventPolicies([p, q], rb("app", "devs", "everything"), namespace("app"), moved)).to.deep.equal(
      ["p"],
    );
    // The same event again (a resync of the watch, a status-only update) moves nothing.
    expect(memo.moved(rb("app", "devs", "everything"), c, audits).size).to.equal(0);
  });

  it("a Role edited to add a wildcard moves the findings of the bindings referencing it; deleting the binding moves them back", () => {
    const { c, memo } = setup();
    const moved = memo.moved(c.put(role("app", "reader", ANY_VERB_ON_PODS)), c, audits);
    expect([...moved]).to.deep.equal([auditKey(strict)]);
    expect(memo.moved(c.remove(rb("app", "readers", "reader")), c, audits)).to.deep.equal(
      new Set([auditKey(strict)]),
    );
    expect(memo.size).to.equal(0);
  });

  it("a ClusterRole change moves the RoleBindings and ClusterRoleBindings referencing it", () => {
    const { c, memo } = setup();
    c.put({
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "ClusterRole",
      metadata: { name: "ops" },
      rules: READ_PODS,
    } as V1ClusterRole);
    expect(memo.moved(c.put(rb("app", "ops", "ops", "dev", "ClusterRole")), c, audits).size).to.equal(0);
    const secrets = [{ apiGroups: [""], resources: ["secrets"], verbs: ["list"] }];
    const moved = memo.moved(
      c.put({
        apiVersion: "rbac.authorization.k8s.io/v1",
        kind: "ClusterRole",
        metadata: { name: "ops" },
        rules: secrets,
      } as V1ClusterRole),
      c,
      audits,
    );
    // RBAC-SECRETS-READ does not depend on forbidWildcards: both configurations see it.
    expect(moved.size).to.equal(2);
  });

  it("a binding to a missing role is a dangling-binding finding; creating the role moves it", () => {
    const { c, memo } = setup();
    expect(memo.moved(c.put(rb("app", "early", "later")), c, audits).size).to.equal(2);
    expect(memo.moved(c.put(role("app", "later", READ_PODS)), c, audits).size).to.equal(2);
  });

  it("forgets the configurations no policy uses any more; reset() makes the next event count as moved", () => {
    const { c, memo } = setup();
    memo.moved(c.put(role("app", "reader", ANY_VERB_ON_PODS)), c, audits);
    expect(memo.size).to.equal(1);
    memo.moved(c.put(rb("app", "x", "reader")), c, new Map([[auditKey(lax), lax]]));
    expect(memo.size).to.equal(0);
    memo.reset();
    expect(memo.moved(c.put(rb("app", "y", "reader")), c, audits).size).to.equal(2);
  });

  it("per binding, the same findings as the whole-cluster analysis", () => {
    const c = new Cache();
    c.put(role("app", "everything", WILDCARD));
    c.put(role("app", "reader", READ_PODS));
    c.put(rb("app", "devs", "everything"));
    c.put(rb("app", "readers", "reader"));
    c.put(rb("app", "dangling", "nope"));
    c.put({ ...rb("app", "anon", "reader"), subjects: [{ kind: "Group", name: "system:unauthenticated" }] });
    c.put({ ...rb("app", "dflt", "reader"), subjects: [{ kind: "ServiceAccount", name: "default" }] });
    c.put({
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "ClusterRoleBinding",
      metadata: { name: "admins" },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "cluster-admin" },
      subjects: [{ kind: "User", name: "mallory" }],
    });
    c.put({
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "ClusterRole",
      metadata: { name: "cluster-admin" },
      rules: WILDCARD,
    } as V1ClusterRole);
    const inv = {
      clusterRoles: [...c.clusterRoles.values()],
      roles: [...c.roles.values()],
      clusterRoleBindings: c.clusterRoleBindings(),
      roleBindings: c.roleBindings(),
    };
    for (const audit of [strict, lax, { forbidClusterAdminBindings: false }]) {
      const whole = rbacFindings(inv, audit);
      const perBinding = [
        ...c.clusterRoleBindings().flatMap((b) => bindingFindings(b, "ClusterRoleBinding", c, audit)),
        ...c.roleBindings().flatMap((b) => bindingFindings(b, "RoleBinding", c, audit)),
      ];
      expect(whole.length).to.be.greaterThan(3);
      expect(perBinding).to.have.deep.members(whole);
    }
  });
});

describe("RBAC events that may change what the operator itself may do concern every policy", () => {
  it("a binding naming a ServiceAccount of csp-system, its ClusterRole, a Role in csp-system", () => {
    const c = new Cache();
    const toOperator: V1ClusterRoleBinding = {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "ClusterRoleBinding",
      metadata: { name: "csp-operator-encryption" },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "rewrite" },
      subjects: [{ kind: "ServiceAccount", name: "csp-operator", namespace: "csp-system" }],
    };
    expect(mayConcernOperator(toOperator, c)).to.equal(true); // deleted: judged from the event's object
    c.put(toOperator);
    expect(mayConcernOperator(clusterRole("rewrite"), c)).to.equal(true);
    expect(mayConcernOperator(clusterRole("other"), c)).to.equal(false);
    expect(mayConcernOperator(role("csp-system", "x", READ_PODS), c)).to.equal(true);
    expect(mayConcernOperator(rb("load", "b", "reader"), c)).to.equal(false);
    expect(
      mayConcernOperator(
        {
          ...rb("load", "b", "reader"),
          subjects: [{ kind: "Group", name: "system:serviceaccounts" }],
        } as V1RoleBinding,
        c,
      ),
    ).to.equal(true);
  });

  it("a Role outside csp-system that a RoleBinding there grants to the operator", () => {
    const c = new Cache();
    const extra = role("team", "csp-operator-extra", READ_PODS);
    c.put(extra);
    expect(mayConcernOperator(extra, c)).to.equal(false); // bound to no one yet
    c.put(rb("team", "to-someone", "csp-operator-extra")); // a binding to a user: not the operator
    expect(mayConcernOperator(extra, c)).to.equal(false);
    c.put({
      ...rb("team", "to-operator", "csp-operator-extra"),
      subjects: [{ kind: "ServiceAccount", name: "csp-operator", namespace: "csp-system" }],
    });
    expect(mayConcernOperator(extra, c)).to.equal(true);
    // The same name in another namespace, and another Role in the same one, stay unconcerned.
    expect(mayConcernOperator(role("elsewhere", "csp-operator-extra", READ_PODS), c)).to.equal(false);
    expect(mayConcernOperator(role("team", "other", READ_PODS), c)).to.equal(false);
  });
});
