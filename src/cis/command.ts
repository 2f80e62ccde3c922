/**
 * `csp-operator check`: the offline CIS checks of the control plane (kube-apiserver, controller manager,
 * scheduler, etcd, the API server's audit policy) and the kubelet. It reads the inputs given on its command
 * line directly, the static Pod manifests in `--manifests-dir` and every file those inputs refer to under
 * `--host-root` (never outside it), then runs the same checks the in-cluster path runs.
 *
 * The options are a commander {@link Command} built by {@link checkCommand}, so a top-level CLI can mount
 * it as a subcommand; {@link runCheckCommand} is the thin wrapper main.ts calls.
 *
 * Exit codes (see {@link EXIT}): 0 every check that could be evaluated passes (Manual and NotApplicable
 * included) and none is Unknown; 1 at least one check fails; 3 none fails but at least one could not be
 * evaluated (Unknown), e.g. a file a flag names is missing; 2 the run could not be made (unknown option,
 * missing value, unreadable, oversized or malformed input), with one line naming the problem on stderr.
 */
import { stat } from "node:fs/promises";
import { posix } from "node:path";
import { Command, CommanderError, InvalidArgumentError, Option } from "commander";
import type { CheckResult } from "./checks/check.js";
import type { FileTargets } from "./checks/files.js";
import { fileCheckPaths, fileChecks } from "./checks/files.js";
import type { PolicyObjectReader } from "../cluster/cispolicies.js";
import { runPolicyChecks } from "./checks/policies.js";
import { commandLineProblems, inBenchmarkOrder, runCisChecks } from "./checks/run.js";
import { gatherPolicyInputs } from "./gather/policies.js";
import type { GatherRequest, HostReader } from "./gather/inputs.js";
import { gatherInputs } from "./gather/inputs.js";
import { hostRootReader, InputFileError, MAX_INPUT_BYTES, readRegularFile } from "./gather/safefs.js";
import { renderJunit, renderKubeBench } from "./output/formats.js";
import { renderJson, renderTable } from "./output/report.js";
import { MAX_MESSAGE_CHARS, safeText } from "./output/text.js";
import { splitCommandLine } from "./parse/flags.js";
import type { ComponentManifest, ManifestComponent } from "./parse/manifest.js";
import { parseComponentManifest } from "./parse/manifest.js";
import { parseConfigObject } from "./parse/yaml.js";

export { hostRootReader } from "./gather/safefs.js";

/** The exit codes of `csp-operator check`. */
export const EXIT = {
  /** Every evaluated check passes (or is Manual / NotApplicable), none is Unknown. */
  ok: 0,
  /** At least one check fails. */
  failed: 1,
  /** Bad usage or input: nothing was checked. */
  usage: 2,
  /** No check fails, but at least one could not be evaluated. */
  unknown: 3,
} as const;

/** Warnings printed at most; the rest are counted. */
export const MAX_WARNINGS = 20;

/** Where the command writes; injected so tests and main.ts decide. */
export interface CommandIO {
  readonly stdout: (s: string) => void;
  readonly stderr: (s: string) => void;
}

/** The output formats of `-o`. */
export const OUTPUT_FORMATS = ["table", "json", "junit", "kube-bench"] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

/** Where kubeadm puts the static Pod manifests, read under `--host-root` by default. */
export const DEFAULT_MANIFESTS_DIR = "/etc/kubernetes/manifests";

/** The manifest file names `--manifests-dir` reads, per component. */
export const MANIFEST_FILES: Readonly<Record<ManifestComponent, string>> = {
  "kube-apiserver": "kube-apiserver.yaml",
  "kube-controller-manager": "kube-controller-manager.yaml",
  "kube-scheduler": "kube-scheduler.yaml",
  etcd: "etcd.yaml",
};

const HELP_AFTER = `
Each --*-manifest FILE is read as given; --manifests-dir DIR (default ${DEFAULT_MANIFESTS_DIR}) is read
under --host-root, and a manifest given explicitly wins over the one in the directory. Without any
component option, the manifests in --manifests-dir are checked. Input files (manifests, the kubelet
config, files named by flags) must be regular files of at most 1 MiB in UTF-8; files under --host-root
are read as if it were / (symlinks cannot leave it).

--kubeconfig FILE reads the cluster (LISTs only: namespaces, Roles and bindings, NetworkPolicies, pods and
services in default) for 5.1.x, 5.2.x, 5.3.2 and 5.7.4; --secret-environment-variables adds 5.4.1, a paged
LIST of every Pod. A read that is forbidden or fails leaves its checks Unknown with the reason.

Output formats: table (default), json ({"benchmark": "cis-1.12", "results": [{id, title, status,
evidence}]}), junit (one testcase per check) and kube-bench (kube-bench's --json layout).

Exit codes:
  0  every check that could be evaluated passes (Manual and NotApplicable included), none is Unknown
  1  at least one check fails
  2  bad usage or input (one line on stderr names it); nothing was checked
  3  no check fails, but at least one could not be evaluated (Unknown)
`;

