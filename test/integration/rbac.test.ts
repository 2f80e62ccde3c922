/**
 * Needs the local control plane (built on first use by controlplane/build.sh).
 * Least privilege, proven on a real API server: the operator runs with a token of its own ServiceAccount
 * bound to the ClusterRoles in config/rbac, generates Roles that grant exactly what they say, is refused
 * (and says so) when a policy asks for more than it may grant, and reports risky RBAC as it comes and goes.
 */
import { expect } from "chai";
import type { KubernetesObject } from "@kubernetes/client-node";
import { loadKubeConfig } from "../../src/cluster/client.js";
import { silentLogger } from "../../src/observability/logger.js";
import { EncryptionClient } from "../../src/cluster/encryption.js";
import { Operator } from "../../src/controller/manager.js";
import { useControlPlane } from "../support/controlplane.js";
import { eventually } from "../support/eventually.js";
import { kubectlOk } from "../support/kubectl.js";
import { installCrd } from "../support/crd.js";

const POLICY = `apiVersion: security.csp-operator.io/v1alpha1
kind: ClusterSecurityPolicy
metadata: { name: least }
spec:
  namespaces: { selector: { matchLabels: { app: shop } } }
  networkPolicies: { defaultDenyIngress: true, defaultDenyEgress: true, allowDNS: true }
  podSecurity: { enforce: restricted }
  serviceAccounts: { automountDefaultToken: false }
  rbac:
    roles:
      - name: catalog-reader
        serviceAccount: catalog
        rules:
          - { apiGroups: [""], resources: [services, pods], verbs: [get, list, watch] }
    audit: { forbidWildcards: true, forbidClusterAdminBindings: true }
  exemptions:
    - findingId: RBAC-NODES-PROXY
      resource: ClusterRoleBinding/csp-operator
      reason: the operator reads kubelet configz through nodes/proxy for the CIS 4.2.x checks
    - findingId: RBAC-SECRETS-READ
      resource: RoleBinding/csp-system/csp-operator
      reason: the operator keeps its encryption key ring in csp-system
`;

/** Risky RBAC a user might already have, each with the finding it must produce on its binding. */
const RISKY: { id: string; resource: string; yaml: string }[] = [
  {
    id: "RBAC-CLUSTER-ADMIN",
    resource: "ClusterRoleBinding/mallory-admin",
    yaml: `apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: { name: mallory-admin }
roleRef: { apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin }
subjects: [{ kind: User, name: mallory, apiGroup: rbac.authorization.k8s.io }]`,
  },
  {
    id: "RBAC-WILDCARD",
    resource: "RoleBinding/shop/dev-everything",
    yaml: `apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: { name: everything, namespace: shop }
rules: [{ apiGroups: ["*"], resources: ["*"], verbs: ["*"] }]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: { name: dev-everything, namespace: shop }
roleRef: { apiGroup: rbac.authorization.k8s.io, kind: Role, name: everything }
subjects: [{ kind: Group, name: developers, apiGroup: rbac.authorization.k8s.io }]`,
  },
  {
    id: "RBAC-ANONYMOUS",
    resource: "ClusterRoleBinding/anonymous-view",
    yaml: `apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: { name: anonymous-view }
roleRef: { apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view }
subjects: [{ kind: User, name: "system:anonymous", apiGroup: rbac.authorization.k8s.io }]`,
  },
  {
    id: "RBAC-AUTHENTICATED",
    resource: "ClusterRoleBinding/everyone-edit",
    yaml: `apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: { name: everyone-edit }
roleRef: { apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: edit }
subjects: [{ kind: Group, name: "system:authenticated", apiGroup: rbac.authorization.k8s.io }]`,
  },
  {
    id: "RBAC-SECRETS-READ",
    resource: "ClusterRoleBinding/bob-secrets",
    yaml: `apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: { name: secret-reader }
rules: [{ apiGroups: [""], resources: [secrets], verbs: [get, list] }]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: { name: bob-secrets }
roleRef: { apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: secret-reader }
subjects: [{ kind: User, name: bob, apiGroup: rbac.authorization.k8s.io }]`,
  },
  {
    id: "RBAC-NODES-PROXY",
    resource: "ClusterRoleBinding/carol-kubelet",
    yaml: `apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: { name: kubelet-api }
rules: [{ apiGroups: [""], resources: [nodes/proxy], verbs: [get, create] }]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: { name: carol-kubelet }
roleRef: { apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: kubelet-api }
subjects: [{ kind: User, name: carol, apiGroup: rbac.authorization.k8s.io }]`,
  },
  {
    id: "RBAC-ESCALATION",
    resource: "RoleBinding/shop/dave-escalate",
    yaml: `apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: { name: role-admin, namespace: shop }
rules: [{ apiGroups: [rbac.authorization.k8s.io], resources: [roles], verbs: [get, escalate, bind] }]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: { name: dave-escalate, namespace: shop }
roleRef: { apiGroup: rbac.authorization.k8s.io, kind: Role, name: role-admin }
subjects: [{ kind: User, name: dave, apiGroup: rbac.authorization.k8s.io }]`,
  },
  {
    id: "RBAC-DEFAULT-SA",
    resource: "RoleBinding/shop/default-edit",
    yaml: `apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: { name: default-edit, namespace: shop }
roleRef: { apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: edit }
subjects: [{ kind: ServiceAccount, name: default, namespace: shop }]`,
  },
];

