import type { V1ClusterRole, V1ClusterRoleBinding, V1Role, V1RoleBinding } from "@kubernetes/client-node";
import { expect } from "chai";
import type { Finding, Severity } from "../../../src/findings/finding.js";
import {
  RBAC_ANONYMOUS,
  RBAC_AUTHENTICATED,
  RBAC_CLUSTER_ADMIN,
  RBAC_DANGLING_BINDING,
  RBAC_DEFAULT_SA,
  RBAC_ESCALATION,
  RBAC_FINDING_IDS,
  RBAC_NODES_PROXY,
  RBAC_SECRETS_READ,
  RBAC_WILDCARD,
  rbacFindings,
  type RbacAuditSpec,
  type RbacInventory,
} from "../../../src/findings/rbac.js";
import {
  type BindingBuilder,
  bootstrapInventory,
  clusterRole,
  clusterRoleBinding,
  group,
  inventory,
  merge,
  role,
  roleBinding,
  type RoleBuilder,
  type RuleInput,
  sa,
  user,
} from "../fixtures/rbac.js";

interface Expected {
  id: string;
  severity: Severity;
  resource: string;
}

function brief(findings: readonly Finding[]): Expected[] {
  return findings.map(({ id, severity, resource }) => ({ id, severity, resource }));
}

/** Findings for the test's objects on top of a fresh cluster's RBAC, which on its own yields none. */
function analyse(inv: RbacInventory, audit: RbacAuditSpec = {}): Finding[] {
  return rbacFindings(merge(bootstrapInventory(), inv), audit);
}

function only(findings: readonly Finding[], id: string): Finding {
  const matching = findings.filter((f) => f.id === id);
  expect(matching, `exactly one ${id}`).to.have.lengthOf(1);
  const [f] = matching;
  if (!f) throw new Error(`no ${id}`);
  return f;
}

type Roles = (RoleBuilder<V1ClusterRole> | RoleBuilder<V1Role>)[];
type Binding = BindingBuilder<V1ClusterRoleBinding> | BindingBuilder<V1RoleBinding>;

interface Case {
  what: string;
  roles: Roles;
  binding: Binding;
  audit?: RbacAuditSpec;
  expected: Expected[];
}

const CRB = (name: string) => `ClusterRoleBinding/${name}`;
const RB = (ns: string, name: string) => `RoleBinding/${ns}/${name}`;

