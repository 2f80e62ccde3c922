#!/usr/bin/env node
/**
 * csp-operator entry point.
 *   csp-operator [run] [--kubeconfig FILE] [--workers N] [--resync SECONDS]   run the operator
 *   csp-operator check [...]                                                  offline CIS checks (see --help)
 */
import { parseArgs } from "node:util";
import { loadKubeConfig } from "./cluster/client.js";
import { createLogger } from "./observability/logger.js";
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
      resync: { type: "string", default: process.env["CSP_RESYNC_SECONDS"] ?? "300" },
      "log-level": { type: "string", default: process.env["LOG_LEVEL"] ?? "info" },
    },
    strict: true,
  });
  const workers = Number(values.workers);
  const resync = Number(values.resync);
  if (!Number.isInteger(workers) || workers < 1)
    throw new UsageError(`--workers must be a positive integer, got ${values.workers}`);
  if (!Number.isFinite(resync) || resync <= 0)
    throw new UsageError(`--resync must be a positive number of seconds, got ${values.resync}`);
  const log = createLogger(values["log-level"]);
  const kc = loadKubeConfig(values.kubeconfig ?? process.env["KUBECONFIG"]?.split(":")[0]);
  const operator = new Operator(kc, { workers, resyncMs: resync * 1000, areas: AREAS }, log);
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

class UsageError extends Error {}

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
  if (command === undefined || command.startsWith("-")) return run(argv);
  console.error(`unknown command ${command}; commands: run (default), check`);
  return 2;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err instanceof UsageError ? `error: ${err.message}` : err);
    process.exit(err instanceof UsageError ? 2 : 1);
  },
);
