// `npm run bench`: the reconcile benchmark. Operator (compiled) against a bare client doing exactly the
// minimal writes, alternately, on fresh local control planes; then the operator's steady-state, idle,
// load and memory figures on one more. Writes docs/benchmarks.md (+ its SVG chart) and prints the
// headline figures as one JSON object on the last line.
//
//   npm run bench -- --namespaces 100            quick run (a few minutes)
//   npm run bench -- --namespaces 100,1000,5000 --idle-seconds 600   the full run
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { basename, join } from "node:path";
import { parseArgs } from "node:util";
import { chart, headline, markdown } from "./report.js";
import { runConverge, type ConvergeResult } from "./workloads/converge.js";
import { runLab, type LabResult } from "./workloads/lab.js";

const { values } = parseArgs({
  options: {
    namespaces: { type: "string", default: "100,1000,5000" },
    reps: { type: "string", default: "3" },
    "idle-seconds": { type: "string", default: "30" },
    concurrency: { type: "string", default: "1" },
    faults: { type: "string", default: "20" },
    backlog: { type: "string" },
    burst: { type: "string", default: "1000" },
    unrelated: { type: "string", default: "10000" },
    "skip-lab": { type: "boolean", default: false },
    out: { type: "string", default: "docs/benchmarks.md" },
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
};
const logDir = mkdtempSync(join(tmpdir(), "csp-bench-"));
const say = (m: string) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${m}\n`);
say(`options ${JSON.stringify(opts)}; process logs in ${logDir}`);

const startedAt = new Date();
const loadBefore = loadavg();
const results: ConvergeResult[] = [];
for (const n of namespaces) {
  for (let rep = 0; rep < opts.reps; rep++) {
    const order = rep % 2 === 0 ? (["operator", "bare"] as const) : (["bare", "operator"] as const);
    for (const client of order) {
      say(`converge N=${n} rep ${rep + 1}/${opts.reps}: ${client}`);
      const r = await runConverge(client, n, rep, {
        concurrency: opts.concurrency,
        faults: opts.faults,
        logDir,
      });
      say(
        `  ${client}: ${(r.convergeMs / 1000).toFixed(2)} s, ${r.requests.writes} writes, ${r.requests.gets} GETs, drift p99 ${Math.round(r.drift.p99Ms)} ms`,
      );
      results.push(r);
    }
  }
}
let lab: LabResult | undefined;
if (!opts.skipLab) {
  say(`lab: memory, steady state, idle ${opts.idleSeconds} s, drift under load`);
  lab = await runLab({ ...opts, logDir });
}

const out = values.out ?? "docs/benchmarks.md";
const chartFile = `${basename(out, ".md")}-converge.svg`;
mkdirSync(join(out, ".."), { recursive: true });
writeFileSync(join(out, "..", chartFile), chart(results, opts.concurrency));
const command = `npm run bench -- ${process.argv.slice(2).join(" ")}`.trim();
writeFileSync(
  out,
  markdown(
    results,
    lab,
    { command, startedAt, finishedAt: new Date(), loadBefore, loadAfter: loadavg(), options: opts },
    chartFile,
  ),
);
writeFileSync(join(logDir, "results.json"), JSON.stringify({ results, lab }, null, 2));
say(`wrote ${out} and ${chartFile}; raw results in ${join(logDir, "results.json")}`);
console.log(JSON.stringify(headline(results, lab)));
process.exit(0);
