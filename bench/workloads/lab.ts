// The operator's steady-state measurements, on one cluster with one compiled operator process:
// memory at N = 0 and each N; GETs/LISTs per forced reconcile in Enforce and in Audit; an idle window
// plus a forced resync; drift repair during an unrelated burst and during a cold converge backlog;
// memory before and after an unrelated load of ConfigMaps and RoleBindings.
import { join } from "node:path";
import { summarize } from "../lib/audit.js";
import { createNamespaces, names, startBenchCluster, USERS, type BenchCluster } from "../lib/cluster.js";
import { baselinePolicy, OBJECTS_PER_NAMESPACE, POLICY_NAME, SELECTOR_LABEL } from "../lib/desired.js";
import type { HeapSizing } from "../lib/heap.js";
import { pool } from "../lib/kube.js";
import { keysOf } from "../lib/observer.js";
import { OperatorProcess, touch } from "../lib/procs.js";
import { percentile } from "../lib/stats.js";
import { injectFaults } from "./faults.js";

export interface LabOptions {
  namespaces: number[];
  idleSeconds: number;
  faults: number;
  backlog: number;
  burst: number;
  unrelated: number;
  logDir: string;
  /** The container limit emulated and the operator's node flags for it (bench/lib/heap.ts). */
  sizing: HeapSizing;
}

export interface MemoryPoint {
  label: string;
  managedObjects: number;
  rssBytes: number;
  heapUsedBytes: number;
  /** The highest RSS so far (VmHWM), e.g. while converging; absent in older saved results. */
  peakRssBytes?: number;
  /** V8's heap limit in the operator process. */
  heapSizeLimitBytes?: number;
  /** The largest heap right after a major GC so far (the live heap at its peak, e.g. mid-reconcile). */
  peakHeapAfterGcBytes?: number;
  /**
   * Heap used right after the step (converged, a reconcile completed), before the write ledger's memory of
   * the step's writes expired (heapUsedBytes is after); absent in older saved results.
   */
  heapUsedRightAfterBytes?: number;
}

export interface PerReconcile {
  reconciles: number;
  gets: number;
  lists: number;
  writes: number;
}

export interface DriftUnderLoad {
  load: number;
  loadMs: number;
  faults: number;
  p50Ms: number;
  p99Ms: number;
}

export interface LabResult {
  resyncSeconds: number;
  /** The container memory limit the operator's heap was sized for; absent in older saved results (unbounded). */
  memoryLimitBytes?: number;
  /** The operator's V8 heap flags (the image's sizing under that limit). */
  nodeArgs?: string[];
  memory: MemoryPoint[];
  enforce: PerReconcile;
  audit: PerReconcile & { namespaces: number };
  idle: {
    seconds: number;
    writes: number;
    requests: number;
    byVerb: Record<string, number>;
    reconciles: number;
  };
  duringBurst: DriftUnderLoad & { cpuSeconds: number };
  duringConverge: DriftUnderLoad;
  unrelated: { objects: number; before: MemoryPoint; after: MemoryPoint };
}

/** Under load, one fault is started this often (on another namespace) while the load lasts. */
const FAULT_PACE_MS = 500;

const POLICIES = "/apis/security.csp-operator.io/v1alpha1/clustersecuritypolicies";

