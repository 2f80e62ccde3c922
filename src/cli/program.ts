/**
 * The command line: `csp-operator [run] | agent | check | help`, built with commander. This module only
 * parses and validates; what a command does is injected ({@link Actions}), so parsing is unit-tested
 * without starting an operator and main.ts decides what runs.
 *
 * Conventions every command keeps: `--help` and `--version` (`-V`) work on every command; an unknown
 * option, a missing or invalid value is ONE line on stderr naming the option and exit code 2.
 */
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Command, CommanderError, InvalidArgumentError, Option } from "commander";
import { MAX_MESSAGE_CHARS, safeText } from "../cis/output/text.js";
import { parseGoDuration } from "../cis/parse/flags.js";

/** Where a command writes; injected so tests and main.ts decide. */
export interface CliIO {
  readonly stdout: (s: string) => void;
  readonly stderr: (s: string) => void;
}

/** `csp-operator run`: the operator. */
export interface RunOptions {
  /** Unset: $KUBECONFIG's first file, then ~/.kube/config, then the in-cluster service account. */
  readonly kubeconfig?: string;
  readonly workers: number;
  /** Namespaces repaired in parallel by the repair lane (controller/lane.ts). */
  readonly repairWorkers: number;
  /** Writes one reconcile sends at once (ordered where order matters). */
  readonly maxConcurrentWrites: number;
  readonly resyncSeconds: number;
  readonly logLevel: LogLevel;
  /** Set with --leader-elect: only the holder of the Lease reconciles and writes. */
  readonly leaderElection?: LeaderElectionFlags;
  /** Where /metrics is served; undefined = not served (`--metrics-bind-address=0`). */
  readonly metricsBind?: BindAddress;
  /** HTTPS with TokenReview + SubjectAccessReview (default), or plain HTTP for loopback development. */
  readonly metricsSecure: boolean;
  /** tls.crt + tls.key for the metrics endpoint; unset = a self-signed certificate made in memory at start. */
  readonly metricsCertDir?: string;
  /** Where /healthz and /readyz are served; undefined = not served. */
  readonly healthBind?: BindAddress;
  /** A watch silent (no event, no bookmark) this long fails /readyz. */
  readonly watchSilenceMs: number;
}

/** A listen address from a `[host]:port` flag. */
export interface BindAddress {
  readonly host?: string;
  readonly port: number;
}

/** The Lease's namespace and client-go's timings, in milliseconds. */
export interface LeaderElectionFlags {
  readonly namespace: string;
  readonly leaseDurationMs: number;
  readonly renewDeadlineMs: number;
  readonly retryPeriodMs: number;
}

/** `csp-operator agent`: the node agent (a DaemonSet on control-plane nodes, see config/agent). */
export interface AgentCliOptions {
  readonly kubeconfig?: string;
  readonly nodeName: string;
  readonly auditPolicyPath?: string;
  readonly encryptionConfigPath?: string;
  readonly policy?: string;
  readonly hostRoot?: string;
  readonly resyncSeconds: number;
  readonly logLevel: LogLevel;
  /** Where the agent's /healthz and /readyz are served; undefined = not served. */
  readonly healthBind?: BindAddress;
}

/** `csp-operator integrity accept`: the accept entry for a changed control-plane file, ready to commit. */
export interface IntegrityAcceptOptions {
  readonly kubeconfig?: string;
  readonly node: string;
  readonly path: string;
  readonly reason: string;
}

/** What each command does once its command line is valid; each resolves to the process exit code. */
export interface Actions {
  /** Prints the `spec.controlPlane.fileIntegrity.accept[]` entry for a file's current state (read-only). */
  integrityAccept(opts: IntegrityAcceptOptions, io: CliIO): Promise<number>;
  run(opts: RunOptions): Promise<number>;
  agent(opts: AgentCliOptions): Promise<number>;
  /** `check` parses its own options (src/cis/command.ts): it gets its arguments untouched. */
  check(argv: string[], io: CliIO): Promise<number>;
  /** `validate` parses its own options (src/gitops/command.ts): it gets its arguments untouched. */
  validate(argv: string[], io: CliIO): Promise<number>;
  /** `render` and `diff` parse their own options (src/gitops/rendercommand.ts). */
  render(argv: string[], io: CliIO): Promise<number>;
  diff(argv: string[], io: CliIO): Promise<number>;
}

