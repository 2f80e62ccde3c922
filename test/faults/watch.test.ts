/**
 * Fault suite: watches that go wrong between the operator and the API server, through the fault proxy
 * (test/support/faultproxy.ts). Open watch connections that go silent without closing (a NAT or firewall
 * dropping an idle connection's packets): detected within a stated bound (the informer's 90 s watch
 * silence timeout: bookmarks arrive about once a minute), drift made meanwhile repaired. A full partition (every request stalls) for 40 s, then
 * healed. The operator paused (SIGSTOP) while 1500 NetworkPolicy events pass, etcd is compacted and its
 * watch connections are dropped: it resumes and repairs (the suite reports whether it had to relist: on this
 * API server the watch cache still served the old resourceVersion, so no 410 Gone was seen; see
 * docs/reliability.md).
 */
import { expect } from "chai";
import { request as httpsRequest } from "node:https";
import { join } from "node:path";
import { startControlPlane, type ControlPlane } from "../../controlplane/harness.js";
import { check } from "../support/checker.js";
import { installCrd } from "../support/crd.js";
import { eventually } from "../support/eventually.js";
import { FaultProxy } from "../support/faultproxy.js";
import { kubectlOk } from "../support/kubectl.js";
import { WATCH_SILENCE_MS } from "../../src/cluster/informer.js";
import {
  OperatorProcess,
  checkerMatches,
  measure,
  recordClusterTexts,
  recordKubeconfigSecrets,
} from "./support.js";
import { printLogIfFailed } from "../support/operatorprocess.js";

/** The bound this suite states for noticing a silent watch: the informer's silence timeout plus slack. */
const SILENT_WATCH_BOUND_MS = WATCH_SILENCE_MS + 15_000;

