/**
 * The inputs CIS checks evaluate, and the gatherer that assembles them. Checks are pure functions of
 * {@link CisInputs}; everything that touches a filesystem goes through a {@link HostReader}, so the offline
 * command (reading under `--host-root`) and an in-cluster agent (reading however it can) share one code path.
 *
 * A file that a flag refers to but that cannot be read or parsed is kept as a failed {@link FileResult} with
 * the reason, and the checks that need it report Unknown — they never guess its content.
 */
import { posix } from "node:path";
import type { ParsedFlags } from "../parse/flags.js";
import { parseFlags, stringFlag } from "../parse/flags.js";
import { APISERVER_FILE_FLAGS, APISERVER_GRAMMAR, KUBELET_GRAMMAR } from "../parse/grammars.js";
import type { ApiServerManifest } from "../parse/manifest.js";
import { containerPathOnHost } from "../parse/manifest.js";
import type { Parsed } from "../parse/yaml.js";
import { isRecord, parseConfigObject } from "../parse/yaml.js";

/** Reads one file by absolute host path; rejects when it cannot. */
export type ReadFile = (path: string) => Promise<string>;

/** Lists the files under a directory, recursively, as paths relative to it; rejects when it cannot. */
export type ListFiles = (dir: string) => Promise<string[]>;

/**
 * How the gatherer reaches the host's files. `listFiles` is optional: without it a kubelet `--config-dir`
 * cannot be read and the settings it could override are Unknown.
 */
export interface HostReader {
  readonly readFile: ReadFile;
  readonly listFiles?: ListFiles;
}

/** A file a flag refers to: its content, or why it could not be had. */
export type FileResult =
  | { readonly ok: true; readonly path: string; readonly hostPath: string; readonly text: string }
  | { readonly ok: false; readonly path: string; readonly hostPath: string; readonly reason: string };

/** Everything the 1.2.x (API server) checks look at. */
export interface ApiServerInputs {
  /** Where the command line came from, for evidence (e.g. the manifest path). */
  readonly source: string;
  /** The static pod, for findings (`Pod/<namespace>/<name>`). */
  readonly pod: { readonly name: string; readonly namespace: string };
  readonly flags: ParsedFlags;
  /** Files referenced by flags, keyed by flag name; present only when the flag names a file. */
  readonly files: Readonly<Record<string, FileResult>>;
}

/** The kubelet's configuration file (plus drop-ins) as loaded, or why it could not be. */
export type KubeletConfigState =
  | { readonly state: "none" }
  | {
      readonly state: "loaded";
      readonly source: string;
      readonly data: Readonly<Record<string, unknown>>;
      readonly dropIns: readonly string[];
    }
  | { readonly state: "error"; readonly source: string; readonly reason: string };

/** Everything the 4.2.x (kubelet) checks look at. */
export interface KubeletInputs {
  /** Where the command line came from, for evidence. */
  readonly source: string;
  readonly flags: ParsedFlags;
  readonly config: KubeletConfigState;
  /**
   * Which defaults fill fields that neither a flag nor the config sets: `configFile` (a config file was
   * loaded: the kubelet.config.k8s.io/v1beta1 defaults) or `flags` (no config file: the kubelet's legacy
   * flag defaults, e.g. anonymous auth on, AlwaysAllow, read-only port 10255).
   */
  readonly defaults: "configFile" | "flags";
  /**
   * Set when the kubelet's command line cannot be seen (in-cluster, settings come from its configz, which
   * merges config-backed flags but not command-line-only ones such as --hostname-override): the reason.
   */
  readonly flagsUnavailable?: string;
}

/** The inputs of one run; a component without inputs is not checked. */
export interface CisInputs {
  readonly apiserver?: ApiServerInputs;
  readonly kubelet?: KubeletInputs;
}

