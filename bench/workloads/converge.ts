// One cold-converge run on a fresh control plane, for the operator or the bare client:
// N labelled namespaces exist (with their default ServiceAccounts); then the client starts (operator:
// the baseline policy is created once its caches are synced; bare: "go") and the observer times the
// moment all 5N objects are as desired. Requests come from the audit log, CPU from /proc. Afterwards,
// steady-state drift repair on the same cluster: the operator itself, or the reflex client after the bare
// client (the lower bound).
import { join } from "node:path";
import {
  createNamespaces,
  names,
  startBenchCluster,
  USERS,
  writeLines,
  type BenchCluster,
} from "../lib/cluster.js";
import { baselinePolicy, POLICY_NAME, SELECTOR_LABEL } from "../lib/desired.js";
import { summarize } from "../lib/audit.js";
import { keysOf } from "../lib/observer.js";
import { startProbe } from "../lib/probe.js";
import { OperatorProcess, touch, tsChild } from "../lib/procs.js";
import { percentile } from "../lib/stats.js";
import { injectFaults } from "./faults.js";

export type ClientKind = "operator" | "bare";

export interface ConvergeResult {
  client: ClientKind;
  n: number;
  rep: number;
  /** Writes in flight: the operator's --max-concurrent-writes, the bare client's pool size. */
  concurrency: number;
  convergeMs: number;
  /** Requests during converge (until the first reconcile that started after convergence completed). */
  requests: ReturnType<typeof summarize>;
  reconciles: number;
  cpuSeconds: number;
  probeP50Ms: number;
  probeP99Ms: number;
  drift: {
    p50Ms: number;
    p99Ms: number;
    faults: number;
    writes: number;
    writesByResource: Record<string, number>;
  };
}

export interface ConvergeOptions {
  /** The operator's --max-concurrent-writes and the bare client's pool size: the same bound for both. */
  concurrency: number;
  /** Faults injected after converge; 0 skips the drift measurement. */
  faults: number;
  logDir: string;
}

export async function runConverge(
  client: ClientKind,
  n: number,
  rep: number,
  o: ConvergeOptions,
): Promise<ConvergeResult> {
  const tag = `${client}-${n}-c${o.concurrency}-r${rep}`;
  const c = await startBenchCluster(`bench-${tag}`);
  try {
    const nss = names("ns", 0, n);
    await createNamespaces(c, nss, { [SELECTOR_LABEL]: "web" });
    return client === "operator"
      ? await operatorRun(c, nss, rep, o, tag)
      : await bareRun(c, nss, rep, o, tag);
  } finally {
    await c.stop();
  }
}

async function operatorRun(
  c: BenchCluster,
  nss: string[],
  rep: number,
  o: ConvergeOptions,
  tag: string,
): Promise<ConvergeResult> {
  const op = new OperatorProcess(
    c.kubeconfigs.operator,
    300,
    join(o.logDir, `${tag}-operator.log`),
    o.concurrency,
  );
  try {
    await op.synced();
    const m0 = await c.audit.mark();
    const cpu0 = await op.cpuSeconds();
    const probe = startProbe(c.kubeconfigs.probe);
    const t0 = performance.now();
    await c.admin.json("POST", "/apis/security.csp-operator.io/v1alpha1/clustersecuritypolicies", {
      body: baselinePolicy(),
    });
    const convergedAt = await c.observer.converged(keysOf(nss), 600_000 + nss.length * 200);
    const probeMs = await probe.stop();
    await touch(c, op, POLICY_NAME); // the converge is over once a reconcile started after it completed
    const cpu1 = await op.cpuSeconds();
    const m1 = await c.audit.mark();
    const reconciles = op.count(POLICY_NAME);
    // Settled once a forced reconcile completed after the last repair (its status write and Event included).
    const drift = await measureDrift(c, nss, o.faults, USERS.operator, () => touch(c, op, POLICY_NAME));
    return {
      client: "operator",
      n: nss.length,
      rep,
      concurrency: o.concurrency,
      convergeMs: convergedAt - t0,
      requests: summarize(c.audit.between(m0, m1, USERS.operator)),
      reconciles,
      cpuSeconds: cpu1 - cpu0,
      probeP50Ms: percentile(probeMs, 50),
      probeP99Ms: percentile(probeMs, 99),
      drift,
    };
  } finally {
    await op.stop();
  }
}

