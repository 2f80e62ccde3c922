// Preloaded into the compiled operator by the benchmark (`node --expose-gc --import ./bench/memprobe.js
// dist/src/main.js`): on SIGUSR2 it runs a full garbage collection and prints one line with
// process.memoryUsage() and V8's heap limit on stderr, so the benchmark reads the live heap rather than
// garbage. It also keeps the largest heap seen right after a major GC (mark-compact) since the start: how much
// a reconcile holds at once on top of the caches, which is what the heap limit must leave room for. With
// CSP_BENCH_HEAPSNAPSHOT_DIR set it writes a heap snapshot there too (for bench/heapsummary.ts). It changes
// nothing else in the operator.
import { join } from "node:path";
import { PerformanceObserver, constants } from "node:perf_hooks";
import { getHeapStatistics, writeHeapSnapshot } from "node:v8";

let snapshots = 0;
let peakAfterMajorGc = 0;
new PerformanceObserver((list) => {
  for (const e of list.getEntries())
    if (e.detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR)
      peakAfterMajorGc = Math.max(peakAfterMajorGc, getHeapStatistics().used_heap_size);
}).observe({ entryTypes: ["gc"] });

process.on("SIGUSR2", () => {
  if (typeof globalThis.gc === "function") globalThis.gc();
  const dir = process.env["CSP_BENCH_HEAPSNAPSHOT_DIR"];
  if (dir) writeHeapSnapshot(join(dir, `operator-${++snapshots}.heapsnapshot`));
  const usage = {
    ...process.memoryUsage(),
    heapSizeLimit: getHeapStatistics().heap_size_limit,
    peakAfterMajorGc,
  };
  process.stderr.write(`CSP_BENCH_MEM ${JSON.stringify(usage)}\n`);
});