interface Status {
  conditions?: { type: string; status: string; reason: string; message: string }[];
  findings?: { id: string; resource: string; severity: string }[];
}

describe("least privilege (real API server, operator on its own ServiceAccount token)", function () {
  this.timeout(120_000);
  const cp = useControlPlane({ name: "rbac" });
  let operator: Operator | undefined;
  let kubeconfig = "";
  const ok = kubectlOk(cp);
  const status = async () =>
    (JSON.parse(await ok(["get", "csp", "least", "-o", "json"])) as { status?: Status }).status ?? {};
  const condition = async (type: string) => (await status()).conditions?.find((c) => c.type === type);
  const canI = async (verb: string, resource: string, as: string, namespace = "shop") =>
    (await cp().kubectl(["auth", "can-i", verb, resource, "-n", namespace, `--as=${as}`])).stdout.trim();

  before(async function () {
    this.timeout(120_000);
    await installCrd(cp());
    await ok(["create", "namespace", "csp-system"]);
    await ok(["apply", "-k", "config/rbac"]);
    await ok(["create", "namespace", "shop"]);
    await ok(["label", "namespace", "shop", "app=shop"]);
    // The aggregation controller fills csp-operator-grantable from its labelled parts.
    await eventually("grantable role aggregated", async () =>
      (
        await ok(["get", "clusterrole", "csp-operator-grantable", "-o", "jsonpath={.rules[*].resources}"])
      ).includes("services"),
    );
    kubeconfig = await cp().serviceAccountKubeconfig("csp-system", "csp-operator");
    operator = new Operator(loadKubeConfig(kubeconfig), { workers: 2, resyncMs: 600_000 }, silentLogger());
    await operator.start();
  });

  after(async () => {
    await operator?.stop();
  });

  it("does its whole job under the ClusterRoles in config/rbac, and no more", async () => {
    await ok(["apply", "-f", "-"], POLICY);
    await ok(["wait", "--for=condition=Ready", "csp/least", "--timeout=60s"]);
    await eventually(
      "Compliant",
      async () => {
        const c = await condition("Compliant");
        if (c?.status !== "True")
          throw new Error(`${c?.message}: ${JSON.stringify((await status()).findings)}`);
        return c;
      },
      60_000,
    );
    const sa = "system:serviceaccount:csp-system:csp-operator";
    expect(await canI("escalate", "roles", sa)).to.equal("no");
    expect(await canI("bind", "clusterroles", sa)).to.equal("no");
    expect(await canI("get", "secrets", sa)).to.equal("no");
    expect(await canI("create", "clusterrolebindings", sa)).to.equal("no");
  });

  it("holds no write on Leases and no ConfigMaps or pod logs outside csp-system", async () => {
    const sa = "system:serviceaccount:csp-system:csp-operator";
    // kube-system's leader-election Leases and the API servers' identity Leases are not the operator's to
    // write: a forged identity Lease would let a key rotation proceed without that API server.
    for (const verb of ["create", "update", "patch", "delete"])
      expect(await canI(verb, "leases", sa, "kube-system"), `${verb} leases in kube-system`).to.equal("no");
    expect(await canI("update", "leases", sa, "shop")).to.equal("no");
    expect(await canI("list", "leases", sa, "shop")).to.equal("no");
    expect(await canI("get", "configmaps", sa, "kube-system")).to.equal("no");
    expect(await canI("list", "configmaps", sa, "shop")).to.equal("no");
    // (`can-i get pods/log` would ask about a pod named "log": the subresource is a flag.)
    for (const ns of ["shop", "kube-system"]) {
      const logs = await cp().kubectl([
        "auth",
        "can-i",
        "get",
        "pods",
        "--subresource=log",
        "-n",
        ns,
        `--as=${sa}`,
      ]);
      expect(logs.stdout.trim(), `pods/log in ${ns}`).to.equal("no");
    }
    // What it does need stays: the identity Leases (read), its own future leader-election Lease by name,
    // and its ConfigMaps in csp-system.
    expect(await canI("list", "leases", sa, "kube-system")).to.equal("yes");
    expect(await canI("update", "leases/csp-operator-leader", sa, "csp-system")).to.equal("yes");
    expect(await canI("update", "leases/someone-else", sa, "csp-system")).to.equal("no");
    expect(await canI("delete", "leases/csp-operator-leader", sa, "csp-system")).to.equal("no");
    expect(await canI("list", "configmaps", sa, "csp-system")).to.equal("yes");
  });

  it("reads the API servers' identity Leases with exactly the request the rotation makes", async () => {
    // The same call the encryption area makes, on the operator's own token: undefined would mean Forbidden.
    const ids = await new EncryptionClient(loadKubeConfig(kubeconfig)).apiServerIdentities(new Date());
    expect(ids).to.be.an("array").that.is.not.empty;
    expect(ids![0]).to.match(/^apiserver-/);
  });

  it("the generated ServiceAccount can do what its Role says and nothing else", async () => {
    const app = "system:serviceaccount:shop:catalog";
    expect(await canI("list", "services", app)).to.equal("yes");
    expect(await canI("watch", "pods", app)).to.equal("yes");
    expect(await canI("delete", "pods", app)).to.equal("no");
    expect(await canI("get", "secrets", app)).to.equal("no");
    expect(await canI("list", "services", "system:serviceaccount:shop:default")).to.equal("no");
    const token = await ok([
      "get",
      "serviceaccount",
      "catalog",
      "-n",
      "shop",
      "-o",
      "jsonpath={.automountServiceAccountToken}",
    ]);
    expect(token).to.equal("false");
  });

  it("restores a generated Role and RoleBinding changed by hand", async () => {
    await ok([
      "patch",
      "role",
      "catalog-reader",
      "-n",
      "shop",
      "--type=json",
      "-p",
      '[{"op":"add","path":"/rules/-","value":{"apiGroups":[""],"resources":["endpoints"],"verbs":["get"]}}]',
    ]);
    await ok(["delete", "rolebinding", "catalog-reader", "-n", "shop"]);
    await eventually(
      "binding restored",
      async () => (await cp().kubectl(["get", "rolebinding", "catalog-reader", "-n", "shop"])).code === 0,
    );
    await eventually(
      "extra rule removed",
      async () => (await canI("get", "endpoints", "system:serviceaccount:shop:catalog")) === "no",
    );
    expect(await canI("list", "services", "system:serviceaccount:shop:catalog")).to.equal("yes");
  });

  it("says so in status when a Role asks for more than the operator may grant, and recovers", async () => {
    const greedy = POLICY.replace(
      '          - { apiGroups: [""], resources: [services, pods], verbs: [get, list, watch] }',
      '          - { apiGroups: [""], resources: [services, pods], verbs: [get, list, watch] }\n          - { apiGroups: [""], resources: [secrets, configmaps, pods/log], verbs: [get] }',
    );
    expect(greedy).to.not.equal(POLICY);
    await ok(["apply", "-f", "-"], greedy);
    const ready = await eventually("RoleNotGrantable", async () => {
      const c = await condition("Ready");
      return c?.reason === "RoleNotGrantable" ? c : undefined;
    });
    expect(ready.status).to.equal("False");
    expect(ready.message).to.contain("spec.rbac.roles[name=catalog-reader]");
    expect(ready.message).to.contain("secrets");
    // Neither ConfigMaps nor pod logs are grantable by default: the operator does not hold them.
    expect(ready.message).to.contain("configmaps");
    expect(ready.message).to.contain("pods/log");
    expect(ready.message).to.contain("csp-operator-grantable");
    // The Role was not widened, and the access already granted stays as it was.
    expect(await canI("get", "secrets", "system:serviceaccount:shop:catalog")).to.equal("no");
    expect(await canI("list", "services", "system:serviceaccount:shop:catalog")).to.equal("yes");
    await ok(["apply", "-f", "-"], POLICY);
    await eventually("Ready again", async () => (await condition("Ready"))?.status === "True");
  });

  it("grants only what csp-operator-grantable lists, not everything the operator holds", async () => {
    // With the encryption overlay the operator holds Secret list/update cluster-wide, and it always holds
    // Role, RoleBinding and NetworkPolicy writes: the API server's escalation check alone would let a
    // policy hand all of that to a workload.
    await ok(["apply", "-k", "config/encryption"]);
    const sa = "system:serviceaccount:csp-system:csp-operator";
    await eventually(
      "operator holds secrets list",
      async () => (await canI("list", "secrets", sa)) === "yes",
    );
    const grant = `apiVersion: security.csp-operator.io/v1alpha1
kind: ClusterSecurityPolicy
metadata: { name: grant }
spec:
  namespaces: { selector: { matchLabels: { app: shop } } }
  rbac:
    roles:
      - name: helper
        rules:
          - { apiGroups: [""], resources: [secrets], verbs: [list, update] }
          - { apiGroups: [rbac.authorization.k8s.io], resources: [roles, rolebindings], verbs: [create, update, patch, delete] }
          - { apiGroups: [networking.k8s.io], resources: [networkpolicies], verbs: [delete] }
      - name: reader
        rules:
          - { apiGroups: [""], resources: [pods, services], verbs: [get, list, watch] }
`;
    const grantStatus = async () =>
      (JSON.parse(await ok(["get", "csp", "grant", "-o", "json"])) as { status?: Status }).status ?? {};
    try {
      await ok(["apply", "-f", "-"], grant);
      const ready = await eventually(
        "RoleNotGrantable",
        async () => {
          const c = (await grantStatus()).conditions?.find((x) => x.type === "Ready");
          return c?.reason === "RoleNotGrantable" ? c : undefined;
        },
        60_000,
      );
      expect(ready.status).to.equal("False");
      expect(ready.message).to.contain("spec.rbac.roles[name=helper]");
      expect(ready.message).to.contain("secrets [list update]");
      expect(ready.message).to.contain("rbac.authorization.k8s.io/roles [create update patch delete]");
      expect(ready.message).to.contain("networking.k8s.io/networkpolicies [delete]");
      expect(ready.message).to.contain("csp-operator-grantable");
      expect(ready.message).to.not.contain("roles[name=reader]");
      // The entry within bounds is applied; the other is not, in any part.
      const helper = "system:serviceaccount:shop:helper";
      await eventually("reader works", async () => {
        return (await canI("list", "pods", "system:serviceaccount:shop:reader")) === "yes";
      });
      expect(await canI("watch", "services", "system:serviceaccount:shop:reader")).to.equal("yes");
      expect(await canI("list", "secrets", helper)).to.equal("no");
      expect(await canI("create", "roles", helper)).to.equal("no");
      expect(await canI("delete", "networkpolicies", helper)).to.equal("no");
      expect((await cp().kubectl(["get", "role", "helper", "-n", "shop"])).code).to.not.equal(0);
      expect((await cp().kubectl(["get", "rolebinding", "helper", "-n", "shop"])).code).to.not.equal(0);
    } finally {
      await ok(["delete", "csp", "grant", "--ignore-not-found"]);
      await ok(["delete", "-k", "config/encryption", "--ignore-not-found"]);
    }
  });

  it("applies an entry as soon as csp-operator-grantable is extended to cover it", async () => {
    const extension = `apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: grantable-configmaps
  labels: { security.csp-operator.io/aggregate-to-grantable: "true" }
rules: [{ apiGroups: [""], resources: [configmaps], verbs: [get] }]
`;
    const config = `apiVersion: security.csp-operator.io/v1alpha1
kind: ClusterSecurityPolicy
metadata: { name: config }
spec:
  namespaces: { selector: { matchLabels: { app: shop } } }
  rbac:
    roles:
      - name: config-reader
        rules: [{ apiGroups: [""], resources: [configmaps], resourceNames: [app], verbs: [get] }]
`;
    const ready = async () =>
      (
        JSON.parse(await ok(["get", "csp", "config", "-o", "json"])) as { status?: Status }
      ).status?.conditions?.find((c) => c.type === "Ready");
    const app = "system:serviceaccount:shop:config-reader";
    try {
      await ok(["apply", "-f", "-"], config);
      const refused = await eventually("RoleNotGrantable", async () => {
        const c = await ready();
        return c?.reason === "RoleNotGrantable" ? c : undefined;
      });
      expect(refused.message).to.contain('configmaps "app" [get]');
      expect(await canI("get", "configmaps/app", app)).to.equal("no");
      await ok(["apply", "-f", "-"], extension);
      await eventually("Ready", async () => (await ready())?.status === "True", 60_000);
      expect(await canI("get", "configmaps/app", app)).to.equal("yes");
      expect(await canI("get", "configmaps/other", app)).to.equal("no");
    } finally {
      await ok(["delete", "csp", "config", "--ignore-not-found"]);
      await ok(["delete", "clusterrole", "grantable-configmaps", "--ignore-not-found"]);
    }
  });

  it("reports each kind of risky RBAC when it appears, and stops when it is removed", async () => {
    await ok(["apply", "-f", "-"], RISKY.map((r) => r.yaml).join("\n---\n"));
    const findings = await eventually("every finding", async () => {
      const f = (await status()).findings ?? [];
      return RISKY.every((r) => f.some((x) => x.id === r.id && x.resource === r.resource)) ? f : undefined;
    });
    expect(findings.find((f) => f.id === "RBAC-CLUSTER-ADMIN")?.severity).to.equal("Critical");
    const least = await condition("LeastPrivilegeRBAC");
    expect(least).to.include({ status: "False", reason: "FindingsPresent" });
    await ok(["wait", "--for=condition=Compliant=False", "csp/least", "--timeout=30s"]);
    // Never "fixed" by the operator: the risky bindings are still there.
    expect((await cp().kubectl(["get", "clusterrolebinding", "mallory-admin"])).code).to.equal(0);

    await ok(["delete", "-f", "-"], RISKY.map((r) => r.yaml).join("\n---\n"));
    await eventually("findings gone", async () => ((await status()).findings ?? []).length === 0);
    await ok(["wait", "--for=condition=Compliant", "csp/least", "--timeout=30s"]);
  });

  it("retries a Forbidden write as soon as a Role granted to it outside csp-system is extended", async () => {
    // The operator holds Deployments only where an admin grants them (no cluster-wide grantable binding):
    // in namespace `team`, `get` through a Role there bound to its ServiceAccount. A policy entry asking for
    // get and list is within csp-operator-grantable, so the write is tried and refused (escalation check).
    const extra = (verbs: string) => `apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: { name: csp-operator-extra, namespace: team }
rules: [{ apiGroups: [apps], resources: [deployments], verbs: [${verbs}] }]`;
    const policy = `apiVersion: security.csp-operator.io/v1alpha1
kind: ClusterSecurityPolicy
metadata: { name: forbidden }
spec:
  namespaces: { selector: { matchLabels: { t: team } } }
  networkPolicies: { defaultDenyIngress: false, defaultDenyEgress: false, allowDNS: false }
  rbac:
    roles:
      - name: app-reader
        rules: [{ apiGroups: [apps], resources: [deployments], verbs: [get, list] }]
`;
    const ready = async () =>
      (
        JSON.parse(await ok(["get", "csp", "forbidden", "-o", "json"])) as { status?: Status }
      ).status?.conditions?.find((c) => c.type === "Ready");
    const created = async () => (await cp().kubectl(["get", "role", "app-reader", "-n", "team"])).code === 0;
    try {
      await ok(["delete", "clusterrolebinding", "csp-operator-grantable"]);
      await ok(["create", "namespace", "team"]);
      await ok(["label", "namespace", "team", "t=team"]);
      await ok(["apply", "-f", "-"], extra("get"));
      await ok([
        "create",
        "rolebinding",
        "csp-operator-extra",
        "--role=csp-operator-extra",
        "--serviceaccount=csp-system:csp-operator",
        "-n",
        "team",
      ]);
      await eventually(
        "the operator holds get only",
        async () =>
          (await canI("get", "deployments", "system:serviceaccount:csp-system:csp-operator", "team")) ===
            "yes" &&
          (await canI("list", "deployments", "system:serviceaccount:csp-system:csp-operator", "team")) ===
            "no",
      );
      await ok(["apply", "-f", "-"], policy);
      const refused = await eventually("RoleNotGrantable", async () => {
        const c = await ready();
        return c?.reason === "RoleNotGrantable" ? c : undefined;
      });
      expect(refused.status).to.equal("False");
      expect(refused.message).to.contain('Verbs:["list"]');
      expect(await created()).to.equal(false);
      // An RBAC event first seen by a new audit configuration counts as moving its findings: spend it on a
      // binding that moves none (nothing in status changes, nothing else follows).
      // Settled: nothing queued, and the operator's cache holds the status last written (a repair judged
      // against an older one asks for a full reconcile, which would retry the write by chance).
      const c = operator!.controller;
      const settled = async () => {
        const rv = (JSON.parse(await ok(["get", "csp", "forbidden", "-o", "json"])) as KubernetesObject)
          .metadata?.resourceVersion;
        return (
          c.queue.length === 0 &&
          c.queue.inFlight === 0 &&
          operator!.repairs.queue.length === 0 &&
          operator!.repairs.queue.inFlight === 0 &&
          operator!.cache.policies.get("forbidden")?.metadata?.resourceVersion === rv
        );
      };
      await eventually("settled", settled);
      // Handled: the cache holds it (its handler ran) and everything it enqueued, if anything, is done. Not
      // necessarily a reconcile: another RBAC event (an earlier test's namespace going away) may have been the
      // first this configuration saw.
      const inCache = () =>
        (operator!.cache.snapshot().rbac?.roleBindings ?? []).some(
          (b) => b.metadata?.namespace === "default" && b.metadata.name === "warmup",
        );
      await ok(["create", "rolebinding", "warmup", "--clusterrole=view", "--user=warmup", "-n", "default"]);
      await eventually("the warm-up event handled", async () => inCache() && (await settled()));
      expect(await created()).to.equal(false);
      // The admin extends the operator's Role in `team`: no binding changes, the resync is 10 min away.
      await ok(["apply", "-f", "-"], extra("get, list"));
      await eventually("Role app-reader created", created, 20_000);
      await eventually("Ready", async () => (await ready())?.status === "True");
    } finally {
      await ok(["delete", "csp", "forbidden", "--ignore-not-found"]);
      await ok(["delete", "namespace", "team", "--ignore-not-found", "--wait=false"]);
      await ok(["delete", "rolebinding", "warmup", "-n", "default", "--ignore-not-found"]);
      await ok(["apply", "-k", "config/rbac"]);
    }
  });
});
