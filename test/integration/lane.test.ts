/**
 * The repair lane on a real API server (controller/lane.ts): a namespace's drift is repaired while a full
 * reconcile of the same policy is in flight, with no write repeated by either lane; Audit drift still
 * reaches status; two policies on one namespace write the union once; a namespace gone while its item
 * waits; a namespace user with `edit` reverting a child in a loop meets the correction limiter.
 * Needs the local control plane (built on first use by controlplane/build.sh).
 */
import { expect } from "chai";
import { startControlPlane, type ControlPlane } from "../../controlplane/harness.js";
import type { AreaReconciler } from "../../src/controller/areas.js";
import { laneKey } from "../../src/controller/lane.js";
import { Operator } from "../../src/controller/manager.js";
import { loadKubeConfig } from "../../src/cluster/client.js";
import { createLogger, silentLogger } from "../../src/observability/logger.js";
import { installCrd } from "../support/crd.js";
import { eventually } from "../support/eventually.js";
import { kubectlOk } from "../support/kubectl.js";

const PSA_ENFORCE = "pod-security.kubernetes.io/enforce";
const DENY = "csp-baseline-default-deny";

interface Status {
  drift?: { kind: string; namespace?: string; name: string; reason: string }[];
  childUIDs?: string[];
  conditions?: { type: string; status: string }[];
}