async function bareRun(
  c: BenchCluster,
  nss: string[],
  rep: number,
  o: ConvergeOptions,
  tag: string,
): Promise<ConvergeResult> {
  // The same policy object exists (nobody reconciles it) so the bare client writes identical ownerReferences.
  const policy = await c.admin.json<{ metadata: { uid: string } }>(
    "POST",
    "/apis/security.csp-operator.io/v1alpha1/clustersecuritypolicies",
    { body: baselinePolicy() },
  );
  const file = writeLines(c.cp.dir, "namespaces.txt", nss);
  const bare = tsChild(
    "bench/workloads/bare.ts",
    [
      "--kubeconfig",
      c.kubeconfigs.bare,
      "--policy-uid",
      policy.metadata.uid,
      "--namespaces-file",
      file,
      "--concurrency",
      String(o.concurrency),
    ],
    join(o.logDir, `${tag}-bare.log`),
  );
  try {
    await bare.line((l) => l === "ready", "the bare client to be ready");
    const m0 = await c.audit.mark();
    const cpu0 = await bare.cpuSeconds();
    const probe = startProbe(c.kubeconfigs.probe);
    const t0 = performance.now();
    const done = bare.line(
      (l) => l.startsWith("done "),
      "the bare client to finish",
      600_000 + nss.length * 200,
    );
    done.catch(() => undefined); // awaited below; a failure meanwhile must not go unhandled
    bare.send("go\n");
    const convergedAt = await c.observer.converged(keysOf(nss), 600_000 + nss.length * 200);
    const probeMs = await probe.stop();
    await done;
    const cpu1 = await bare.cpuSeconds();
    const m1 = await c.audit.mark();
    bare.proc.stdin!.end();
    await bare.exited;
    const reflex = tsChild(
      "bench/workloads/reflex.ts",
      ["--kubeconfig", c.kubeconfigs.reflex, "--policy-uid", policy.metadata.uid],
      join(o.logDir, `${tag}-reflex.log`),
    );
    try {
      await reflex.line((l) => l === "ready", "the reflex client to be ready");
      const drift = await measureDrift(c, nss, o.faults, USERS.reflex);
      return {
        client: "bare",
        n: nss.length,
        rep,
        concurrency: o.concurrency,
        convergeMs: convergedAt - t0,
        requests: summarize(c.audit.between(m0, m1, USERS.bare)),
        reconciles: 0,
        cpuSeconds: cpu1 - cpu0,
        probeP50Ms: percentile(probeMs, 50),
        probeP99Ms: percentile(probeMs, 99),
        drift,
      };
    } finally {
      await reflex.stop();
    }
  } finally {
    await bare.stop();
  }
}

export async function measureDrift(
  c: BenchCluster,
  nss: readonly string[],
  faults: number,
  user: string,
  settle?: () => Promise<void>,
): Promise<ConvergeResult["drift"]> {
  if (faults === 0) return { p50Ms: NaN, p99Ms: NaN, faults: 0, writes: 0, writesByResource: {} };
  const m0 = await c.audit.mark();
  const run = await injectFaults(c, nss, faults);
  await settle?.();
  const m1 = await c.audit.mark();
  const s = summarize(c.audit.between(m0, m1, user));
  return {
    p50Ms: percentile(run.latenciesMs, 50),
    p99Ms: percentile(run.latenciesMs, 99),
    faults: run.latenciesMs.length,
    writes: s.writes,
    writesByResource: s.writesByResource,
  };
}
