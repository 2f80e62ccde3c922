/**
 * `csp-operator check`: the offline CIS checks of kube-apiserver and kubelet. It reads the inputs given on
 * its command line directly and every file those inputs refer to under `--host-root` (never outside it),
 * then runs the same checks the in-cluster path runs.
 *
 * Exit codes (see {@link EXIT}): 0 every check that could be evaluated passes (Manual and NotApplicable
 * included) and none is Unknown; 1 at least one check fails; 3 none fails but at least one could not be
 * evaluated (Unknown), e.g. a file a flag names is missing; 2 the run could not be made (unknown option,
 * unreadable, oversized or malformed input), with one line naming the problem on stderr.
 */
import { stat } from "node:fs/promises";
import type { CheckResult } from "./checks/check.js";
import type { FileTargets } from "./checks/files.js";
import { fileCheckPaths, fileChecks } from "./checks/files.js";
import { splitCommandLine } from "./parse/flags.js";
import type { GatherRequest } from "./gather/inputs.js";
import { gatherInputs } from "./gather/inputs.js";
import { parseApiServerManifest } from "./parse/manifest.js";
import { parseConfigObject } from "./parse/yaml.js";
import { renderJson, renderTable } from "./output/report.js";
import { commandLineProblems, runCisChecks } from "./checks/run.js";
import { hostRootReader, InputFileError, MAX_INPUT_BYTES, readRegularFile } from "./gather/safefs.js";
import { MAX_MESSAGE_CHARS, safeText } from "./output/text.js";

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

/** Usage text for `csp-operator check --help`. */
export const CHECK_USAGE = `Usage: csp-operator check [options]

Runs the CIS Kubernetes Benchmark v1.12 checks of kube-apiserver (1.2.x) and kubelet (4.2.x),
judging each setting by the value the component actually runs with, and with --file-checks the
permissions and ownership of the node's files (1.1.x control plane, 4.1.x worker) under --host-root.

Options:
  --apiserver-manifest FILE   kube-apiserver static pod manifest (flags from spec.containers[].command/args)
  --kubelet-flags "FLAGS"     the kubelet's command line, as one string
  --kubelet-config FILE       the kubelet's KubeletConfiguration (default: the file its --config names)
  --host-root DIR             where files named by flags are read from (default /)
  --file-checks WHICH         also check node file permissions/ownership under --host-root:
                              master (1.1.x), node (4.1.x) or all; kubelet paths follow its flags
  -o, --output json|table     output format (default table)
  -h, --help                  show this help

Input files (the manifest, the kubelet config, files named by flags) must be regular files of at most
1 MiB in UTF-8; files under --host-root are read as if it were / (symlinks cannot leave it).

Exit codes:
  0  every check that could be evaluated passes (Manual and NotApplicable included), none is Unknown
  1  at least one check fails
  2  bad usage or input (one line on stderr names it); nothing was checked
  3  no check fails, but at least one could not be evaluated (Unknown)
`;

interface Options {
  apiserverManifest?: string;
  kubeletFlags?: string;
  kubeletConfig?: string;
  hostRoot: string;
  fileChecks?: FileTargets;
  output: "json" | "table";
  help: boolean;
}

class UsageError extends Error {}

const FILE_TARGETS: Readonly<Record<string, FileTargets>> = {
  master: { master: true, node: false },
  node: { master: false, node: true },
  all: { master: true, node: true },
};

const VALUE_OPTIONS: Readonly<Record<string, keyof Options>> = {
  "--apiserver-manifest": "apiserverManifest",
  "--kubelet-flags": "kubeletFlags",
  "--kubelet-config": "kubeletConfig",
  "--host-root": "hostRoot",
  "--file-checks": "fileChecks",
  "--output": "output",
  "-o": "output",
};

function parseOptions(argv: readonly string[]): Options {
  const opts: Options = { hostRoot: "/", output: "table", help: false };
  const seen = new Set<string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === "-h" || arg === "--help") {
      opts.help = true;
      continue;
    }
    let name = arg;
    let value: string | undefined;
    const eq = arg.indexOf("=");
    if (arg.startsWith("--") && eq > 0) {
      name = arg.slice(0, eq);
      value = arg.slice(eq + 1);
    } else if (arg.startsWith("-o") && arg.length > 2 && !arg.startsWith("--")) {
      name = "-o";
      value = arg.slice(arg[2] === "=" ? 3 : 2);
    }
    const key = VALUE_OPTIONS[name];
    if (key === undefined) {
      throw new UsageError(
        arg.startsWith("-")
          ? `unknown option ${JSON.stringify(arg)}`
          : `unexpected argument ${JSON.stringify(arg)}`,
      );
    }
    if (value === undefined) {
      const next = argv[++i];
      if (next === undefined) throw new UsageError(`option ${name} needs a value`);
      value = next;
    }
    if (seen.has(key)) throw new UsageError(`option ${name} given more than once`);
    seen.add(key);
    if (key === "output") {
      if (value !== "json" && value !== "table") {
        throw new UsageError(`-o must be json or table, not ${JSON.stringify(value)}`);
      }
      opts.output = value;
    } else if (key === "fileChecks") {
      const targets = FILE_TARGETS[value];
      if (targets === undefined) {
        throw new UsageError(`--file-checks must be master, node or all, not ${JSON.stringify(value)}`);
      }
      opts.fileChecks = targets;
    } else if (key === "hostRoot") {
      opts.hostRoot = value;
    } else if (key === "apiserverManifest" || key === "kubeletFlags" || key === "kubeletConfig") {
      if (key !== "kubeletFlags" && value === "") throw new UsageError(`option ${name} needs a file name`);
      opts[key] = value;
    }
  }
  return opts;
}