describe("faults: silent watches, a partition, a paused operator (through the fault proxy)", function () {
  this.timeout(300_000);
  let cp: ControlPlane;
  let proxy: FaultProxy;
  let operator: OperatorProcess;
  const ok = kubectlOk(() => cp);

  const matches = (timeoutMs = 120_000) => matchesOn(cp, timeoutMs);

  before(async function () {
    cp = await startControlPlane({ name: "faults-watch" });
    recordKubeconfigSecrets(cp.kubeconfigPath);
    await installCrd(cp);
    for (const ns of ["team-a", "team-b"]) {
      await ok(["create", "namespace", ns]);
      await ok(["label", "namespace", ns, "csp.example.com/tier=web"]);
    }
    proxy = await FaultProxy.forKubeconfig(cp.kubeconfigPath);
    operator = new OperatorProcess(proxy.writeKubeconfig(join(cp.dir, "proxy.kubeconfig")));
    await ok(["apply", "-f", "samples/baseline.yaml"]);
    await ok(["wait", "--for=condition=Compliant", "csp/baseline", "--timeout=90s"]);
  });

  afterEach(function () {
    proxy.clearRules();
    proxy.blackhole = false;
    printLogIfFailed(this.currentTest, operator);
  });

  after(async () => {
    try {
      if (cp) await recordClusterTexts(cp);
    } finally {
      await operator?.stop();
      await proxy?.stop();
      await cp?.stop();
    }
  });

  it(`silent watches are noticed within ${SILENT_WATCH_BOUND_MS / 1000} s and drift made meanwhile is repaired`, async () => {
    await eventually("a NetworkPolicy watch open", () =>
      Promise.resolve(proxy.count("watch", "networkpolicies") > 0),
    );
    const watchesBefore = proxy.count("watch");
    const t0 = Date.now();
    const silenced = proxy.silenceStreams((path) => /watch=(true|1)/.test(path));
    expect(silenced, "open watches silenced").to.be.greaterThan(0);
    await ok(["delete", "networkpolicy", "csp-baseline-default-deny", "-n", "team-a"]);
    await matches(SILENT_WATCH_BOUND_MS + 30_000);
    const ms = Date.now() - t0;
    const firstNoticed = Math.min(...proxy.silencedClosedAt) - t0;
    measure(
      "watch streams silent (not closed)",
      ms,
      proxy.count("watch") - watchesBefore,
      `${silenced} watches silenced; first given up after ${(firstNoticed / 1000).toFixed(1)} s; new watches opened`,
    );
    expect(ms, "repaired within the stated bound").to.be.at.most(SILENT_WATCH_BOUND_MS);
    expect(operator.exit).to.equal(undefined);
  });

  it("a partition (every request stalls) for 40 s: drift made meanwhile repaired once it heals", async () => {
    proxy.blackhole = true;
    await ok(["delete", "networkpolicy", "csp-baseline-default-deny", "-n", "team-b"]);
    await new Promise((r) => setTimeout(r, 40_000));
    expect((await check(cp)).differences).to.include(
      "Missing NetworkPolicy team-b/csp-baseline-default-deny",
    );
    const stalled = proxy.silencedClosedAt.length;
    proxy.blackhole = false;
    const ms = await matches();
    measure(
      "network partition 40 s",
      ms,
      stalled,
      "from heal to checker match; requests stalled then given up",
    );
    expect(operator.exit).to.equal(undefined);
    await ok(["wait", "--for=condition=Compliant", "csp/baseline", "--timeout=60s"]);
  });

  it("paused (SIGSTOP) past 1500 events, an etcd compaction and dropped watches: resumes and repairs", async () => {
    // An unmanaged NetworkPolicy churned hard enough to push the operator's resourceVersion out of the API
    // server's watch cache; etcd compacted, so nothing older can be served from etcd either.
    await ok(
      ["apply", "-f", "-"],
      "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: { name: churn, namespace: team-a }\nspec: { podSelector: {} }\n",
    );
    operator.signal("SIGSTOP");
    try {
      await ok(["delete", "networkpolicy", "csp-baseline-allow-dns", "-n", "team-a"]);
      const kc = cp.kubeConfig();
      const cluster = kc.getCurrentCluster()!;
      const user = kc.getCurrentUser()!;
      const patch = (i: number) =>
        new Promise<void>((resolve, reject) => {
          const req = httpsRequest(
            new URL("/apis/networking.k8s.io/v1/namespaces/team-a/networkpolicies/churn", cluster.server),
            {
              method: "PATCH",
              ca: Buffer.from(cluster.caData!, "base64"),
              cert: Buffer.from(user.certData!, "base64"),
              key: Buffer.from(user.keyData!, "base64"),
              headers: { "content-type": "application/merge-patch+json" },
            },
            (res) => {
              res.resume();
              res.on("end", () => resolve());
            },
          );
          req.on("error", reject);
          req.end(JSON.stringify({ metadata: { annotations: { churn: String(i) } } }));
        });
      for (let i = 0; i < 1500; i += 10)
        await Promise.all(Array.from({ length: 10 }, (_, j) => patch(i + j)));
      const compacted = await fetch(`${cp.etcdUrl}/v3/kv/compaction`, {
        method: "POST",
        body: JSON.stringify({ revision: await etcdRevision(cp), physical: true }),
      });
      expect(compacted.ok, "etcd compaction").to.equal(true);
      proxy.dropStreams(); // its watches end while it is paused; it must resume them from an old resourceVersion
    } finally {
      operator.signal("SIGCONT");
    }
    const listsBefore = proxy.count("list", "networkpolicies");
    const ms = await matches();
    const relists = proxy.count("list", "networkpolicies") - listsBefore;
    measure(
      "operator paused past 1500 events + etcd compaction",
      ms,
      relists,
      "from SIGCONT to checker match; NetworkPolicy LISTs after resuming",
    );
    expect(operator.exit).to.equal(undefined);
    await ok(["delete", "networkpolicy", "churn", "-n", "team-a"]);
  });
});

