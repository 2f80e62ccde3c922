// Turns the raw results into the headline figures, the markdown report and the chart.
import { cpus, release, totalmem } from "node:os";
import type { ConvergeResult } from "./workloads/converge.js";
import type { LabResult } from "./workloads/lab.js";
import { convergeChart } from "./chart.js";
import { OBJECTS_PER_NAMESPACE } from "./lib/desired.js";
import { median, round } from "./lib/stats.js";
import { deploymentMemoryLimitMiB } from "./lib/heap.js";

/**
 * The memory limit a run's operator is judged against: the one its heap was sized for (the lab records
 * it), else (results saved before the lab sized the heap) config/manager/deployment.yaml's.
 */
function memoryLimitBytes(lab: LabResult | undefined): number {
  return lab?.memoryLimitBytes ?? deploymentMemoryLimitMiB() * 1024 * 1024;
}
const OBJECT_RESOURCES = new Set(["networkpolicies", "namespaces", "serviceaccounts"]);

export interface RunInfo {
  command: string;
  startedAt: Date;
  finishedAt: Date;
  loadBefore: number[];
  loadAfter: number[];
  options: Record<string, unknown>;
}

interface PerN {
  n: number;
  op: ConvergeResult[];
  bare: ConvergeResult[];
}

const med = (rs: ConvergeResult[], f: (r: ConvergeResult) => number) => median(rs.map(f));
const objectWrites = (w: Record<string, number>) =>
  Object.entries(w).reduce((a, [r, n]) => a + (OBJECT_RESOURCES.has(r) ? n : 0), 0);

/** The write concurrency of the headline pair: the largest one run (older saved results have none: 1). */
const concurrencyOf = (r: ConvergeResult) => r.concurrency ?? 1;
export function mainConcurrency(results: readonly ConvergeResult[]): number {
  return Math.max(1, ...results.map(concurrencyOf));
}

export function headline(all: ConvergeResult[], lab: LabResult | undefined): Record<string, unknown> {
  const concurrency = mainConcurrency(all);
  const results = all.filter((r) => concurrencyOf(r) === concurrency);
  const serial = concurrency === 1 ? [] : groupByN(all.filter((r) => concurrencyOf(r) === 1));
  const ratio = (p: PerN) =>
    p.op.length && p.bare.length
      ? round(med(p.op, (r) => r.convergeMs) / med(p.bare, (r) => r.convergeMs))
      : null;
  const perN = groupByN(results);
  const top = perN.at(-1)!;
  const mem = lab?.memory ?? [];
  const m0 = mem[0];
  const mTop = mem.at(-1);
  const memPoints = lab ? [...mem, lab.unrelated.after] : [];
  return {
    namespaces: perN.map((p) => p.n),
    reps: top.op.length,
    concurrency,
    convergeRatio: ratio(top),
    convergeRatioByN: Object.fromEntries(perN.map((p) => [p.n, ratio(p)])),
    convergeRatioSerial: serial.length ? ratio(serial.at(-1)!) : null,
    convergeRatioSerialByN: Object.fromEntries(serial.map((p) => [p.n, ratio(p)])),
    writesRatio: round(med(top.op, (r) => r.requests.writes) / (top.n * OBJECTS_PER_NAMESPACE)),
    bareWritesRatio: round(med(top.bare, (r) => r.requests.writes) / (top.n * OBJECTS_PER_NAMESPACE)),
    convergeGetsPerNamespace: round(med(top.op, (r) => r.requests.gets) / top.n),
    getsPerReconcile: lab ? round(lab.enforce.gets / Math.max(1, lab.enforce.reconciles)) : null,
    auditGetsPerReconcile: lab ? round(lab.audit.gets / Math.max(1, lab.audit.reconciles)) : null,
    idleWrites: lab?.idle.writes ?? null,
    idleSeconds: lab?.idle.seconds ?? null,
    driftP99Ms: round(
      med(top.op, (r) => r.drift.p99Ms),
      0,
    ),
    reflexDriftP99Ms: round(
      med(top.bare, (r) => r.drift.p99Ms),
      0,
    ),
    driftP99Ratio: round(med(top.op, (r) => r.drift.p99Ms) / med(top.bare, (r) => r.drift.p99Ms)),
    driftP99DuringConvergeMs: lab ? round(lab.duringConverge.p99Ms, 0) : null,
    driftP99DuringUnrelatedBurstMs: lab ? round(lab.duringBurst.p99Ms, 0) : null,
    writesPerRepair: round(
      med(top.op, (r) => objectWrites(r.drift.writesByResource) / Math.max(1, r.drift.faults)),
    ),
    allWritesPerRepair: round(med(top.op, (r) => r.drift.writes / Math.max(1, r.drift.faults))),
    cpuSecondsPerUnrelatedEvent: lab ? round(lab.duringBurst.cpuSeconds / lab.duringBurst.load, 4) : null,
    heapBytesPerObject:
      m0 && mTop && mTop.managedObjects > 0
        ? round((mTop.heapUsedBytes - m0.heapUsedBytes) / mTop.managedObjects, 0)
        : null,
    unrelatedHeapDeltaPct: lab
      ? round(
          (100 * (lab.unrelated.after.heapUsedBytes - lab.unrelated.before.heapUsedBytes)) /
            lab.unrelated.before.heapUsedBytes,
          1,
        )
      : null,
    rssBytesAtMaxN: mTop?.rssBytes ?? null,
    peakRssBytes: lab ? Math.max(...memPoints.map((m) => m.peakRssBytes ?? 0)) || null : null,
    peakHeapAfterGcBytes: lab ? Math.max(...memPoints.map((m) => m.peakHeapAfterGcBytes ?? 0)) || null : null,
    memoryLimitBytes: memoryLimitBytes(lab),
    /** The operator's V8 heap flags in the lab (null: results from before the lab sized the heap). */
    operatorNodeArgs: lab?.nodeArgs ?? null,
    probeP99Ms: {
      operator: round(
        med(top.op, (r) => r.probeP99Ms),
        1,
      ),
      bare: round(
        med(top.bare, (r) => r.probeP99Ms),
        1,
      ),
    },
  };
}

