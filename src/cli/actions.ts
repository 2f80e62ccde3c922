/**
 * What `csp-operator run` and `csp-operator agent` do once their command line is valid (parsed in
 * ./program.ts), and `check`, which parses its own options (src/cis/command.ts).
 */
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { homedir, hostname } from "node:os";
import { dirname, join } from "node:path";
import type { KubeConfig } from "@kubernetes/client-node";
import type { OperatorMetrics } from "../observability/metrics.js";
import type { Operator } from "../controller/manager.js";
import {
  UsageError,
  type Actions,
  type IntegrityAcceptOptions,
  type AgentCliOptions,
  type CliIO,
  type RunOptions,
} from "./program.js";
import type { Logger } from "../observability/logger.js";

/** The operator: runs until SIGTERM/SIGINT, then drains. Resolves to the exit code. */
export async function run(opts: RunOptions): Promise<number> {
  const [{ createLogger }, { AREAS }, { Operator }, { OperatorMetrics }] = await Promise.all([
    import("../observability/logger.js"),
    import("../controller/registry.js"),
    import("../controller/manager.js"),
    import("../observability/metrics.js"),
  ]);
  const log = createLogger(opts.logLevel);
  logUnhandledRejections(log);
  const kc = await kubeConfig(opts.kubeconfig);
  const { workers, resyncSeconds } = opts;
  const leaderElection = opts.leaderElection && {
    ...opts.leaderElection,
    identity: process.env["POD_NAME"] || `${hostname()}_${randomBytes(4).toString("hex")}`,
  };
  const metrics = new OperatorMetrics();
  const operator = new Operator(
    kc,
    {
      workers,
      repairWorkers: opts.repairWorkers,
      maxConcurrentWrites: opts.maxConcurrentWrites,
      resyncMs: resyncSeconds * 1000,
      watchSilenceMs: opts.watchSilenceMs,
      areas: AREAS,
      metrics,
      ...(leaderElection ? { leaderElection } : {}),
    },
    log,
  );
  log.info("starting", {
    server: kc.getCurrentCluster()?.server,
    workers,
    resyncSeconds,
    leaderElection: leaderElection ? leaderElection.identity : false,
  });
  const servers = await startServers(opts, operator, metrics, kc, log);

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

/** Starts the probe and metrics endpoints. A port that cannot be bound is an error in the log, not a crash. */
async function startServers(
  opts: RunOptions,
  operator: Operator,
  metrics: OperatorMetrics,
  kc: KubeConfig,
  log: Logger,
): Promise<{ close(): Promise<void> }[]> {
  const servers: { close(): Promise<void> }[] = [];
  if (opts.healthBind) {
    const { HealthServer } = await import("../observability/health.js");
    const health = new HealthServer({ readiness: { informers: () => operator.notReadyReason() } });
    try {
      const port = await health.listen(opts.healthBind.port, opts.healthBind.host);
      log.info("serving health probes", { port, paths: ["/healthz", "/readyz"] });
      servers.push(health);
    } catch (err) {
      log.error("health probes NOT served", { error: (err as Error).message });
    }
  }
  if (opts.metricsBind) {
    const [{ MetricsServer }, { KubeAuthReviewer }] = await Promise.all([
      import("../observability/metricsserver.js"),
      import("../cluster/authreview.js"),
    ]);
    let tls: { cert: string; key: string } | undefined;
    if (opts.metricsSecure && opts.metricsCertDir) {
      try {
        tls = {
          cert: readFileSync(join(opts.metricsCertDir, "tls.crt"), "utf8"),
          key: readFileSync(join(opts.metricsCertDir, "tls.key"), "utf8"),
        };
      } catch (err) {
        throw new UsageError(`--metrics-cert-dir ${opts.metricsCertDir}: ${(err as Error).message}`);
      }
    }
    const server = new MetricsServer({
      registry: metrics.registry,
      log,
      secure: opts.metricsSecure,
      ...(opts.metricsSecure ? { reviewer: new KubeAuthReviewer(kc) } : {}),
      ...(tls ? { tls } : {}),
    });
    try {
      const port = await server.listen(opts.metricsBind.port, opts.metricsBind.host);
      log.info("serving metrics", {
        port,
        scheme: opts.metricsSecure ? "https" : "http",
        certificate: opts.metricsSecure ? (tls ? opts.metricsCertDir : "self-signed, in memory") : undefined,
      });
      servers.push(server);
    } catch (err) {
      log.error("metrics NOT served", { error: (err as Error).message });
    }
  }
  return servers;
}

/** The node agent (a DaemonSet on control-plane nodes, see config/agent). */
export async function agent(opts: AgentCliOptions): Promise<number> {
  const [{ createLogger }, { Agent }] = await Promise.all([
    import("../observability/logger.js"),
    import("../agent/agent.js"),
  ]);
  const node = opts.nodeName;
  const log = createLogger(opts.logLevel).child({ component: "csp-operator-agent", node });
  logUnhandledRejections(log);
  const kc = await kubeConfig(opts.kubeconfig);
  let stop: (code: number) => void = () => {};
  const a = new Agent(
    kc,
    {
      node,
      resyncMs: opts.resyncSeconds * 1000,
      ...(opts.auditPolicyPath ? { auditPolicyPath: opts.auditPolicyPath } : {}),
      ...(opts.encryptionConfigPath ? { encryptionConfigPath: opts.encryptionConfigPath } : {}),
      ...(opts.policy ? { policy: opts.policy } : {}),
      ...(opts.hostRoot ? { hostRoot: opts.hostRoot } : {}),
      // Only a new container mounts the file the host has now: exit, the kubelet starts it again.
      onStaleMount: () => stop(EXIT_REMOUNT),
    },
    log,
  );
  const servers: { close(): Promise<void> }[] = [];
  const stopped = new Promise<number>((resolve) => {
    let stopping = false;
    stop = (code: number) => {
      if (stopping) return;
      stopping = true;
      a.stop()
        .then(() => Promise.all(servers.map((s) => s.close())))
        .then(
          () => resolve(code),
          () => resolve(1),
        );
    };
    process.once("SIGTERM", () => stop(0));
    process.once("SIGINT", () => stop(0));
  });
  // Probes are served before the watches sync: /healthz answers (the loop is alive) while /readyz says
  // what the agent is waiting for.
  if (opts.healthBind) {
    const { HealthServer } = await import("../observability/health.js");
    const health = new HealthServer({
      readiness: { sync: () => a.notReadyReason() },
      // A sync that never ends (a host read that hangs) stops every later one: restart the container.
      liveness: { sync: () => a.stuckReason() },
    });
    try {
      const port = await health.listen(opts.healthBind.port, opts.healthBind.host);
      log.info("serving health probes", { port, paths: ["/healthz", "/readyz"] });
      servers.push(health);
    } catch (err) {
      log.error("health probes NOT served", { error: (err as Error).message });
    }
  }
  if (await a.start()) log.info("agent started");
  return stopped;
}

/**
 * `csp-operator agent`'s exit code when a single-file mount went stale (EX_TEMPFAIL): the kubelet restarts
 * the container, whose new mounts show the host's current file.
 */
export const EXIT_REMOUNT = 75;

/** `csp-operator check`: offline CIS checks; parses its own arguments. */
export async function check(argv: string[], io: CliIO): Promise<number> {
  const { runCheckCommand } = await import("../cis/command.js");
  return runCheckCommand(argv, io);
}

/** `csp-operator validate`: policies checked offline against the CRD's rules. */
export function validate(argv: string[], io: CliIO): Promise<number> {
  return gitopsCommand("runValidate", argv, io);
}

/** `csp-operator integrity accept`: reads the node's report and prints the accept entry (never writes). */
export async function integrityAccept(opts: IntegrityAcceptOptions, io: CliIO): Promise<number> {
  const { integrityAccept: accept, AcceptError } = await import("../agent/accept.js");
  const kc = await kubeConfig(opts.kubeconfig);
  try {
    io.stdout(await accept(kc, { node: opts.node, path: opts.path, reason: opts.reason }));
    return 0;
  } catch (err) {
    if (err instanceof AcceptError) throw new UsageError(err.message);
    throw err;
  }
}

/**
 * Runs one of the gitops commands (`validate`, `render`, `diff`), which parse their own arguments, with the
 * CLI's output streams; loaded on first use so `run` and `agent` never load them.
 */
async function gitopsCommand(
  which: "runValidate" | "runRender" | "runDiff",
  argv: string[],
  io: CliIO,
): Promise<number> {
  const command = await import("../gitops/command.js");
  const run =
    which === "runValidate" ? command.runValidate : (await import("../gitops/rendercommand.js"))[which];
  return run(argv, { ...command.processIO(), stdout: io.stdout, stderr: io.stderr });
}

/** `csp-operator render`: the objects a policy would write, from the controller's plan. */
export function render(argv: string[], io: CliIO): Promise<number> {
  return gitopsCommand("runRender", argv, io);
}

/** `csp-operator diff`: a server-side dry run against a live cluster. */
export function diff(argv: string[], io: CliIO): Promise<number> {
  return gitopsCommand("runDiff", argv, io);
}

export const ACTIONS: Actions = { run, agent, check, validate, render, diff, integrityAccept };

/** A kubeconfig larger than this is refused (real ones, certificates embedded, are a few KiB to a few 100 KiB). */
export const MAX_KUBECONFIG_BYTES = 4 * 1024 * 1024;

/** Where the kubeconfig comes from, for {@link kubeConfig}; injected by tests. */
export interface KubeConfigEnv {
  readonly KUBECONFIG?: string | undefined;
  readonly KUBERNETES_SERVICE_HOST?: string | undefined;
  readonly home: string;
}

function processKubeConfigEnv(): KubeConfigEnv {
  return {
    KUBECONFIG: process.env["KUBECONFIG"],
    KUBERNETES_SERVICE_HOST: process.env["KUBERNETES_SERVICE_HOST"],
    home: homedir(),
  };
}

/**
 * The kubeconfig from --kubeconfig, else the first file of $KUBECONFIG, else ~/.kube/config, else the
 * in-cluster service account. Every failure is bad input: one line naming where the kubeconfig came from and
 * why (the parser's first line only: never the file's content), exit 2. In particular:
 * - the file is read as a regular file of at most {@link MAX_KUBECONFIG_BYTES} (a FIFO or /dev/zero is refused,
 *   never waited on);
 * - a kubeconfig without a current cluster (`{}`, no clusters, a current-context naming nothing) is refused;
 * - with no kubeconfig at all outside a cluster, client-node would silently talk to http://localhost:8080:
 *   refused too.
 */
export async function kubeConfig(
  flag: string | undefined,
  env: KubeConfigEnv = processKubeConfigEnv(),
): Promise<KubeConfig> {
  const [{ KubeConfig }, { shareDispatcher }, { readRegularFile }] = await Promise.all([
    import("@kubernetes/client-node"),
    import("../cluster/client.js"),
    import("../cis/gather/safefs.js"),
  ]);
  const fromEnv = env.KUBECONFIG?.split(":").find((f) => f !== "");
  const homeConfig = join(env.home, ".kube", "config");
  const [path, source] =
    flag !== undefined
      ? [flag, "--kubeconfig"]
      : fromEnv !== undefined
        ? [fromEnv, "$KUBECONFIG"]
        : existsSync(homeConfig)
          ? [homeConfig, "kubeconfig"]
          : [undefined, "in-cluster config"];
  const kc = new KubeConfig();
  const fail = (why: string, cause?: unknown): never => {
    throw new UsageError(`cannot load ${source}${path === undefined ? "" : ` ${path}`}: ${why}`, { cause });
  };
  if (path === undefined) {
    if (!env.KUBERNETES_SERVICE_HOST)
      throw new UsageError(
        "no kubeconfig: give --kubeconfig, set $KUBECONFIG or create ~/.kube/config (not in a cluster: $KUBERNETES_SERVICE_HOST is unset)",
      );
    try {
      kc.loadFromCluster();
    } catch (e) {
      fail(firstLine(e), e);
    }
  } else {
    try {
      kc.loadFromString(await readRegularFile(path, { maxBytes: MAX_KUBECONFIG_BYTES }));
      kc.makePathsAbsolute(dirname(path));
    } catch (e) {
      fail(firstLine(e), e);
    }
  }
  if (!kc.getCurrentCluster()) {
    const ctx = kc.getCurrentContext();
    fail(
      ctx
        ? `no current cluster: the current-context ${JSON.stringify(ctx).slice(0, 100)} names no cluster defined in it`
        : "no current cluster: it sets no current-context",
    );
  }
  return shareDispatcher(kc);
}

function firstLine(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split("\n")[0]!.slice(0, 300);
}

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
