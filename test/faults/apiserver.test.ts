/**
 * Fault suite (npm run test:faults): the API server restarted while idle and mid-converge, etcd restarted,
 * both stopped for longer than the client's retry window (informer backoff ceiling 30 s). Drift is injected
 * during each outage straight into etcd (the API server cannot be asked while it is down). The operator runs
 * as a process and must recover without a restart of its own; the independent checker must match after.
 */
import { expect } from "chai";
import { startControlPlane, type ControlPlane } from "../../controlplane/harness.js";
import { check } from "../support/checker.js";
import { installCrd } from "../support/crd.js";
import { eventually } from "../support/eventually.js";
import { kubectlOk } from "../support/kubectl.js";
import {
  ADMIN,
  OperatorProcess,
  auditOf,
  checkerMatches,
  measure,
  recordClusterTexts,
  recordKubeconfigSecrets,
} from "./support.js";
import { printLogIfFailed } from "../support/operatorprocess.js";

const NAMESPACES = ["team-a", "team-b", "team-c", "team-d"];

describe("faults: API server and etcd outages (operator as a process)", function () {
  this.timeout(300_000);
  let cp: ControlPlane;
  let operator: OperatorProcess;
  const ok = kubectlOk(() => cp);

  /** Deletes a key straight from etcd (what a lost write or a restore from an old backup looks like). */
  const etcdDelete = async (key: string) => {
    const res = await fetch(`${cp.etcdUrl}/v3/kv/deleterange`, {
      method: "POST",
      body: JSON.stringify({ key: Buffer.from(key).toString("base64") }),
    });
    const body = (await res.json()) as { deleted?: string };
    expect(body.deleted, `etcd delete ${key}`).to.equal("1");
  };
  const matches = async (timeoutMs = 180_000) => (await checkerMatches(cp, { timeoutMs })).ms;
  const compliant = async () =>
    (await cp.kubectl(["wait", "--for=condition=Compliant", "csp/baseline", "--timeout=60s"])).code === 0;

  before(async function () {
    cp = await startControlPlane({ name: "faults-apiserver" });
    recordKubeconfigSecrets(cp.kubeconfigPath);
    await installCrd(cp);
    for (const ns of NAMESPACES) {
      await ok(["create", "namespace", ns]);
      await ok(["label", "namespace", ns, "csp.example.com/tier=web"]);
    }
    operator = new OperatorProcess(cp.kubeconfigPath);
    await ok(["apply", "-f", "samples/baseline.yaml"]);
    await ok(["wait", "--for=condition=Compliant", "csp/baseline", "--timeout=90s"]);
    const r = await check(cp);
    expect(r.differences).to.deep.equal([]);
    expect(r.expectedNetworkPolicies).to.have.length(NAMESPACES.length * 3);
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

  it("the API server restarted while idle, a child deleted in etcd meanwhile: repaired, no operator restart", async () => {
    const pid = operator.pid;
    await cp.stopComponent("kube-apiserver");
    await etcdDelete("/registry/networkpolicies/team-a/csp-baseline-default-deny");
    await cp.startComponent("kube-apiserver");
    const since = Date.now();
    const ms = await matches();
    const requests = (await auditOf(cp, ADMIN, since)).length;
    measure(
      "API server restarted while idle",
      ms,
      requests,
      "from /readyz to checker match; admin requests incl. checker",
    );
    expect(await compliant()).to.equal(true);
    expect(operator.exit).to.equal(undefined);
    expect(operator.pid).to.equal(pid);
  });

  it("the API server restarted mid-converge (new namespaces being written): converges, nothing lost", async () => {
    const fresh = Array.from({ length: 12 }, (_, i) => `burst-${i}`);
    await ok(
      ["apply", "-f", "-"],
      fresh
        .map(
          (n) =>
            `apiVersion: v1\nkind: Namespace\nmetadata: { name: ${n}, labels: { csp.example.com/tier: web } }\n`,
        )
        .join("---\n"),
    );
    // Stop as soon as the operator has started writing into the new namespaces.
    await eventually(
      "the operator writing into the new namespaces",
      async () =>
        (await ok(["get", "networkpolicies", "-A", "-o", "name", "-l", "app.kubernetes.io/managed-by"]))
          .split("\n")
          .filter(Boolean).length >
        NAMESPACES.length * 3,
      30_000,
    );
    await cp.stopComponent("kube-apiserver", { kill: true });
    await etcdDelete("/registry/networkpolicies/team-b/csp-baseline-allow-dns");
    await cp.startComponent("kube-apiserver");
    const ms = await matches();
    measure("API server SIGKILLed mid-converge", ms, undefined, "from /readyz to checker match");
    const r = await check(cp);
    expect(r.expectedNetworkPolicies).to.have.length((NAMESPACES.length + fresh.length) * 3);
    expect(await compliant()).to.equal(true);
    expect(operator.exit).to.equal(undefined);
  });

  it("etcd restarted, a child deleted in etcd as it comes back: repaired", async () => {
    await cp.stopComponent("etcd");
    await new Promise((r) => setTimeout(r, 5_000)); // an outage the API server notices, not a blip
    await cp.startComponent("etcd");
    await etcdDelete("/registry/networkpolicies/team-c/csp-baseline-default-deny");
    const ms = await matches();
    measure("etcd restarted (5 s down)", ms, undefined, "from etcd /health to checker match");
    expect(await compliant()).to.equal(true);
    expect(operator.exit).to.equal(undefined);
  });

  it("both stopped for 45 s (past the 30 s informer backoff ceiling): the operator recovers by itself", async () => {
    const pid = operator.pid;
    await cp.stopComponent("kube-apiserver");
    await cp.stopComponent("etcd");
    await new Promise((r) => setTimeout(r, 45_000));
    await cp.startComponent("etcd");
    await etcdDelete("/registry/networkpolicies/team-d/csp-baseline-default-deny");
    await cp.startComponent("kube-apiserver");
    const since = Date.now();
    const ms = await matches();
    const operatorRequests = (await auditOf(cp, ADMIN, since, { excludeUserAgents: /kubectl/ })).length;
    measure(
      "API server + etcd down 45 s",
      ms,
      operatorRequests,
      "from /readyz to checker match; operator requests",
    );
    expect(await compliant()).to.equal(true);
    expect(operator.exit, operator.log.slice(-2000)).to.equal(undefined);
    expect(operator.pid).to.equal(pid);
    expect(operator.log).to.not.match(/unhandled/i);
  });

  it("through every outage it wrote only what it owns (audit log): its children, labels, status, events", async () => {
    const writes = await auditOf(cp, ADMIN, 0, { writes: true, excludeUserAgents: /^kubectl/ });
    expect(writes.length).to.be.greaterThan(0);
    const foreign = writes
      .map((e) => {
        const ref = e["objectRef"] as {
          resource?: string;
          subresource?: string;
          name?: string;
          namespace?: string;
        };
        return { verb: String(e["verb"]), ...ref };
      })
      .filter(
        (w) =>
          !(
            (w.resource === "networkpolicies" &&
              w.name?.startsWith("csp-baseline-") &&
              w.verb !== "delete") ||
            (w.resource === "namespaces" && w.verb === "patch") ||
            (w.resource === "serviceaccounts" && w.name === "default" && w.verb === "patch") ||
            (w.resource === "clustersecuritypolicies" && w.subresource === "status") ||
            w.resource === "events"
          ),
      );
    expect(foreign, "writes outside what the operator owns").to.deep.equal([]);
    const deletes = writes.filter((e) => e["verb"] === "delete");
    expect(deletes, "no delete of anything during the outages").to.deep.equal([]);
  });
});
