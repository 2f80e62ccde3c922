// Child processes the benchmark measures: the COMPILED operator (`node dist/src/main.js`, never tsx) and
// the bare and reflex clients. CPU time and RSS come from /proc; the operator's live heap from the
// memprobe preload (a forced GC, then process.memoryUsage()).
import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream } from "node:fs";
import { readFile } from "node:fs/promises";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import type { BenchCluster } from "./cluster.js";
import { withTimeout } from "./observer.js";

const CLK_TCK = 100; // Linux USER_HZ
const ROOT = fileURLToPath(new URL("../../", import.meta.url));

export interface MemoryUsage {
  rss: number;
  heapTotal: number;
  heapUsed: number;
  external: number;
  arrayBuffers: number;
  /** V8's heap limit (--max-old-space-size and friends), from v8.getHeapStatistics(). */
  heapSizeLimit?: number;
}

/** A child whose output lines can be awaited. */
export class Child {
  readonly proc: ChildProcess;
  private readonly lineWaiters = new Set<{ test: (l: string) => boolean; resolve: (l: string) => void }>();
  readonly exited: Promise<number | null>;
  onLine: (line: string) => void = () => {};
  /** The last lines of output (stdout and stderr), e.g. to tell how the process ended. */
  readonly lastLines: string[] = [];

  constructor(args: string[], logPath: string, env: Record<string, string> = {}) {
    this.proc = spawn(process.execPath, args, {
      cwd: ROOT,
      stdio: ["pipe", "pipe", "pipe"],
      env: { ...process.env, ...env },
    });
    const log = createWriteStream(logPath);
    for (const stream of [this.proc.stdout!, this.proc.stderr!]) {
      createInterface({ input: stream }).on("line", (line) => {
        log.write(`${line}\n`);
        this.lastLines.push(line);
        if (this.lastLines.length > 40) this.lastLines.shift();
        this.onLine(line);
        for (const w of this.lineWaiters)
          if (w.test(line)) {
            this.lineWaiters.delete(w);
            w.resolve(line);
          }
      });
    }
    this.exited = new Promise((resolve) =>
      this.proc.once("exit", (code) => {
        log.end();
        resolve(code);
      }),
    );
  }

  get pid(): number {
    return this.proc.pid!;
  }

  line(test: (l: string) => boolean, what: string, timeoutMs = 120_000): Promise<string> {
    return withTimeout(
      Promise.race([
        new Promise<string>((resolve) => this.lineWaiters.add({ test, resolve })),
        this.exited.then((code) => {
          throw new Error(`process exited (code ${code}) while waiting for ${what}`);
        }),
      ]),
      timeoutMs,
      () => what,
    );
  }

  send(text: string): void {
    this.proc.stdin!.write(text);
  }

