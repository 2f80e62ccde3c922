/**
 * Fault suite: the operator's RBAC revoked, then restored, with the operator running as a process on a token of
 * the csp-operator ServiceAccount bound by config/rbac exactly as installed. A partial revocation (no more
 * NetworkPolicies) must give Ready=False naming what is missing; a full one (the ClusterRoleBinding deleted)
 * leaves nothing it may write, so it must only keep running and say why in its log. Both recover without a
 * restart once the RBAC is applied again, and drift made meanwhile is repaired.
 */
import { expect } from "chai";
import { startControlPlane, type ControlPlane } from "../../controlplane/harness.js";
import { check } from "../support/checker.js";
import { installCrd } from "../support/crd.js";
import { eventually } from "../support/eventually.js";
import { kubectlOk } from "../support/kubectl.js";
import {
  OPERATOR_SA,
  OperatorProcess,
  auditOf,
  checkerMatches,
  measure,
  recordClusterTexts,
  recordKubeconfigSecrets,
} from "./support.js";
import { printLogIfFailed } from "../support/operatorprocess.js";

interface Condition {
  type: string;
  status: string;
  reason: string;
  message: string;
}

describe("faults: the operator's RBAC revoked and restored (ServiceAccount token, config/rbac)", function () {
  this.timeout(300_000);
  let cp: ControlPlane;
  let operator: OperatorProcess;
  const ok = kubectlOk(() => cp);
  const ready = async () =>
    (
      JSON.parse(await ok(["get", "csp", "baseline", "-o", "json"])) as {
        status?: { conditions?: Condition[] };
      }
    ).status?.conditions?.find((c) => c.type === "Ready");
  const matches = async () => (await checkerMatches(cp, { timeoutMs: 180_000 })).ms;

  before(async function () {
    cp = await startControlPlane({ name: "faults-rbac" });
    recordKubeconfigSecrets(cp.kubeconfigPath);
    await installCrd(cp);
    await ok(["create", "namespace", "csp-system"]);
    await ok(["apply", "-k", "config/rbac"]);
    for (const ns of ["team-a", "team-b"]) {
      await ok(["create", "namespace", ns]);
      await ok(["label", "namespace", ns, "csp.example.com/tier=web"]);
    }
    const kubeconfig = await cp.serviceAccountKubeconfig("csp-system", "csp-operator");
    recordKubeconfigSecrets(kubeconfig);
    operator = new OperatorProcess(kubeconfig);
    await ok(["apply", "-f", "samples/baseline.yaml"]);
    // Ready, not Compliant: the policy's RBAC audit rightly finds the operator's own nodes/proxy grant.
    await ok(["wait", "--for=condition=Ready", "csp/baseline", "--timeout=90s"]);
    await matches();
  });

  afterEach(function () {
    printLogIfFailed(this.currentTest, operator);
  });

  after(async () => {
    try {
      if (cp) await recordClusterTexts(cp);
    } finally {
      await operator?.stop();
      await cp?.stop();
    }
  });

  let readyWhileRevoked: Condition | undefined;

  it("NetworkPolicies revoked: logs what is missing, no crash; restored: repaired without a restart", async () => {
    const pid = operator.pid;
    const role = JSON.parse(await ok(["get", "clusterrole", "csp-operator", "-o", "json"])) as {
      rules: { resources?: string[] }[];
    };
    const index = role.rules.findIndex((r) => r.resources?.includes("networkpolicies"));
    expect(index).to.be.greaterThan(-1);
    const logFrom = operator.log.length;
    const revokedAt = Date.now();
    await ok([
      "patch",
      "clusterrole",
      "csp-operator",
      "--type=json",
      "-p",
      `[{"op":"remove","path":"/rules/${index}"}]`,
    ]);
    await ok(["delete", "networkpolicy", "csp-baseline-default-deny", "-n", "team-a"]);
    await eventually(
      "the operator to log the missing permission",
      () => Promise.resolve(/cannot \w+ resource \\?"networkpolicies\\?"/.test(operator.log.slice(logFrom))),
      60_000,
    );
    const loggedMs = Date.now() - revokedAt;
    // Long enough for a reconcile to fail on the unsynced cache and back off.
    await eventually(
      "a reconcile to fail on the unsynced NetworkPolicy cache",
      () => Promise.resolve(/reconcile failed; retrying/.test(operator.log.slice(logFrom))),
      60_000,
    );
    // Stay revoked past client-node's 30 s watch inactivity timeout, so the informers list again (and are
    // refused) and status has had every chance to say so.
    await new Promise((r) => setTimeout(r, Math.max(0, revokedAt + 35_000 - Date.now())));
    readyWhileRevoked = await ready();
    expect(operator.exit).to.equal(undefined);
    expect((await check(cp)).differences).to.include(
      "Missing NetworkPolicy team-a/csp-baseline-default-deny",
    );

    const restoredAt = Date.now();
    await ok(["apply", "-k", "config/rbac"]);
    const ms = await matches();
    const requests = (await auditOf(cp, OPERATOR_SA, revokedAt)).length;
    measure(
      "RBAC: networkpolicies revoked, then restored",
      ms,
      requests,
      `logged after ${(loggedMs / 1000).toFixed(1)} s; revoked ${((restoredAt - revokedAt) / 1000).toFixed(0)} s; ` +
        `Ready while revoked: ${readyWhileRevoked?.status}/${readyWhileRevoked?.reason}; operator requests from revocation to recovery`,
    );
    await ok(["wait", "--for=condition=Ready", "csp/baseline", "--timeout=90s"]);
    expect(operator.exit).to.equal(undefined);
    expect(operator.pid).to.equal(pid);
  });

  // A reconcile that finds a cache unsynced because its LIST is forbidden says so in Ready.
  it("NetworkPolicies revoked: Ready=False naming them", () => {
    expect(readyWhileRevoked?.status).to.equal("False");
    expect(readyWhileRevoked?.message).to.match(/networkpolicies/i);
  });

  it("every permission revoked (binding deleted): keeps running, logs Forbidden; restored: repaired", async () => {
    const pid = operator.pid;
    const revokedAt = Date.now();
    await ok(["delete", "clusterrolebinding", "csp-operator"]);
    const logFrom = operator.log.length;
    await ok(["delete", "networkpolicy", "csp-baseline-allow-dns", "-n", "team-b"]);
    await eventually(
      "the operator to log a Forbidden",
      () => Promise.resolve(/forbidden|403/i.test(operator.log.slice(logFrom))),
      60_000,
    );
    // Let it fail for a while: the retries must back off and the process must live.
    await new Promise((r) => setTimeout(r, 20_000));
    expect(operator.exit, operator.log.slice(-2000)).to.equal(undefined);
    const denied = (await auditOf(cp, OPERATOR_SA, revokedAt)).filter(
      (e) => (e["responseStatus"] as { code?: number } | undefined)?.code === 403,
    ).length;
    await ok(["apply", "-k", "config/rbac"]);
    const ms = await matches();
    measure("RBAC: binding deleted ~25 s, then restored", ms, denied, "403 answers while revoked");
    await ok(["wait", "--for=condition=Ready", "csp/baseline", "--timeout=90s"]);
    expect(operator.pid).to.equal(pid);
    expect(operator.log).to.not.match(/unhandled/i);
  });
});
