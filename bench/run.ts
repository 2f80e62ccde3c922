// `npm run bench`: the reconcile benchmark. Operator (compiled) against a bare client doing exactly the
// minimal writes, alternately, on fresh local control planes; then the operator's steady-state, idle,
// load and memory figures on one more. Writes docs/benchmarks.md (+ its SVG chart) and prints the
// headline figures as one JSON object on the last line.
//
//   npm run bench -- --namespaces 100            quick run (a few minutes)
//   --concurrency 8: the operator's --max-concurrent-writes and the bare client's pool, the same bound
//   (the headline ratio); each repetition also runs both at 1 (an extra ratio) unless --skip-serial.
//   npm run bench -- --namespaces 100,1000,5000 --idle-seconds 600   the full run
//   npx tsx bench/run.ts --from <results.json>   re-renders the report from a run's saved raw results
//   npm run bench -- --converge-from <results.json> ...   reuses a run's converge results, runs the lab only
//   --memory-limit-mib 256: the container memory limit emulated (default: config/manager/deployment.yaml's,
//       384Mi); the operator runs with the V8 heap the image gets under it (60 %, bench/lib/heap.ts), in the
//       full bench's lab as in --only memory. --semi-space-mib: V8's young generation (default: as V8 sizes
//       it in such a container; 0: Node's own default).
//   npm run bench -- --only memory --namespaces 1000,5000
//       memory of the compiled operator alone (N = 0, each N, then --unrelated objects): no bare client, no
//       drift, no probes; writes docs/benchmarks-memory.md (or --out) and the memory figures as JSON on the
//       last line.
//       --heap-snapshots <dir> also writes a heap snapshot at every point (bench/heapsummary.ts reads them).
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { basename, join } from "node:path";
import { parseArgs } from "node:util";
import { chart, headline, markdown, type RunInfo } from "./report.js";
import { runConverge, type ConvergeResult } from "./workloads/converge.js";
import { runLab, runMemory, type LabResult } from "./workloads/lab.js";
import { memoryHeadline, memoryMarkdown } from "./memoryreport.js";
import { deploymentMemoryLimitMiB, imageHeapSizing } from "./lib/heap.js";

const { values } = parseArgs({
  options: {
    namespaces: { type: "string", default: "100,1000,5000" },
    reps: { type: "string", default: "3" },
    "idle-seconds": { type: "string", default: "30" },
    concurrency: { type: "string", default: "8" },
    faults: { type: "string", default: "20" },
    backlog: { type: "string" },
    burst: { type: "string", default: "1000" },
    unrelated: { type: "string", default: "10000" },
    "skip-lab": { type: "boolean", default: false },
    "skip-serial": { type: "boolean", default: false },
    out: { type: "string" },
    only: { type: "string" },
    "memory-limit-mib": { type: "string" },
    "heap-snapshots": { type: "string" },
    "semi-space-mib": { type: "string" },
    from: { type: "string" },
    "converge-from": { type: "string" },
  },
  strict: true,
});

function int(flag: string, v: string | undefined, min: number): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min)
    throw new Error(`--${flag} must be an integer >= ${min}, got ${JSON.stringify(v)}`);
  return n;
}
const namespaces = (values.namespaces ?? "")
  .split(",")
  .map((v) => int("namespaces", v.trim(), 1))
  .sort((a, b) => a - b);
