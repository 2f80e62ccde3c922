// The figures and markdown of `npm run bench -- --only memory` (bench/workloads/lab.ts runMemory).
import { cpus, release, totalmem } from "node:os";
import type { MemoryPoint, MemoryResult } from "./workloads/lab.js";
import { round } from "./lib/stats.js";

const MiB = 1024 * 1024;
const mib = (b: number | undefined) => (b === undefined ? "-" : `${(b / MiB).toFixed(1)} MiB`);

/** Heap per managed object between two points (bytes), or null when no object was added. */
function perObject(from: MemoryPoint | undefined, to: MemoryPoint | undefined): number | null {
  if (!from || !to || to.managedObjects <= from.managedObjects) return null;
  return round((to.heapUsedBytes - from.heapUsedBytes) / (to.managedObjects - from.managedObjects), 0);
}

/** The JSON line: the keys the full bench uses for the same figures, plus the ones only this mode has. */
export interface MemoryHeadline {
  only: "memory";
  namespaces: number[];
  memoryLimitBytes: number | null;
  nodeArgs: string[];
  heapSizeLimitBytes: number | null;
  heapBytesPerObject: number | null;
  marginalHeapBytesPerObject: number | null;
  unrelatedHeapDeltaPct: number | null;
  heapUsedBytesAtMaxN: number | null;
  rssBytesAtMaxN: number | null;
  rssBytesWithUnrelated: number | null;
  peakRssBytes: number;
  peakHeapAfterGcBytes: number;
  /** The step the operator died in, and how (the run stopped there). */
  died: string | null;
  withinLimit: boolean | null;
}

export function memoryHeadline(r: MemoryResult, limitMiB: number | undefined): MemoryHeadline {
  const m0 = r.memory[0];
  const top = r.memory.at(-1);
  const points = [...r.memory, ...(r.unrelated ? [r.unrelated.after] : [])];
  const peak = Math.max(...points.map((m) => m.peakRssBytes ?? 0));
  return {
    only: "memory",
    namespaces: r.memory.slice(1).map((m) => m.managedObjects / 5),
    memoryLimitBytes: limitMiB ? limitMiB * MiB : null,
    nodeArgs: r.nodeArgs,
    heapSizeLimitBytes: m0?.heapSizeLimitBytes ?? null,
    heapBytesPerObject: perObject(m0, top),
    marginalHeapBytesPerObject: perObject(r.memory.at(-2), top),
    unrelatedHeapDeltaPct: r.unrelated
      ? round(
          (100 * (r.unrelated.after.heapUsedBytes - r.unrelated.before.heapUsedBytes)) /
            r.unrelated.before.heapUsedBytes,
          1,
        )
      : null,
    heapUsedBytesAtMaxN: top?.heapUsedBytes ?? null,
    rssBytesAtMaxN: top?.rssBytes ?? null,
    rssBytesWithUnrelated: r.unrelated?.after.rssBytes ?? null,
    peakRssBytes: peak,
    peakHeapAfterGcBytes: Math.max(...points.map((m) => m.peakHeapAfterGcBytes ?? 0)),
    died: r.died ? `${r.died.step}: ${r.died.heapOutOfMemory ? "V8 heap out of memory" : r.died.how}` : null,
    withinLimit: limitMiB ? !r.died && peak < limitMiB * MiB : null,
  };
}

export function memoryMarkdown(
  r: MemoryResult,
  info: { command: string; startedAt: Date; finishedAt: Date; loadBefore: number[]; loadAfter: number[] },
  limitMiB: number | undefined,
): string {
  const h = memoryHeadline(r, limitMiB);
  const cpu = cpus();
  const load = (l: number[]) => l.map((v) => v.toFixed(2)).join(" ");
  const heap = limitMiB
    ? `\`${r.nodeArgs.join(" ")}\`: the heap the image's \`NODE_OPTIONS=--max-old-space-size-percentage=60\` gives under a ${limitMiB} MiB limit (bench/lib/heap.ts)`
    : "V8's defaults for this machine (no container limit emulated)";
  return [
    "# Benchmarks: memory of the compiled operator",
    "",
    "Written by `npm run bench -- --only memory` (bench/run.ts, bench/workloads/lab.ts `runMemory`) from one run on",
    "the local control plane: the compiled operator (`node --expose-gc --import ./bench/memprobe.js dist/src/main.js`),",
    "one baseline policy (5 managed objects per selected namespace), namespaces created and converged step by step,",
    "then ConfigMaps and RoleBindings nobody selects. Heap = heap used right after a forced full GC, taken once the",
    "operator settled: 35 s after the step (the write ledger forgets the step's writes after 30 s) and a forced",
    "reconcile; the heap right after the step (converged, one reconcile completed) is shown next to it. RSS = VmRSS",
    "right after that GC; peak RSS = VmHWM (the highest RSS since the start, converging included: what a memory",
    "limit must hold); peak heap after a major GC = the largest live heap V8 found in any mark-compact so far",
    "(caches plus what reconciles held at that moment: what the heap limit must leave room for).",
    "",
    `- Date: ${info.startedAt.toISOString()} to ${info.finishedAt.toISOString()}`,
    `- Command: \`${info.command}\``,
    `- Heap limit: ${heap}; V8 reported ${mib(r.memory[0]?.heapSizeLimitBytes)}`,
    `- Machine: ${cpu.length} x ${cpu[0]?.model ?? "unknown CPU"}, ${mib(totalmem())} RAM, Linux ${release()}, Node ${process.version}`,
    `- Load average before: ${load(info.loadBefore)}, after: ${load(info.loadAfter)}`,
    "",
    "| Point | managed objects | heap used | (right after the step) | peak heap after a major GC so far | RSS | peak RSS so far | step took |",
    "|---|---|---|---|---|---|---|---|",
    ...[...r.memory, ...(r.unrelated ? [r.unrelated.after] : [])].map((m, i) => {
      const step =
        i === 0 ? undefined : i <= r.memory.length - 1 ? r.stepsMs[m.label] : r.stepsMs["unrelated"];
      return `| ${m.label} | ${m.managedObjects} | ${mib(m.heapUsedBytes)} | ${mib(m.heapUsedRightAfterBytes)} | ${mib(m.peakHeapAfterGcBytes)} | ${mib(m.rssBytes)} | ${mib(m.peakRssBytes)} | ${step === undefined ? "-" : `${(step / 1000).toFixed(0)} s`} |`;
    }),
    "",
    `Heap per managed object: ${h.heapBytesPerObject ?? "-"} B from N=0 (fixed costs of the first reconciles included),`,
    `${h.marginalHeapBytesPerObject ?? "-"} B between the last two points; the unrelated load moved the heap by ${h.unrelatedHeapDeltaPct ?? "-"} %.`,
    ...(r.died
      ? [
          "",
          `**The operator died during ${r.died.step}** (${r.died.heapOutOfMemory ? "V8: heap out of memory" : r.died.how}); its last lines:`,
          "",
          "```",
          ...r.died.lastLines.map((l) => l.slice(0, 200)),
          "```",
        ]
      : []),
    "",
    JSON.stringify(h),
    "",
  ].join("\n");
}