async function readInput(option: string, file: string): Promise<string> {
  try {
    return await readRegularFile(file, { maxBytes: MAX_INPUT_BYTES });
  } catch (e) {
    const why = e instanceof InputFileError ? e.message : ((e as NodeJS.ErrnoException).code ?? "EIO");
    throw new UsageError(`cannot read ${option} ${file}: ${why}`);
  }
}

/** The exit code for a set of results: a failure wins over an Unknown. */
export function exitCodeOf(results: readonly CheckResult[]): number {
  if (results.some((r) => r.status === "Fail")) return EXIT.failed;
  if (results.some((r) => r.status === "Unknown")) return EXIT.unknown;
  return EXIT.ok;
}

/**
 * Runs `csp-operator check` with `argv` (the arguments after `check`) and returns its exit code. Never
 * throws: bad input, and any unexpected error, is one line on stderr and exit code 2.
 */
export async function runCheckCommand(argv: readonly string[], io: CommandIO): Promise<number> {
  const say = (line: string) => io.stderr(`${safeText(line, MAX_MESSAGE_CHARS)}\n`);
  try {
    return await check(argv, io, say);
  } catch (e) {
    if (e instanceof UsageError) {
      say(`csp-operator check: ${e.message}`);
    } else {
      say(
        `csp-operator check: internal error: ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`,
      );
    }
    return EXIT.usage;
  }
}

async function check(argv: readonly string[], io: CommandIO, say: (line: string) => void): Promise<number> {
  const opts = parseOptions(argv);
  if (opts.help) {
    io.stdout(CHECK_USAGE);
    return EXIT.ok;
  }
  if (
    opts.apiserverManifest === undefined &&
    opts.kubeletFlags === undefined &&
    opts.kubeletConfig === undefined &&
    opts.fileChecks === undefined
  ) {
    throw new UsageError(
      "nothing to check: give --apiserver-manifest, --kubelet-flags/--kubelet-config and/or --file-checks",
    );
  }
  const root = await stat(opts.hostRoot).catch(() => undefined);
  if (root === undefined || !root.isDirectory()) {
    throw new UsageError(`--host-root ${opts.hostRoot} is not a directory`);
  }
  const req: { -readonly [K in keyof GatherRequest]: GatherRequest[K] } = {};
  if (opts.apiserverManifest !== undefined) {
    const text = await readInput("--apiserver-manifest", opts.apiserverManifest);
    const manifest = parseApiServerManifest(text);
    if (!manifest.ok)
      throw new UsageError(`--apiserver-manifest ${opts.apiserverManifest} ${manifest.reason}`);
    req.apiserver = { manifest: manifest.value, source: opts.apiserverManifest };
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
  const request: GatherRequest = req;

  const reader = hostRootReader(opts.hostRoot);
  const inputs = await gatherInputs(request, reader);
  const problems = commandLineProblems(inputs);
  for (const p of problems.slice(0, MAX_WARNINGS)) say(`warning: ${p}`);
  if (problems.length > MAX_WARNINGS) {
    say(`warning: and ${problems.length - MAX_WARNINGS} more command-line problems`);
  }
  const checked = runCisChecks(inputs);
  const files =
    opts.fileChecks === undefined ? [] : await fileChecks(reader, fileCheckPaths(inputs), opts.fileChecks);
  // Benchmark order: 1.1 files, 1.2 API server, 4.1 files, 4.2 kubelet.
  const results = [
    ...files.filter((r) => r.id.startsWith("1.")),
    ...checked.filter((r) => r.id.startsWith("1.")),
    ...files.filter((r) => r.id.startsWith("4.")),
    ...checked.filter((r) => r.id.startsWith("4.")),
  ];
  io.stdout(opts.output === "json" ? renderJson(results) : renderTable(results));
  return exitCodeOf(results);
}
