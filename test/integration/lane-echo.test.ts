/**
 * The echoes of the operator's own writes on a real API server (controller/ledger.ts): a converge of a few
 * hundred namespaces costs the repair lane next to nothing (the watch events of the full reconcile's
 * writes enqueue no repair, and no repair polls a claim), while a namespace user's delete of a child made
 * while the full reconcile holds its claim is still repaired.
 * Needs the local control plane (built on first use by controlplane/build.sh).
 */
import type { KubernetesObject } from "@kubernetes/client-node";
import { expect } from "chai";
import type { PlanWriter } from "../../src/controller/apply.js";
import { eventually } from "../support/eventually.js";
import { kubectlOk } from "../support/kubectl.js";
import { HeldWrite, operatorSuite, operatorWritesSince } from "../support/operatorsuite.js";

const DENY = "csp-baseline-default-deny";
const N = 300;

interface Status {
  drift?: unknown[];
  childUIDs?: string[];
  conditions?: { type: string; status: string }[];
}

describe("echoes of the operator's own writes (real API server)", function () {
  this.timeout(120_000);
  const ok = kubectlOk(() => suite.cp);
  const json = async <T>(...args: string[]) => JSON.parse(await ok([...args, "-o", "json"])) as T;
  const status = async () => (await json<{ status?: Status }>("get", "csp", "baseline")).status ?? {};
  const ready = async () => {
    const s = await status();
    return (
      (s.drift ?? []).length === 0 && !!s.conditions?.some((c) => c.type === "Ready" && c.status === "True")
    );
  };
  const np = async (ns: string) => {
    const r = await suite.cp.kubectl(["get", "networkpolicy", DENY, "-n", ns, "-o", "json"]);
    if (r.code !== 0 && /NotFound/.test(r.stderr)) return undefined;
    if (r.code !== 0) throw new Error(r.stderr);
    return JSON.parse(r.stdout) as { metadata: { uid: string } };
  };
  const idle = () =>
    suite.operator.controller.queue.length === 0 &&
    suite.operator.controller.queue.inFlight === 0 &&
    suite.operator.repairs.queue.length === 0 &&
    suite.operator.repairs.queue.inFlight === 0;
  /** Creates from one manifest (a List): one kubectl, one request per object. */
  const createAll = (items: object[]) =>
    ok(["create", "-f", "-"], JSON.stringify({ apiVersion: "v1", kind: "List", items }));

  // A hook on the operator's creates: the continuation after the API server's answer to the next create
  // `holdCreate` matches waits until `releaseCreate` (the claim stays held meanwhile).
  const createHold = new HeldWrite();

  const suite = operatorSuite("lane-echo", {
    grantable: false,
    options: { repairWorkers: 2, reports: false },
    beforeStart: (operator) => {
      const applier = operator.applier as unknown as Pick<PlanWriter, "create">;
      const create = applier.create.bind(operator.applier);
      applier.create = async <T extends KubernetesObject>(obj: T) => {
        const result = await create(obj);
        await createHold.after(obj);
        return result;
      };
    },
    cleanup: () => {
      createHold.release();
    },
  });

  it(`a converge of ${N} namespaces: the repair lane runs far less than once per write`, async () => {
    await createAll(
      Array.from({ length: N }, (_, i) => ({
        apiVersion: "v1",
        kind: "Namespace",
        metadata: { name: `echo-${i}`, labels: { "csp.example.com/tier": "web" } },
      })),
    );
    // Every namespace's default ServiceAccount exists before the policy: its writes are all patches.
    await eventually(
      "default ServiceAccounts",
      async () =>
        (
          await json<{ items: { metadata: { namespace: string } }[] }>(
            "get",
            "serviceaccounts",
            "-A",
            "--field-selector",
            "metadata.name=default",
          )
        ).items.filter((sa) => sa.metadata.namespace.startsWith("echo-")).length === N,
      60_000,
    );
    await eventually("idle", () => Promise.resolve(idle()));
    const repairs = suite.operator.repairs.stats.reconciles;
    const from = (await suite.cp.auditEvents()).length;
    const started = Date.now();
    await ok(["apply", "-f", "samples/baseline.yaml"]);
    await eventually("converged", ready, 100_000);
    await eventually("idle", () => Promise.resolve(idle()), 30_000);
    const ms = Date.now() - started;
    const writes = (await operatorWritesSince(suite.cp, from, (uri) => /\/namespaces\/echo-\d+/.test(uri)))
      .length;
    const lane = suite.operator.repairs.stats.reconciles - repairs;
    console.log(
      `      (${N} namespaces converged in ${ms} ms: ${writes} writes, ${lane} repair-lane reconciles, ` +
        `ledger ${JSON.stringify(suite.operator.ledger.stats)})`,
    );
    expect(writes).to.be.at.least(N * 4, "the children, labels and ServiceAccounts were written");
    expect(lane).to.be.below(writes / 20, "the echoes of the full reconcile's writes repair nothing");
    expect(suite.operator.ledger.pending).to.deep.equal({ claims: 0, waiters: 0 });
  });

  it("a child a namespace user deletes while the full reconcile holds its claim is repaired; status ends Ready", async () => {
    const ns = "echo-late";
    await ok(["create", "namespace", ns]);
    await ok(["create", "rolebinding", "alice-edit", "--clusterrole=edit", "--user=alice", "-n", ns]);
    await eventually("idle", () => Promise.resolve(idle()));
    const enqueued = suite.operator.ledger.stats.deferredEnqueued;
    createHold.hold(
      (o) => o.kind === "NetworkPolicy" && o.metadata?.namespace === ns && o.metadata.name === DENY,
    );
    // Selected now: the full reconcile creates its children, claimed ahead.
    await ok(["label", "namespace", ns, "csp.example.com/tier=web"]);
    await eventually("the create answered, its claim still held", () =>
      Promise.resolve(createHold.held === 1),
    );
    const created = await eventually("the child exists", () => np(ns));
    await ok(["--as=alice", "delete", "networkpolicy", DENY, "-n", ns]);
    // The delete's event reached the cache while the claim is held: deferred, not lost.
    await eventually("the delete seen", () =>
      Promise.resolve(
        suite.operator.cache.namespaceSnapshot(ns).networkPolicies.every((c) => c.metadata?.name !== DENY),
      ),
    );
    expect(suite.operator.ledger.claimed(`NetworkPolicy/${ns}/${DENY}`)).to.equal(true);
    createHold.release();
    const back = await eventually("restored", async () => {
      const o = await np(ns);
      return o && o.metadata.uid !== created.metadata.uid ? o : undefined;
    });
    expect(suite.operator.ledger.stats.deferredEnqueued).to.be.greaterThan(enqueued);
    await eventually("Ready, nothing drifted", ready);
    const mark = back.metadata.uid.slice(0, 13);
    await eventually("the new child remembered", async () =>
      ((await status()).childUIDs ?? []).includes(mark),
    );
    await eventually("idle", () => Promise.resolve(idle()));
    expect(suite.operator.ledger.pending).to.deep.equal({ claims: 0, waiters: 0 });
  });
});