/** Exit code for bad usage (unknown option or command, missing or invalid value). */
export const EXIT_USAGE = 2;

/** Bad input found by an action (an unreadable kubeconfig, say): one line on stderr, {@link EXIT_USAGE}. */
export class UsageError extends Error {}

/** winston's npm levels, most to least severe. */
export const LOG_LEVELS = ["error", "warn", "info", "http", "verbose", "debug", "silly"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** The commands, in help order; `run` is the default. */
export const COMMANDS = ["run", "agent", "check", "validate", "render", "diff", "integrity", "help"] as const;

/** Commands that parse their own options: every argument reaches them as given, --help included. */
type Passthrough = "check" | "validate" | "render" | "diff";

/** The version in the package.json next to the code (the checkout's, the installed package's, the image's). */
export function packageVersion(from: string = fileURLToPath(import.meta.url)): string {
  for (let dir = dirname(from); ; dir = dirname(dir)) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as {
        name?: unknown;
        version?: unknown;
      };
      if (pkg.name === "csp-operator" && typeof pkg.version === "string") return pkg.version;
    } catch {
      // no (readable) package.json here: look further up
    }
    if (dirname(dir) === dir) return "unknown";
  }
}

/** The name help shows: `kubectl csp` when run as the kubectl plugin `kubectl-csp`. */
export function programName(argv1: string | undefined): string {
  const base = (argv1 ?? "").split(/[\\/]/).pop() ?? "";
  return base.startsWith("kubectl-csp") ? "kubectl csp" : "csp-operator";
}

function positiveInteger(name: string): (v: string) => number {
  return (v) => {
    const n = Number(v);
    if (!/^\s*\d+\s*$/.test(v) || !Number.isSafeInteger(n) || n < 1)
      throw new InvalidArgumentError(`${name} must be a positive integer.`);
    return n;
  };
}

/** The longest resync period: one day (a timer of more than 2^31 ms would fire at once, in a loop). */
export const MAX_RESYNC_SECONDS = 86_400;

/** Seconds written in decimal (no hex, exponent or sign), between 1 and {@link MAX_RESYNC_SECONDS}. */
function resyncSeconds(name: string): (v: string) => number {
  return (v) => {
    const n = Number(v);
    if (!/^\d+(\.\d+)?$/.test(v) || !(n >= 1 && n <= MAX_RESYNC_SECONDS))
      throw new InvalidArgumentError(
        `${name} must be a number of seconds from 1 to ${MAX_RESYNC_SECONDS}, written in decimal.`,
      );
    return n;
  };
}

function absolutePath(name: string): (v: string) => string {
  return (v) => {
    if (!v.startsWith("/")) throw new InvalidArgumentError(`${name} must be an absolute path.`);
    return v;
  };
}

function nonEmpty(name: string): (v: string) => string {
  return (v) => {
    if (v === "") throw new InvalidArgumentError(`${name} must not be empty.`);
    return v;
  };
}

/** A Go duration (time.ParseDuration, as kubebuilder's flags take it: `15s`, `500ms`, `1m`) in ms, > 0. */
function duration(name: string): (v: string) => number {
  return (v) => {
    const ns = parseGoDuration(v);
    if (ns === undefined || ns <= 0)
      throw new InvalidArgumentError(`${name} must be a duration like 15s or 500ms.`);
    return ns / 1e6;
  };
}

/** `[host]:port`, or `0` to disable (kubebuilder's convention). */
function bindAddress(name: string): (v: string) => BindAddress | "off" {
  return (v) => {
    if (v === "0" || v === "") return "off";
    const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(v);
    const port = Number(m?.[3]);
    if (!m || !Number.isInteger(port) || port > 65535)
      throw new InvalidArgumentError(`${name} must be [host]:port or 0 to disable.`);
    const host = m[1] ?? m[2];
    return host ? { host, port } : { port };
  };
}

function bool(name: string): (v: string) => boolean {
  return (v) => {
    if (v !== "true" && v !== "false") throw new InvalidArgumentError(`${name} must be true or false.`);
    return v === "true";
  };
}

