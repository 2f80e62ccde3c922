/**
 * Needs the local control plane (built on first use by controlplane/build.sh).
 * RBAC events in proportion on a real API server: a policy auditing RBAC (the CRD default) is reconciled
 * when an RBAC change moves one of its findings, not for RoleBindings that move none; the finding shows in
 * status and goes when the binding goes.
 */
import { expect } from "chai";
import { startControlPlane, type ControlPlane } from "../../controlplane/harness.js";
import { loadKubeConfig } from "../../src/cluster/client.js";
import { silentLogger } from "../../src/observability/logger.js";
import { Operator } from "../../src/controller/manager.js";
import { eventually } from "../support/eventually.js";
import { kubectlOk } from "../support/kubectl.js";
import { installCrd } from "../support/crd.js";

const POLICY = `apiVersion: security.csp-operator.io/v1alpha1
kind: ClusterSecurityPolicy
metadata: { name: audited }
spec:
  namespaces: { selector: { matchLabels: { team: web } } }
  networkPolicies: { defaultDenyIngress: true, defaultDenyEgress: false, allowDNS: false }
`;

interface Status {
  findings?: { id: string; resource: string }[];
  summary?: { findings?: number };
}

describe("RBAC events reconcile only the policies whose findings they move (real API server)", function () {
  this.timeout(120_000);
  let cp: ControlPlane;
  let operator: Operator;
  const ok = kubectlOk(() => cp);
  const status = async () =>
    (JSON.parse(await ok(["get", "csp", "audited", "-o", "json"])) as { status?: Status }).status ?? {};
  const hasFinding = async (resource: string) =>
    ((await status()).findings ?? []).some((f) => f.resource === resource);
  const idle = () =>
    eventually("the queue drained", () =>
      Promise.resolve(operator.controller.queue.length === 0 && operator.controller.queue.inFlight === 0),
    );

  before(async function () {
    this.timeout(180_000);
    cp = await startControlPlane({ name: "rbacevents" });
    await installCrd(cp);
    await ok(["create", "namespace", "web-a"]);
    await ok(["label", "namespace", "web-a", "team=web"]);
    await ok(["create", "namespace", "unrelated"]);
    operator = new Operator(
      loadKubeConfig(cp.kubeconfigPath),
      { workers: 2, resyncMs: 600_000 },
      silentLogger(),
    );
    await operator.start();
    await ok(["apply", "-f", "-"], POLICY);
    await eventually("audited reconciled", async () => (await status()).summary !== undefined, 60_000);
  });

  after(async () => {
    await operator?.stop();
    await cp?.stop();
  });

  it("RoleBindings that move no finding cost no reconcile; one that grants cluster-admin does, and is reported", async () => {
    // The first RBAC event after start has nothing to compare with (it counts as moved): spend it.
    await ok(["create", "rolebinding", "warmup", "--clusterrole=view", "--user=warmup", "-n", "unrelated"]);
    await idle();
    const before = operator.controller.stats.reconciles;
    // One at a time, so each event would be a reconcile of its own if events were not in proportion.
    for (let i = 0; i < 15; i++)
      await ok([
        "create",
        "rolebinding",
        `view-${i}`,
        "--clusterrole=view",
        `--user=user-${i}`,
        "-n",
        "unrelated",
      ]);
    // A binding that moves a finding, after them in the same watch: once it is reported, every event
    // before it was handled.
    await ok([
      "create",
      "rolebinding",
      "risky",
      "--clusterrole=cluster-admin",
      "--user=mallory",
      "-n",
      "unrelated",
    ]);
    await eventually("the risky binding reported", () => hasFinding("RoleBinding/unrelated/risky"), 30_000);
    await idle();
    const spent = operator.controller.stats.reconciles - before;
    // The risky binding's reconcile, and the one its status write may echo: never one per binding.
    expect(spent, `${spent} reconciles for 15 unrelated bindings and one risky one`).to.be.at.most(3);
    await ok(["delete", "rolebinding", "risky", "-n", "unrelated"]);
    await eventually(
      "the finding gone",
      async () => !(await hasFinding("RoleBinding/unrelated/risky")),
      30_000,
    );
  });

  it("a Role changed to grant a wildcard moves the findings of the bindings referencing it", async () => {
    await ok(["create", "role", "tools", "--verb=get", "--resource=pods", "-n", "unrelated"]);
    await ok(["create", "rolebinding", "tools", "--role=tools", "--user=dev", "-n", "unrelated"]);
    await idle();
    expect(await hasFinding("RoleBinding/unrelated/tools")).to.equal(false);
    await ok(
      ["apply", "-f", "-"],
      `apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: { name: tools, namespace: unrelated }
rules: [{ apiGroups: [""], resources: [pods], verbs: ["*"] }]`,
    );
    await eventually(
      "the wildcard reported on the binding",
      () => hasFinding("RoleBinding/unrelated/tools"),
      30_000,
    );
  });
});
