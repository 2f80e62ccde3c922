/**
 * The repair lane on a real API server (controller/lane.ts): a namespace's drift is repaired while a full
 * reconcile of the same policy is in flight, with no write repeated by either lane; Audit drift still
 * reaches status; two policies on one namespace write the union once; a namespace gone while its item
 * waits; a namespace user with `edit` reverting a child in a loop meets the correction limiter.
 * Needs the local control plane (built on first use by controlplane/build.sh).
 */
import type { KubernetesObject } from "@kubernetes/client-node";
import { expect } from "chai";
import type { PlanWriter } from "../../src/controller/apply.js";
import type { AreaReconciler } from "../../src/controller/areas.js";
import { laneKey } from "../../src/controller/lane.js";
import { eventually } from "../support/eventually.js";
import { kubectlOk } from "../support/kubectl.js";
import { HeldWrite, operatorSuite, operatorWritesSince } from "../support/operatorsuite.js";

const PSA_ENFORCE = "pod-security.kubernetes.io/enforce";
const DENY = "csp-baseline-default-deny";

interface Status {
  drift?: { kind: string; namespace?: string; name: string; reason: string }[];
  childUIDs?: string[];
  conditions?: { type: string; status: string }[];
}

describe("repair lane (real API server)", function () {
  this.timeout(120_000);
  const ok = kubectlOk(() => suite.cp);
  const alice = (...args: string[]) => ok(["--as=alice", ...args]);
  /** The namespace editor merge-patches the default-deny in lane-a. */
  const aliceMergePatchDeny = (patch: unknown) =>
    alice("patch", "networkpolicy", DENY, "-n", "lane-a", "--type=merge", "-p", JSON.stringify(patch));
  const json = async <T>(...args: string[]) => JSON.parse(await ok([...args, "-o", "json"])) as T;
  const status = async (policy: string) =>
    (await json<{ status?: Status }>("get", "csp", policy)).status ?? {};
  const np = async (ns: string, name: string) => {
    const r = await suite.cp.kubectl(["get", "networkpolicy", name, "-n", ns, "-o", "json"]);
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
  const writesSince = (from: number, match: (uri: string) => boolean) =>
    operatorWritesSince(suite.cp, from, match);
  const idle = () =>
    suite.operator.controller.queue.length === 0 &&
    suite.operator.controller.queue.inFlight === 0 &&
    suite.operator.repairs.queue.length === 0 &&
    suite.operator.repairs.queue.inFlight === 0;

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

  // A hook on the operator's creates: the continuation after the API server's answer to the next create
  // of an object `holdCreate` matches waits until `releaseCreate` (a slow event loop, made deterministic).
  const createHold = new HeldWrite();

  // A hook on the operator's applies and creates: the next write of an object `holdWrite` matches waits,
  // before it is sent, until `releaseWrite`.
  let holdWrite: (o: KubernetesObject) => boolean = () => false;
  let writeHeld = 0;
  let releaseWrite = () => {};
  const held1 = async <T>(o: KubernetesObject, write: () => Promise<T>): Promise<T> => {
    if (holdWrite(o)) {
      holdWrite = () => false;
      writeHeld++;
      await new Promise<void>((resolve) => (releaseWrite = resolve));
      writeHeld--;
    }
    return write();
  };

  const suite = operatorSuite("lane", {
    grantable: false,
    options: { repairWorkers: 2, areas: [() => gateArea], reports: false },
    beforeStart: (operator) => {
      const applier = operator.applier as unknown as Pick<PlanWriter, "create" | "apply">;
      const create = applier.create.bind(operator.applier);
      const apply = applier.apply.bind(operator.applier);
      applier.apply = <T extends KubernetesObject>(obj: T, fieldManager?: string) =>
        held1(obj, () => apply(obj, fieldManager));
      applier.create = async <T extends KubernetesObject>(obj: T) => {
        const result = await held1(obj, () => create(obj));
        await createHold.after(obj);
        return result;
      };
    },
    cleanup: () => {
      openGate();
      createHold.release();
      holdWrite = () => false;
      releaseWrite();
    },
  });

  before(async function () {
    this.timeout(180_000);
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

  it("repairs a namespace while a full reconcile of the same policy is in flight, and nothing is written twice", async () => {
    await eventually("idle", () => Promise.resolve(idle()));
    closeGate();
    await ok(["annotate", "csp", "baseline", `test/poke=${Date.now()}`, "--overwrite"]);
    await eventually("a full reconcile is held in flight", () => Promise.resolve(held === 1));
    const from = (await suite.cp.auditEvents()).length;
    const gone = (await np("lane-a", DENY))!.metadata.uid;
    await ok(["delete", "networkpolicy", DENY, "-n", "lane-a"]);
    const started = Date.now();
    const back = await eventually("restored by the repair lane", async () => {
      const o = await np("lane-a", DENY);
      return o && o.metadata.uid !== gone ? o : undefined;
    });
    const ms = Date.now() - started;
    expect(held).to.equal(1, "the full reconcile was still in flight");
    expect(suite.operator.controller.queue.inFlight).to.equal(1);
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
    const reconciles = suite.operator.controller.stats.reconciles;
    const repairs = suite.operator.repairs.stats.reconciles;
    const from = (await suite.cp.auditEvents()).length;
    await aliceMergePatchDeny({ spec: { ingress: [{}] } });
    await eventually(
      "allow-all removed",
      async () => ((await np("lane-a", DENY))?.spec.ingress ?? []).length === 0,
    );
    await eventually("idle", () => Promise.resolve(idle()));
    expect(suite.operator.repairs.stats.reconciles).to.be.greaterThan(repairs);
    expect(suite.operator.controller.stats.reconciles).to.equal(
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

  it("an edit user who rewrites the owner of a child the repair lane just created does not keep it", async () => {
    await eventually("idle", () => Promise.resolve(idle()));
    await alice("create", "configmap", "mine", "-n", "lane-a");
    const cm = (await json<{ metadata: { uid: string } }>("get", "configmap", "mine", "-n", "lane-a"))
      .metadata;
    const old = (await np("lane-a", DENY))!.metadata.uid;
    // Full reconciles are held before their status write: status.childUIDs cannot learn the new UID.
    closeGate();
    await alice("delete", "networkpolicy", DENY, "-n", "lane-a", "--wait=false");
    const fresh = await eventually("recreated by the repair lane", async () => {
      const o = await np("lane-a", DENY);
      return o && o.metadata.uid !== old ? o : undefined;
    });
    const mark = fresh.metadata.uid.slice(0, 13);
    expect((await status("baseline")).childUIDs ?? []).to.not.include(mark);
    await aliceMergePatchDeny({
      metadata: {
        ownerReferences: [
          { apiVersion: "v1", kind: "ConfigMap", name: "mine", uid: cm.uid, controller: true },
        ],
      },
      spec: { ingress: [{}] },
    });
    type Np = { metadata: { uid: string; ownerReferences?: { kind: string; name: string }[] } };
    const restored = await eventually("restored while status still does not remember it", async () => {
      const o = (await np("lane-a", DENY)) as (Awaited<ReturnType<typeof np>> & Np) | undefined;
      return o && (o.spec.ingress ?? []).length === 0 ? o : undefined;
    });
    expect(restored.metadata.uid).to.equal(fresh.metadata.uid);
    expect(restored.metadata.ownerReferences?.map((r) => `${r.kind}/${r.name}`)).to.deep.equal([
      "ClusterSecurityPolicy/baseline",
    ]);
    expect((await status("baseline")).childUIDs ?? []).to.not.include(mark, "the gate held status");
    openGate();
    await eventually("its UID is remembered", async () =>
      ((await status("baseline")).childUIDs ?? []).includes(mark),
    );
    await eventually("no drift left", async () => ((await status("baseline")).drift ?? []).length === 0);
    await alice("delete", "configmap", "mine", "-n", "lane-a");
  });

  it("a child deleted after the repair lane created it, before the lane recorded the write, comes back", async () => {
    await eventually("idle", () => Promise.resolve(idle()));
    const inCache = () =>
      suite.operator.cache.namespaceSnapshot("lane-a").networkPolicies.some((n) => n.metadata?.name === DENY);
    createHold.hold((o) => o.metadata?.namespace === "lane-a" && o.metadata.name === DENY);
    await ok(["delete", "networkpolicy", DENY, "-n", "lane-a", "--wait=false"]);
    await eventually("the repair's create answered, its continuation held", () =>
      Promise.resolve(createHold.held === 1),
    );
    await eventually("the cache saw the create", () => Promise.resolve(inCache()));
    await ok(["delete", "networkpolicy", DENY, "-n", "lane-a", "--wait=false"]);
    await eventually("the cache saw the second delete", () => Promise.resolve(!inCache()));
    createHold.release();
    // Within the ledger's 30 s TTL and far from the resync: only a repair brings it back.
    await eventually("the child is back", async () => (await np("lane-a", DENY)) !== undefined, 10_000);
    await eventually("no drift left", async () => ((await status("baseline")).drift ?? []).length === 0);
  });

  it("a child write the repair lane planned before a switch to Audit is not made after it", async () => {
    // No full reconcile running or due (a requeue-after pending in the policy lane's queue): only the
    // repair lane writes in lane-b below.
    const timers = (suite.operator.controller.queue as unknown as { timers: Map<string, unknown> }).timers;
    await eventually("no full reconcile due", () => Promise.resolve(idle() && timers.size === 0));
    const DNS = "csp-baseline-allow-dns";
    const inB = (kind: string, name: string) => (o: KubernetesObject) =>
      o.kind === kind &&
      o.metadata?.name === name &&
      (kind === "Namespace" || o.metadata.namespace === "lane-b");
    // A first repair of lane-b is held just before its write, while more drift arrives there...
    holdWrite = inB("NetworkPolicy", DENY);
    await ok([
      "patch",
      "networkpolicy",
      DENY,
      "-n",
      "lane-b",
      "--type=merge",
      "-p",
      '{"spec":{"ingress":[{}]}}',
    ]);
    await eventually("the first repair's write is held", () => Promise.resolve(writeHeld === 1));
    await ok(["label", "namespace", "lane-b", `${PSA_ENFORCE}-`]);
    await ok(["delete", "networkpolicy", DNS, "-n", "lane-b", "--wait=false"]);
    await eventually("the cache saw both", () => {
      const s = suite.operator.cache.namespaceSnapshot("lane-b");
      return Promise.resolve(
        s.namespaces[0]?.metadata?.labels?.[PSA_ENFORCE] === undefined &&
          !s.networkPolicies.some((n) => n.metadata?.name === DNS),
      );
    });
    // ...so the next repair plans the Namespace's labels (written first) and the missing child: it is held
    // at the first of them while the policy is switched to Audit.
    holdWrite = inB("Namespace", "lane-b");
    releaseWrite();
    await eventually("the second repair's first write is held", () => Promise.resolve(writeHeld === 1));
    expect(suite.operator.controller.queue.inFlight).to.equal(0, "the held write is the repair lane's");
    const generation = suite.operator.cache.policy("baseline")!.metadata.generation ?? 0;
    try {
      await ok(["patch", "csp", "baseline", "--type=merge", "-p", '{"spec":{"mode":"Audit"}}']);
      await eventually("the cache saw the switch", () =>
        Promise.resolve((suite.operator.cache.policy("baseline")!.metadata.generation ?? 0) > generation),
      );
      const from = (await suite.cp.auditEvents()).length;
      releaseWrite();
      await eventually("idle", () => Promise.resolve(idle()));
      const writes = await writesSince(from, (uri) => uri.includes("/namespaces/lane-b/networkpolicies"));
      expect(writes, "nothing planned before Audit is written after it").to.deep.equal([]);
      expect(await np("lane-b", DNS)).to.equal(undefined);
      await eventually("Audit reports it", async () =>
        ((await status("baseline")).drift ?? []).some((d) => d.name === DNS && d.namespace === "lane-b"),
      );
    } finally {
      releaseWrite();
      await ok(["patch", "csp", "baseline", "--type=merge", "-p", '{"spec":{"mode":"Enforce"}}']);
    }
    await eventually("Enforce brings it back", async () => (await np("lane-b", DNS)) !== undefined);
    await eventually("no drift left", async () => ((await status("baseline")).drift ?? []).length === 0);
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
    const from = (await suite.cp.auditEvents()).length;
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
    const repairs = suite.operator.repairs.stats.reconciles;
    // Selected before and after: the repair lane's item; it writes nothing, and status follows.
    await ok(["label", "namespace", "lane-audit", `${PSA_ENFORCE}=restricted`]);
    await eventually("status no longer reports the labels", async () => !(await psaDrift()));
    expect(suite.operator.repairs.stats.reconciles).to.be.greaterThan(repairs);
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
    const failures = suite.operator.repairs.stats.failures;
    await ok(["delete", "namespace", "lane-gone", "--wait=true", "--timeout=60s"]);
    const from = (await suite.cp.auditEvents()).length;
    suite.operator.repairs.queue.add(laneKey("baseline", "lane-gone"));
    await eventually("idle", () => Promise.resolve(idle()));
    expect(suite.operator.repairs.stats.failures).to.equal(failures);
    expect(await writesSince(from, (uri) => uri.includes("lane-gone"))).to.deep.equal([]);
  });

  it("an edit user reverting a child in a loop meets the correction limiter: Contested in status", async () => {
    let contested = false;
    let rounds = 0;
    for (; rounds < 10 && !contested; rounds++) {
      await aliceMergePatchDeny({ spec: { ingress: [{}] } });
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