async function readVia(reader: HostReader, path: string, hostPath: string): Promise<FileResult> {
  try {
    return { ok: true, path, hostPath, text: await reader.readFile(hostPath) };
  } catch (e) {
    return { ok: false, path, hostPath, reason: `cannot read ${hostPath}: ${(e as Error).message}` };
  }
}

/**
 * Parses the API server's flags and reads every file a checked flag refers to (through the pod's
 * hostPath mounts). Unreadable files are recorded with the reason, never dropped.
 */
export async function gatherApiServerInputs(
  manifest: ApiServerManifest,
  source: string,
  reader: HostReader,
): Promise<ApiServerInputs> {
  const flags = parseFlags(manifest.argv, APISERVER_GRAMMAR);
  const files: Record<string, FileResult> = {};
  for (const name of APISERVER_FILE_FLAGS) {
    const v = stringFlag(flags, name);
    if (!v.ok || v.value === "") continue;
    const mapped = containerPathOnHost(v.value, manifest);
    if (!mapped.ok) {
      files[name] = { ok: false, path: v.value, hostPath: "", reason: mapped.reason };
      continue;
    }
    files[name] = await readVia(reader, v.value, mapped.value.hostPath);
  }
  return { source, pod: manifest.pod, flags, files };
}

/** kubelet config files: only this apiVersion/kind is accepted by kubelet v1.36. */
const KUBELET_CONFIG_KIND = [{ apiVersion: "kubelet.config.k8s.io/v1beta1", kind: "KubeletConfiguration" }];

/** RFC 7386 JSON merge patch, as the kubelet applies drop-ins: objects merge, null deletes, rest replaces. */
export function jsonMergePatch(target: unknown, patch: unknown): unknown {
  if (!isRecord(patch)) return patch;
  const out: Record<string, unknown> = isRecord(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = jsonMergePatch(out[k], v);
  }
  return out;
}

// filepath.WalkDir order: lexical per directory, descending into a directory where its name sorts.
function walkOrder(a: string, b: string): number {
  const pa = a.split("/");
  const pb = b.split("/");
  for (let i = 0; i < Math.min(pa.length, pb.length); i++) {
    const x = pa[i] as string;
    const y = pb[i] as string;
    if (x !== y) return x < y ? -1 : 1;
  }
  return pa.length - pb.length;
}

/** Drop-ins read per kubelet, in characters altogether (each file is also limited by its reader). */
export const MAX_DROP_IN_CHARS = 4 * 1024 * 1024;

/** What the gatherer needs to know about the kubelet. */
export interface KubeletRequest {
  /** The kubelet's command line; a leading `kubelet` binary path is dropped. */
  readonly argv: readonly string[];
  /** Where argv came from, for evidence. */
  readonly source: string;
  /** A config file supplied directly (takes precedence over the kubelet's own `--config`). */
  readonly config?: {
    readonly source: string;
    readonly text: string;
    /** The text already parsed as a KubeletConfiguration, when the caller validated it. */
    readonly data?: Readonly<Record<string, unknown>>;
  };
}

/**
 * Parses the kubelet's flags, then loads its config the way the kubelet does: the `--config` file (or the
 * one supplied directly), then `--config-dir` drop-ins (`*.conf`, walk order, JSON merge patch). Relative
 * paths are taken from `/`, the kubelet's usual working directory.
 */