function kubeconfigOption(): Option {
  return new Option(
    "--kubeconfig <file>",
    "kubeconfig to use (default: the first file in $KUBECONFIG, ~/.kube/config, then in-cluster)",
  ).argParser(nonEmpty("--kubeconfig"));
}

function logLevelOption(): Option {
  // choices() for the help text; the parser (set after it, replacing its check) accepts any case: LOG_LEVEL=INFO.
  return new Option("--log-level <level>", "log level")
    .choices(LOG_LEVELS)
    .argParser((v: string): LogLevel => {
      const level = v.toLowerCase();
      if (!(LOG_LEVELS as readonly string[]).includes(level))
        throw new InvalidArgumentError(`Allowed choices are ${LOG_LEVELS.join(", ")}.`);
      return level as LogLevel;
    })
    .env("LOG_LEVEL")
    .default("info");
}

/**
 * Declares `run`'s options. The one place to add an operator flag: declare it here and read it in
 * {@link runOptionsOf}.
 */
export function declareRunOptions(cmd: Command): Command {
  return cmd
    .addOption(kubeconfigOption())
    .addOption(
      new Option("--workers <n>", "policies reconciled in parallel")
        .argParser(positiveInteger("--workers"))
        .env("CSP_WORKERS")
        .default(2),
    )
    .addOption(
      new Option("--repair-workers <n>", "namespaces repaired in parallel, apart from full reconciles")
        .argParser(positiveInteger("--repair-workers"))
        .env("CSP_REPAIR_WORKERS")
        .default(2),
    )
    .addOption(
      new Option("--max-concurrent-writes <n>", "writes one reconcile sends at once")
        .argParser(positiveInteger("--max-concurrent-writes"))
        .env("CSP_MAX_CONCURRENT_WRITES")
        .default(8),
    )
    .addOption(
      new Option("--resync <seconds>", "full resync period")
        .argParser(resyncSeconds("--resync"))
        .env("CSP_RESYNC_SECONDS")
        .default(300),
    )
    .addOption(logLevelOption())
    .addOption(new Option("--leader-elect", "elect one leader among replicas with a Lease; only it writes"))
    .addOption(
      new Option("--leader-elect-namespace <ns>", "namespace of the Lease csp-operator-leader")
        .argParser(nonEmpty("--leader-elect-namespace"))
        .default("csp-system"),
    )
    .addOption(
      new Option("--leader-elect-lease-duration <d>", "how long a Lease is valid without renewal")
        .argParser(duration("--leader-elect-lease-duration"))
        .default(15_000, "15s"),
    )
    .addOption(
      new Option("--leader-elect-renew-deadline <d>", "a leader that cannot renew this long stops writing")
        .argParser(duration("--leader-elect-renew-deadline"))
        .default(10_000, "10s"),
    )
    .addOption(
      new Option("--leader-elect-retry-period <d>", "how often candidates try and leaders renew")
        .argParser(duration("--leader-elect-retry-period"))
        .default(2_000, "2s"),
    )
    .addOption(
      new Option("--metrics-bind-address <addr>", "where /metrics is served ([host]:port; 0 disables)")
        .argParser(bindAddress("--metrics-bind-address"))
        .default("off", "0"),
    )
    .addOption(
      new Option("--metrics-secure [bool]", "serve metrics over HTTPS with TokenReview/SubjectAccessReview")
        .argParser(bool("--metrics-secure"))
        .default(true),
    )
    .addOption(
      new Option(
        "--metrics-cert-dir <dir>",
        "tls.crt and tls.key for metrics (default: self-signed in memory)",
      ).argParser(nonEmpty("--metrics-cert-dir")),
    )
    .addOption(
      new Option(
        "--watch-silence-timeout <d>",
        "a watch with no event or bookmark for this long fails /readyz (a hung API server)",
      )
        .argParser(duration("--watch-silence-timeout"))
        .env("CSP_WATCH_SILENCE_TIMEOUT")
        .default(150_000, "150s"),
    )
    .addOption(
      new Option("--health-probe-bind-address <addr>", "where /healthz and /readyz are served (0 disables)")
        .argParser(bindAddress("--health-probe-bind-address"))
        .default({ port: 8081 }, ":8081"),
    );
}

