import { spawn, type ChildProcess } from "node:child_process";

/** An operator process (`tsx src/main.ts run ...`) with its output collected. */
export interface OperatorProcess {
  name: string;
  child: ChildProcess;
  /** stdout + stderr so far (JSON log lines). */
  log: string;
  exited: Promise<void>;
  /** `code X signal Y` once it has exited. */
  exit?: string;
}

/** Spawns the operator on `kubeconfig` with `args` after `run` (POD_NAME = name). */
export function spawnOperator(name: string, kubeconfig: string, args: string[]): OperatorProcess {
  const child = spawn(process.execPath, ["--import", "tsx", "src/main.ts", "run", "--resync=3600", ...args], {
    env: { ...process.env, KUBECONFIG: kubeconfig, POD_NAME: name, LOG_LEVEL: "info" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const p: OperatorProcess = { name, child, log: "", exited: Promise.resolve() };
  child.stdout?.on("data", (d: Buffer) => (p.log += d.toString()));
  child.stderr?.on("data", (d: Buffer) => (p.log += d.toString()));
  p.exited = new Promise((resolve) =>
    child.once("exit", (code, signal) => {
      p.exit = `code ${code} signal ${signal}`;
      resolve();
    }),
  );
  return p;
}

/** The holderIdentity of the operator's Lease ("" when released or absent). */
export async function leaseHolder(ok: (args: string[]) => Promise<string>): Promise<string> {
  const out = await ok([
    "get",
    "lease",
    "-n",
    "csp-system",
    "csp-operator-leader",
    "-o",
    "jsonpath={.spec.holderIdentity}",
  ]).catch(() => "");
  return out.trim();
}

/** Leader election flags with test timings (lease 6 s, renew deadline 4 s, retry 1 s). */
export const TEST_LEASE = { duration: 6_000, renew: 4_000, retry: 1_000 };
export const LEADER_ELECT_ARGS = [
  "--leader-elect",
  `--leader-elect-lease-duration=${TEST_LEASE.duration}ms`,
  `--leader-elect-renew-deadline=${TEST_LEASE.renew}ms`,
  `--leader-elect-retry-period=${TEST_LEASE.retry}ms`,
  "--health-probe-bind-address=0",
];