/** One crafted binding per finding kind: it must produce exactly `expected`, and nothing without the binding. */
const CASES: Case[] = [
  {
    what: "wildcard verbs in a ClusterRole bound cluster-wide",
    roles: [clusterRole("pod-god").rule({ verbs: ["*"], resources: ["pods"] })],
    binding: clusterRoleBinding("pod-god", "pod-god").to(user("alice")),
    expected: [{ id: RBAC_WILDCARD, severity: "High", resource: CRB("pod-god") }],
  },
  {
    what: "wildcard resources and apiGroups in a ClusterRole bound in one namespace",
    roles: [clusterRole("reader").rule({ verbs: ["get"], apiGroups: ["*"], resources: ["*/status"] })],
    binding: roleBinding("team-a", "reader", "ClusterRole", "reader").to(user("alice")),
    expected: [{ id: RBAC_WILDCARD, severity: "Medium", resource: RB("team-a", "reader") }],
  },
  {
    what: "cluster-admin bound to a user",
    roles: [],
    binding: clusterRoleBinding("alice-admin", "cluster-admin").to(user("alice")),
    expected: [{ id: RBAC_CLUSTER_ADMIN, severity: "Critical", resource: CRB("alice-admin") }],
  },
  {
    what: "a cluster-admin equivalent bound to a ServiceAccount",
    roles: [clusterRole("god").rule({ verbs: ["*"], apiGroups: ["*"], resources: ["*"] })],
    binding: clusterRoleBinding("ci-god", "god").to(sa("ci", "deployer")),
    expected: [{ id: RBAC_CLUSTER_ADMIN, severity: "Critical", resource: CRB("ci-god") }],
  },
  {
    what: "a role bound to system:anonymous",
    roles: [clusterRole("pod-reader").rule({ verbs: ["get", "list"], resources: ["pods"] })],
    binding: clusterRoleBinding("anon-pods", "pod-reader").to(user("system:anonymous")),
    expected: [{ id: RBAC_ANONYMOUS, severity: "Critical", resource: CRB("anon-pods") }],
  },
  {
    what: "a role bound to system:unauthenticated in a namespace",
    roles: [clusterRole("pod-reader").rule({ verbs: ["get", "list"], resources: ["pods"] })],
    binding: roleBinding("web", "public", "ClusterRole", "pod-reader").to(group("system:unauthenticated")),
    expected: [{ id: RBAC_ANONYMOUS, severity: "Critical", resource: RB("web", "public") }],
  },
  {
    what: "a non-default role bound to system:authenticated",
    roles: [clusterRole("pod-reader").rule({ verbs: ["get", "list"], resources: ["pods"] })],
    binding: clusterRoleBinding("everyone-pods", "pod-reader").to(group("system:authenticated")),
    expected: [{ id: RBAC_AUTHENTICATED, severity: "High", resource: CRB("everyone-pods") }],
  },
  {
    what: "escalate on clusterroles bound cluster-wide",
    roles: [
      clusterRole("role-editor").rule({
        verbs: ["escalate", "update"],
        apiGroups: ["rbac.authorization.k8s.io"],
        resources: ["clusterroles"],
      }),
    ],
    binding: clusterRoleBinding("role-editor", "role-editor").to(user("bob")),
    expected: [{ id: RBAC_ESCALATION, severity: "High", resource: CRB("role-editor") }],
  },
  {
    what: "impersonate on serviceaccounts bound in one namespace",
    roles: [role("team-a", "impersonator").rule({ verbs: ["impersonate"], resources: ["serviceaccounts"] })],
    binding: roleBinding("team-a", "impersonator", "Role", "impersonator").to(user("bob")),
    expected: [{ id: RBAC_ESCALATION, severity: "Medium", resource: RB("team-a", "impersonator") }],
  },
  {
    what: "cluster-wide read of Secrets",
    roles: [clusterRole("secret-reader").rule({ verbs: ["get", "list"], resources: ["secrets"] })],
    binding: clusterRoleBinding("secret-reader", "secret-reader").to(sa("monitoring", "exporter")),
    expected: [{ id: RBAC_SECRETS_READ, severity: "High", resource: CRB("secret-reader") }],
  },
  {
    what: "a RoleBinding to a ClusterRole that reads Secrets (namespace-scoped)",
    roles: [clusterRole("secret-reader").rule({ verbs: ["watch"], resources: ["secrets"] })],
    binding: roleBinding("team-a", "secret-reader", "ClusterRole", "secret-reader").to(sa("team-a", "app")),
    expected: [{ id: RBAC_SECRETS_READ, severity: "Low", resource: RB("team-a", "secret-reader") }],
  },
  {
    what: "nodes/proxy bound cluster-wide",
    roles: [clusterRole("kubelet-poker").rule({ verbs: ["get"], resources: ["nodes/proxy"] })],
    binding: clusterRoleBinding("kubelet-poker", "kubelet-poker").to(sa("monitoring", "scraper")),
    expected: [{ id: RBAC_NODES_PROXY, severity: "High", resource: CRB("kubelet-poker") }],
  },
  {
    what: "rights granted to a namespace's default ServiceAccount",
    roles: [role("team-a", "cm-reader").rule({ verbs: ["get"], resources: ["configmaps"] })],
    binding: roleBinding("team-a", "cm-reader", "Role", "cm-reader").to(sa("team-a", "default")),
    expected: [{ id: RBAC_DEFAULT_SA, severity: "Medium", resource: RB("team-a", "cm-reader") }],
  },
  {
    what: "a ClusterRoleBinding to a ClusterRole that does not exist",
    roles: [],
    binding: clusterRoleBinding("ghost", "no-such-role").to(user("alice")),
    expected: [{ id: RBAC_DANGLING_BINDING, severity: "Info", resource: CRB("ghost") }],
  },
  {
    what: "a RoleBinding to a Role that does not exist in its namespace",
    roles: [role("team-b", "cm-reader").rule({ verbs: ["get"], resources: ["configmaps"] })],
    binding: roleBinding("team-a", "ghost", "Role", "cm-reader").to(user("alice")),
    expected: [{ id: RBAC_DANGLING_BINDING, severity: "Info", resource: RB("team-a", "ghost") }],
  },
];

