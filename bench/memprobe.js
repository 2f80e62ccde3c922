// Preloaded into the compiled operator by the benchmark (`node --expose-gc --import ./bench/memprobe.js
// dist/src/main.js`): on SIGUSR2 it runs a full garbage collection and prints one line with
// process.memoryUsage() on stderr, so the benchmark reads the live heap rather than garbage. It changes
// nothing else in the operator.
process.on("SIGUSR2", () => {
  if (typeof globalThis.gc === "function") globalThis.gc();
  process.stderr.write(`CSP_BENCH_MEM ${JSON.stringify(process.memoryUsage())}\n`);
});
