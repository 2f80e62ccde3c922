/**
 * Needs the local control plane (built on first use by controlplane/build.sh).
 * The fast cases of the fault suite (`npm run test:faults` has them all, with measurements): the API server
 * killed and restarted while a child is deleted straight from etcd, and a ValidatingAdmissionPolicy denying
 * NetworkPolicies in one namespace. The operator runs as a process and must recover without a restart; the
 * independent checker (test/support/checker.ts, not the operator's code) must match afterwards.
 */
import { expect } from "chai";
import { startControlPlane, type ControlPlane } from "../../controlplane/harness.js";
import { check } from "../support/checker.js";
import { installCrd } from "../support/crd.js";
import { eventually } from "../support/eventually.js";
import { kubectlOk } from "../support/kubectl.js";
import {
  OperatorProcess,
  checkerMatches as waitForMatch,
  freezeNetworkPoliciesManifest,
  printLogIfFailed,
} from "../support/operatorprocess.js";

describe("fault suite, fast cases (real API server, operator as a process)", function () {
  this.timeout(120_000);
  let cp: ControlPlane;
  let operator: OperatorProcess;
  const ok = kubectlOk(() => cp);
  const checkerMatches = async (except?: (d: string) => boolean) =>
    (await waitForMatch(cp, { timeoutMs: 90_000, ...(except ? { except } : {}) })).result;

  before(async function () {
    cp = await startControlPlane({ name: "faults-fast" });
    await installCrd(cp);
    for (const ns of ["team-a", "team-b"]) {
      await ok(["create", "namespace", ns]);
      await ok(["label", "namespace", ns, "csp.example.com/tier=web"]);
    }
    operator = new OperatorProcess(cp.kubeconfigPath);
    await ok(["apply", "-f", "samples/baseline.yaml"]);
    await ok(["wait", "--for=condition=Compliant", "csp/baseline", "--timeout=90s"]);
  });

  afterEach(function () {
    printLogIfFailed(this.currentTest, operator);
  });

  after(async () => {
    await operator?.stop();
    await cp?.stop();
  });

  it("the checker sees what the operator wrote, and sees a deletion", async () => {
    const r = await checkerMatches();
    expect(r.expectedNetworkPolicies).to.have.length(6);
    // The checker can fail: with the operator paused, a deleted child is reported Missing.
    operator.signal("SIGSTOP");
    try {
      await ok(["delete", "networkpolicy", "csp-baseline-allow-dns", "-n", "team-a"]);
      expect((await check(cp)).differences).to.deep.equal([
        "Missing NetworkPolicy team-a/csp-baseline-allow-dns",
      ]);
    } finally {
      operator.signal("SIGCONT");
    }
    await checkerMatches();
  });

  it("the API server SIGKILLed, a child deleted in etcd meanwhile: repaired with no operator restart", async () => {
    const pid = operator.pid;
    await cp.stopComponent("kube-apiserver", { kill: true });
    const res = await fetch(`${cp.etcdUrl}/v3/kv/deleterange`, {
      method: "POST",
      body: JSON.stringify({
        key: Buffer.from("/registry/networkpolicies/team-b/csp-baseline-default-deny").toString("base64"),
      }),
    });
    expect(((await res.json()) as { deleted?: string }).deleted).to.equal("1");
    await cp.startComponent("kube-apiserver");
    await checkerMatches();
    await ok(["wait", "--for=condition=Compliant", "csp/baseline", "--timeout=60s"]);
    expect(operator.exit).to.equal(undefined);
    expect(operator.pid).to.equal(pid);
  });

  it("NetworkPolicies denied by admission in one namespace: the others converge, the denial names it", async () => {
    await ok(["apply", "-f", "-"], freezeNetworkPoliciesManifest("frozen"));
    await ok(["create", "namespace", "frozen"]);
    await eventually("the admission policy in force", async () => {
      const r = await cp.kubectl(["create", "-n", "frozen", "-f", "-", "--dry-run=server"], {
        input:
          "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: { name: probe }\nspec: { podSelector: {} }\n",
      });
      return r.code !== 0 && /frozen in this namespace/.test(r.stderr);
    });
    await ok(["label", "namespace", "frozen", "csp.example.com/tier=web"]);
    await ok(["create", "namespace", "team-c"]);
    await ok(["label", "namespace", "team-c", "csp.example.com/tier=web"]);
    await checkerMatches((d) => d.includes(" frozen/"));
    const ready = await eventually("Ready=False naming the frozen namespace", async () => {
      const s = JSON.parse(await ok(["get", "csp", "baseline", "-o", "json"])) as {
        status?: { conditions?: { type: string; status: string; reason: string; message: string }[] };
      };
      const c = s.status?.conditions?.find((x) => x.type === "Ready");
      return c?.status === "False" && /frozen\//.test(c.message) ? c : undefined;
    });
    expect(ready.message).to.match(/frozen in this namespace/);
    expect(ready.message).to.not.match(/team-[abc]\//, "only the frozen namespace is named");
    expect(operator.exit).to.equal(undefined);
  });
});
