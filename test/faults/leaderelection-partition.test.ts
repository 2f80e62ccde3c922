/**
 * `npm run test:faults` (not in `npm test`: ~30 s of waiting on lease timings).
 * Needs the local control plane (built on first use by controlplane/build.sh).
 * The leader's Lease renewals hang (a partition between it and the API server, made by the fault proxy,
 * test/support/faultproxy.ts): it must stop writing at its renew deadline, send no write while it does not
 * lead (counted at the proxy, which sees every request that got past the write fence), and lead and repair
 * again once the partition heals.
 */
import { expect } from "chai";
import { join } from "node:path";
import { useControlPlane } from "../support/controlplane.js";
import { installCrd } from "../support/crd.js";
import { eventually } from "../support/eventually.js";
import { FaultProxy } from "../support/faultproxy.js";
import { kubectlOk } from "../support/kubectl.js";
import {
  LEADER_ELECT_ARGS,
  leaseHolder,
  spawnOperator,
  TEST_LEASE as LEASE,
  type OperatorProcess,
} from "../support/operatorprocess.js";

describe("leader election under a partition (fault proxy, real API server)", function () {
  this.timeout(180_000);
  const cp = useControlPlane({ name: "le-partition" });
  const ok = kubectlOk(cp);
  const procs: OperatorProcess[] = [];
  const holder = () => leaseHolder(ok);
  const childCount = async () =>
    (
      await ok([
        "get",
        "networkpolicy",
        "-n",
        "le-part",
        "-l",
        "app.kubernetes.io/managed-by=csp-operator",
        "-o",
        "name",
      ])
    )
      .split("\n")
      .filter(Boolean).length;

  before(async function () {
    this.timeout(60_000);
    await installCrd(cp());
    await ok(["create", "namespace", "csp-system"]);
    await ok(["create", "namespace", "le-part"]);
    await ok(["label", "namespace", "le-part", "le-test=le-part"]);
    await ok(
      ["apply", "-f", "-"],
      JSON.stringify({
        apiVersion: "security.csp-operator.io/v1alpha1",
        kind: "ClusterSecurityPolicy",
        metadata: { name: "le-part" },
        spec: { namespaces: { selector: { matchLabels: { "le-test": "le-part" } } } },
      }),
    );
  });

  afterEach(function () {
    if (this.currentTest?.state === "failed")
      for (const p of procs)
        process.stderr.write(`--- ${p.name} (${p.exit ?? "running"}):\n${p.log.slice(-3000)}\n`);
  });

  after(async () => {
    for (const p of procs) if (p.exit === undefined) p.child.kill("SIGKILL");
    await Promise.all(procs.map((p) => p.exited));
  });

  it("a leader that cannot renew stops writing at the renew deadline, and writes again only once it holds the Lease", async () => {
    const proxy = await FaultProxy.forKubeconfig(cp().kubeconfigPath);
    try {
      const op = spawnOperator(
        "op-p",
        proxy.writeKubeconfig(join(cp().dir, "op-p.kubeconfig")),
        LEADER_ELECT_ARGS,
      );
      procs.push(op);
      await eventually("op-p leads", async () => (await holder()) === "op-p", 30_000);
      await eventually("op-p converged", async () => (await childCount()) > 0, 60_000);
      /** Writes op-p SENT (the proxy sees every request that got past its write fence). */
      const sentWrites = () =>
        proxy.log.filter((l) => /^(create|update|patch|delete) /.test(l) && !/\/leases|reviews/.test(l));
      // Renewals hang (a partition between the leader and the API server); everything else still works.
      const cut = Date.now();
      const stall = proxy.addRule({ verb: "update", resource: "leases", action: { stall: true } });
      await eventually("op-p steps down", () => Promise.resolve(/lost leadership/.test(op.log)), 30_000);
      const lostAfter = Date.now() - cut;
      expect(lostAfter, `stepped down ${lostAfter} ms after renewals stopped`).to.be.at.most(
        LEASE.renew + LEASE.retry + 1_500,
      );
      const before = sentWrites().length;
      // Drift while it cannot lead: its watch sees it, but no write may leave the process.
      await ok([
        "delete",
        "networkpolicy",
        "-n",
        "le-part",
        "-l",
        "app.kubernetes.io/managed-by=csp-operator",
      ]);
      const tries = stall.hits;
      await eventually("three more renewal attempts", () => Promise.resolve(stall.hits >= tries + 3), 30_000);
      expect(sentWrites().slice(before), "writes sent while not leading").to.deep.equal([]);
      expect(await childCount()).to.equal(0);
      // The partition heals: it takes its Lease again and repairs the drift.
      stall.remove();
      proxy.dropStreams();
      await eventually("le-part repaired after re-election", async () => (await childCount()) > 0, 60_000);
      expect(op.log.match(/became leader/g)?.length).to.equal(2);
      op.child.kill("SIGTERM");
      await op.exited;
    } finally {
      await proxy.stop();
    }
  });
});