  async stop(): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    this.proc.kill("SIGTERM");
    const timer = setTimeout(() => this.proc.kill("SIGKILL"), 10_000);
    await this.exited;
    clearTimeout(timer);
  }

  async cpuSeconds(): Promise<number> {
    const stat = await readFile(`/proc/${this.pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / CLK_TCK; // utime, stime
  }

  async rssBytes(): Promise<number> {
    const status = await readFile(`/proc/${this.pid}/status`, "utf8");
    return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024;
  }

  /** The highest RSS the process has had so far (VmHWM): what a memory limit must hold. */
  async peakRssBytes(): Promise<number> {
    const status = await readFile(`/proc/${this.pid}/status`, "utf8");
    return Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024;
  }
}

/** The compiled operator with debug logs (one "reconcile done" line per reconcile). */
export class OperatorProcess extends Child {
  readonly reconciles = new Map<string, number>();
  private readonly doneWaiters = new Set<{ policy: string; count: number; resolve: () => void }>();
  /**
   * The largest heap right after a mark-compact since the start (bytes), from `--trace-gc` lines when the
   * operator runs with that flag: the live heap at its peak, e.g. mid-reconcile.
   */
  peakHeapAfterMajorGc = 0;
  /** performance.now() at which each reconcile started, by policy. */
  readonly runs: { policy: string; startedAt: number; doneAt: number }[] = [];

  constructor(
    kubeconfig: string,
    resyncSeconds: number,
    logPath: string,
    maxConcurrentWrites = 8,
    /** Extra Node options (e.g. `--max-old-space-size=153`) and environment for the operator process. */
    node: { args?: string[]; env?: Record<string, string> } = {},
  ) {
    super(
      [
        ...(node.args ?? []),
        "--expose-gc",
        "--import",
        "./bench/memprobe.js",
        // CSP_BENCH_OPERATOR: another build of the operator (e.g. an older commit's) to compare against.
        process.env["CSP_BENCH_OPERATOR"] ?? "dist/src/main.js",
        "--kubeconfig",
        kubeconfig,
        "--workers",
        "2",
        "--resync",
        String(resyncSeconds),
        "--log-level",
        "debug",
        "--max-concurrent-writes",
        String(maxConcurrentWrites),
      ],
      logPath,
      node.env,
    );
    this.onLine = (line) => {
      // --trace-gc: "[pid:0x...]  1234 ms: Mark-Compact 146.6 (154.1) -> 145.9 (154.8) MB, ..."
      const gc = line.includes("Mark-Compact") ? /-> ([\d.]+) \(/.exec(line) : null;
      if (gc)
        this.peakHeapAfterMajorGc = Math.max(
          this.peakHeapAfterMajorGc,
          Math.round(Number(gc[1]) * 1024 * 1024),
        );
      if (!line.includes('"reconcile done"')) return;
      const rec = JSON.parse(line) as { policy: string; ms: number; controller?: string; lane?: string };
      // Only the policy controller's full reconciles: the reports publisher and the repair lane log
      // "reconcile done" too (the lane with `policy/namespace` keys).
      if (rec.controller !== undefined || rec.lane !== undefined) return;
      const n = (this.reconciles.get(rec.policy) ?? 0) + 1;
      this.reconciles.set(rec.policy, n);
      const doneAt = performance.now();
      this.runs.push({ policy: rec.policy, startedAt: doneAt - rec.ms, doneAt });
      for (const w of this.doneWaiters)
        if (w.policy === rec.policy && n >= w.count) {
          this.doneWaiters.delete(w);
          w.resolve();
        }
    };
  }

  synced(): Promise<string> {
    return this.line((l) => l.includes("caches synced"), "the operator's caches to sync");
  }

  count(policy: string): number {
    return this.reconciles.get(policy) ?? 0;
  }

  /** Resolves once `policy` has completed at least `count` reconciles in total. */
  reconciled(policy: string, count: number, timeoutMs = 300_000): Promise<void> {
    if (this.count(policy) >= count) return Promise.resolve();
    return withTimeout(
      new Promise<void>((resolve) => this.doneWaiters.add({ policy, count, resolve })),
      timeoutMs,
      () => `reconcile #${count} of ${policy}`,
    );
  }

  /**
   * Resolves once a reconcile of `policy` that started (or, with `by: "done"`, completed) at or after `t`
   * has completed.
   */
  async reconciledSince(
    policy: string,
    t: number,
    by: "start" | "done" = "start",
    timeoutMs = 300_000,
  ): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      if (this.runs.some((r) => r.policy === policy && (by === "start" ? r.startedAt : r.doneAt) >= t))
        return;
      await this.reconciled(policy, this.count(policy) + 1, Math.max(1, deadline - performance.now()));
    }
  }

  /** Forces a full GC in the operator and returns process.memoryUsage() right after it. */
  async memory(): Promise<MemoryUsage> {
    // A heap snapshot (CSP_BENCH_HEAPSNAPSHOT_DIR) of a large heap takes a while on a loaded machine.
    const line = this.line((l) => l.startsWith("CSP_BENCH_MEM "), "the operator's memory report", 300_000);
    this.proc.kill("SIGUSR2");
    return JSON.parse((await line).slice("CSP_BENCH_MEM ".length)) as MemoryUsage;
  }
}

/** A TypeScript workload of bench/workloads run in its own Node process (same Node as the operator). */
export function tsChild(script: string, args: string[], logPath: string): Child {
  return new Child(["--import", "tsx", script, ...args], logPath);
}

let touches = 0;

/**
 * Forces one reconcile of `policy` (an annotation change is a watch event) and waits until a reconcile
 * that started after the change has completed: then everything queued before has been worked off.
 */
export async function touch(c: BenchCluster, op: OperatorProcess, policy: string): Promise<void> {
  const t = performance.now();
  await c.admin.mergePatch(`/apis/security.csp-operator.io/v1alpha1/clustersecuritypolicies/${policy}`, {
    metadata: { annotations: { "bench/touch": String(++touches) } },
  });
  await op.reconciledSince(policy, t);
}