function groupByN(results: ConvergeResult[]): PerN[] {
  const ns = [...new Set(results.map((r) => r.n))].sort((a, b) => a - b);
  return ns.map((n) => ({
    n,
    op: results.filter((r) => r.n === n && r.client === "operator"),
    bare: results.filter((r) => r.n === n && r.client === "bare"),
  }));
}

export function chart(results: ConvergeResult[]): string {
  const main = mainConcurrency(results);
  const series = [];
  for (const c of main === 1 ? [1] : [main, 1]) {
    const perN = groupByN(results.filter((r) => concurrencyOf(r) === c));
    if (!perN.length) continue;
    const dash = c === main ? {} : { dash: "6 4" };
    series.push(
      {
        name: `operator (${c} write${c === 1 ? "" : "s"} in flight)`,
        color: "#d62728",
        ...dash,
        points: perN
          .filter((p) => p.op.length)
          .map((p) => ({ n: p.n, seconds: med(p.op, (r) => r.convergeMs) / 1000 })),
      },
      {
        name: `bare client (${c} write${c === 1 ? "" : "s"} in flight)`,
        color: "#1f77b4",
        ...dash,
        points: perN
          .filter((p) => p.bare.length)
          .map((p) => ({ n: p.n, seconds: med(p.bare, (r) => r.convergeMs) / 1000 })),
      },
    );
  }
  return convergeChart(series, "Cold converge time against N (median of repetitions)");
}

const mib = (b: number) => `${(b / 1048576).toFixed(1)} MiB`;
const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
const ms = (v: number) => (Number.isFinite(v) ? `${Math.round(v)} ms` : "n/a");
const list = (xs: number[], f: (v: number) => string) => xs.map(f).join(" / ");