describe("rbacFindings", () => {
  describe("a fresh cluster", () => {
    it("reports nothing about the bootstrap roles and bindings", () => {
      expect(rbacFindings(bootstrapInventory(), {})).to.deep.equal([]);
    });

    it("reports nothing with every audit option spelled out", () => {
      const audit = {
        forbidWildcards: true,
        forbidClusterAdminBindings: true,
        allowedClusterAdminSubjects: [],
      };
      expect(rbacFindings(bootstrapInventory(), audit)).to.deep.equal([]);
    });

    it("mirrors the bootstrap bindings that would otherwise trip the checks", () => {
      // Guards the fixture: if these were missing, "reports nothing" above would prove little.
      const inv = bootstrapInventory();
      const crbs = inv.clusterRoleBindings.map((b) => b.metadata?.name);
      expect(crbs).to.include.members([
        "cluster-admin",
        "system:basic-user",
        "system:discovery",
        "system:public-info-viewer",
        "system:kube-controller-manager",
        "system:node",
        "system:controller:generic-garbage-collector",
        "system:controller:clusterrole-aggregation-controller",
      ]);
      expect(inv.roleBindings.map((b) => `${b.metadata?.namespace}/${b.metadata?.name}`)).to.include(
        "kube-system/system:controller:token-cleaner",
      );
    });
  });

  describe("each finding kind", () => {
    for (const c of CASES) {
      it(`reports ${c.what}`, () => {
        expect(brief(analyse(inventory(...c.roles, c.binding), c.audit))).to.deep.equal(c.expected);
      });

      it(`reports nothing once the binding for ${c.what} is removed`, () => {
        expect(analyse(inventory(...c.roles), c.audit)).to.deep.equal([]);
      });
    }

    it("exports every id it can emit", () => {
      const ids = new Set(CASES.flatMap((c) => c.expected.map((e) => e.id)));
      expect([...ids].sort()).to.deep.equal([...RBAC_FINDING_IDS].sort());
    });

    it("sets area rbac on every finding", () => {
      for (const c of CASES) {
        for (const f of analyse(inventory(...c.roles, c.binding))) expect(f.area).to.equal("rbac");
      }
    });
  });

  describe("messages", () => {
    it("name the binding, the role, the subjects and the scope", () => {
      const inv = inventory(
        clusterRole("pod-god").rule({ verbs: ["*"], resources: ["pods"] }),
        roleBinding("team-a", "pod-god", "ClusterRole", "pod-god").to(
          user("alice"),
          group("devs"),
          sa("team-a", "app"),
        ),
      );
      expect(only(analyse(inv), RBAC_WILDCARD).message).to.equal(
        "RoleBinding/team-a/pod-god grants ClusterRole pod-god with wildcard verbs to User alice, Group devs, " +
          "ServiceAccount team-a/app in namespace team-a only.",
      );
    });

    it("say when Secrets can be read cluster-wide or only in a namespace", () => {
      const inv = inventory(
        clusterRole("secret-reader").rule({ verbs: ["get", "list", "watch"], resources: ["secrets"] }),
        clusterRoleBinding("everywhere", "secret-reader").to(user("alice")),
        roleBinding("team-a", "here", "ClusterRole", "secret-reader").to(user("alice")),
      );
      const [cluster, namespaced] = analyse(inv);
      expect(cluster?.message).to.equal(
        "ClusterRoleBinding/everywhere grants ClusterRole secret-reader, which can get/list/watch every Secret " +
          "in the cluster, to User alice.",
      );
      expect(namespaced?.message).to.equal(
        "RoleBinding/team-a/here grants ClusterRole secret-reader, which can get/list/watch the Secrets of " +
          "namespace team-a only, to User alice.",
      );
    });

    it("name only the subjects outside allowedClusterAdminSubjects", () => {
      const inv = inventory(clusterRoleBinding("admins", "cluster-admin").to(user("alice"), user("bob")));
      const f = only(
        analyse(inv, { allowedClusterAdminSubjects: [{ kind: "User", name: "alice" }] }),
        RBAC_CLUSTER_ADMIN,
      );
      expect(f.message).to.equal(
        "ClusterRoleBinding/admins grants ClusterRole cluster-admin cluster-wide to User bob, not listed in " +
          "spec.rbac.audit.allowedClusterAdminSubjects.",
      );
    });

    it("list at most five subjects", () => {
      const users = ["a", "b", "c", "d", "e", "f", "g"].map((n) => user(n));
      const inv = inventory(
        clusterRole("pod-god").rule({ verbs: ["*"], resources: ["pods"] }),
        clusterRoleBinding("many", "pod-god").to(...users),
      );
      expect(only(analyse(inv), RBAC_WILDCARD).message).to.contain("User e and 2 more cluster-wide");
    });

    it("explain a dangling binding's latent grant", () => {
      const inv = inventory(roleBinding("team-a", "ghost", "ClusterRole", "gone").to(sa("team-a", "app")));
      expect(only(analyse(inv), RBAC_DANGLING_BINDING).message).to.equal(
        "RoleBinding/team-a/ghost references ClusterRole gone, which does not exist; creating it later would " +
          "grant it to ServiceAccount team-a/app.",
      );
    });
  });

  describe("roles are judged where they are bound", () => {
    it("does not report unbound roles, however risky", () => {
      const inv = inventory(
        clusterRole("god").rule({ verbs: ["*"], apiGroups: ["*"], resources: ["*"] }),
        role("team-a", "everything").rule({ verbs: ["*", "escalate"], apiGroups: ["*"], resources: ["*"] }),
      );
      expect(analyse(inv)).to.deep.equal([]);
    });

    it("grants a ClusterRole through a RoleBinding only in that namespace", () => {
      const inv = inventory(
        roleBinding("team-a", "ns-admin", "ClusterRole", "cluster-admin").to(user("alice")),
      );
      expect(brief(analyse(inv))).to.deep.equal([
        { id: RBAC_ESCALATION, severity: "Medium", resource: RB("team-a", "ns-admin") },
        { id: RBAC_WILDCARD, severity: "Medium", resource: RB("team-a", "ns-admin") },
        { id: RBAC_SECRETS_READ, severity: "Low", resource: RB("team-a", "ns-admin") },
      ]);
    });

    it("never reports nodes/proxy through a RoleBinding: nodes are cluster-scoped", () => {
      const inv = inventory(
        clusterRole("kubelet-poker").rule({ verbs: ["get"], resources: ["nodes/proxy"] }),
        roleBinding("team-a", "kubelet-poker", "ClusterRole", "kubelet-poker").to(user("alice")),
      );
      expect(analyse(inv)).to.deep.equal([]);
    });

    it("uses the rules an aggregated ClusterRole already holds", () => {
      const inv = inventory(
        clusterRole("monitoring")
          .aggregatedFrom({ "example.com/aggregate-to-monitoring": "true" })
          .rule({ verbs: ["get"], resources: ["nodes/proxy"] }),
        clusterRoleBinding("monitoring", "monitoring").to(sa("monitoring", "prometheus")),
      );
      expect(brief(analyse(inv))).to.deep.equal([
        { id: RBAC_NODES_PROXY, severity: "High", resource: CRB("monitoring") },
      ]);
    });

    it("reports a binding's built-in `edit` role by what it holds", () => {
      const inv = inventory(roleBinding("team-a", "alice-edit", "ClusterRole", "edit").to(user("alice")));
      expect(brief(analyse(inv))).to.deep.equal([
        { id: RBAC_ESCALATION, severity: "Medium", resource: RB("team-a", "alice-edit") },
        { id: RBAC_SECRETS_READ, severity: "Low", resource: RB("team-a", "alice-edit") },
      ]);
    });
  });

  describe("wildcards", () => {
    const podGod = clusterRole("pod-god").rule({ verbs: ["*"], resources: ["pods"] });

    it("are not reported when forbidWildcards is false", () => {
      const inv = inventory(podGod, clusterRoleBinding("pod-god", "pod-god").to(user("alice")));
      expect(analyse(inv, { forbidWildcards: false })).to.deep.equal([]);
    });

    it("in nonResourceURLs rules are not judged", () => {
      const inv = inventory(
        clusterRole("urls").rule({ verbs: ["*"], nonResourceURLs: ["*"] }),
        clusterRoleBinding("urls", "urls").to(user("alice")),
      );
      expect(analyse(inv)).to.deep.equal([]);
    });

    it("in the core group's resources also grant Secrets", () => {
      const inv = inventory(
        clusterRole("core-reader").rule({ verbs: ["get"], resources: ["*"] }),
        clusterRoleBinding("core-reader", "core-reader").to(user("alice")),
      );
      expect(brief(analyse(inv))).to.deep.equal([
        { id: RBAC_NODES_PROXY, severity: "High", resource: CRB("core-reader") },
        { id: RBAC_SECRETS_READ, severity: "High", resource: CRB("core-reader") },
        { id: RBAC_WILDCARD, severity: "High", resource: CRB("core-reader") },
      ]);
    });
  });

  describe("cluster-admin", () => {
    it("is reported once, not also as wildcards, escalation, secrets and nodes/proxy", () => {
      const inv = inventory(clusterRoleBinding("alice-admin", "cluster-admin").to(user("alice")));
      expect(analyse(inv).map((f) => f.id)).to.deep.equal([RBAC_CLUSTER_ADMIN]);
    });

    it("is allowed for allowedClusterAdminSubjects", () => {
      const inv = inventory(
        clusterRoleBinding("alice-admin", "cluster-admin").to(user("alice"), sa("ops", "breakglass")),
      );
      const audit: RbacAuditSpec = {
        allowedClusterAdminSubjects: [
          { kind: "User", name: "alice" },
          { kind: "ServiceAccount", name: "breakglass", namespace: "ops" },
        ],
      };
      expect(analyse(inv, audit)).to.deep.equal([]);
    });

    it("matches an allowed ServiceAccount given as its user name", () => {
      const inv = inventory(
        clusterRoleBinding("sa-admin", "cluster-admin").to(user("system:serviceaccount:ops:breakglass")),
      );
      const audit: RbacAuditSpec = {
        allowedClusterAdminSubjects: [{ kind: "ServiceAccount", name: "breakglass", namespace: "ops" }],
      };
      expect(analyse(inv, audit)).to.deep.equal([]);
    });

    it("does not allow a subject of another kind with the same name", () => {
      const inv = inventory(clusterRoleBinding("admins", "cluster-admin").to(group("alice")));
      const audit: RbacAuditSpec = { allowedClusterAdminSubjects: [{ kind: "User", name: "alice" }] };
      expect(brief(analyse(inv, audit))).to.deep.equal([
        { id: RBAC_CLUSTER_ADMIN, severity: "Critical", resource: CRB("admins") },
      ]);
    });

    it("is always allowed for group system:masters, whatever the binding is called", () => {
      const inv = inventory(clusterRoleBinding("masters-again", "cluster-admin").to(group("system:masters")));
      expect(analyse(inv)).to.deep.equal([]);
    });

    it("is not reported, nor re-reported as wildcards, when forbidClusterAdminBindings is false", () => {
      const inv = inventory(clusterRoleBinding("alice-admin", "cluster-admin").to(user("alice")));
      expect(analyse(inv, { forbidClusterAdminBindings: false })).to.deep.equal([]);
    });

    it("is reported for control-plane identities even in a system: binding", () => {
      const inv = inventory(
        clusterRoleBinding("system:scheduler-admin", "cluster-admin").to(user("system:kube-scheduler")),
      );
      expect(brief(analyse(inv))).to.deep.equal([
        { id: RBAC_CLUSTER_ADMIN, severity: "Critical", resource: CRB("system:scheduler-admin") },
      ]);
    });

    it("through a RoleBinding is namespace admin, not cluster-admin", () => {
      const inv = inventory(
        roleBinding("team-a", "ns-admin", "ClusterRole", "cluster-admin").to(user("alice")),
      );
      expect(analyse(inv).map((f) => f.id)).not.to.include(RBAC_CLUSTER_ADMIN);
    });

    it("needs `*` verbs, resources and groups in one rule without resourceNames to be equivalent", () => {
      const inv = inventory(
        clusterRole("almost").rule({
          verbs: ["*"],
          apiGroups: ["*"],
          resources: ["*"],
          resourceNames: ["x"],
        }),
        clusterRoleBinding("almost", "almost").to(user("alice")),
      );
      expect(analyse(inv).map((f) => f.id)).to.deep.equal([RBAC_ESCALATION, RBAC_NODES_PROXY, RBAC_WILDCARD]);
    });
  });

  describe("built-in system bindings", () => {
    const gc = clusterRole("system:controller:my-gc").rule({
      verbs: ["get", "list", "delete"],
      apiGroups: ["*"],
      resources: ["*"],
    });

    it("are not reported when named system: and bound only to control-plane identities", () => {
      const inv = inventory(
        gc,
        clusterRoleBinding("system:controller:my-gc", "system:controller:my-gc").to(
          sa("kube-system", "my-gc"),
          user("system:kube-controller-manager"),
          group("system:nodes"),
        ),
      );
      expect(analyse(inv)).to.deep.equal([]);
    });

    it("are reported once a person is added to them", () => {
      const inv = inventory(
        gc,
        clusterRoleBinding("system:controller:my-gc", "system:controller:my-gc").to(
          sa("kube-system", "my-gc"),
          user("mallory"),
        ),
      );
      expect(analyse(inv).map((f) => f.id)).to.deep.equal([
        RBAC_NODES_PROXY,
        RBAC_SECRETS_READ,
        RBAC_WILDCARD,
      ]);
    });

    it("need the system: name: the same grant under another name is reported", () => {
      const inv = inventory(
        gc,
        clusterRoleBinding("my-gc", "system:controller:my-gc").to(sa("kube-system", "my-gc")),
      );
      expect(analyse(inv).map((f) => f.id)).to.deep.equal([
        RBAC_NODES_PROXY,
        RBAC_SECRETS_READ,
        RBAC_WILDCARD,
      ]);
    });

    it("do not cover ServiceAccounts outside kube-system, kube-system's default or broad groups", () => {
      for (const subject of [
        sa("apps", "my-gc"),
        sa("kube-system", "default"),
        group("system:serviceaccounts"),
      ]) {
        const inv = inventory(
          gc,
          clusterRoleBinding("system:controller:my-gc", "system:controller:my-gc").to(subject),
        );
        expect(analyse(inv).map((f) => f.id)).to.include(RBAC_WILDCARD);
      }
    });

    it("do not cover a ServiceAccount disguised as a system: user", () => {
      const inv = inventory(
        gc,
        clusterRoleBinding("system:controller:my-gc", "system:controller:my-gc").to(
          user("system:serviceaccount:apps:x"),
        ),
      );
      expect(analyse(inv).map((f) => f.id)).to.include(RBAC_WILDCARD);
    });
  });

  describe("broad groups", () => {
    const discovery = clusterRoleBinding("anon-discovery", "system:discovery");

    it("allow only public-info-viewer for system:unauthenticated", () => {
      const inv = inventory(discovery.to(group("system:unauthenticated")));
      expect(brief(analyse(inv))).to.deep.equal([
        { id: RBAC_ANONYMOUS, severity: "Critical", resource: CRB("anon-discovery") },
      ]);
    });

    it("allow the default roles for system:authenticated under any binding name", () => {
      const inv = inventory(
        clusterRoleBinding("my-basic", "system:basic-user").to(group("system:authenticated")),
        roleBinding("team-a", "my-info", "ClusterRole", "system:public-info-viewer").to(
          group("system:authenticated"),
        ),
      );
      expect(analyse(inv)).to.deep.equal([]);
    });

    it("report a namespaced grant to system:authenticated too", () => {
      const inv = inventory(
        role("team-a", "cm-reader").rule({ verbs: ["get"], resources: ["configmaps"] }),
        roleBinding("team-a", "everyone", "Role", "cm-reader").to(group("system:authenticated")),
      );
      const f = only(analyse(inv), RBAC_AUTHENTICATED);
      expect(f.severity).to.equal("High");
      expect(f.message).to.contain("in namespace team-a only");
    });

    it("report a default role bound to both anonymous and a user only for the anonymous part", () => {
      const inv = inventory(
        clusterRoleBinding("mixed", "system:discovery").to(user("alice"), user("system:anonymous")),
      );
      const f = only(analyse(inv), RBAC_ANONYMOUS);
      expect(f.message).to.contain("(User system:anonymous)");
      expect(f.message).not.to.contain("alice");
    });
  });

  describe("escalation", () => {
    function escalationOf(rule: RuleInput): Finding[] {
      const inv = inventory(clusterRole("r").rule(rule), clusterRoleBinding("r", "r").to(user("bob")));
      return analyse(inv, { forbidWildcards: false }).filter((f) => f.id === RBAC_ESCALATION);
    }

    it("covers bind on roles", () => {
      const [f] = escalationOf({
        verbs: ["bind"],
        apiGroups: ["rbac.authorization.k8s.io"],
        resources: ["roles"],
      });
      expect(f?.message).to.contain("which allows bind (privilege escalation)");
    });

    it("covers impersonate on users, groups and userextras", () => {
      expect(escalationOf({ verbs: ["impersonate"], resources: ["users", "groups"] })).to.have.lengthOf(1);
      expect(
        escalationOf({
          verbs: ["impersonate"],
          apiGroups: ["authentication.k8s.io"],
          resources: ["userextras/scopes"],
        }),
      ).to.have.lengthOf(1);
    });

    it("covers `*` verbs on RBAC roles", () => {
      const [f] = escalationOf({
        verbs: ["*"],
        apiGroups: ["rbac.authorization.k8s.io"],
        resources: ["clusterroles"],
      });
      expect(f?.message).to.contain("which allows escalate, bind (privilege escalation)");
    });

    it("ignores the verbs on resources where they mean nothing", () => {
      expect(escalationOf({ verbs: ["escalate", "bind", "impersonate"], resources: ["pods"] })).to.deep.equal(
        [],
      );
    });
  });

  describe("Secrets", () => {
    it("are not reported when read by name only", () => {
      const inv = inventory(
        clusterRole("one-secret").rule({ verbs: ["get"], resources: ["secrets"], resourceNames: ["tls"] }),
        clusterRoleBinding("one-secret", "one-secret").to(user("alice")),
      );
      expect(analyse(inv)).to.deep.equal([]);
    });

    it("are not reported for write-only access", () => {
      const inv = inventory(
        clusterRole("secret-writer").rule({ verbs: ["create", "update"], resources: ["secrets"] }),
        clusterRoleBinding("secret-writer", "secret-writer").to(user("alice")),
      );
      expect(analyse(inv)).to.deep.equal([]);
    });

    it("are reported at Low for a Role in the binding's namespace", () => {
      const inv = inventory(
        role("team-a", "secret-reader").rule({ verbs: ["list"], resources: ["secrets"] }),
        roleBinding("team-a", "secret-reader", "Role", "secret-reader").to(sa("team-a", "app")),
      );
      expect(brief(analyse(inv))).to.deep.equal([
        { id: RBAC_SECRETS_READ, severity: "Low", resource: RB("team-a", "secret-reader") },
      ]);
    });
  });

  describe("nodes/proxy", () => {
    it("is reported for */proxy", () => {
      const inv = inventory(
        clusterRole("proxies").rule({ verbs: ["get"], resources: ["*/proxy"] }),
        clusterRoleBinding("proxies", "proxies").to(user("alice")),
      );
      expect(analyse(inv, { forbidWildcards: false }).map((f) => f.id)).to.deep.equal([RBAC_NODES_PROXY]);
    });

    it("is not reported for other node subresources", () => {
      const inv = inventory(
        clusterRole("node-metrics").rule({ verbs: ["get"], resources: ["nodes/metrics", "nodes/stats"] }),
        clusterRoleBinding("node-metrics", "node-metrics").to(user("alice")),
      );
      expect(analyse(inv)).to.deep.equal([]);
    });
  });

  describe("default ServiceAccount", () => {
    const cmReader = clusterRole("cm-reader").rule({ verbs: ["get"], resources: ["configmaps"] });

    it("is found without a namespace in a RoleBinding, as the authorizer reads it", () => {
      const inv = inventory(
        cmReader,
        roleBinding("team-a", "implicit", "ClusterRole", "cm-reader").to({
          kind: "ServiceAccount",
          name: "default",
        }),
      );
      expect(only(analyse(inv), RBAC_DEFAULT_SA).message).to.contain("ServiceAccount team-a/default");
    });

    it("is found when written as its user name", () => {
      const inv = inventory(
        cmReader,
        clusterRoleBinding("as-user", "cm-reader").to(user("system:serviceaccount:team-a:default")),
      );
      const f = only(analyse(inv), RBAC_DEFAULT_SA);
      expect(f.severity).to.equal("Medium");
      expect(f.message).to.contain("cluster-wide");
    });

    it("is not confused with a ServiceAccount of another name", () => {
      const inv = inventory(cmReader, clusterRoleBinding("app", "cm-reader").to(sa("team-a", "default-app")));
      expect(analyse(inv)).to.deep.equal([]);
    });
  });

  describe("the operator's own generated RBAC", () => {
    const wild = role("team-a", "csp-deployer")
      .label("app.kubernetes.io/managed-by", "csp-operator")
      .rule({ verbs: ["*"], apiGroups: ["apps"], resources: ["deployments"] });
    const binding = roleBinding("team-a", "csp-deployer", "Role", "csp-deployer")
      .label("app.kubernetes.io/managed-by", "csp-operator")
      .to(sa("team-a", "csp-deployer"));

    it("is analysed like anything else, with a hint where to fix it", () => {
      const findings = rbacFindings(inventory(wild, binding), {}, { ignoreManagedBy: "csp-operator" });
      expect(brief(findings)).to.deep.equal([
        { id: RBAC_WILDCARD, severity: "Medium", resource: RB("team-a", "csp-deployer") },
      ]);
      expect(findings[0]?.message).to.contain("generated from the policy's spec.rbac.roles");
    });

    it("gets no hint when the label names another manager", () => {
      const findings = rbacFindings(inventory(wild, binding), {}, { ignoreManagedBy: "helm" });
      expect(findings[0]?.message).not.to.contain("spec.rbac.roles");
    });

    it("reports nothing when clean", () => {
      const clean = role("team-a", "csp-deployer")
        .label("app.kubernetes.io/managed-by", "csp-operator")
        .rule({ verbs: ["get", "update"], apiGroups: ["apps"], resources: ["deployments"] });
      expect(rbacFindings(inventory(clean, binding), {}, { ignoreManagedBy: "csp-operator" })).to.deep.equal(
        [],
      );
    });
  });

  describe("output", () => {
    const objects = [
      clusterRole("pod-god").rule({ verbs: ["*"], resources: ["pods"] }),
      clusterRoleBinding("b-wild", "pod-god").to(user("alice")),
      clusterRoleBinding("a-admin", "cluster-admin").to(user("alice")),
      clusterRoleBinding("ghost", "gone").to(user("alice")),
      roleBinding("team-a", "default-sa", "ClusterRole", "pod-god").to(sa("team-a", "default")),
    ] as const;

    it("is sorted most severe first, then by id and resource", () => {
      expect(brief(analyse(inventory(...objects)))).to.deep.equal([
        { id: RBAC_CLUSTER_ADMIN, severity: "Critical", resource: CRB("a-admin") },
        { id: RBAC_WILDCARD, severity: "High", resource: CRB("b-wild") },
        { id: RBAC_DEFAULT_SA, severity: "Medium", resource: RB("team-a", "default-sa") },
        { id: RBAC_WILDCARD, severity: "Medium", resource: RB("team-a", "default-sa") },
        { id: RBAC_DANGLING_BINDING, severity: "Info", resource: CRB("ghost") },
      ]);
    });

    it("does not depend on the input order", () => {
      const forward = analyse(inventory(...objects));
      const backward = analyse(inventory(...[...objects].reverse()));
      expect(backward).to.deep.equal(forward);
    });

    it("has no duplicates when an object is listed twice", () => {
      const once = analyse(inventory(...objects));
      expect(analyse(inventory(...objects, ...objects))).to.deep.equal(once);
    });

    it("lists a subject named twice in a binding once", () => {
      const inv = inventory(
        objects[0],
        clusterRoleBinding("twice", "pod-god").to(user("alice"), user("alice")),
      );
      expect(only(analyse(inv), RBAC_WILDCARD).message).to.contain("to User alice cluster-wide");
    });
  });

  describe("odd input", () => {
    it("never throws and skips what cannot be judged", () => {
      const odd = {
        clusterRoles: [
          { metadata: { name: "no-rules" } },
          { metadata: { name: "null-rules" }, rules: null },
          {
            metadata: { name: "odd-rules" },
            rules: [null, { verbs: null }, { verbs: ["*"], resources: "pods" }],
          },
          {},
          null,
        ],
        roles: [
          {
            metadata: { name: "no-namespace" },
            rules: [{ verbs: ["*"], apiGroups: ["*"], resources: ["*"] }],
          },
        ],
        clusterRoleBindings: [
          { metadata: { name: "no-subjects" }, roleRef: { kind: "ClusterRole", name: "cluster-admin" } },
          {
            metadata: { name: "null-subjects" },
            roleRef: { kind: "ClusterRole", name: "cluster-admin" },
            subjects: null,
          },
          { metadata: { name: "no-roleref" }, subjects: [{ kind: "User", name: "alice" }] },
          {
            metadata: { name: "role-in-crb" },
            roleRef: { kind: "Role", name: "x" },
            subjects: [{ kind: "User", name: "a" }],
          },
          {
            metadata: { name: "weird-kind" },
            roleRef: { kind: "Thing", name: "x" },
            subjects: [{ kind: "User", name: "a" }],
          },
          {
            metadata: { name: "odd-subjects" },
            roleRef: { kind: "ClusterRole", name: "cluster-admin" },
            subjects: [
              null,
              {},
              { kind: "Robot", name: "r2d2" },
              { kind: "User" },
              { kind: "ServiceAccount", name: "sa" },
            ],
          },
          {
            metadata: { name: "odd-rules" },
            roleRef: { kind: "ClusterRole", name: "odd-rules" },
            subjects: [{ kind: "User", name: "a" }],
          },
          {
            roleRef: { kind: "ClusterRole", name: "cluster-admin" },
            subjects: [{ kind: "User", name: "a" }],
          },
          null,
        ],
        roleBindings: [
          {
            metadata: { name: "no-namespace" },
            roleRef: { kind: "Role", name: "x" },
            subjects: [{ kind: "User", name: "a" }],
          },
          {
            metadata: { name: "no-rules", namespace: "team-a" },
            roleRef: { kind: "ClusterRole", name: "no-rules" },
          },
        ],
      } as unknown as RbacInventory;
      expect(() => rbacFindings(odd, {})).not.to.throw();
      // On top of the bootstrap roles, so that cluster-admin exists and only the oddities are judged.
      expect(analyse(odd)).to.deep.equal([]);
    });

    it("tolerates a missing audit section and missing inventory lists", () => {
      const inv = { clusterRoles: undefined, roles: undefined } as unknown as RbacInventory;
      expect(rbacFindings(inv, undefined as unknown as RbacAuditSpec)).to.deep.equal([]);
    });

    it("still reports a dangling binding that has no subjects", () => {
      const inv = inventory(clusterRoleBinding("empty-ghost", "gone"));
      expect(brief(analyse(inv))).to.deep.equal([
        { id: RBAC_DANGLING_BINDING, severity: "Info", resource: CRB("empty-ghost") },
      ]);
    });
  });
});