describe("repair lane (real API server)", function () {
  this.timeout(120_000);
  let cp: ControlPlane;
  let operator: Operator;
  const ok = kubectlOk(() => cp);
  const alice = (...args: string[]) => ok(["--as=alice", ...args]);
  const json = async <T>(...args: string[]) => JSON.parse(await ok([...args, "-o", "json"])) as T;
  const status = async (policy: string) =>
    (await json<{ status?: Status }>("get", "csp", policy)).status ?? {};
  const np = async (ns: string, name: string) => {
    const r = await cp.kubectl(["get", "networkpolicy", name, "-n", ns, "-o", "json"]);
    if (r.code !== 0 && /NotFound/.test(r.stderr)) return undefined;
    if (r.code !== 0) throw new Error(r.stderr);
    return JSON.parse(r.stdout) as {
      metadata: { uid: string; resourceVersion: string };
      spec: { ingress?: unknown[] };
    };
  };
  const events = async (policy: string) =>
    (
      await json<{ items: { reason: string; message: string }[] }>(
        "get",
        "events",
        "-n",
        "default",
        "--field-selector",
        `involvedObject.name=${policy}`,
      )
    ).items;
  /** The operator's writes (the admin user, minus the controller manager and kubectl sharing it) since `from`. */
  const writesSince = async (from: number, match: (uri: string) => boolean) =>
    (await cp.auditEvents())
      .slice(from)
      .filter(
        (e) =>
          ["create", "update", "patch", "delete"].includes(String(e["verb"])) &&
          e["stage"] === "ResponseComplete" &&
          (e["user"] as { username?: string }).username === "csp-admin" &&
          !String(e["userAgent"]).startsWith("kube-controller-manager") &&
          !String(e["userAgent"]).startsWith("kubectl") &&
          match(String(e["requestURI"])),
      )
      .map((e) => `${String(e["verb"])} ${String(e["requestURI"])}`);
  const idle = () =>
    operator.controller.queue.length === 0 &&
    operator.controller.queue.inFlight === 0 &&
    operator.repairs.queue.length === 0 &&
    operator.repairs.queue.inFlight === 0;

  // A test area that holds every full reconcile of the policy in flight until the gate opens.
  let gate: Promise<void> = Promise.resolve();
  let openGate = () => {};
  let held = 0;
  const gateArea: AreaReconciler = {
    name: "gate",
    inUse: () => true,
    reconcile: async () => {
      held++;
      await gate;
      held--;
      return {};
    },
  };
  const closeGate = () => {
    gate = new Promise((resolve) => (openGate = resolve));
  };

  before(async function () {
    this.timeout(180_000);
    cp = await startControlPlane({ name: "lane" });
    await installCrd(cp);
    operator = new Operator(
      loadKubeConfig(cp.kubeconfigPath),
      { workers: 2, repairWorkers: 2, resyncMs: 600_000, areas: [() => gateArea], reports: false },
      process.env["CSP_TEST_LOG"] ? createLogger("debug") : silentLogger(),
    );
    await operator.start();
    for (const ns of ["lane-a", "lane-b"]) {
      await ok(["create", "namespace", ns]);
      await ok(["label", "namespace", ns, "csp.example.com/tier=web"]);
    }
    await ok(["create", "rolebinding", "alice-edit", "--clusterrole=edit", "--user=alice", "-n", "lane-a"]);
    await ok(["apply", "-f", "samples/baseline.yaml"]);
    await ok(["wait", "--for=condition=Ready", "csp/baseline", "--timeout=60s"]);
    await eventually("converged", async () => (await np("lane-b", DENY)) !== undefined);
    await eventually("converged", async () => ((await status("baseline")).drift ?? []).length === 0);
  });

  after(async () => {
    openGate();
    await operator?.stop();
    await cp?.stop();
  });

  afterEach(function () {
    openGate();
    if (this.currentTest?.state === "failed") console.error(`control plane logs:\n${cp.logs()}`);
  });

  it("repairs a namespace while a full reconcile of the same policy is in flight, and nothing is written twice", async () => {
    await eventually("idle", () => Promise.resolve(idle()));
    closeGate();
    await ok(["annotate", "csp", "baseline", `test/poke=${Date.now()}`, "--overwrite"]);
    await eventually("a full reconcile is held in flight", () => Promise.resolve(held === 1));
    const from = (await cp.auditEvents()).length;
    const gone = (await np("lane-a", DENY))!.metadata.uid;
    await ok(["delete", "networkpolicy", DENY, "-n", "lane-a"]);
    const started = Date.now();
    const back = await eventually("restored by the repair lane", async () => {
      const o = await np("lane-a", DENY);
      return o && o.metadata.uid !== gone ? o : undefined;
    });
    const ms = Date.now() - started;
    expect(held).to.equal(1, "the full reconcile was still in flight");
    expect(operator.controller.queue.inFlight).to.equal(1);
    console.log(`      (repaired in ${ms} ms while the full reconcile was held)`);
    await eventually("the DriftCorrected Event", async () =>
      (await events("baseline")).some(
        (e) => e.reason === "DriftCorrected" && e.message.includes(`NetworkPolicy lane-a/${DENY} (Missing)`),
      ),
    );
    openGate();
    // The repair asked for a full reconcile: the new child's UID must be remembered in status.
    const mark = back.metadata.uid.slice(0, 13);
    await eventually("the new child's UID is remembered", async () =>
      ((await status("baseline")).childUIDs ?? []).includes(mark),
    );
    await eventually("idle", () => Promise.resolve(idle()));
    const writes = await writesSince(from, (uri) => uri.includes(`/namespaces/lane-a/networkpolicies`));
    expect(writes, `one create, by one lane only: ${writes.join(", ")}`).to.have.length(1);
    expect(writes[0]).to.match(/^(create|patch) /);
  });

  it("restores a modified child with one write, one Event and no full reconcile", async () => {
    await eventually("idle", () => Promise.resolve(idle()));
    const reconciles = operator.controller.stats.reconciles;
    const repairs = operator.repairs.stats.reconciles;
    const from = (await cp.auditEvents()).length;
    await alice(
      "patch",
      "networkpolicy",
      DENY,
      "-n",
      "lane-a",
      "--type=merge",
      "-p",
      JSON.stringify({ spec: { ingress: [{}] } }),
    );
    await eventually(
      "allow-all removed",
      async () => ((await np("lane-a", DENY))?.spec.ingress ?? []).length === 0,
    );
    await eventually("idle", () => Promise.resolve(idle()));
    expect(operator.repairs.stats.reconciles).to.be.greaterThan(repairs);
    expect(operator.controller.stats.reconciles).to.equal(
      reconciles,
      "status did not change: no full reconcile",
    );
    const writes = await writesSince(from, () => true);
    expect(
      writes.filter((w) => w.includes("/networkpolicies/")),
      writes.join(", "),
    ).to.have.length(1);
    expect(writes.filter((w) => w.includes("/events"))).to.have.length(1);
    expect(writes.filter((w) => w.includes("/status"))).to.deep.equal([]);
  });

  it("two policies on one namespace: a repair writes the union once, and it holds", async () => {
    await ok(
      ["apply", "-f", "-"],
      JSON.stringify({
        apiVersion: "security.csp-operator.io/v1alpha1",
        kind: "ClusterSecurityPolicy",
        metadata: { name: "second" },
        spec: {
          namespaces: {
            selector: { matchExpressions: [{ key: "csp.example.com/tier", operator: "Exists" }] },
          },
          podSecurity: { enforce: "baseline" },
        },
      }),
    );
    await ok(["wait", "--for=condition=Ready", "csp/second", "--timeout=60s"]);
    await eventually("idle", () => Promise.resolve(idle()));
    const from = (await cp.auditEvents()).length;
    await ok(["label", "namespace", "lane-a", `${PSA_ENFORCE}=privileged`, "--overwrite"]);
    const label = async () =>
      (await json<{ metadata: { labels?: Record<string, string> } }>("get", "namespace", "lane-a")).metadata
        .labels?.[PSA_ENFORCE];
    await eventually("the stricter level is back", async () => (await label()) === "restricted");
    await eventually("idle", () => Promise.resolve(idle()));
    expect(await label()).to.equal("restricted", "the second policy's lane did not lower it");
    const writes = await writesSince(from, (uri) => /\/namespaces\/lane-a(\?|$)/.test(uri));
    expect(writes, `one write of the namespace for both policies: ${writes.join(", ")}`).to.have.length(1);
    await ok(["delete", "csp", "second"]);
  });

  it("Audit mode: a change the repair lane sees reaches status", async () => {
    await ok(["create", "namespace", "lane-audit"]);
    await ok(["apply", "-f", "samples/audit-only.yaml"]);
    const psaDrift = async () =>
      ((await status("audit-only")).drift ?? []).some(
        (d) => d.kind === "Namespace" && d.name === "lane-audit",
      );
    await eventually("Audit reports the missing labels", psaDrift);
    await eventually("idle", () => Promise.resolve(idle()));
    const repairs = operator.repairs.stats.reconciles;
    // Selected before and after: the repair lane's item; it writes nothing, and status follows.
    await ok(["label", "namespace", "lane-audit", `${PSA_ENFORCE}=restricted`]);
    await eventually("status no longer reports the labels", async () => !(await psaDrift()));
    expect(operator.repairs.stats.reconciles).to.be.greaterThan(repairs);
    const labels = (
      await json<{ metadata: { labels?: Record<string, string> } }>("get", "namespace", "lane-audit")
    ).metadata.labels;
    expect(Object.keys(labels ?? {}).filter((k) => k.startsWith("pod-security"))).to.deep.equal([
      PSA_ENFORCE,
    ]);
    await ok(["delete", "csp", "audit-only"]);
  });

  it("a namespace deleted while its item waits: no error, nothing written", async () => {
    await ok(["create", "namespace", "lane-gone"]);
    await ok(["label", "namespace", "lane-gone", "csp.example.com/tier=web"]);
    await eventually("covered", async () => (await np("lane-gone", DENY)) !== undefined);
    await eventually("idle", () => Promise.resolve(idle()));
    const failures = operator.repairs.stats.failures;
    await ok(["delete", "namespace", "lane-gone", "--wait=true", "--timeout=60s"]);
    const from = (await cp.auditEvents()).length;
    operator.repairs.queue.add(laneKey("baseline", "lane-gone"));
    await eventually("idle", () => Promise.resolve(idle()));
    expect(operator.repairs.stats.failures).to.equal(failures);
    expect(await writesSince(from, (uri) => uri.includes("lane-gone"))).to.deep.equal([]);
  });

  it("an edit user reverting a child in a loop meets the correction limiter: Contested in status", async () => {
    let contested = false;
    let rounds = 0;
    for (; rounds < 10 && !contested; rounds++) {
      await alice(
        "patch",
        "networkpolicy",
        DENY,
        "-n",
        "lane-a",
        "--type=merge",
        "-p",
        JSON.stringify({ spec: { ingress: [{}] } }),
      );
      await eventually("repaired or held", async () => {
        if (((await np("lane-a", DENY))?.spec.ingress ?? []).length === 0) return true;
        contested = ((await status("baseline")).drift ?? []).some(
          (d) => d.reason === "Contested" && d.name === DENY && d.namespace === "lane-a",
        );
        return contested;
      });
    }
    expect(contested, `contested after ${rounds} reverts`).to.equal(true);
    expect(rounds).to.be.greaterThan(1, "the first revert is corrected");
    await eventually("the DriftContested Event", async () =>
      (await events("baseline")).some((e) => e.reason === "DriftContested"),
    );
  });
});
