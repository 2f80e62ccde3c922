/**
 * Needs the local control plane (built on first use by controlplane/build.sh).
 * Convergence under stress: the operator killed mid-way (SIGKILL, no drain) and restarted, two policies that
 * disagree about the same namespace, and repeated corrections collapsing into one Event.
 */
import { expect } from "chai";
import { spawn, type ChildProcess } from "node:child_process";
import { CoreV1Api, NetworkingV1Api } from "@kubernetes/client-node";
import { startControlPlane, type ControlPlane } from "../../controlplane/harness.js";
import { loadKubeConfig } from "../../src/cluster/client.js";
import { eventually } from "../support/eventually.js";
import { kubectlOk } from "../support/kubectl.js";
import { installCrd } from "../support/crd.js";

const NAMESPACES = Array.from({ length: 40 }, (_, i) => `load-${String(i).padStart(2, "0")}`);

function policyYaml(name: string, selector: string, enforce: string, extra = ""): string {
  return `apiVersion: security.csp-operator.io/v1alpha1
kind: ClusterSecurityPolicy
metadata: { name: ${name} }
spec:
  namespaces: { selector: { matchLabels: { ${selector} } } }
  networkPolicies: { defaultDenyIngress: true, defaultDenyEgress: true, allowDNS: true }
  podSecurity: { enforce: ${enforce} }
${extra}`;
}

