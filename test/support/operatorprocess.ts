/**
 * The operator as a real process (`tsx src/main.ts run ...`), the one helper every integration and fault test
 * uses: "recovers without a restart of its own" is a pid that never exits. Also the checker wait and the
 * audit-log counting the fault tests share.
 */
import { spawn, type ChildProcess } from "node:child_process";
import type { ControlPlane } from "../../controlplane/harness.js";
import { check, type CheckResult } from "./checker.js";
import { eventually } from "./eventually.js";

const stopHooks: ((p: OperatorProcess) => void)[] = [];

/** Called with every operator process stopped through stop() (the fault suite records its log for the secrets check). */
export function onOperatorStopped(hook: (p: OperatorProcess) => void): void {
  stopHooks.push(hook);
}

export class OperatorProcess {
  /** stdout + stderr so far (JSON log lines). */
  log = "";
  /** `code X signal Y` once it has exited. */
  exit: string | undefined;
  readonly name: string;
  readonly child: ChildProcess;
  readonly exited: Promise<void>;

  /**
   * Spawns the operator on `kubeconfig` with `--resync=3600` and `args` after `run` (POD_NAME = name when
   * given; a later `--resync` overrides).
   */
  constructor(kubeconfig: string, opts: { name?: string; args?: string[] } = {}) {
    this.name = opts.name ?? "csp-operator";
    this.child = spawn(
      process.execPath,
      ["--import", "tsx", "src/main.ts", "run", "--resync=3600", ...(opts.args ?? [])],
      {
        env: {
          ...process.env,
          KUBECONFIG: kubeconfig,
          LOG_LEVEL: "info",
          ...(opts.name ? { POD_NAME: opts.name } : {}),
        },
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    this.child.stdout?.on("data", (d: Buffer) => (this.log += d.toString()));
    this.child.stderr?.on("data", (d: Buffer) => (this.log += d.toString()));
    this.exited = new Promise((resolve) =>
      this.child.once("exit", (code, signal) => {
        this.exit = `code ${code} signal ${signal}`;
        resolve();
      }),
    );
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** Sends a signal (SIGSTOP/SIGCONT to pause and resume it). */
  signal(sig: NodeJS.Signals): void {
    this.child.kill(sig);
  }

  get synced(): boolean {
    return this.log.includes("caches synced; starting workers");
  }

  /** SIGCONT + SIGTERM and wait (SIGKILL after 15 s). */
  async stop(): Promise<void> {
    for (const hook of stopHooks) hook(this);
    if (this.exit !== undefined) return;
    this.child.kill("SIGCONT");
    this.child.kill("SIGTERM");
    const timer = setTimeout(() => this.child.kill("SIGKILL"), 15_000);
    await this.exited;
    clearTimeout(timer);
  }
}

/** Spawns the operator on `kubeconfig` with `args` after `run` (POD_NAME = name). */
export function spawnOperator(name: string, kubeconfig: string, args: string[]): OperatorProcess {
  return new OperatorProcess(kubeconfig, { name, args });
}

/**
 * Waits until the independent checker matches (differences `except` accepts are ignored); resolves with the
 * milliseconds it took and the last check.
 */
export async function checkerMatches(
  cp: ControlPlane,
  opts: { timeoutMs?: number; except?: (difference: string) => boolean } = {},
): Promise<{ ms: number; result: CheckResult }> {
  const t0 = Date.now();
  const result = await eventually(
    "the checker to match",
    async () => {
      const r = await check(cp);
      const diff = r.differences.filter((d) => !opts.except?.(d));
      if (diff.length) throw new Error(diff.join("; "));
      return r;
    },
    opts.timeoutMs ?? 180_000,
  );
  return { ms: Date.now() - t0, result };
}

const WRITES = new Set(["create", "update", "patch", "delete"]);

/**
 * Audit events of `user` since `since` (ms epoch): only writes, only one resource or name, and without the
 * requests of kubectl or other user agents (the operator shares the admin user in some tests).
 */
export async function auditOf(
  cp: ControlPlane,
  user: string,
  since: number,
  filter: { writes?: boolean; resource?: string; name?: string; excludeUserAgents?: RegExp } = {},
): Promise<Record<string, unknown>[]> {
  return (await cp.auditEvents()).filter((e) => {
    if ((e["user"] as { username?: string } | undefined)?.username !== user) return false;
    if (Date.parse(String(e["requestReceivedTimestamp"])) < since) return false;
    if (filter.writes && !WRITES.has(String(e["verb"]))) return false;
    if (filter.excludeUserAgents?.test(String(e["userAgent"]))) return false;
    const ref = e["objectRef"] as { resource?: string; name?: string } | undefined;
    if (filter.resource !== undefined && ref?.resource !== filter.resource) return false;
    if (filter.name !== undefined && ref?.name !== filter.name) return false;
    return true;
  });
}

/** The HTTP status an audit event records. */
export const auditCode = (e: Record<string, unknown>): number | undefined =>
  (e["responseStatus"] as { code?: number } | undefined)?.code;

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

/** For a mocha afterEach: prints the end of the operator's log when the test just run failed. */
export function printLogIfFailed(test: Mocha.Test | undefined, operator: OperatorProcess | undefined): void {
  if (test?.state === "failed")
    console.error(`operator log:\n${operator?.log.slice(-4000) ?? "(not started)"}`);
}

/**
 * A ValidatingAdmissionPolicy and its binding that deny every NetworkPolicy create/update in the namespace
 * named `namespace`: an admission rejection confined to one namespace.
 */
export function freezeNetworkPoliciesManifest(namespace: string): string {
  return `apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: { name: freeze-networkpolicies }
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules:
      - { apiGroups: [networking.k8s.io], apiVersions: [v1], operations: [CREATE, UPDATE], resources: [networkpolicies] }
  validations:
    - { expression: "false", message: "NetworkPolicies are frozen in this namespace" }
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: { name: freeze-networkpolicies }
spec:
  policyName: freeze-networkpolicies
  validationActions: [Deny]
  matchResources:
    namespaceSelector: { matchLabels: { kubernetes.io/metadata.name: ${namespace} } }
`;
}