/** `run`'s parsed options, typed. */
export function runOptionsOf(cmd: Command): RunOptions {
  const o = cmd.opts<{
    kubeconfig?: string;
    workers: number;
    repairWorkers: number;
    maxConcurrentWrites: number;
    resync: number;
    logLevel: LogLevel;
    leaderElect?: boolean;
    leaderElectNamespace: string;
    leaderElectLeaseDuration: number;
    leaderElectRenewDeadline: number;
    leaderElectRetryPeriod: number;
    metricsBindAddress: BindAddress | "off";
    metricsSecure: boolean;
    metricsCertDir?: string;
    healthProbeBindAddress: BindAddress | "off";
    watchSilenceTimeout: number;
  }>();
  const lease = o.leaderElectLeaseDuration;
  const renew = o.leaderElectRenewDeadline;
  const retry = o.leaderElectRetryPeriod;
  if (o.leaderElect && !(lease > renew && renew > retry && retry > 0))
    throw new UsageError(
      "--leader-elect-lease-duration must exceed --leader-elect-renew-deadline, which must exceed --leader-elect-retry-period",
    );
  return {
    ...(o.kubeconfig === undefined ? {} : { kubeconfig: o.kubeconfig }),
    workers: o.workers,
    repairWorkers: o.repairWorkers,
    maxConcurrentWrites: o.maxConcurrentWrites,
    resyncSeconds: o.resync,
    logLevel: o.logLevel,
    ...(o.leaderElect
      ? {
          leaderElection: {
            namespace: o.leaderElectNamespace,
            leaseDurationMs: lease,
            renewDeadlineMs: renew,
            retryPeriodMs: retry,
          },
        }
      : {}),
    ...(o.metricsBindAddress === "off" ? {} : { metricsBind: o.metricsBindAddress }),
    metricsSecure: o.metricsSecure,
    ...(o.metricsCertDir === undefined ? {} : { metricsCertDir: o.metricsCertDir }),
    ...(o.healthProbeBindAddress === "off" ? {} : { healthBind: o.healthProbeBindAddress }),
    watchSilenceMs: o.watchSilenceTimeout,
  };
}

/** Declares `agent`'s options. */
export function declareAgentOptions(cmd: Command): Command {
  return cmd
    .addOption(kubeconfigOption())
    .addOption(
      new Option("--node-name <name>", "the node this agent runs on (required)")
        .argParser(nonEmpty("--node-name"))
        .env("NODE_NAME"),
    )
    .addOption(
      new Option(
        "--audit-policy-path <file>",
        "absolute path where kube-apiserver reads --audit-policy-file (unset: not delivered)",
      ).argParser(absolutePath("--audit-policy-path")),
    )
    .addOption(
      new Option(
        "--encryption-config-path <file>",
        "absolute path where kube-apiserver reads --encryption-provider-config (unset: not delivered)",
      ).argParser(absolutePath("--encryption-config-path")),
    )
    .addOption(
      new Option(
        "--host-root <dir>",
        "absolute path where the host's / is mounted: also run the CIS 1.1.x/4.1.x file checks there",
      ).argParser(absolutePath("--host-root")),
    )
    .addOption(
      new Option(
        "--policy <name>",
        "deliver only this policy's files (needed when several policies render one)",
      ).argParser(nonEmpty("--policy")),
    )
    .addOption(
      new Option("--resync <seconds>", "re-check the files on disk this often")
        .argParser(resyncSeconds("--resync"))
        .default(60),
    )
    .addOption(
      new Option(
        "--health-probe-bind-address <addr>",
        "where /healthz (event loop alive) and /readyz (a sync completed recently) are served (0 disables)",
      )
        .argParser(bindAddress("--health-probe-bind-address"))
        .default({ port: 8081 }, ":8081"),
    )
    .addOption(logLevelOption());
}

