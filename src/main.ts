#!/usr/bin/env node
/**
 * csp-operator entry point.
 *   csp-operator [run] [--kubeconfig FILE] [--workers N] [--resync SECONDS]   run the operator
 *       [--leader-elect] [--metrics-bind-address :8080] [--metrics-secure=false] [--health-probe-bind-address :8081]
 *   csp-operator check [...]                                                  offline CIS checks (see --help)
 *   csp-operator agent --node-name N [--audit-policy-path F] [--encryption-config-path F] [--policy P]
 *                                         node agent: writes the rendered control-plane files to the host
 */
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import type { KubeConfig } from "@kubernetes/client-node";
import { KubeAuthReviewer } from "./cluster/authreview.js";
import { loadKubeConfig } from "./cluster/client.js";
import { HealthServer, parseBindAddress } from "./observability/health.js";
import { OperatorMetrics } from "./observability/metrics.js";
import { MetricsServer } from "./observability/metricsserver.js";
import { createLogger, type Logger } from "./observability/logger.js";
import { AREAS } from "./controller/registry.js";
import { Operator, type LeaderElectionConfig } from "./operator.js";

const [major = 0, minor = 0] = process.versions.node.split(".").map(Number);
if (major < 22 || (major === 22 && minor < 19)) {
  console.error(
    `csp-operator needs Node >= 22.19 (Node 24 LTS recommended); this is ${process.version}. Run it through npm scripts, which use the project's Node.`,
  );
  process.exit(2);
}

async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      kubeconfig: { type: "string" },
      workers: { type: "string", default: process.env["CSP_WORKERS"] ?? "2" },
      resync: { type: "string", default: process.env["CSP_RESYNC_SECONDS"] ?? "300" },
      "log-level": { type: "string", default: process.env["LOG_LEVEL"] ?? "info" },
      "leader-elect": { type: "boolean", default: false },
      "leader-elect-namespace": { type: "string", default: "csp-system" },
      "leader-elect-lease-duration": { type: "string", default: "15s" },
      "leader-elect-renew-deadline": { type: "string", default: "10s" },
      "leader-elect-retry-period": { type: "string", default: "2s" },
      "metrics-bind-address": { type: "string", default: "0" },
      "metrics-secure": { type: "string", default: "true" },
      "metrics-cert-dir": { type: "string" },
      "health-probe-bind-address": { type: "string", default: ":8081" },
    },
    strict: true,
  });
  const workers = Number(values.workers);
  const resync = Number(values.resync);
  if (!Number.isInteger(workers) || workers < 1)
    throw new UsageError(`--workers must be a positive integer, got ${values.workers}`);
  if (!Number.isFinite(resync) || resync <= 0)
    throw new UsageError(`--resync must be a positive number of seconds, got ${values.resync}`);
  const runtime = parseRuntimeFlags(values);
  const log = createLogger(values["log-level"]);
  logUnhandledRejections(log);
  const kc = loadKubeConfig(values.kubeconfig ?? process.env["KUBECONFIG"]?.split(":")[0]);
  const metrics = new OperatorMetrics();
  const operator = new Operator(
    kc,
    {
      workers,
      resyncMs: resync * 1000,
      areas: AREAS,
      metrics,
      ...(runtime.leaderElection ? { leaderElection: runtime.leaderElection } : {}),
    },
    log,
  );
  log.info("starting", {
    server: kc.getCurrentCluster()?.server,
    workers,
    resyncSeconds: resync,
    leaderElection: runtime.leaderElection ? runtime.leaderElection.identity : false,
  });
  const servers = await startServers(runtime, operator, metrics, kc, log);

  let stopping = false;
  const stopped = new Promise<number>((resolve) => {
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      log.info("draining", { signal });
      operator.stop().then(
        async () => {
          await Promise.all(servers.map((s) => s.close()));
          log.info("stopped");
          resolve(0);
        },
        (err: unknown) => {
          log.error("stop failed", { error: String(err) });
          resolve(1);
        },
      );
    };
    process.once("SIGTERM", () => stop("SIGTERM"));
    process.once("SIGINT", () => stop("SIGINT"));
  });
  await operator.start();
  return stopped;
}