describe("convergence (real API server, operator as a process)", function () {
  this.timeout(180_000);
  let cp: ControlPlane;
  let core: CoreV1Api;
  let net: NetworkingV1Api;
  let operator: ChildProcess | undefined;
  let operatorLog = "";

  const ok = kubectlOk(() => cp);
  const startOperator = () => {
    operator = spawn(process.execPath, ["--import", "tsx", "src/main.ts", "run", "--resync=3600"], {
      env: { ...process.env, KUBECONFIG: cp.kubeconfigPath, LOG_LEVEL: "debug" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    operator.stdout?.on("data", (d: Buffer) => (operatorLog += d.toString()));
    operator.stderr?.on("data", (d: Buffer) => (operatorLog += d.toString()));
  };
  const stopOperator = async (signal: NodeJS.Signals) => {
    const p = operator;
    operator = undefined;
    if (!p || p.exitCode !== null) return null;
    const exited = new Promise<number | null>((r) => p.once("exit", (code) => r(code)));
    p.kill(signal);
    return exited;
  };
  /** Reconciles of `policy` the operator finished so far, from its debug log. */
  const reconcilesOf = (policy: string) =>
    operatorLog
      .split("\n")
      .filter((l) => l.includes('"message":"reconcile done"') && l.includes(`"policy":"${policy}"`)).length;
  const managedPolicies = async () =>
    (
      await net.listNetworkPolicyForAllNamespaces({
        labelSelector: "app.kubernetes.io/managed-by=csp-operator",
      })
    ).items;
  const conditionOf = async (policy: string, type: string) => {
    const o = JSON.parse(await ok(["get", "csp", policy, "-o", "json"])) as {
      status?: {
        conditions?: { type: string; status: string; reason: string }[];
        drift?: { reason: string; kind: string; name: string }[];
      };
    };
    return { cond: o.status?.conditions?.find((c) => c.type === type), status: o.status };
  };

  before(async function () {
    this.timeout(180_000);
    cp = await startControlPlane({ name: "convergence" });
    await installCrd(cp);
    const kc = loadKubeConfig(cp.kubeconfigPath);
    core = kc.makeApiClient(CoreV1Api);
    net = kc.makeApiClient(NetworkingV1Api);
    const manifest = NAMESPACES.map(
      (n) => `apiVersion: v1\nkind: Namespace\nmetadata: { name: ${n}, labels: { load: "yes" } }\n`,
    ).join("---\n");
    await ok(["apply", "-f", "-"], manifest);
  });

  after(async () => {
    await stopOperator("SIGKILL");
    await cp?.stop();
  });

  afterEach(function () {
    if (this.currentTest?.state === "failed") console.error(`operator log:\n${operatorLog.slice(-4000)}`);
  });

  it("killed mid-way (SIGKILL) and restarted, converges with nothing duplicated or lost", async () => {
    await ok(["apply", "-f", "-"], policyYaml("load", 'load: "yes"', "baseline"));
    startOperator();
    // Poll tightly (not with eventually's growing interval): the kill must land while it is still writing.
    let partial = 0;
    for (const deadline = Date.now() + 60_000; partial === 0 && Date.now() < deadline;) {
      partial = (await managedPolicies()).length;
      if (partial === 0) await new Promise((r) => setTimeout(r, 10));
    }
    const killed = await stopOperator("SIGKILL");
    const afterKill = (await managedPolicies()).length;
    startOperator(); // restarted before asserting, so the tests after this one still have an operator
    expect(killed).to.equal(null, "killed, not drained");
    expect(partial, "the operator never started writing").to.be.greaterThan(0);
    expect(afterKill, "the kill must land mid-way for this test to mean anything").to.be.lessThan(
      NAMESPACES.length * 2,
    );

    await ok(["wait", "--for=condition=Ready", "csp/load", "--timeout=90s"]);
    await ok(["wait", "--for=condition=Compliant", "csp/load", "--timeout=90s"]);
    const all = await managedPolicies();
    const names = all.map((p) => `${p.metadata!.namespace}/${p.metadata!.name}`).sort();
    const expected = NAMESPACES.flatMap((n) => [
      `${n}/csp-load-allow-dns`,
      `${n}/csp-load-default-deny`,
    ]).sort();
    expect(names).to.deep.equal(expected, "exactly one of each, in every namespace");
    for (const p of all) expect(p.metadata?.ownerReferences).to.have.length(1);
    for (const n of NAMESPACES) {
      const ns = await core.readNamespace({ name: n });
      expect(ns.metadata?.labels?.["pod-security.kubernetes.io/enforce"], n).to.equal("baseline");
    }
    console.log(`      (killed after ${partial}/${afterKill} of ${expected.length} NetworkPolicies)`);
  });

  it("two policies that disagree: the stricter level wins, Conflict on both, no flapping", async () => {
    // load-00 is selected by `load` (baseline) and, once labelled, by `strict` (restricted).
    await ok(["label", "namespace", "load-00", "team=strict"]);
    await ok(["apply", "-f", "-"], policyYaml("strict", "team: strict", "restricted"));
    await ok(["wait", "--for=condition=Ready", "csp/strict", "--timeout=60s"]);
    await eventually("restricted wins", async () => {
      const ns = await core.readNamespace({ name: "load-00" });
      return ns.metadata?.labels?.["pod-security.kubernetes.io/enforce"] === "restricted";
    });
    for (const policy of ["load", "strict"]) {
      const { status } = await eventually(`Conflict on ${policy}`, async () => {
        const r = await conditionOf(policy, "PodSecurityEnforced");
        return r.status?.drift?.some((d) => d.reason === "Conflict" && d.name === "load-00") ? r : undefined;
      });
      expect(status?.drift?.find((d) => d.reason === "Conflict")?.kind).to.equal("Namespace");
    }
    // No flapping: the namespace is not rewritten while both policies keep reconciling.
    const rv = (await core.readNamespace({ name: "load-00" })).metadata?.resourceVersion;
    const before = { load: reconcilesOf("load"), strict: reconcilesOf("strict") };
    await ok(["annotate", "csp", "load", "strict", "touch=1"]); // an event on each policy: reconcile again
    await eventually("both policies reconciled again", () =>
      Promise.resolve(reconcilesOf("load") > before.load && reconcilesOf("strict") > before.strict),
    );
    const after = await core.readNamespace({ name: "load-00" });
    expect(after.metadata?.resourceVersion).to.equal(rv);
    expect(after.metadata?.labels?.["pod-security.kubernetes.io/enforce"]).to.equal("restricted");
    // The loser takes over when the winner goes.
    await ok(["delete", "csp", "strict"]);
    await eventually("baseline again", async () => {
      const ns = await core.readNamespace({ name: "load-00" });
      return ns.metadata?.labels?.["pod-security.kubernetes.io/enforce"] === "baseline";
    });
  });

  it("the same correction repeated is one Event with a count, not many Events", async () => {
    for (let i = 0; i < 3; i++) {
      await ok(["delete", "networkpolicy", "csp-load-default-deny", "-n", "load-01"]);
      await eventually("restored", async () =>
        (await managedPolicies()).some(
          (p) => p.metadata?.namespace === "load-01" && p.metadata.name === "csp-load-default-deny",
        ),
      );
    }
    // The Event is written after the object is restored: wait for the third count to land.
    const events = await eventually("the third occurrence counted", async () => {
      const list = (
        await core.listNamespacedEvent({ namespace: "default", fieldSelector: "involvedObject.name=load" })
      ).items.filter(
        (e) =>
          e.reason === "DriftCorrected" &&
          e.message === "Corrected 1 object(s): NetworkPolicy load-01/csp-load-default-deny (Missing)",
      );
      return list.some((e) => (e.count ?? 0) >= 3) ? list : undefined;
    });
    expect(events).to.have.length(1);
    expect(events[0]?.count).to.equal(3);
  });

  it("drains and exits 0 on SIGTERM", async () => {
    expect(operator?.exitCode).to.equal(null, "the operator is running");
    const started = Date.now();
    expect(await stopOperator("SIGTERM")).to.equal(0);
    expect(operatorLog).to.contain('"message":"draining"');
    expect(operatorLog).to.contain('"message":"stopped"');
    console.log(`      (stopped ${Date.now() - started} ms after SIGTERM)`);
  });
});