/** `agent`'s parsed options, typed; a one-line usage error (exit 2) when a required one is missing. */
export function agentOptionsOf(cmd: Command): AgentCliOptions {
  const o = cmd.opts<{
    kubeconfig?: string;
    nodeName?: string;
    auditPolicyPath?: string;
    encryptionConfigPath?: string;
    hostRoot?: string;
    policy?: string;
    resync: number;
    logLevel: LogLevel;
    healthProbeBindAddress: BindAddress | "off";
  }>();
  if (!o.nodeName) usageError(cmd, "error: --node-name (or $NODE_NAME) is required");
  if (!o.auditPolicyPath && !o.encryptionConfigPath && !o.hostRoot)
    usageError(
      cmd,
      "error: give --audit-policy-path, --encryption-config-path and/or --host-root: nothing to deliver or check",
    );
  return {
    nodeName: o.nodeName,
    resyncSeconds: o.resync,
    logLevel: o.logLevel,
    ...(o.kubeconfig === undefined ? {} : { kubeconfig: o.kubeconfig }),
    ...(o.auditPolicyPath === undefined ? {} : { auditPolicyPath: o.auditPolicyPath }),
    ...(o.encryptionConfigPath === undefined ? {} : { encryptionConfigPath: o.encryptionConfigPath }),
    ...(o.hostRoot === undefined ? {} : { hostRoot: o.hostRoot }),
    ...(o.policy === undefined ? {} : { policy: o.policy }),
    ...(o.healthProbeBindAddress === "off" ? {} : { healthBind: o.healthProbeBindAddress }),
  };
}

function usageError(cmd: Command, message: string): never {
  cmd.error(message, { exitCode: EXIT_USAGE, code: "csp.usage" });
  throw new Error("unreachable: exitOverride throws");
}

/**
 * Commander writes "error: ...\n(Did you mean --x?)": one line, and what came from the command line (an
 * option name, a value) cannot drive the terminal: control characters escaped, length bounded.
 */
function oneLine(s: string): string {
  return `${safeText(s.trim().replace(/\s*\n\s*/g, " "), MAX_MESSAGE_CHARS)}\n`;
}

/**
 * Builds the program. `check` is passed through untouched to {@link Actions.check}, which owns its
 * options and its help.
 */
export function buildProgram(actions: Actions, io: CliIO, name = "csp-operator", version = packageVersion()) {
  let exitCode = 0;
  const program = new Command(name)
    .description(
      "Kubernetes operator for ClusterSecurityPolicy: network isolation, least privilege, Pod Security and control-plane hardening.",
    )
    .version(version, "-V, --version", "print the version")
    .helpOption("-h, --help", "show help")
    .helpCommand("help [command]", "show help for a command")
    .enablePositionalOptions()
    .showSuggestionAfterError(true)
    .exitOverride()
    .configureOutput({
      writeOut: io.stdout,
      writeErr: io.stderr,
      outputError: (s, write) => write(oneLine(s)),
    })
    .addHelpText(
      "after",
      `
Examples:
  ${name} run --kubeconfig ~/.kube/config       run the operator against a cluster
  ${name} check --apiserver-manifest kube-apiserver.yaml
  ${name} help check                            the options of a command`,
    );

  declareRunOptions(
    program
      .command("run", { isDefault: true })
      .description("run the operator (the default command)")
      .version(version, "-V, --version", "print the version")
      .helpOption("-h, --help", "show help"),
  ).action(async (_opts: unknown, cmd: Command) => {
    exitCode = await actions.run(runOptionsOf(cmd));
  });

  declareAgentOptions(
    program
      .command("agent")
      .description("run the node agent: writes the rendered control-plane files to the host, checks them")
      .version(version, "-V, --version", "print the version")
      .helpOption("-h, --help", "show help"),
  ).action(async (_opts: unknown, cmd: Command) => {
    exitCode = await actions.agent(agentOptionsOf(cmd));
  });

  const integrity = program
    .command("integrity")
    .description("file integrity monitoring of control-plane files (see spec.controlPlane.fileIntegrity)")
    .helpOption("-h, --help", "show help");
  integrity
    .command("accept")
    .description(
      "print the spec.controlPlane.fileIntegrity.accept[] entry for a file's current state, from the node agent's report",
    )
    .helpOption("-h, --help", "show help")
    .addOption(kubeconfigOption())
    .addOption(
      new Option("--node <name>", "the node whose agent reported the change")
        .argParser(nonEmpty("--node"))
        .makeOptionMandatory(),
    )
    .addOption(
      new Option("--path <file>", "the absolute path on the host, as reported")
        .argParser(absolutePath("--path"))
        .makeOptionMandatory(),
    )
    .addOption(
      new Option("--reason <text>", "why the change is accepted (kept in the policy)")
        .argParser(nonEmpty("--reason"))
        .makeOptionMandatory(),
    )
    .action(async (_opts: unknown, cmd: Command) => {
      const o = cmd.opts<{ kubeconfig?: string; node: string; path: string; reason: string }>();
      exitCode = await actions.integrityAccept(
        {
          ...(o.kubeconfig === undefined ? {} : { kubeconfig: o.kubeconfig }),
          node: o.node,
          path: o.path,
          reason: o.reason,
        },
        io,
      );
    });

  // `check` and `validate` keep their own parsers (src/cis/command.ts, src/gitops/command.ts).
  const passthrough = (name: Passthrough, description: string): void => {
    program
      .command(name)
      .description(description)
      .argument("[options...]")
      .helpOption(false)
      .allowUnknownOption()
      .allowExcessArguments()
      .action(async (_args: unknown, _opts: unknown, cmd: Command) => {
        const argv = cmd.args;
        if (argv.length === 1 && (argv[0] === "--version" || argv[0] === "-V")) {
          io.stdout(`${version}\n`);
          exitCode = 0;
          return;
        }
        exitCode = await actions[name](argv, io);
      });
  };
  passthrough("check", "offline CIS Kubernetes Benchmark checks of kube-apiserver, kubelet and node files");
  passthrough(
    "validate",
    "validate ClusterSecurityPolicy manifests offline (schema, CEL rules, InvalidSpec checks)",
  );
  passthrough("render", "print every object a policy would create or change (the controller's own plan)");
  passthrough(
    "diff",
    "server-side dry run of a policy against a live cluster: a diff per object, prunes, traffic impact",
  );
  return { program, exitCode: () => exitCode };
}