/** The parsed options, before any file is read. */
interface Options {
  apiserverManifest?: string;
  controllerManagerManifest?: string;
  schedulerManifest?: string;
  etcdManifest?: string;
  manifestsDir?: string;
  kubeletFlags?: string;
  kubeletConfig?: string;
  hostRoot?: string;
  fileChecks?: FileTargets;
  output?: OutputFormat;
  kubeconfig?: string;
  secretEnvironmentVariables?: boolean;
}

/** A problem with the command line or an input: exit 2, one line. */
class UsageError extends Error {}

const FILE_TARGETS: Readonly<Record<string, FileTargets>> = {
  master: { master: true, node: false },
  node: { master: false, node: true },
  all: { master: true, node: true },
};

/** commander argParser: a value given once (a repeated option is a mistake, not "last wins" here). */
function once<T>(convert: (v: string) => T = (v) => v as T) {
  return (value: string, previous: T | undefined): T => {
    if (previous !== undefined) throw new InvalidArgumentError("the option is given more than once.");
    return convert(value);
  };
}

const fileName = once((v: string) => {
  if (v === "") throw new InvalidArgumentError("it needs a file name.");
  return v;
});

/** The exit code for a set of results: a failure wins over an Unknown. */
export function exitCodeOf(results: readonly CheckResult[]): number {
  if (results.some((r) => r.status === "Fail")) return EXIT.failed;
  if (results.some((r) => r.status === "Unknown")) return EXIT.unknown;
  return EXIT.ok;
}

/**
 * The `check` command: options, help and action. Usage errors and `--help` end with a
 * {@link CommanderError} thrown from `parseAsync` (exitOverride), after one line on `io.stderr` (errors:
 * exit code 2) or the help on `io.stdout` (exit code 0); a completed run calls `setExitCode` with 0, 1 or 3.
 * Problems found while running (unreadable input) are reported as one line and `setExitCode(2)`.
 */
export function checkCommand(
  io: CommandIO,
  setExitCode: (code: number) => void = (code) => {
    process.exitCode = code;
  },
): Command {
  const say = (line: string) => io.stderr(`${safeText(line, MAX_MESSAGE_CHARS)}\n`);
  const cmd = new Command("check")
    .description(
      "Run the CIS Kubernetes Benchmark v1.12 checks of kube-apiserver (1.2.x), kube-controller-manager (1.3.x), " +
        "kube-scheduler (1.4.x), etcd (2.x), the audit policy (3.2.x) and the kubelet (4.2.x), judging each setting " +
        "by the value the component actually runs with; with --file-checks also the node's file permissions " +
        "and ownership (1.1.x control plane, 4.1.x worker) under --host-root; with --kubeconfig also the " +
        "cluster policies (5.x) read from the API.",
    )
    .usage("[options]")
    .option("--apiserver-manifest <file>", "kube-apiserver static pod manifest", fileName)
    .option("--controller-manager-manifest <file>", "kube-controller-manager static pod manifest", fileName)
    .option("--scheduler-manifest <file>", "kube-scheduler static pod manifest", fileName)
    .option("--etcd-manifest <file>", "etcd static pod manifest", fileName)
    .option(
      "--manifests-dir <dir>",
      `directory (under --host-root) holding the four static pod manifests (default ${DEFAULT_MANIFESTS_DIR})`,
      fileName,
    )
    .option("--kubelet-flags <flags>", "the kubelet's command line, as one string", once())
    .option(
      "--kubelet-config <file>",
      "the kubelet's KubeletConfiguration (default: the file its --config names)",
      fileName,
    )
    .option("--host-root <dir>", "where files named by flags are read from (default /)", once())
    .option(
      "--kubeconfig <file>",
      "also run the CIS 5.x checks (RBAC, Pod Security labels, NetworkPolicies, the default namespace) against the cluster this kubeconfig reaches, read-only",
      fileName,
    )
    .option(
      "--secret-environment-variables",
      "with --kubeconfig, also CIS 5.4.1: list every Pod and report the workloads taking Secrets into env (names only, never values)",
    )
    .addOption(
      new Option(
        "--file-checks <which>",
        "also check node file permissions/ownership under --host-root: master (1.1.x), node (4.1.x) or all",
      ).argParser(
        once((v: string) => {
          const t = FILE_TARGETS[v];
          if (t === undefined) throw new InvalidArgumentError("--file-checks must be master, node or all.");
          return t;
        }),
      ),
    )
    .addOption(
      new Option("-o, --output <format>", "output format (default table)").argParser(
        once((raw: string) => {
          // `-o=json` (pflag style) reaches commander as the value "=json".
          const v = raw.startsWith("=") ? raw.slice(1) : raw;
          if (!(OUTPUT_FORMATS as readonly string[]).includes(v))
            throw new InvalidArgumentError(`-o must be one of ${OUTPUT_FORMATS.join(", ")}.`);
          return v as OutputFormat;
        }),
      ),
    )
    .helpOption("-h, --help", "show this help")
    .addHelpText("after", HELP_AFTER)
    .allowExcessArguments(false)
    .exitOverride()
    .configureOutput({
      writeOut: (s) => io.stdout(s),
      writeErr: (s) => io.stderr(s),
      outputError: (s) => say(`csp-operator check: ${s.trim().replace(/^error: /, "")}`),
    })
    .action(async (opts: Options) => {
      try {
        setExitCode(await check(opts, io, say));
      } catch (e) {
        if (e instanceof UsageError) say(`csp-operator check: ${e.message}`);
        else
          say(
            `csp-operator check: internal error: ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`,
          );
        setExitCode(EXIT.usage);
      }
    });
  return cmd;
}