const maxN = namespaces.at(-1)!;
const opts = {
  namespaces,
  reps: int("reps", values.reps, 1),
  idleSeconds: int("idle-seconds", values["idle-seconds"], 0),
  concurrency: int("concurrency", values.concurrency, 1),
  faults: int("faults", values.faults, 1),
  backlog: int("backlog", values.backlog ?? String(Math.min(1000, maxN)), 1),
  burst: int("burst", values.burst, 1),
  unrelated: int("unrelated", values.unrelated, 0),
  skipLab: values["skip-lab"] ?? false,
  skipSerial: values["skip-serial"] ?? false,
};
const logDir = mkdtempSync(join(tmpdir(), "csp-bench-"));
const say = (m: string) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${m}\n`);

if (values.only !== undefined && values.only !== "memory")
  throw new Error(`--only must be "memory", got ${JSON.stringify(values.only)}`);
// Both modes run the operator with the heap the image gets under the Deployment's limit (bench/lib/heap.ts).
const sizing = imageHeapSizing(
  values["memory-limit-mib"]
    ? int("memory-limit-mib", values["memory-limit-mib"], 64)
    : deploymentMemoryLimitMiB(),
  values["semi-space-mib"] === undefined ? undefined : int("semi-space-mib", values["semi-space-mib"], 0),
);
const { nodeArgs } = sizing;
const limitMiB = sizing.memoryLimitMiB;
if (values.only === "memory") {
  const startedAt = new Date();
  const loadBefore = loadavg();
  say(
    `memory only: N=${namespaces.join(",")}, ${opts.unrelated} unrelated, under a ${limitMiB} MiB limit: node ${nodeArgs.join(" ") || "(V8 defaults)"}; logs in ${logDir}`,
  );
  const result = await runMemory({
    namespaces,
    unrelated: opts.unrelated,
    logDir,
    nodeArgs,
    ...(values["heap-snapshots"] ? { heapSnapshotDir: values["heap-snapshots"] } : {}),
  });
  const info = {
    command: `npm run bench -- ${process.argv.slice(2).join(" ")}`.trim(),
    startedAt,
    finishedAt: new Date(),
    loadBefore,
    loadAfter: loadavg(),
    options: { ...opts, only: "memory", memoryLimitMiB: limitMiB },
  };
  writeFileSync(join(logDir, "memory.json"), JSON.stringify({ result, info }, null, 2));
  const out = values.out ?? "docs/benchmarks-memory.md";
  writeFileSync(out, memoryMarkdown(result, info, limitMiB));
  say(`wrote ${out}; raw results in ${join(logDir, "memory.json")}`);
  console.log(JSON.stringify(memoryHeadline(result, limitMiB)));
  process.exit(0);
}
say(`options ${JSON.stringify(opts)}; process logs in ${logDir}`);

interface Saved {
  results: ConvergeResult[];
  lab?: LabResult;
  info: Omit<RunInfo, "startedAt" | "finishedAt"> & { startedAt: string; finishedAt: string };
}

let saved: Saved;
if (values.from) {
  saved = JSON.parse(readFileSync(values.from, "utf8")) as Saved;
} else {
  const startedAt = new Date();
  const loadBefore = loadavg();
  const results: ConvergeResult[] = [];
  const info = () => ({
    command: `npm run bench -- ${process.argv.slice(2).join(" ")}`.trim(),
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    loadBefore,
    loadAfter: loadavg(),
    options: opts,
  });
  const save = (lab?: LabResult) =>
    writeFileSync(
      join(logDir, "results.json"),
      JSON.stringify({ results, ...(lab ? { lab } : {}), info: info() }, null, 2),
    );
  if (values["converge-from"])
    results.push(...(JSON.parse(readFileSync(values["converge-from"], "utf8")) as Saved).results);
  for (const n of values["converge-from"] ? [] : namespaces) {
    for (let rep = 0; rep < opts.reps; rep++) {
      const order = rep % 2 === 0 ? (["operator", "bare"] as const) : (["bare", "operator"] as const);
      // The same-concurrency pair first; then, as an extra, both at one write in flight (no faults).
      const pairs = [{ concurrency: opts.concurrency, faults: opts.faults }];
      if (!opts.skipSerial && opts.concurrency !== 1) pairs.push({ concurrency: 1, faults: 0 });
      for (const pair of pairs)
        for (const client of order) {
          say(`converge N=${n} rep ${rep + 1}/${opts.reps} c=${pair.concurrency}: ${client}`);
          const r = await runConverge(client, n, rep, { ...pair, logDir });
          say(
            `  ${client}: ${(r.convergeMs / 1000).toFixed(2)} s, ${r.requests.writes} writes, ${r.requests.gets} GETs, drift p99 ${Math.round(r.drift.p99Ms)} ms`,
          );
          results.push(r);
          save();
        }
    }
  }
  let lab: LabResult | undefined;
  if (!opts.skipLab) {
    say(
      `lab: memory, steady state, idle ${opts.idleSeconds} s, drift under load; operator under a ${limitMiB} MiB limit: node ${nodeArgs.join(" ")}`,
    );
    lab = await runLab({ ...opts, logDir, sizing });
  }

  saved = { results, ...(lab ? { lab } : {}), info: info() };
  save(lab);
}
const out = values.out ?? "docs/benchmarks.md";
const chartFile = `${basename(out, ".md")}-converge.svg`;
mkdirSync(join(out, ".."), { recursive: true });
writeFileSync(join(out, "..", chartFile), chart(saved.results));
const runInfo: RunInfo = {
  ...saved.info,
  startedAt: new Date(saved.info.startedAt),
  finishedAt: new Date(saved.info.finishedAt),
};
writeFileSync(out, markdown(saved.results, saved.lab, runInfo, chartFile));
say(`wrote ${out} and ${chartFile}; raw results in ${values.from ?? join(logDir, "results.json")}`);
console.log(JSON.stringify(headline(saved.results, saved.lab)));
process.exit(0);