export async function runLab(o: LabOptions): Promise<LabResult> {
  const c = await startBenchCluster("bench-lab");
  const resyncSeconds = o.idleSeconds >= 600 ? 300 : Math.max(5, Math.floor(o.idleSeconds / 3));
  // The operator as the image runs it under the Deployment's limit, as in runMemory (--trace-gc: the largest
  // live heap, OperatorProcess.peakHeapAfterMajorGc).
  const op = new OperatorProcess(
    c.kubeconfigs.operator,
    resyncSeconds,
    join(o.logDir, "lab-operator.log"),
    8,
    {
      args: [...o.sizing.nodeArgs, "--trace-gc"],
    },
  );
  try {
    await op.synced();
    await c.admin.json("POST", POLICIES, { body: baselinePolicy() });
    await op.reconciled(POLICY_NAME, 1);
    const memory: MemoryPoint[] = [await memoryPoint(c, op, "N=0", 0)];

    let selected: string[] = [];
    for (const n of [...o.namespaces].sort((a, b) => a - b)) {
      const more = names("lab", selected.length, n);
      await createNamespaces(c, more, { [SELECTOR_LABEL]: "web" });
      selected = [...selected, ...more];
      await settle(c, op, selected);
      memory.push(await memoryPoint(c, op, `N=${n}`, n * OBJECTS_PER_NAMESPACE));
    }

    const enforce = await forcedReconciles(c, op, POLICY_NAME, 5);

    // Idle: nothing changes; periodic resyncs run (resyncSeconds); then one forced resync.
    const i0 = await c.audit.mark();
    const r0 = op.count(POLICY_NAME);
    await new Promise((r) => setTimeout(r, o.idleSeconds * 1000)); // the idle window itself
    await touch(c, op, POLICY_NAME);
    const i1 = await c.audit.mark();
    const idleSummary = summarize(c.audit.between(i0, i1, USERS.operator));
    const idle = {
      seconds: o.idleSeconds,
      writes: idleSummary.writes,
      requests: idleSummary.total,
      byVerb: idleSummary.byVerb,
      reconciles: op.count(POLICY_NAME) - r0,
    };

    // Audit mode: a second policy over the same namespaces that reports only; its children never exist.
    await c.admin.json("POST", POLICIES, { body: baselinePolicy("audit", "Audit") });
    await op.reconciled("audit", 1);
    const audit = { ...(await forcedReconciles(c, op, "audit", 3)), namespaces: selected.length };
    await c.admin.json("DELETE", `${POLICIES}/audit`);

    // Drift during a burst of unrelated namespace creations.
    const burstNames = names("unrelated", 0, o.burst);
    const cpu0 = await op.cpuSeconds();
    const b0 = performance.now();
    let burstDone = false;
    const burst = createNamespaces(c, burstNames, {}, false).finally(() => (burstDone = true));
    const burstFaults = await injectFaults(c, selected, o.faults, {
      keepGoing: () => !burstDone,
      everyMs: FAULT_PACE_MS,
    });
    await burst;
    const burstMs = performance.now() - b0;
    await touch(c, op, POLICY_NAME); // the queue has drained once a reconcile started after this completes
    const duringBurst = {
      ...driftSummary(burstFaults.latenciesMs, o.burst, burstMs),
      cpuSeconds: (await op.cpuSeconds()) - cpu0,
    };

    // Drift during the cold converge of a backlog of newly selected namespaces.
    const backlog = names("backlog", 0, o.backlog);
    const k0 = performance.now();
    let backlogDone = false;
    const converge = createNamespaces(c, backlog, { [SELECTOR_LABEL]: "web" }, false)
      .then(() => c.observer.converged(keysOf(backlog), 600_000 + o.backlog * 500))
      .finally(() => (backlogDone = true));
    const convergeFaults = await injectFaults(c, selected, o.faults, {
      keepGoing: () => !backlogDone,
      everyMs: FAULT_PACE_MS,
    });
    const backlogAt = await converge;
    selected = [...selected, ...backlog];
    await settle(c, op, selected);
    const duringConverge = driftSummary(convergeFaults.latenciesMs, o.backlog, backlogAt - k0);

    // Unrelated load: ConfigMaps and RoleBindings the policy has nothing to do with.
    const before = await memoryPoint(c, op, `N=${selected.length}`, selected.length * OBJECTS_PER_NAMESPACE);
    await unrelatedLoad(c, o.unrelated);
    await touch(c, op, POLICY_NAME);
    const after = await memoryPoint(
      c,
      op,
      `N=${selected.length} + ${o.unrelated} unrelated`,
      before.managedObjects,
    );

    return {
      resyncSeconds,
      memoryLimitBytes: o.sizing.memoryLimitBytes,
      nodeArgs: o.sizing.nodeArgs,
      memory,
      enforce,
      audit,
      idle,
      duringBurst,
      duringConverge,
      unrelated: { objects: o.unrelated, before, after },
    };
  } finally {
    await op.stop();
    await c.stop();
  }
}

