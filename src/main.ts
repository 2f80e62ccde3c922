#!/usr/bin/env node
/**
 * csp-operator entry point.
 *   csp-operator [run] [--kubeconfig FILE] [--workers N] [--max-concurrent-writes N]
 *               [--resync SECONDS]                                           run the operator
 *   csp-operator check [...]                                                  offline CIS checks (see --help)
 *   csp-operator agent --node-name N [--audit-policy-path F] [--encryption-config-path F] [--policy P]
 *                                         node agent: writes the rendered control-plane files to the host
 */
import { parseArgs } from "node:util";
import { loadKubeConfig } from "./cluster/client.js";
import { createLogger, type Logger } from "./observability/logger.js";
import { AREAS } from "./controller/registry.js";
import { Operator } from "./operator.js";

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
      "max-concurrent-writes": { type: "string", default: process.env["CSP_MAX_CONCURRENT_WRITES"] ?? "8" },
      resync: { type: "string", default: process.env["CSP_RESYNC_SECONDS"] ?? "300" },
      "log-level": { type: "string", default: process.env["LOG_LEVEL"] ?? "info" },
    },
    strict: true,
  });
  const workers = Number(values.workers);
  const resync = Number(values.resync);
  if (!Number.isInteger(workers) || workers < 1)
    throw new UsageError(`--workers must be a positive integer, got ${values.workers}`);
  const maxConcurrentWrites = Number(values["max-concurrent-writes"]);
  if (!Number.isInteger(maxConcurrentWrites) || maxConcurrentWrites < 1)
    throw new UsageError(
      `--max-concurrent-writes must be a positive integer, got ${values["max-concurrent-writes"]}`,
    );
  if (!Number.isFinite(resync) || resync <= 0)
    throw new UsageError(`--resync must be a positive number of seconds, got ${values.resync}`);
  const log = createLogger(values["log-level"]);
  logUnhandledRejections(log);
  const kc = loadKubeConfig(values.kubeconfig ?? process.env["KUBECONFIG"]?.split(":")[0]);
  const operator = new Operator(
    kc,
    { workers, maxConcurrentWrites, resyncMs: resync * 1000, areas: AREAS },
    log,
  );
  log.info("starting", { server: kc.getCurrentCluster()?.server, workers, resyncSeconds: resync });

  let stopping = false;
  const stopped = new Promise<number>((resolve) => {
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      log.info("draining", { signal });
      operator.stop().then(
        () => {
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