/**
 * Parses `argv` (the arguments after the executable) and runs the chosen command. Resolves to the exit
 * code; never rejects on bad usage (one line on stderr, {@link EXIT_USAGE}).
 */
export async function runCli(
  argv: readonly string[],
  actions: Actions,
  io: CliIO,
  name = "csp-operator",
  version = packageVersion(),
): Promise<number> {
  const first = argv[0];
  const named = first === "help" ? argv[1] : first;
  if (named !== undefined && !named.startsWith("-") && !(COMMANDS as readonly string[]).includes(named)) {
    io.stderr(oneLine(`error: unknown command '${named}' (commands: ${COMMANDS.join(", ")}; default: run)`));
    return EXIT_USAGE;
  }
  // `help` alone, `help help`, `help -h`: the program's help; `help --version`: the version; `help <command>`
  // is `<command> --help` (a passthrough command owns its usage text). All on stdout, exit 0.
  if (first === "help") {
    const rest = argv.slice(1);
    const topic = rest[0];
    if (rest.length > 1) {
      io.stderr(oneLine(`error: help takes one command, got ${rest.length} arguments: ${rest.join(" ")}`));
      return EXIT_USAGE;
    }
    if (topic === undefined || ["help", "-h", "--help"].includes(topic)) argv = ["--help"];
    else if (topic === "--version" || topic === "-V") argv = ["--version"];
    else if (topic.startsWith("-")) {
      io.stderr(oneLine(`error: unknown option '${topic}' for help (help [command])`));
      return EXIT_USAGE;
    } else argv = [topic, "--help"];
  }
  const { program, exitCode } = buildProgram(actions, io, name, version);
  try {
    await program.parseAsync([...argv], { from: "user" });
    return exitCode();
  } catch (e) {
    if (e instanceof UsageError) {
      io.stderr(oneLine(`error: ${e.message}`));
      return EXIT_USAGE;
    }
    if (!(e instanceof CommanderError)) throw e;
    if (["commander.helpDisplayed", "commander.help", "commander.version"].includes(e.code))
      return e.exitCode;
    return EXIT_USAGE;
  }
}