export async function gatherKubeletInputs(req: KubeletRequest, reader: HostReader): Promise<KubeletInputs> {
  let argv = [...req.argv];
  const first = argv[0];
  if (first !== undefined && !first.startsWith("-") && /(^|\/)kubelet$/.test(first)) argv = argv.slice(1);
  const flags = parseFlags(argv, KUBELET_GRAMMAR);

  let config: KubeletConfigState = { state: "none" };
  let data: Record<string, unknown> = {};
  let loadedFile = false;
  const configFlag = stringFlag(flags, "config");
  if (req.config !== undefined) {
    const parsed: Parsed<Record<string, unknown>> =
      req.config.data === undefined
        ? parseConfigObject(req.config.text, KUBELET_CONFIG_KIND)
        : { ok: true, value: { ...req.config.data } };
    if (!parsed.ok)
      return {
        source: req.source,
        flags,
        config: fail(req.config.source, parsed.reason),
        defaults: "configFile",
      };
    data = parsed.value;
    loadedFile = true;
    config = { state: "loaded", source: req.config.source, data, dropIns: [] };
  } else if (configFlag.ok && configFlag.value !== "") {
    const path = posix.resolve("/", configFlag.value);
    const file = await readVia(reader, path, path);
    if (!file.ok)
      return { source: req.source, flags, config: fail(path, file.reason), defaults: "configFile" };
    const parsed = parseConfigObject(file.text, KUBELET_CONFIG_KIND);
    if (!parsed.ok)
      return {
        source: req.source,
        flags,
        config: fail(path, `${path} ${parsed.reason}`),
        defaults: "configFile",
      };
    data = parsed.value;
    loadedFile = true;
    config = { state: "loaded", source: path, data, dropIns: [] };
  }
  const defaults = loadedFile ? "configFile" : "flags";

  const dirFlag = stringFlag(flags, "config-dir");
  if (dirFlag.ok && dirFlag.value !== "") {
    const dir = posix.resolve("/", dirFlag.value);
    const src = config.state === "loaded" ? `${config.source} + drop-ins in ${dir}` : `drop-ins in ${dir}`;
    if (reader.listFiles === undefined) {
      return {
        source: req.source,
        flags,
        config: fail(src, `cannot list the drop-in directory ${dir}`),
        defaults,
      };
    }
    let names: string[];
    try {
      names = (await reader.listFiles(dir)).sort(walkOrder);
    } catch (e) {
      return {
        source: req.source,
        flags,
        config: fail(src, `cannot list ${dir}: ${(e as Error).message}`),
        defaults,
      };
    }
    const used: string[] = [];
    let budget = MAX_DROP_IN_CHARS;
    for (const name of names.filter((n) => posix.extname(n) === ".conf")) {
      const path = posix.join(dir, name);
      const file = await readVia(reader, path, path);
      if (!file.ok) return { source: req.source, flags, config: fail(src, file.reason), defaults };
      budget -= file.text.length;
      if (budget < 0) {
        const why = `the drop-ins in ${dir} hold more than ${MAX_DROP_IN_CHARS} characters together; not read`;
        return { source: req.source, flags, config: fail(src, why), defaults };
      }
      const parsed = parseConfigObject(file.text, KUBELET_CONFIG_KIND);
      if (!parsed.ok)
        return { source: req.source, flags, config: fail(src, `${path} ${parsed.reason}`), defaults };
      data = jsonMergePatch(data, parsed.value) as Record<string, unknown>;
      used.push(path);
    }
    config = { state: "loaded", source: src, data, dropIns: used };
  }
  return { source: req.source, flags, config, defaults };
}

function fail(source: string, reason: string): KubeletConfigState {
  return { state: "error", source, reason };
}

/** What to gather: either component may be absent. */
export interface GatherRequest {
  readonly apiserver?: { readonly manifest: ApiServerManifest; readonly source: string };
  readonly kubelet?: KubeletRequest;
}

/** Gathers the inputs of every requested component through one reader. */
export async function gatherInputs(req: GatherRequest, reader: HostReader): Promise<CisInputs> {
  const apiserver =
    req.apiserver === undefined
      ? undefined
      : await gatherApiServerInputs(req.apiserver.manifest, req.apiserver.source, reader);
  const kubelet = req.kubelet === undefined ? undefined : await gatherKubeletInputs(req.kubelet, reader);
  return {
    ...(apiserver === undefined ? {} : { apiserver }),
    ...(kubelet === undefined ? {} : { kubelet }),
  };
}