export function markdown(
  results: ConvergeResult[],
  lab: LabResult | undefined,
  info: RunInfo,
  chartFile: string,
): string {
  const h = headline(results, lab);
  const concurrency = mainConcurrency(results);
  const perN = groupByN(results.filter((r) => concurrencyOf(r) === concurrency));
  const serialN = concurrency === 1 ? [] : groupByN(results.filter((r) => concurrencyOf(r) === 1));
  const cpu = cpus();
  const L: string[] = [];
  L.push("# Benchmarks: reconcile at scale", "");
  L.push(
    "Produced by `npm run bench` (bench/run.ts); this whole file, the chart and the JSON line at the end are written by the",
    "benchmark from one run. Every figure comes from a real local control plane (etcd, kube-apiserver,",
    "kube-controller-manager v1.36.3, `controlplane/harness.ts`); requests are counted from the API server's audit log.",
    "",
  );
  L.push("## This run", "");
  L.push(`- Date: ${info.startedAt.toISOString()} to ${info.finishedAt.toISOString()}`);
  L.push(`- Command: \`${info.command}\``);
  L.push(`- Options: \`${JSON.stringify(info.options)}\``);
  L.push(
    `- Machine: ${cpu.length} x ${cpu[0]?.model ?? "unknown CPU"}, ${mib(totalmem())} RAM, Linux ${release()}, Node ${process.version}`,
  );
  L.push(
    `- Load average (1/5/15 min) before: ${info.loadBefore.map((v) => v.toFixed(2)).join(" ")}, after: ${info.loadAfter.map((v) => v.toFixed(2)).join(" ")}.`,
    "  **The machine was shared with other workloads during this run, so the figures are noisy**; ratios measured",
    "  alternately in one run are more trustworthy than absolute times.",
    "",
  );

  L.push("## Goals", "");
  L.push("| Goal | Target | Measured | Met |", "|---|---|---|---|");
  const goal = (name: string, target: string, measured: string, met: boolean | null) =>
    L.push(
      `| ${name} | ${target} | ${measured} | ${met === null ? "not measured" : met ? "yes" : "**no**"} |`,
    );
  const num = (k: string) => h[k] as number | null;
  goal(
    "Cold converge vs bare client, same concurrency",
    "<= 1.2x",
    `${num("convergeRatio")}x at N=${perN.at(-1)!.n}, ${concurrency} writes in flight each` +
      (num("convergeRatioSerial") !== null ? ` (at 1 vs 1: ${num("convergeRatioSerial")}x)` : ""),
    (num("convergeRatio") ?? 99) <= 1.2,
  );
  goal(
    "Writes during converge",
    "= minimal (5 per namespace)",
    `${num("writesRatio")}x minimal`,
    num("writesRatio") === 1,
  );
  goal(
    "GETs per steady-state reconcile (Enforce)",
    "0",
    `${num("getsPerReconcile")}`,
    lab ? num("getsPerReconcile") === 0 : null,
  );
  goal(
    "GETs per reconcile (Audit, nothing applied yet)",
    "0",
    `${num("auditGetsPerReconcile")}`,
    lab ? num("auditGetsPerReconcile") === 0 : null,
  );
  goal(
    "Writes while idle + forced resync",
    "0",
    `${num("idleWrites")} in ${num("idleSeconds")} s`,
    lab ? num("idleWrites") === 0 : null,
  );
  goal(
    "Drift repair p99 vs reflex client",
    "<= 1.5x",
    `${num("driftP99Ratio")}x (${num("driftP99Ms")} vs ${num("reflexDriftP99Ms")} ms)`,
    (num("driftP99Ratio") ?? 99) <= 1.5,
  );
  goal(
    "Drift repair p99 during a cold converge",
    "< 1 s",
    `${num("driftP99DuringConvergeMs")} ms`,
    lab ? (num("driftP99DuringConvergeMs") ?? 1e9) < 1000 : null,
  );
  goal(
    "Drift repair p99 during an unrelated burst",
    "< 1 s",
    `${num("driftP99DuringUnrelatedBurstMs")} ms`,
    lab ? (num("driftP99DuringUnrelatedBurstMs") ?? 1e9) < 1000 : null,
  );
  goal(
    "Object writes per repaired object",
    "1",
    `${num("writesPerRepair")} (all writes incl. status/Events: ${num("allWritesPerRepair")})`,
    num("writesPerRepair") === 1,
  );
  goal(
    "Heap per managed object",
    "<= 2 KB",
    `${num("heapBytesPerObject")} B`,
    lab ? (num("heapBytesPerObject") ?? 1e9) <= 2048 : null,
  );
  goal(
    "Heap change from the unrelated load",
    "< 5 %",
    `${num("unrelatedHeapDeltaPct")} %`,
    lab ? Math.abs(num("unrelatedHeapDeltaPct") ?? 1e9) < 5 : null,
  );
  const limit = memoryLimitBytes(lab);
  goal(
    "RSS at the largest N vs the Deployment limit",
    `< ${limit / 1048576} MiB`,
    lab
      ? `${mib(num("rssBytesAtMaxN") ?? 0)}` +
          (num("peakRssBytes") !== null ? ` (peak ${mib(num("peakRssBytes") ?? 0)})` : "")
      : "",
    lab ? Math.max(num("rssBytesAtMaxN") ?? 1e12, num("peakRssBytes") ?? 0) < limit : null,
  );
  L.push("");

  L.push("## Cold converge", "", `![converge time against N](${chartFile})`, "");
  L.push(
    "Per repetition (operator / bare client, alternating which goes first). Converge = from the start signal to the",
    "observer's watch showing all 5N objects as desired. Requests = the client's own requests from the start signal until",
    "it is done (operator: until the first reconcile that started after convergence completed).",
    "",
  );
  L.push(
    "| N | client | writes in flight | converge | writes (minimal 5N) | GETs | LISTs | reconciles | CPU s | probe GET p50 / p99 |",
    "|---|---|---|---|---|---|---|---|---|---|",
  );
  for (const [c, groups] of [
    [concurrency, perN],
    [1, serialN],
  ] as const)
    for (const p of groups)
      for (const [name, rs] of [
        ["operator", p.op],
        ["bare", p.bare],
      ] as const)
        L.push(
          `| ${p.n} | ${name} | ${c} | ${list(
            rs.map((r) => r.convergeMs),
            s,
          )} | ${rs.map((r) => r.requests.writes).join(" / ")} (${p.n * OBJECTS_PER_NAMESPACE}) | ${rs.map((r) => r.requests.gets).join(" / ")} | ${rs.map((r) => r.requests.lists).join(" / ")} | ${name === "bare" ? "-" : rs.map((r) => r.reconciles).join(" / ")} | ${rs.map((r) => r.cpuSeconds.toFixed(2)).join(" / ")} | ${rs.map((r) => `${ms(r.probeP50Ms)} / ${ms(r.probeP99Ms)}`).join("; ")} |`,
        );
  L.push("", "Operator writes by resource during converge (first repetition, largest N):", "");
  const top = perN.at(-1)!;
  L.push("```", JSON.stringify(top.op[0]?.requests.writesByResource ?? {}), "```", "");

  L.push("## Drift repair", "");
  L.push(
    `Faults, one at a time, rotating: NetworkPolicy deleted; allow-all ingress added to default-deny; Pod Security`,
    "enforce label removed; default ServiceAccount automount set to true. Latency is watch to watch: the observer seeing the",
    "fault's event to the observer seeing the object desired again. The reflex client (watch -> one write) is the lower bound.",
    "",
  );
  L.push(
    "| N | repaired by | faults | p50 | p99 | writes to the objects / all writes |",
    "|---|---|---|---|---|---|",
  );
  for (const p of perN)
    for (const [name, rs] of [
      ["operator", p.op],
      ["reflex client", p.bare],
    ] as const)
      L.push(
        `| ${p.n} | ${name} | ${rs.map((r) => r.drift.faults).join(" / ")} | ${list(
          rs.map((r) => r.drift.p50Ms),
          ms,
        )} | ${list(
          rs.map((r) => r.drift.p99Ms),
          ms,
        )} | ${rs.map((r) => `${objectWrites(r.drift.writesByResource)} / ${r.drift.writes}`).join("; ")} |`,
      );
  L.push("");

  if (lab) {
    L.push("## Steady state, idle, load (one operator process, one cluster)", "");
    L.push(
      `| Measurement | Result |`,
      `|---|---|`,
      `| Forced reconciles, Enforce, converged | ${lab.enforce.reconciles} reconciles: ${lab.enforce.gets} GETs, ${lab.enforce.lists} LISTs, ${lab.enforce.writes} writes |`,
      `| Forced reconciles, Audit policy over ${lab.audit.namespaces} namespaces | ${lab.audit.reconciles} reconciles: ${lab.audit.gets} GETs, ${lab.audit.lists} LISTs, ${lab.audit.writes} writes |`,
      `| Idle ${lab.idle.seconds} s (resync every ${lab.resyncSeconds} s) + forced resync | ${lab.idle.reconciles} reconciles, ${lab.idle.writes} writes, requests by verb ${JSON.stringify(lab.idle.byVerb)} |`,
      `| Drift during a burst of ${lab.duringBurst.load} unrelated namespace creations (${s(lab.duringBurst.loadMs)}) | ${lab.duringBurst.faults} faults: p50 ${ms(lab.duringBurst.p50Ms)}, p99 ${ms(lab.duringBurst.p99Ms)}; operator CPU ${lab.duringBurst.cpuSeconds.toFixed(2)} s = ${((1000 * lab.duringBurst.cpuSeconds) / lab.duringBurst.load).toFixed(2)} ms per unrelated namespace |`,
      `| Drift during the cold converge of ${lab.duringConverge.load} new namespaces (${s(lab.duringConverge.loadMs)}) | ${lab.duringConverge.faults} faults: p50 ${ms(lab.duringConverge.p50Ms)}, p99 ${ms(lab.duringConverge.p99Ms)} |`,
      "",
    );
    const sized = lab.nodeArgs
      ? `\`node ${lab.nodeArgs.join(" ")}\`: the V8 heap the image's \`NODE_OPTIONS=--max-old-space-size-percentage=60\` gives under a ${limit / 1048576} MiB limit (bench/lib/heap.ts, as \`--only memory\`)`
      : "V8's defaults for this machine (an unbounded heap: results saved before the lab sized it)";
    const opt = (b: number | undefined) => (b === undefined ? "-" : mib(b));
    L.push(
      "Memory of the compiled operator (`node --expose-gc --import ./bench/memprobe.js dist/src/main.js`), run as the image",
      `runs it: ${sized}. Heap used right after a forced full GC (process.memoryUsage() from the preload on SIGUSR2)`,
      "once settled (35 s after the step, past the write ledger's 30 s memory of its writes, and a forced reconcile; right",
      "after the step in brackets), VmRSS from /proc right after it; the peaks are since the operator started (largest",
      "heap after a mark-compact from `--trace-gc`, VmHWM).",
      "",
      "| Point | managed objects | heap used | (right after the step) | peak heap after a major GC so far | RSS | peak RSS so far |",
      "|---|---|---|---|---|---|---|",
      ...[...lab.memory, lab.unrelated.before, lab.unrelated.after].map(
        (m) =>
          `| ${m.label} | ${m.managedObjects} | ${mib(m.heapUsedBytes)} | ${opt(m.heapUsedRightAfterBytes)} | ${opt(m.peakHeapAfterGcBytes)} | ${mib(m.rssBytes)} | ${opt(m.peakRssBytes)} |`,
      ),
      "",
    );
  }
  L.push(...METHOD, "");
  L.push(JSON.stringify(h));
  return `${L.join("\n")}\n`;
}