describe("faults: a watch resumed past an etcd compaction gets 410 Gone (API server without watch cache)", function () {
  this.timeout(300_000);
  let cp: ControlPlane;
  let proxy: FaultProxy;
  let operator: OperatorProcess;
  const ok = kubectlOk(() => cp);

  before(async function () {
    // Without the watch cache every watch is served by etcd, so a resourceVersion older than the last
    // compaction is answered 410 Gone (with the cache, the API server kept serving it: see above).
    cp = await startControlPlane({ name: "faults-gone", extraApiServerFlags: ["--watch-cache=false"] });
    recordKubeconfigSecrets(cp.kubeconfigPath);
    await installCrd(cp);
    for (const ns of ["team-a", "team-b"]) {
      await ok(["create", "namespace", ns]);
      await ok(["label", "namespace", ns, "csp.example.com/tier=web"]);
    }
    proxy = await FaultProxy.forKubeconfig(cp.kubeconfigPath);
    operator = new OperatorProcess(proxy.writeKubeconfig(join(cp.dir, "proxy.kubeconfig")));
    await ok(["apply", "-f", "samples/baseline.yaml"]);
    await ok(["wait", "--for=condition=Compliant", "csp/baseline", "--timeout=90s"]);
  });

  afterEach(function () {
    printLogIfFailed(this.currentTest, operator);
  });

  after(async () => {
    try {
      if (cp) await recordClusterTexts(cp);
    } finally {
      await operator?.stop();
      await proxy?.stop();
      await cp?.stop();
    }
  });

  it("paused (SIGSTOP), drift made, etcd compacted, watches ended: relists on 410 and repairs it", async () => {
    await eventually("a NetworkPolicy watch open", () =>
      Promise.resolve(proxy.count("watch", "networkpolicies") > 0),
    );
    const pid = operator.pid;
    const logBefore = operator.log.length;
    operator.signal("SIGSTOP");
    try {
      // Its watches end cleanly while it is paused (as at their server-side timeout), before the drift is
      // made: it will resume them from resourceVersions older than the drift, which etcd no longer has.
      expect(
        proxy.endStreams((path) => /watch=(true|1)/.test(path)),
        "watches ended",
      ).to.be.greaterThan(0);
      await ok(["delete", "networkpolicy", "csp-baseline-allow-dns", "-n", "team-a"]);
      await ok(["label", "namespace", "team-b", "pod-security.kubernetes.io/enforce-"]);
      const revision = await etcdRevision(cp);
      const compacted = await fetch(`${cp.etcdUrl}/v3/kv/compaction`, {
        method: "POST",
        body: JSON.stringify({ revision, physical: true }),
      });
      expect(compacted.ok, "etcd compaction").to.equal(true);
    } finally {
      operator.signal("SIGCONT");
    }
    const listsBefore = { np: proxy.count("list", "networkpolicies"), ns: proxy.count("list", "namespaces") };
    const ms = await matchesOn(cp, 120_000);
    const relists = {
      np: proxy.count("list", "networkpolicies") - listsBefore.np,
      ns: proxy.count("list", "namespaces") - listsBefore.ns,
    };
    measure(
      "watch resumed past an etcd compaction (410 Gone)",
      ms,
      relists.np + relists.ns,
      `from SIGCONT to checker match; LISTs after resuming: ${relists.np} NetworkPolicy, ${relists.ns} Namespace`,
    );
    // The relist came from the 410 (client-node relists by itself), not from a failure and restart.
    expect(relists.np, "NetworkPolicies relisted").to.be.greaterThan(0);
    expect(relists.ns, "Namespaces relisted").to.be.greaterThan(0);
    expect(operator.log.slice(logBefore)).to.not.contain("informer stopped; restarting");
    expect(operator.exit).to.equal(undefined);
    expect(operator.pid).to.equal(pid);
    await ok(["wait", "--for=condition=Compliant", "csp/baseline", "--timeout=60s"]);
  });
});

/** etcd's current revision (the header of any read). */
async function etcdRevision(cp: ControlPlane): Promise<string> {
  const res = await fetch(`${cp.etcdUrl}/v3/kv/range`, {
    method: "POST",
    body: JSON.stringify({ key: Buffer.from("/registry/").toString("base64"), limit: 1 }),
  });
  return ((await res.json()) as { header: { revision: string } }).header.revision;
}

async function matchesOn(cp: ControlPlane, timeoutMs: number): Promise<number> {
  return (await checkerMatches(cp, { timeoutMs })).ms;
}