/** Usage text for `csp-operator check --help`. */
export function checkUsage(): string {
  let out = "";
  checkCommand({ stdout: (s) => (out += s), stderr: () => undefined }, () => undefined)
    .name("csp-operator check")
    .outputHelp();
  return out;
}

/**
 * Runs `csp-operator check` with `argv` (the arguments after `check`) and returns its exit code. Never
 * throws: bad input, and any unexpected error, is one line on stderr and exit code 2.
 */
export async function runCheckCommand(argv: readonly string[], io: CommandIO): Promise<number> {
  let code: number = EXIT.usage;
  const cmd = checkCommand(io, (c) => (code = c)).name("csp-operator check");
  try {
    await cmd.parseAsync([...argv], { from: "user" });
    return code;
  } catch (e) {
    if (e instanceof CommanderError) return e.code === "commander.helpDisplayed" ? EXIT.ok : EXIT.usage;
    io.stderr(
      `${safeText(`csp-operator check: internal error: ${e instanceof Error ? e.message : String(e)}`, MAX_MESSAGE_CHARS)}\n`,
    );
    return EXIT.usage;
  }
}

/** The 5.x reads over the kubeconfig of `--kubeconfig`; a kubeconfig that cannot be used is a usage error. */
async function policyReader(file: string): Promise<PolicyObjectReader> {
  const [{ kubeConfig }, { RestClient }, { PolicyObjectReader }] = await Promise.all([
    import("../cli/actions.js"),
    import("../cluster/rest.js"),
    import("../cluster/cispolicies.js"),
  ]);
  let kc: Awaited<ReturnType<typeof kubeConfig>>;
  try {
    kc = await kubeConfig(file);
  } catch (e) {
    throw new UsageError(e instanceof Error ? e.message : String(e));
  }
  return new PolicyObjectReader(new RestClient(kc));
}

async function readInput(option: string, file: string): Promise<string> {
  try {
    return await readRegularFile(file, { maxBytes: MAX_INPUT_BYTES });
  } catch (e) {
    const why = e instanceof InputFileError ? e.message : ((e as NodeJS.ErrnoException).code ?? "EIO");
    throw new UsageError(`cannot read ${option} ${file}: ${why}`);
  }
}

type ManifestRequest = { manifest: ComponentManifest; source: string };

/** A manifest named on the command line: read as given, parsed, or a usage error naming the option. */
async function manifestFromFile(
  option: string,
  file: string,
  component: ManifestComponent,
): Promise<ManifestRequest> {
  const parsed = parseComponentManifest(await readInput(option, file), component);
  if (!parsed.ok) throw new UsageError(`${option} ${file} ${parsed.reason}`);
  return { manifest: parsed.value, source: file };
}

/**
 * A manifest in the manifests directory, read under the host root: undefined when absent (that component
 * is not on this node), a usage error when present but unreadable or not a manifest of the component.
 */
async function manifestFromDir(
  reader: HostReader,
  dir: string,
  component: ManifestComponent,
): Promise<ManifestRequest | undefined> {
  const path = posix.join(posix.resolve("/", dir), MANIFEST_FILES[component]);
  let text: string;
  try {
    text = await reader.readFile(path);
  } catch (e) {
    if (e instanceof InputFileError && e.code === "ENOENT") return undefined;
    throw new UsageError(`cannot read ${path} in --manifests-dir: ${(e as Error).message}`);
  }
  const parsed = parseComponentManifest(text, component);
  if (!parsed.ok) throw new UsageError(`${path} in --manifests-dir ${parsed.reason}`);
  return { manifest: parsed.value, source: path };
}