const METHOD = [
  "## Method, and why figures miss",
  "",
  "- **Fresh control plane per converge run**, alternating operator and bare client (the order flips every",
  "  repetition); medians of the repetitions are the headline figures. The operator is the compiled",
  "  `node dist/src/main.js` (`--workers 2 --log-level debug`: one `reconcile done` line per reconcile is how",
  "  reconciles are counted), on a token of its own ServiceAccount `csp-system/csp-operator` bound to exactly",
  "  `config/rbac`. The bare and reflex clients run in their own Node processes on their own ServiceAccount tokens",
  "  bound to the same ClusterRole; the probe has its own ServiceAccount (an ordinary API Priority and Fairness",
  "  flow). The observer (convergence and repair timing) and the fault injector are cluster admin, which APF exempts.",
  "- **Same concurrency.** The operator never reconciles one policy twice at once, and within a reconcile it sends",
  "  up to `--max-concurrent-writes` writes at once; the bench starts it with `--max-concurrent-writes` =",
  "  `--concurrency` (default 8, the operator's default) and the bare client runs a pool of the same size: the",
  "  headline `convergeRatio`. Each repetition also runs both with one write in flight (`convergeRatioSerial`, no",
  "  faults injected; `--skip-serial` leaves it out). Both use @kubernetes/client-node with one shared keep-alive",
  "  undici dispatcher.",
  "- **Minimal writes** are 5 server-side applies per namespace (3 NetworkPolicies, the namespace's 6 Pod Security",
  "  labels, the default ServiceAccount's automount). The bare client writes exactly those, with the same labels and",
  "  ownerReference (the policy object exists in its cluster too; nobody reconciles it).",
  "- **End of an operator converge**: the observer sees all 5N objects desired; the requests counted run until a",
  "  forced reconcile (an annotation on the policy) that started after that has completed, so the status write and",
  "  Event of the converge are included, and one steady-state reconcile too.",
  "- **GETs during a cold converge and in Audit mode**: none by design. What sits at a child's name comes from the",
  "  managed caches and metadata-only occupancy caches (unlabelled objects only); a child is created with a",
  "  create-only server-side apply (a resourceVersion precondition no object meets), so a name taken meanwhile",
  "  refuses the write instead of needing a GET first. Audit mode judges a label-stripped child from its metadata.",
  "- **Writes per repair**: every repair is one server-side apply; fields another manager added (the allow-all",
  "  rule) are set to null in that apply, which removes them in the same write. A repairing reconcile also writes",
  "  the policy status when a counter changed, and a `DriftCorrected` Event (the `all writes` column).",
  "- **Drift during a converge or a burst**: a fault goes to the repair lane (`policy/namespace` items with their",
  "  own workers), never behind the full reconcile of the policy; the full reconcile's plan and report yield the",
  "  event loop every 4 ms, and the echoes of the operator's own writes enqueue no repair. What a repair still",
  "  waits for: one slice of a full reconcile, the JSON parsing of watch events and garbage-collector pauses in",
  "  the same process, and CPU the 2-core machine shares with the API server and etcd.",
  "- **Drift repair vs the reflex client**: a repair plans one namespace (tens of microseconds) and makes one",
  "  server-side apply; the full reconcile it may ask for afterwards (a new child's UID for status) follows 1 s",
  "  later. The reflex client is a bare watch -> write loop in its own process: at a few ms, one GC pause or",
  "  slice of the operator's is the difference (with 20 faults per repetition, p99 is the maximum). Unrelated",
  "  namespace events enqueue nothing (only the policies selecting the namespace, now or at its previous event).",
  "- **Memory as the image runs it**: the image sets `NODE_OPTIONS=--max-old-space-size-percentage=60`, which sizes",
  "  V8's heap from the container's limit; the bench cannot set a cgroup limit, so it passes the flags that limit",
  "  gives (bench/lib/heap.ts: the old generation 60 % of it, the young one as V8 sizes it in so small a container)",
  "  for the Deployment's limit (config/manager, 384Mi; `--memory-limit-mib` another), the same in the lab and in",
  "  `npm run bench -- --only memory` (docs/benchmarks-memory.md, which also has heap snapshots). RSS is glibc's,",
  "  not the image's musl (not measured). What the caches hold per object: README, Compact caches.",
  "- **Idle window**: for windows shorter than 10 minutes the operator is started with `--resync` = a third of the",
  "  window (at least 5 s) so periodic resyncs happen inside it; the full run uses `--idle-seconds 600` with the",
  "  default 300 s resync. A forced resync closes the window.",
  "- **Memory**: heap used after a forced full GC, via the `bench/memprobe.js` preload (`--expose-gc`, SIGUSR2), and",
  "  VmRSS. Heap per managed object = (heap at the largest N - heap at N=0) / 5N; at small N it is dominated by",
  "  noise and fixed costs, so only the N >= 1000 figures mean anything. Other limits: `--memory-limit-mib`.",
  "- **Percentiles** are nearest-rank over the faults of one repetition (with 20 faults, p99 is the maximum).",
  "  Under load (burst, backlog) one fault is started every 500 ms, each on another namespace, while the load lasts",
  "  (at most `--faults`), each timed on its own; without load, faults are sequential.",
  "- Not measured here: a restarted API server, a failed LIST, throttling (the fault suite, `npm run test:faults`,",
  "  docs/reliability.md), several policies.",
];
