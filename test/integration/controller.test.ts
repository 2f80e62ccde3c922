/** Needs the local control plane (built on first use by controlplane/build.sh). */
import { expect } from "chai";
import { readdirSync } from "node:fs";
import { CoreV1Api, NetworkingV1Api } from "@kubernetes/client-node";
import { startControlPlane, type ControlPlane } from "../../controlplane/harness.js";
import { loadKubeConfig } from "../../src/cluster/client.js";
import { silentLogger } from "../../src/observability/logger.js";
import { Operator } from "../../src/controller/manager.js";
import { eventually } from "../support/eventually.js";
import { kubectlOk } from "../support/kubectl.js";
import { installCrd } from "../support/crd.js";

describe("ClusterSecurityPolicy controller (real API server)", function () {
  this.timeout(120_000);
  let cp: ControlPlane;
  let operator: Operator;
  let core: CoreV1Api;
  let net: NetworkingV1Api;
  const kubectl = (...args: string[]) => cp.kubectl(args);
  const mustSucceed = kubectlOk(() => cp);
  const ok = (...args: string[]) => mustSucceed(args);
  const csp = async (name: string) =>
    JSON.parse(await ok("get", "csp", name, "-o", "json")) as {
      status?: Record<string, unknown> & { drift?: { reason: string; name: string; namespace?: string }[] };
    };
  const psaEnforce = async (ns: string) =>
    (await core.readNamespace({ name: ns })).metadata?.labels?.["pod-security.kubernetes.io/enforce"];
  const nps = async (ns: string) =>
    (await net.listNamespacedNetworkPolicy({ namespace: ns })).items.map((n) => n.metadata!.name!).sort();

  before(async function () {
    this.timeout(180_000);
    cp = await startControlPlane({ name: "controller" });
    await installCrd(cp);
    const kc = loadKubeConfig(cp.kubeconfigPath);
    core = kc.makeApiClient(CoreV1Api);
    net = kc.makeApiClient(NetworkingV1Api);
    operator = new Operator(kc, { workers: 2, resyncMs: 600_000 }, silentLogger());
    await operator.start();
    await ok("create", "namespace", "team-a");
    await ok("label", "namespace", "team-a", "csp.example.com/tier=web");
    await ok("create", "namespace", "team-b");
  });

  after(async () => {
    await operator?.stop();
    await cp?.stop();
  });

  afterEach(function () {
    if (this.currentTest?.state === "failed") console.error(`control plane logs:\n${cp.logs()}`);
  });

  it("accepts every valid sample as written (server-side dry run)", async () => {
    const valid = readdirSync("samples").filter((f) => f.endsWith(".yaml"));
    expect(valid.length).to.be.greaterThan(2);
    for (const file of valid) {
      const r = await kubectl("apply", "--dry-run=server", "-f", `samples/${file}`);
      expect(r.code, `samples/${file} was rejected: ${r.stderr}`).to.equal(0);
    }
  });

  it("rejects every invalid sample at admission", async () => {
    for (const file of readdirSync("samples/invalid")) {
      const r = await kubectl("apply", "-f", `samples/invalid/${file}`);
      expect(r.code, `samples/invalid/${file} was accepted`).to.not.equal(0);
      expect(r.stderr).to.match(/invalid|Invalid|Unsupported|must|Duplicate/);
    }
  });

  it("applies the baseline sample: Ready, children with ownership, PSA labels, default SA token off", async () => {
    await ok("apply", "-f", "samples/baseline.yaml");
    await ok("wait", "--for=condition=Ready", "csp/baseline", "--timeout=60s");
    await ok("wait", "--for=condition=Compliant", "csp/baseline", "--timeout=60s");
    expect(await nps("team-a")).to.deep.equal([
      "csp-baseline-allow-dns",
      "csp-baseline-allow-same-namespace",
      "csp-baseline-default-deny",
    ]);
    expect(await nps("team-b")).to.deep.equal([], "team-b is not selected");
    const deny = await net.readNamespacedNetworkPolicy({
      namespace: "team-a",
      name: "csp-baseline-default-deny",
    });
    expect(deny.metadata?.labels).to.include({
      "app.kubernetes.io/managed-by": "csp-operator",
      "security.csp-operator.io/policy": "baseline",
    });
    expect(deny.metadata?.ownerReferences?.[0]).to.include({
      kind: "ClusterSecurityPolicy",
      name: "baseline",
      controller: true,
    });
    expect(deny.spec?.policyTypes).to.deep.equal(["Ingress", "Egress"]);
    const ns = await core.readNamespace({ name: "team-a" });
    expect(ns.metadata?.labels).to.include({
      "pod-security.kubernetes.io/enforce": "restricted",
      "pod-security.kubernetes.io/enforce-version": "latest",
    });
    const sa = await eventually("default SA", () =>
      core.readNamespacedServiceAccount({ namespace: "team-a", name: "default" }),
    );
    expect(sa.automountServiceAccountToken).to.equal(false);
    const out = await ok("get", "csp");
    expect(out).to.match(/NAME\s+MODE\s+READY\s+COMPLIANT\s+DRIFTED\s+FINDINGS\s+AGE/);
    expect(out).to.match(/baseline\s+Enforce\s+True\s+True\s+0\s+\d+/);
  });

  it("restores a deleted child and reports the correction as an Event", async () => {
    await ok("delete", "networkpolicy", "csp-baseline-default-deny", "-n", "team-a");
    await eventually("restored", async () => (await nps("team-a")).includes("csp-baseline-default-deny"));
    const events = await ok(
      "get",
      "events",
      "-n",
      "default",
      "--field-selector",
      "involvedObject.name=baseline",
      "-o",
      "jsonpath={.items[*].reason}",
    );
    expect(events).to.contain("DriftCorrected");
  });

  it("removes a rule someone else added to a managed policy (allow-all ingress)", async () => {
    await ok(
      "patch",
      "networkpolicy",
      "csp-baseline-default-deny",
      "-n",
      "team-a",
      "--type=merge",
      "-p",
      '{"spec":{"ingress":[{}]}}',
    );
    await eventually("ingress removed", async () => {
      const d = await net.readNamespacedNetworkPolicy({
        namespace: "team-a",
        name: "csp-baseline-default-deny",
      });
      return (d.spec?.ingress ?? []).length === 0;
    });
  });

  it("restores a Pod Security label changed by hand", async () => {
    await ok("label", "--overwrite", "namespace", "team-a", "pod-security.kubernetes.io/enforce=privileged");
    await eventually("label restored", async () => (await psaEnforce("team-a")) === "restricted");
  });

  it("never overwrites an object it does not own: reports it Unowned", async () => {
    await ok("create", "namespace", "team-c");
    const foreign = `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: { name: csp-baseline-default-deny, namespace: team-c }
spec: { podSelector: { matchLabels: { app: mine } }, policyTypes: [Ingress] }
`;
    expect((await cp.kubectl(["apply", "-f", "-"], { input: foreign })).code).to.equal(0);
    await ok("label", "namespace", "team-c", "csp.example.com/tier=db");
    const status = await eventually("Unowned reported", async () => {
      const s = (await csp("baseline")).status;
      return s?.drift?.some((d) => d.reason === "Unowned" && d.namespace === "team-c") ? s : undefined;
    });
    expect(status.drift?.find((d) => d.reason === "Unowned")?.name).to.equal("csp-baseline-default-deny");
    const np = await net.readNamespacedNetworkPolicy({
      namespace: "team-c",
      name: "csp-baseline-default-deny",
    });
    expect(np.spec?.podSelector?.matchLabels).to.deep.equal(
      { app: "mine" },
      "the foreign object must be untouched",
    );
    expect(np.metadata?.labels?.["app.kubernetes.io/managed-by"]).to.equal(undefined);
    await ok("wait", "--for=condition=Compliant=False", "csp/baseline", "--timeout=30s");
    await ok("delete", "namespace", "team-c", "--wait=false");
  });

  it("costs zero writes once converged, across a forced resync", async () => {
    await eventually("converged", async () => ((await csp("baseline")).status?.drift ?? []).length === 0);
    await new Promise((r) => setTimeout(r, 2000));
    const versions = async () => {
      const policies = await net.listNetworkPolicyForAllNamespaces({
        labelSelector: "app.kubernetes.io/managed-by=csp-operator",
      });
      const namespaces = await core.listNamespace();
      return [...policies.items, ...namespaces.items]
        .map((o) => `${o.metadata!.namespace ?? ""}/${o.metadata!.name!}@${o.metadata!.resourceVersion!}`)
        .sort();
    };
    // team-c (deleted by the previous test) must finish terminating first: that is not the operator's write.
    await eventually(
      "no namespace terminating",
      async () => (await core.listNamespace()).items.every((n) => !n.metadata?.deletionTimestamp),
      60_000,
    );
    const versionsBefore = await versions();
    expect(versionsBefore.length).to.be.greaterThan(3);
    const before = (await cp.auditEvents()).length;
    const reconciles = operator.controller.stats.reconciles;
    operator.controller.resync();
    // The resync ran (the count grew) and nothing is left to do (queue drained, nothing in flight).
    await eventually("the resync reconciled and the queue drained", () =>
      Promise.resolve(
        operator.controller.stats.reconciles > reconciles &&
          operator.controller.queue.length === 0 &&
          operator.controller.queue.inFlight === 0,
      ),
    );
    const writes = (await cp.auditEvents())
      .slice(before)
      .filter(
        (e) =>
          ["create", "update", "patch", "delete"].includes(String(e["verb"])) &&
          e["stage"] === "ResponseComplete",
      )
      .filter(
        (e) => !String((e["objectRef"] as { resource?: string } | undefined)?.resource).startsWith("leases"),
      )
      // Only the operator's requests: the test's admin user, minus the controller manager sharing it.
      .filter((e) => (e["user"] as { username?: string }).username === "csp-admin")
      .filter((e) => !String(e["userAgent"]).startsWith("kube-controller-manager"));
    expect(writes.map((w) => `${String(w["verb"])} ${String(w["requestURI"])}`)).to.deep.equal([]);
    expect(await versions()).to.deep.equal(versionsBefore, "managed objects' resourceVersions are unchanged");
  });

  it("events for namespaces no policy selects (and their default ServiceAccounts) enqueue nothing", async () => {
    await eventually("converged", async () => ((await csp("baseline")).status?.drift ?? []).length === 0);
    const idle = () => operator.controller.queue.length === 0 && operator.controller.queue.inFlight === 0;
    await eventually("queue drained", () => Promise.resolve(idle()));
    const reconciles = operator.controller.stats.reconciles;
    const names = ["unrelated-1", "unrelated-2", "unrelated-3"];
    for (const n of names) await ok("create", "namespace", n);
    for (const n of names) await ok("label", "namespace", n, "team=elsewhere");
    // Handlers enqueue synchronously as the cache takes each event in: once the caches hold the labelled
    // namespaces and their default ServiceAccounts, every event has been handled.
    await eventually("the caches saw every event", () => {
      const s = operator.cache.snapshot();
      return Promise.resolve(
        names.every(
          (n) =>
            s.namespaces.some((x) => x.metadata?.name === n && x.metadata.labels?.["team"] === "elsewhere") &&
            s.serviceAccounts.some((x) => x.metadata?.namespace === n && x.metadata.name === "default"),
        ),
      );
    });
    expect(operator.controller.stats.reconciles).to.equal(
      reconciles,
      "no reconcile for unrelated namespaces",
    );
    expect(idle()).to.equal(true, "nothing queued");
    // The same events for a namespace the baseline selects do reconcile: the count can move.
    await ok("label", "namespace", "unrelated-3", "csp.example.com/tier=web");
    await eventually("a selected namespace reconciles", () =>
      Promise.resolve(operator.controller.stats.reconciles > reconciles),
    );
    for (const n of names) await ok("delete", "namespace", n, "--wait=false");
  });

  it("cleans a namespace that leaves the selector", async () => {
    await ok("label", "namespace", "team-a", "csp.example.com/tier-");
    await eventually("children pruned", async () => (await nps("team-a")).length === 0);
    await eventually("labels released", async () => (await psaEnforce("team-a")) === undefined);
    const relabelled = Date.now();
    await ok("label", "namespace", "team-a", "csp.example.com/tier=web");
    await eventually("re-covered", async () => (await nps("team-a")).length === 3);
    console.log(`      (relabelled namespace covered again in ${Date.now() - relabelled} ms)`);
  });

  it("Audit mode reports drift and writes nothing", async () => {
    await ok("create", "namespace", "audited");
    await ok("apply", "-f", "samples/audit-only.yaml");
    await ok("wait", "--for=condition=Ready", "csp/audit-only", "--timeout=60s");
    const s = (await csp("audit-only")).status!;
    expect(s.drift?.some((d) => d.reason === "Missing" && d.namespace === "audited")).to.equal(true);
    expect(await nps("audited")).to.deep.equal([]);
    expect(await psaEnforce("audited")).to.equal(undefined);
    await ok("wait", "--for=condition=Compliant=False", "csp/audit-only", "--timeout=30s");
    await ok("delete", "csp", "audit-only");
  });

  it("deleting the policy removes what it created and releases shared labels", async () => {
    await ok("delete", "csp", "baseline");
    await eventually("labels released", async () => (await psaEnforce("team-a")) === undefined);
    await eventually("children garbage-collected", async () => (await nps("team-a")).length === 0, 90_000);
  });
});
