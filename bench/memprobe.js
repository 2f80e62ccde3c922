// Preloaded into the compiled operator by the benchmark (`node --expose-gc --import ./bench/memprobe.js
// dist/src/main.js`): on SIGUSR2 it runs a full garbage collection and prints one line with
// process.memoryUsage() and V8's heap limit on stderr, so the benchmark reads the live heap rather than
// garbage. With CSP_BENCH_HEAPSNAPSHOT_DIR set it writes a heap snapshot there too (for bench/heapsummary.ts).
// It changes nothing else in the operator. (The largest live heap comes from `--trace-gc` lines, read by the
// benchmark: a PerformanceObserver on "gc" entries would itself hold thousands of entries while a long
// reconcile keeps the event loop busy, and distort what it measures.)
import { join } from "node:path";
import { getHeapStatistics, writeHeapSnapshot } from "node:v8";

let snapshots = 0;
process.on("SIGUSR2", () => {
  if (typeof globalThis.gc === "function") globalThis.gc();
  const dir = process.env["CSP_BENCH_HEAPSNAPSHOT_DIR"];
  if (dir) writeHeapSnapshot(join(dir, `operator-${++snapshots}.heapsnapshot`));
  const usage = { ...process.memoryUsage(), heapSizeLimit: getHeapStatistics().heap_size_limit };
  process.stderr.write(`CSP_BENCH_MEM ${JSON.stringify(usage)}\n`);
});