async function check(opts: Options, io: CommandIO, say: (line: string) => void): Promise<number> {
  const hostRoot = opts.hostRoot ?? "/";
  const root = await stat(hostRoot).catch(() => undefined);
  if (root === undefined || !root.isDirectory()) {
    throw new UsageError(`--host-root ${hostRoot} is not a directory`);
  }
  const reader = hostRootReader(hostRoot);
  const req: { -readonly [K in keyof GatherRequest]: GatherRequest[K] } = {};
  const explicit: [
    keyof Options,
    string,
    ManifestComponent,
    "apiserver" | "controllerManager" | "scheduler" | "etcd",
  ][] = [
    ["apiserverManifest", "--apiserver-manifest", "kube-apiserver", "apiserver"],
    [
      "controllerManagerManifest",
      "--controller-manager-manifest",
      "kube-controller-manager",
      "controllerManager",
    ],
    ["schedulerManifest", "--scheduler-manifest", "kube-scheduler", "scheduler"],
    ["etcdManifest", "--etcd-manifest", "etcd", "etcd"],
  ];
  if (opts.secretEnvironmentVariables === true && opts.kubeconfig === undefined) {
    throw new UsageError("--secret-environment-variables needs --kubeconfig (it lists the cluster's Pods)");
  }
  const anyComponent =
    opts.kubeconfig !== undefined ||
    explicit.some(([k]) => opts[k] !== undefined) ||
    opts.kubeletFlags !== undefined ||
    opts.kubeletConfig !== undefined ||
    opts.fileChecks !== undefined;
  const scanDir = opts.manifestsDir !== undefined || !anyComponent;
  const dir = opts.manifestsDir ?? DEFAULT_MANIFESTS_DIR;
  for (const [key, option, component, slot] of explicit) {
    const file = opts[key] as string | undefined;
    const found =
      file !== undefined
        ? await manifestFromFile(option, file, component)
        : scanDir
          ? await manifestFromDir(reader, dir, component)
          : undefined;
    if (found !== undefined) req[slot] = found;
  }
  if (opts.kubeletFlags !== undefined || opts.kubeletConfig !== undefined) {
    if ((opts.kubeletFlags ?? "").length > MAX_INPUT_BYTES) {
      throw new UsageError(`--kubelet-flags is longer than ${MAX_INPUT_BYTES} characters`);
    }
    let kubeletArgv: string[];
    try {
      kubeletArgv = splitCommandLine(opts.kubeletFlags ?? "");
    } catch (e) {
      throw new UsageError(`--kubelet-flags: ${(e as Error).message}`);
    }
    let config: { source: string; text: string; data: Record<string, unknown> } | undefined;
    if (opts.kubeletConfig !== undefined) {
      const text = await readInput("--kubelet-config", opts.kubeletConfig);
      const parsed = parseConfigObject(text, [
        { apiVersion: "kubelet.config.k8s.io/v1beta1", kind: "KubeletConfiguration" },
      ]);
      if (!parsed.ok) throw new UsageError(`--kubelet-config ${opts.kubeletConfig} ${parsed.reason}`);
      config = { source: opts.kubeletConfig, text, data: parsed.value };
    }
    req.kubelet = {
      argv: kubeletArgv,
      source: opts.kubeletFlags === undefined ? "no kubelet flags given" : "--kubelet-flags",
      ...(config === undefined ? {} : { config }),
    };
  }
  if (Object.keys(req).length === 0 && opts.fileChecks === undefined && opts.kubeconfig === undefined) {
    throw new UsageError(
      `nothing to check: no manifest in ${posix.join(hostRoot, dir)}; give --apiserver-manifest, --controller-manager-manifest, --scheduler-manifest, --etcd-manifest, --manifests-dir, --kubelet-flags/--kubelet-config, --file-checks and/or --kubeconfig`,
    );
  }
  const policies =
    opts.kubeconfig === undefined
      ? []
      : runPolicyChecks(
          await gatherPolicyInputs(
            await policyReader(opts.kubeconfig),
            opts.secretEnvironmentVariables === true,
          ),
        );

  const inputs = await gatherInputs(req, reader);
  const problems = commandLineProblems(inputs);
  for (const p of problems.slice(0, MAX_WARNINGS)) say(`warning: ${p}`);
  if (problems.length > MAX_WARNINGS) {
    say(`warning: and ${problems.length - MAX_WARNINGS} more command-line problems`);
  }
  const checked = runCisChecks(inputs);
  const files =
    opts.fileChecks === undefined
      ? []
      : await fileChecks(reader, fileCheckPaths(inputs, undefined, opts.manifestsDir), opts.fileChecks);
  const results = inBenchmarkOrder([...files, ...checked, ...policies]);
  const render = {
    table: renderTable,
    json: renderJson,
    junit: renderJunit,
    "kube-bench": renderKubeBench,
  }[opts.output ?? "table"];
  io.stdout(render(results));
  return exitCodeOf(results);
}