/** ConfigMaps and RoleBindings (half each) in a namespace no policy selects. */
async function unrelatedLoad(c: BenchCluster, objects: number): Promise<void> {
  await createNamespaces(c, ["unrelated-load"], {}, false);
  const half = Math.floor(objects / 2);
  const idx = Array.from({ length: objects }, (_, i) => i);
  await pool(idx, 16, async (i) => {
    const meta = { name: `load-${i}`, namespace: "unrelated-load" };
    if (i < half)
      await c.admin.json("POST", "/api/v1/namespaces/unrelated-load/configmaps", {
        body: { apiVersion: "v1", kind: "ConfigMap", metadata: meta, data: { key: `value-${i}` } },
      });
    else
      await c.admin.json(
        "POST",
        "/apis/rbac.authorization.k8s.io/v1/namespaces/unrelated-load/rolebindings",
        {
          body: {
            apiVersion: "rbac.authorization.k8s.io/v1",
            kind: "RoleBinding",
            metadata: meta,
            roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "view" },
            subjects: [{ apiGroup: "rbac.authorization.k8s.io", kind: "User", name: `user-${i}` }],
          },
        },
      );
  });
}

export interface MemoryOptions {
  namespaces: number[];
  unrelated: number;
  logDir: string;
  /** V8 heap flags for the operator (`--max-old-space-size=...`); none: V8's defaults for this machine. */
  nodeArgs?: string[];
  /** Write a heap snapshot of the operator at every point into this directory. */
  heapSnapshotDir?: string;
}

export interface MemoryResult {
  nodeArgs: string[];
  memory: MemoryPoint[];
  /** Absent when the operator died before. */
  unrelated?: { objects: number; before: MemoryPoint; after: MemoryPoint };
  /** Wall time of each step (ms): the converge of each N, then the unrelated load. */
  stepsMs: Record<string, number>;
  /** The operator process ended during `step` (e.g. V8 ran out of heap): the points before it stand. */
  died?: { step: string; how: string; heapOutOfMemory: boolean; lastLines: string[] };
}

/**
 * `npm run bench -- --only memory`: the memory points of the lab alone (N = 0, each N converged, then the
 * unrelated load), without the bare client, drift or probes, so N = 5000 fits in minutes.
 */
export async function runMemory(o: MemoryOptions): Promise<MemoryResult> {
  const c = await startBenchCluster("bench-mem");
  const op = new OperatorProcess(c.kubeconfigs.operator, 300, join(o.logDir, "memory-operator.log"), 8, {
    // --trace-gc: one line per GC, read for the largest live heap (OperatorProcess.peakHeapAfterMajorGc).
    args: [...(o.nodeArgs ?? []), "--trace-gc"],
    env: o.heapSnapshotDir ? { CSP_BENCH_HEAPSNAPSHOT_DIR: o.heapSnapshotDir } : {},
  });
  const stepsMs: Record<string, number> = {};
  const memory: MemoryPoint[] = [];
  let step = "start";
  // A step ends early when the operator dies in it (the waits for convergence are long).
  const alive = <T>(p: Promise<T>): Promise<T> =>
    Promise.race([
      p,
      op.exited.then((): never => {
        throw new Error(`the operator exited during ${step}`);
      }),
    ]);
  try {
    await op.synced();
    await c.admin.json("POST", POLICIES, { body: baselinePolicy() });
    await op.reconciled(POLICY_NAME, 1);
    memory.push(await memoryPoint(c, op, "N=0", 0));
    let selected: string[] = [];
    for (const n of [...o.namespaces].sort((a, b) => a - b)) {
      step = `N=${n}`;
      const t0 = performance.now();
      const more = names("mem", selected.length, n);
      await alive(createNamespaces(c, more, { [SELECTOR_LABEL]: "web" }));
      selected = [...selected, ...more];
      await alive(settle(c, op, selected));
      stepsMs[step] = Math.round(performance.now() - t0);
      memory.push(await alive(memoryPoint(c, op, step, n * OBJECTS_PER_NAMESPACE)));
    }
    const before = memory.at(-1)!;
    step = "unrelated";
    const t0 = performance.now();
    await alive(unrelatedLoad(c, o.unrelated));
    await alive(touch(c, op, POLICY_NAME));
    stepsMs[step] = Math.round(performance.now() - t0);
    const after = await alive(
      memoryPoint(c, op, `N=${selected.length} + ${o.unrelated} unrelated`, before.managedObjects),
    );
    return {
      nodeArgs: o.nodeArgs ?? [],
      memory,
      unrelated: { objects: o.unrelated, before, after },
      stepsMs,
    };
  } catch (err) {
    // The operator died (V8 out of heap, say): that is the result of this step, not a failed benchmark.
    if (op.proc.exitCode === null && op.proc.signalCode === null) throw err;
    const how = op.proc.signalCode ?? `exit code ${op.proc.exitCode}`;
    const oom = op.lastLines.some((l) => l.includes("heap out of memory"));
    return {
      nodeArgs: o.nodeArgs ?? [],
      memory,
      stepsMs,
      died: { step, how, heapOutOfMemory: oom, lastLines: op.lastLines.slice(-8) },
    };
  } finally {
    await op.stop();
    await c.stop();
  }
}

