/**
 * Needs the local control plane (built on first use by controlplane/build.sh).
 * The operator in front of a misbehaving API server, through test/support/faultproxy.ts: a first LIST that
 * fails must not look like an empty cluster (nothing deleted, nothing written until the caches sync), and
 * credentials refused at watch reconnect are retried with backoff instead of ending the process.
 */
import { expect } from "chai";
import { spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { NetworkingV1Api } from "@kubernetes/client-node";
import { startControlPlane, type ControlPlane } from "../../controlplane/harness.js";
import { loadKubeConfig } from "../../src/cluster/client.js";
import { silentLogger } from "../../src/observability/logger.js";
import { Operator } from "../../src/controller/manager.js";
import { eventually } from "../support/eventually.js";
import { FaultProxy } from "../support/faultproxy.js";
import { installCrd } from "../support/crd.js";
import { kubectlOk } from "../support/kubectl.js";

const until = (what: string, fn: () => boolean, timeoutMs?: number) =>
  eventually(what, () => Promise.resolve(fn()), timeoutMs);

describe("startup and watch faults (real API server behind a fault proxy)", function () {
  this.timeout(180_000);
  let cp: ControlPlane;
  let net: NetworkingV1Api;
  let proxy: FaultProxy;
  let proxyKubeconfig: string;
  const ok = kubectlOk(() => cp);

  /** Every managed NetworkPolicy as namespace/name -> uid@resourceVersion. */
  const managed = async () => {
    const list = await net.listNetworkPolicyForAllNamespaces({
      labelSelector: "app.kubernetes.io/managed-by=csp-operator",
    });
    return Object.fromEntries(
      list.items.map((n) => [
        `${n.metadata!.namespace}/${n.metadata!.name}`,
        `${n.metadata!.uid}@${n.metadata!.resourceVersion}`,
      ]),
    );
  };
  const deletesOfNetworkPolicies = async (since: number) =>
    (await cp.auditEvents()).filter(
      (e) =>
        e["verb"] === "delete" &&
        (e["objectRef"] as { resource?: string } | undefined)?.resource === "networkpolicies" &&
        Date.parse(String(e["requestReceivedTimestamp"])) >= since,
    );

  before(async function () {
    this.timeout(180_000);
    cp = await startControlPlane({ name: "startup-faults" });
    await installCrd(cp);
    net = cp.kubeConfig().makeApiClient(NetworkingV1Api);
    for (const ns of ["team-a", "team-b"]) {
      await ok(["create", "namespace", ns]);
      await ok(["label", "namespace", ns, "csp.example.com/tier=web"]);
    }
    proxy = await FaultProxy.forKubeconfig(cp.kubeconfigPath);
    proxyKubeconfig = proxy.writeKubeconfig(join(cp.dir, "proxy.kubeconfig"));
  });

  after(async () => {
    await proxy?.stop();
    await cp?.stop();
  });

  it("a failing first LIST of namespaces deletes nothing and writes nothing; once it succeeds it converges", async () => {
    // Converge with a healthy operator, then stop it.
    const first = new Operator(
      loadKubeConfig(cp.kubeconfigPath),
      { workers: 2, resyncMs: 600_000 },
      silentLogger(),
    );
    await first.start();
    await ok(["apply", "-f", "samples/baseline.yaml"]);
    await ok(["wait", "--for=condition=Compliant", "csp/baseline", "--timeout=90s"]);
    await first.stop();
    const before = await managed();
    expect(Object.keys(before)).to.include("team-a/csp-baseline-default-deny");
    expect(Object.keys(before)).to.have.length(6);

    // Restart through the proxy with every LIST of namespaces answered 503.
    const failing = proxy.addRule({ verb: "list", resource: "namespaces", action: { status: 503 } });
    const since = Date.now() - 1000;
    const writesBefore = ["create", "update", "patch", "delete"].map((v) => proxy.count(v));
    const second = new Operator(
      loadKubeConfig(proxyKubeconfig),
      { workers: 2, resyncMs: 600_000 },
      silentLogger(),
    );
    let started = false;
    const starting = second.start().then(() => (started = true));
    try {
      // Four failed LISTs take at least 0.5 + 1 + 2 s of backoff: time enough for any reconcile to act.
      await until("four failed LISTs of namespaces", () => failing.hits >= 4, 60_000);
      expect(["create", "update", "patch", "delete"].map((v) => proxy.count(v))).to.deep.equal(
        writesBefore,
        "no write of any kind while a cache is not synced",
      );
      expect(await managed()).to.deep.equal(
        before,
        "every managed NetworkPolicy untouched (uid, resourceVersion)",
      );
      expect(await deletesOfNetworkPolicies(since)).to.deep.equal([]);
      expect(started).to.equal(false, "workers must not start before every cache synced");
      // Backoff grows: four failures cannot be squeezed into a 0.5 s cadence.
      const lists = proxy.log.filter((l) => l === "list /api/v1/namespaces").length;
      expect(lists).to.be.lessThan(8, "a failing LIST must be retried with growing backoff");

      failing.remove();
      await starting;
      expect(started).to.equal(true);
      await ok(["delete", "networkpolicy", "csp-baseline-default-deny", "-n", "team-b"]);
      await eventually("the deleted child restored through the proxy", async () =>
        Object.keys(await managed()).includes("team-b/csp-baseline-default-deny"),
      );
      await ok(["wait", "--for=condition=Compliant", "csp/baseline", "--timeout=90s"]);
      const after = await managed();
      for (const [k, v] of Object.entries(before))
        if (k !== "team-b/csp-baseline-default-deny") expect(after[k], k).to.equal(v);
      expect(
        (await deletesOfNetworkPolicies(since)).map(
          (e) => (e["user"] as { username?: string } | undefined)?.username,
        ),
      ).to.deep.equal(["csp-admin"], "the only delete is the test's own kubectl delete");
    } finally {
      failing.remove();
      await second.stop();
      await starting;
    }
  });

  it("credentials refused (401) at watch reconnect are retried with backoff; the process keeps running", async () => {
    let log = "";
    const child: ChildProcess = spawn(
      process.execPath,
      ["--import", "tsx", "src/main.ts", "run", "--resync=3600"],
      {
        env: { ...process.env, KUBECONFIG: proxyKubeconfig, LOG_LEVEL: "info" },
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    child.stdout?.on("data", (d: Buffer) => (log += d.toString()));
    child.stderr?.on("data", (d: Buffer) => (log += d.toString()));
    let exit: string | undefined;
    child.once("exit", (code, signal) => (exit = `code ${code} signal ${signal}`));
    try {
      await until("the operator synced", () => log.includes("caches synced; starting workers"), 90_000);
      await until("watches open", () => proxy.count("watch", "networkpolicies") > 0);
      const denied = proxy.addRule({ verb: "watch", action: { status: 401 } });
      const deniedLists = proxy.addRule({ verb: "list", action: { status: 401 } });
      proxy.dropStreams(); // every watch breaks; each reconnect is refused
      await until("repeated refusals", () => denied.hits + deniedLists.hits >= 30, 90_000);
      expect(exit, `the operator exited:\n${log.slice(-3000)}`).to.equal(undefined);
      expect(log).to.match(/informer stopped; restarting/);
      expect(log).to.match(/401|Unauthorized/);
      expect(log).to.not.match(/unhandled/i);
      denied.remove();
      deniedLists.remove();
      await ok(["delete", "networkpolicy", "csp-baseline-default-deny", "-n", "team-a"]);
      await eventually(
        "the deleted child restored after the credentials work again",
        async () => Object.keys(await managed()).includes("team-a/csp-baseline-default-deny"),
        90_000,
      );
      expect(exit).to.equal(undefined);
    } catch (err) {
      console.error(`operator log:\n${log.slice(-4000)}`);
      throw err;
    } finally {
      proxy.clearRules();
      if (exit === undefined) {
        const exited = new Promise((r) => child.once("exit", r));
        child.kill("SIGTERM");
        await exited;
      }
    }
  });
});