interface RuntimeFlags {
  leaderElection: LeaderElectionConfig | undefined;
  metrics: { host?: string; port: number } | undefined;
  metricsSecure: boolean;
  metricsCertDir: string | undefined;
  health: { host?: string; port: number } | undefined;
}

/** Validates the runtime flags (leader election, metrics, probes); a bad value names its flag. */
function parseRuntimeFlags(values: Record<string, string | boolean | undefined>): RuntimeFlags {
  const str = (k: string) => String(values[k] ?? "");
  const duration = (k: string) => {
    const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(str(k));
    if (!m)
      throw new UsageError(`--${k} must be a duration like 15s or 500ms, got ${JSON.stringify(str(k))}`);
    return Number(m[1]) * (m[2] === "ms" ? 1 : m[2] === "m" ? 60_000 : 1000);
  };
  const bind = (k: string) => {
    try {
      return parseBindAddress(k, str(k));
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
  };
  const secure = str("metrics-secure");
  if (secure !== "true" && secure !== "false")
    throw new UsageError(`--metrics-secure must be true or false, got ${JSON.stringify(secure)}`);
  let leaderElection: LeaderElectionConfig | undefined;
  if (values["leader-elect"]) {
    const lease = duration("leader-elect-lease-duration");
    const renew = duration("leader-elect-renew-deadline");
    const retry = duration("leader-elect-retry-period");
    if (!(lease > renew && renew > retry && retry > 0))
      throw new UsageError(
        "--leader-elect-lease-duration must exceed --leader-elect-renew-deadline, which must exceed --leader-elect-retry-period",
      );
    leaderElection = {
      identity: process.env["POD_NAME"] || `${hostname()}_${randomBytes(4).toString("hex")}`,
      namespace: str("leader-elect-namespace"),
      leaseDurationMs: lease,
      renewDeadlineMs: renew,
      retryPeriodMs: retry,
    };
  }
  return {
    leaderElection,
    metrics: bind("metrics-bind-address"),
    metricsSecure: secure === "true",
    metricsCertDir: values["metrics-cert-dir"] === undefined ? undefined : str("metrics-cert-dir"),
    health: bind("health-probe-bind-address"),
  };
}

/** Starts the probe and metrics endpoints. A port that cannot be bound is an error in the log, not a crash. */
async function startServers(
  flags: RuntimeFlags,
  operator: Operator,
  metrics: OperatorMetrics,
  kc: KubeConfig,
  log: Logger,
): Promise<{ close(): Promise<void> }[]> {
  const servers: { close(): Promise<void> }[] = [];
  if (flags.health) {
    const health = new HealthServer({ readiness: { informers: () => operator.notReadyReason() } });
    try {
      const port = await health.listen(flags.health.port, flags.health.host);
      log.info("serving health probes", { port, paths: ["/healthz", "/readyz"] });
      servers.push(health);
    } catch (err) {
      log.error("health probes NOT served", { error: (err as Error).message });
    }
  }
  if (flags.metrics) {
    let tls: { cert: string; key: string } | undefined;
    if (flags.metricsSecure && flags.metricsCertDir) {
      tls = {
        cert: readFileSync(join(flags.metricsCertDir, "tls.crt"), "utf8"),
        key: readFileSync(join(flags.metricsCertDir, "tls.key"), "utf8"),
      };
    }
    const server = new MetricsServer({
      registry: metrics.registry,
      log,
      secure: flags.metricsSecure,
      ...(flags.metricsSecure ? { reviewer: new KubeAuthReviewer(kc) } : {}),
      ...(tls ? { tls } : {}),
    });
    try {
      const port = await server.listen(flags.metrics.port, flags.metrics.host);
      log.info("serving metrics", {
        port,
        scheme: flags.metricsSecure ? "https" : "http",
        certificate: flags.metricsSecure
          ? tls
            ? flags.metricsCertDir
            : "self-signed, in memory"
          : undefined,
      });
      servers.push(server);
    } catch (err) {
      log.error("metrics NOT served", { error: (err as Error).message });
    }
  }
  return servers;
}

/** `csp-operator agent`: the node agent (a DaemonSet on control-plane nodes, see config/agent). */
async function agent(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      kubeconfig: { type: "string" },
      "node-name": { type: "string", default: process.env["NODE_NAME"] ?? "" },
      "audit-policy-path": { type: "string" },
      "encryption-config-path": { type: "string" },
      policy: { type: "string" },
      "host-root": { type: "string" },
      resync: { type: "string", default: "60" },
      "log-level": { type: "string", default: process.env["LOG_LEVEL"] ?? "info" },
    },
    strict: true,
  });
  const node = values["node-name"];
  if (!node) throw new UsageError("--node-name (or $NODE_NAME) is required");
  if (!values["audit-policy-path"] && !values["encryption-config-path"] && !values["host-root"])
    throw new UsageError(
      "give --audit-policy-path, --encryption-config-path and/or --host-root: nothing to deliver or check",
    );
  for (const flag of ["audit-policy-path", "encryption-config-path", "host-root"] as const) {
    const v = values[flag];
    if (v !== undefined && !v.startsWith("/"))
      throw new UsageError(`--${flag} must be an absolute path, got ${v}`);
  }
  const resync = Number(values.resync);
  if (!Number.isFinite(resync) || resync <= 0)
    throw new UsageError(`--resync must be a positive number of seconds, got ${values.resync}`);
  const { Agent } = await import("./agent/agent.js");
  const log = createLogger(values["log-level"]).child({ component: "csp-operator-agent", node });
  logUnhandledRejections(log);
  const kc = loadKubeConfig(values.kubeconfig ?? process.env["KUBECONFIG"]?.split(":")[0]);
  const a = new Agent(
    kc,
    {
      node,
      resyncMs: resync * 1000,
      ...(values["audit-policy-path"] ? { auditPolicyPath: values["audit-policy-path"] } : {}),
      ...(values["encryption-config-path"] ? { encryptionConfigPath: values["encryption-config-path"] } : {}),
      ...(values.policy ? { policy: values.policy } : {}),
      ...(values["host-root"] ? { hostRoot: values["host-root"] } : {}),
    },
    log,
  );
  await a.start();
  log.info("agent started");
  return new Promise<number>((resolve) => {
    const stop = () => {
      a.stop().then(
        () => resolve(0),
        () => resolve(1),
      );
    };
    process.once("SIGTERM", stop);
    process.once("SIGINT", stop);
  });
}

class UsageError extends Error {}

/**
 * Last resort only: every failure is handled where it happens (informers retry with backoff, reconciles
 * fail into the queue's backoff). A rejection nobody handled is a bug; log it with its stack instead of
 * letting Node end the process and every watch with it.
 */
function logUnhandledRejections(log: Logger): void {
  process.on("unhandledRejection", (reason: unknown) => {
    log.error("unhandled promise rejection (a bug; the operator keeps running)", {
      error: reason instanceof Error ? (reason.stack ?? reason.message) : String(reason),
    });
  });
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === "check") {
    const { runCheckCommand } = await import("./cis/command.js");
    return runCheckCommand(rest, {
      stdout: (s) => process.stdout.write(s),
      stderr: (s) => process.stderr.write(s),
    });
  }
  if (command === "run") return run(rest);
  if (command === "agent") return agent(rest);
  if (command === undefined || command.startsWith("-")) return run(argv);
  console.error(`unknown command ${command}; commands: run (default), check, agent`);
  return 2;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err instanceof UsageError ? `error: ${err.message}` : err);
    process.exit(err instanceof UsageError ? 2 : 1);
  },
);