/** Waits until every selected namespace is converged and a reconcile that started afterwards completed. */
async function settle(c: BenchCluster, op: OperatorProcess, selected: string[]): Promise<void> {
  await c.observer.converged(keysOf(selected), 600_000 + selected.length * 500);
  await touch(c, op, POLICY_NAME);
}

/**
 * How long the operator remembers its own writes (src/controller/ledger.ts, WriteLedger ttlMs; an entry
 * older than this is dropped when a plan asks about it). Right after a converge the operator still holds
 * state about the step: ~2 MiB at 1000 namespaces and ~10 MiB at 5000 (heap snapshots at 1000: a
 * NamespaceState with its Set per namespace, a work-queue timer per repair-lane key), all gone 35 s and a
 * reconcile later. A heap measured right after a step depends on how soon after the last write it was
 * taken; the unrelated load's delta is only meaningful between settled points.
 */
const WRITE_LEDGER_TTL_MS = 30_000;

/**
 * A memory point of the settled operator: the heap right after the converge (or load) is recorded, then the
 * bench waits out the write ledger's memory of the last writes (a time-based expiry: there is no event to
 * wait for) and forces a reconcile, which drops the expired entries, before the point itself is taken.
 */
async function memoryPoint(
  c: BenchCluster,
  op: OperatorProcess,
  label: string,
  managedObjects: number,
): Promise<MemoryPoint> {
  const settled = await op.memory();
  await new Promise((r) => setTimeout(r, WRITE_LEDGER_TTL_MS + 5_000));
  await touch(c, op, POLICY_NAME);
  const m = await op.memory();
  return {
    label,
    managedObjects,
    rssBytes: await op.rssBytes(),
    heapUsedBytes: m.heapUsed,
    heapUsedRightAfterBytes: settled.heapUsed,
    peakRssBytes: await op.peakRssBytes(),
    ...(m.heapSizeLimit ? { heapSizeLimitBytes: m.heapSizeLimit } : {}),
    ...(op.peakHeapAfterMajorGc ? { peakHeapAfterGcBytes: op.peakHeapAfterMajorGc } : {}),
  };
}

/** Forces k reconciles of `policy`; requests are the operator's, per reconcile of that policy. */
async function forcedReconciles(
  c: BenchCluster,
  op: OperatorProcess,
  policy: string,
  k: number,
): Promise<PerReconcile> {
  const m0 = await c.audit.mark();
  const before = op.count(policy);
  for (let i = 0; i < k; i++) await touch(c, op, policy);
  const m1 = await c.audit.mark();
  const s = summarize(c.audit.between(m0, m1, USERS.operator));
  return { reconciles: op.count(policy) - before, gets: s.gets, lists: s.lists, writes: s.writes };
}

function driftSummary(latencies: number[], load: number, loadMs: number): DriftUnderLoad {
  return {
    load,
    loadMs,
    faults: latencies.length,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
  };
}
