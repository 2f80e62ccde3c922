/**
 * `csp-operator check`: the offline CIS checks of kube-apiserver and kubelet. It reads the inputs given on
 * its command line directly and every file those inputs refer to under `--host-root`, then runs the same
 * checks the in-cluster path runs.
 *
 * Exit codes: 0 when no check fails, 1 when at least one fails, 2 on bad input (unknown option, unreadable
 * manifest, YAML that is not a Pod, ...), with a message naming the problem on stderr.
 */
import type { Dirent } from "node:fs";
import { lstat, readdir, readFile, readlink, stat } from "node:fs/promises";
import { join, posix, relative } from "node:path";
import type { FileTargets, StatReader } from "./files.js";
import { fileCheckPaths, fileChecks } from "./files.js";
import { splitCommandLine } from "./flags.js";
import type { GatherRequest, HostReader } from "./inputs.js";
import { gatherInputs, parseApiServerManifest, parseConfigObject } from "./inputs.js";
import { renderJson, renderTable } from "./report.js";
import { commandLineProblems, runCisChecks } from "./run.js";

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

Exit codes: 0 nothing fails, 1 a check fails, 2 bad input.
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

/**
 * Reads host files under `root`: `/etc/kubernetes/x.yaml` is `<root>/etc/kubernetes/x.yaml`, and `..`
 * cannot climb above `root`.
 */
export function hostRootReader(root: string): HostReader & StatReader {
  const onHost = (p: string) => join(root, posix.resolve("/", p));
  return {
    stat: async (p) => {
      const resolved = await resolveInRoot(root, p);
      if (resolved === undefined) return undefined;
      const s = await stat(onHost(resolved));
      return {
        type: s.isFile() ? "file" : s.isDirectory() ? "directory" : "other",
        mode: s.mode & 0o7777,
        uid: s.uid,
        gid: s.gid,
      };
    },
    listAll: async (dir) => {
      const resolved = (await resolveInRoot(root, dir)) ?? dir;
      const base = onHost(resolved);
      const entries: Dirent[] = await readdir(base, { recursive: true, withFileTypes: true });
      return entries.map((e) => relative(base, join(e.parentPath, e.name)).split("\\").join("/"));
    },
    readFile: async (p) => {
      try {
        return await readFile(onHost(p), "utf8");
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        throw new Error(`${code ?? (e as Error).message} (read as ${onHost(p)})`, { cause: e });
      }
    },
    listFiles: async (dir) => {
      const base = onHost(dir);
      const entries: Dirent[] = await readdir(base, { recursive: true, withFileTypes: true });
      return entries
        .filter((e) => !e.isDirectory())
        .map((e) => relative(base, join(e.parentPath, e.name)).split("\\").join("/"));
    },
  };
}

/**
 * Resolves symlinks in `path` as the host would, but inside `root`: an absolute link target on a mounted
 * host filesystem points into the host, not into the process's own root. Undefined when it does not exist.
 */
async function resolveInRoot(root: string, path: string): Promise<string | undefined> {
  const todo = posix.resolve("/", path).split("/").filter(Boolean);
  let done = "/";
  for (let hops = 0; todo.length > 0;) {
    const next = posix.join(done, todo.shift() as string);
    let st;
    try {
      st = await lstat(join(root, next));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw e;
    }
    if (!st.isSymbolicLink()) {
      done = next;
      continue;
    }
    if (++hops > 40) throw new Error(`too many levels of symbolic links in ${path}`);
    const target = await readlink(join(root, next));
    todo.unshift(...target.split("/").filter(Boolean));
    if (target.startsWith("/")) done = "/";
  }
  return done;
}

async function readInput(option: string, file: string): Promise<string> {
  try {
    return await readFile(file, "utf8");
  } catch (e) {
    throw new UsageError(
      `cannot read ${option} ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
    );
  }
}

/**
 * Runs `csp-operator check` with `argv` (the arguments after `check`). Never throws for bad input: it
 * reports on stderr and returns 2.
 */
export async function runCheckCommand(argv: readonly string[], io: CommandIO): Promise<number> {
  let opts: Options;
  let request: GatherRequest;
  try {
    opts = parseOptions(argv);
    if (opts.help) {
      io.stdout(CHECK_USAGE);
      return 0;
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
      let kubeletArgv: string[] = [];
      try {
        kubeletArgv = splitCommandLine(opts.kubeletFlags ?? "");
      } catch (e) {
        throw new UsageError(`--kubelet-flags: ${(e as Error).message}`);
      }
      let config: { source: string; text: string } | undefined;
      if (opts.kubeletConfig !== undefined) {
        const text = await readInput("--kubelet-config", opts.kubeletConfig);
        const parsed = parseConfigObject(text, [
          { apiVersion: "kubelet.config.k8s.io/v1beta1", kind: "KubeletConfiguration" },
        ]);
        if (!parsed.ok) throw new UsageError(`--kubelet-config ${opts.kubeletConfig} ${parsed.reason}`);
        config = { source: opts.kubeletConfig, text };
      }
      req.kubelet = {
        argv: kubeletArgv,
        source: opts.kubeletFlags === undefined ? "no kubelet flags given" : "--kubelet-flags",
        ...(config === undefined ? {} : { config }),
      };
    }
    request = req;
  } catch (e) {
    if (e instanceof UsageError) {
      io.stderr(`csp-operator check: ${e.message}\n`);
      return 2;
    }
    throw e;
  }

  const reader = hostRootReader(opts.hostRoot);
  const inputs = await gatherInputs(request, reader);
  for (const p of commandLineProblems(inputs)) io.stderr(`warning: ${p}\n`);
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
  return results.some((r) => r.status === "Fail") ? 1 : 0;
}
