/**
 * The inputs CIS checks evaluate, and the gatherer that assembles them. Checks are pure functions of
 * {@link CisInputs}; everything that touches a filesystem goes through a {@link HostReader}, so the offline
 * command (reading under `--host-root`) and an in-cluster agent (reading however it can) share one code path.
 *
 * A file that a flag refers to but that cannot be read or parsed is kept as a failed {@link FileResult} with
 * the reason, and the checks that need it report Unknown — they never guess its content.
 */
import { posix } from "node:path";
import type { ArgInput, FlagGrammar, ParsedFlags } from "../parse/flags.js";
import { parseFlags, stringFlag } from "../parse/flags.js";
import {
  APISERVER_FILE_FLAGS,
  APISERVER_GRAMMAR,
  CONTROLLER_MANAGER_GRAMMAR,
  ETCD_GRAMMAR,
  KUBELET_GRAMMAR,
  SCHEDULER_GRAMMAR,
} from "../parse/grammars.js";
import type { ApiServerManifest, ComponentManifest } from "../parse/manifest.js";
import { containerPathOnHost } from "../parse/manifest.js";
import type { Parsed } from "../parse/yaml.js";
import { isRecord, parseConfigObject, parseYamlMapping } from "../parse/yaml.js";

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

/**
 * Everything the checks of a control-plane component run from a static Pod look at (1.2.x API server,
 * 1.3.x controller manager, 1.4.x scheduler, 2.x etcd).
 */
export interface ComponentInputs {
  /** Where the command line came from, for evidence (e.g. the manifest path). */
  readonly source: string;
  /** The static pod, for findings (`Pod/<namespace>/<name>`). */
  readonly pod: { readonly name: string; readonly namespace: string };
  readonly flags: ParsedFlags;
  /** Files referenced by flags, keyed by flag name; present only when the flag names a file. */
  readonly files: Readonly<Record<string, FileResult>>;
  /** Set when the settings cannot be known at all (etcd's --config-file unreadable): every check is Unknown. */
  readonly unavailable?: string;
}

/** Everything the 1.2.x (API server) checks look at. */
export type ApiServerInputs = ComponentInputs;

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
  readonly controllerManager?: ComponentInputs;
  readonly scheduler?: ComponentInputs;
  /** etcd; its `files` also hold `cluster-ca`, the cluster CA that 2.7 compares etcd's CA with. */
  readonly etcd?: ComponentInputs;
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

/**
 * Parses a component's flags with its grammar and reads every file the named flags refer to (through the
 * pod's hostPath mounts). Unreadable files are recorded with the reason, never dropped.
 */
export async function gatherComponentInputs(
  manifest: ComponentManifest,
  source: string,
  reader: HostReader,
  grammar: FlagGrammar,
  fileFlags: readonly string[],
  argv: readonly ArgInput[] = manifest.argv,
): Promise<ComponentInputs> {
  const flags = parseFlags(argv, grammar);
  const files: Record<string, FileResult> = {};
  for (const name of fileFlags) {
    const v = stringFlag(flags, name);
    if (!v.ok || v.value === "") continue;
    files[name] = await readMapped(reader, v.value, manifest);
  }
  return { source, pod: manifest.pod, flags, files };
}

async function readMapped(
  reader: HostReader,
  path: string,
  manifest: Pick<ComponentManifest, "mounts" | "workingDir">,
): Promise<FileResult> {
  const mapped = containerPathOnHost(path, manifest);
  if (!mapped.ok) return { ok: false, path, hostPath: "", reason: mapped.reason };
  return readVia(reader, path, mapped.value.hostPath);
}

/** Where the cluster CA is when no API server manifest says (`--client-ca-file` of kubeadm's layout). */
export const DEFAULT_CLUSTER_CA = "/etc/kubernetes/pki/ca.crt";

/** The cluster CA for 2.7: the API server's `--client-ca-file` when its manifest is known, else kubeadm's. */
function clusterCaOf(
  req: GatherRequest,
  apiserver: ApiServerInputs | undefined,
): { path: string; manifest: Pick<ComponentManifest, "mounts" | "workingDir">; via: string } {
  if (apiserver !== undefined && req.apiserver !== undefined) {
    const v = stringFlag(apiserver.flags, "client-ca-file");
    if (v.ok && v.value !== "") return { path: v.value, manifest: req.apiserver.manifest, via: v.source };
  }
  return {
    path: DEFAULT_CLUSTER_CA,
    manifest: { mounts: [], workingDir: "/" },
    via: `no kube-apiserver --client-ca-file given; the kubeadm cluster CA ${DEFAULT_CLUSTER_CA}`,
  };
}

/** etcd's flags named in its config file's transport sections, by section. */
const ETCD_TLS_KEYS: Readonly<Record<string, string>> = {
  "cert-file": "cert-file",
  "key-file": "key-file",
  "client-cert-auth": "client-cert-auth",
  "trusted-ca-file": "trusted-ca-file",
  "auto-tls": "auto-tls",
};

/** The TLS keys as flags outside the transport sections: at the top of etcd's config file they are ignored. */
const ETCD_TOP_LEVEL_IGNORED: ReadonlySet<string> = new Set(
  Object.keys(ETCD_TLS_KEYS).flatMap((k) => [k, `peer-${k}`]),
);

/**
 * etcd's effective command line. With `--config-file` (or, when that flag is not given, the container env
 * `ETCD_CONFIG_FILE`, which etcd reads itself), etcd reads only that YAML file (flags and env are ignored):
 * its keys become the flags they stand for; the TLS settings only inside `client-transport-security`
 * (`--cert-file`...) and `peer-transport-security` (`--peer-*`): the same keys at the top level are
 * ignored by etcd, and here. Otherwise `ETCD_<NAME>` variables of the container env set the flags the
 * command line does not give (etcd's SetFlagsFromEnv looks up exactly `ETCD_` + the flag upper-cased, `-`
 * as `_`: `ETCD_client_cert_auth` sets nothing).
 */
async function etcdArgv(
  manifest: ComponentManifest,
  reader: HostReader,
): Promise<{ argv: ArgInput[]; configFile?: FileResult; error?: string }> {
  const cli = parseFlags(manifest.argv, ETCD_GRAMMAR);
  let config = stringFlag(cli, "config-file");
  const envConfig = manifest.env.get("ETCD_CONFIG_FILE");
  if ((!config.ok || config.value === "") && envConfig !== undefined) {
    if (!("value" in envConfig))
      return {
        argv: [],
        error: `etcd reads its settings only from env ETCD_CONFIG_FILE, which cannot be resolved here (${envConfig.unresolved})`,
      };
    if (envConfig.value !== "")
      config = { ok: true, value: envConfig.value, explicit: true, source: "env ETCD_CONFIG_FILE" };
  }
  if (config.ok && config.value !== "") {
    const file = await readMapped(reader, config.value, manifest);
    if (!file.ok)
      return { argv: [], configFile: file, error: `etcd reads only ${config.source}: ${file.reason}` };
    const doc = parseYamlMapping(file.text);
    if (!doc.ok) return { argv: [], configFile: file, error: `etcd config file ${file.path} ${doc.reason}` };
    const argv: ArgInput[] = [];
    const scalar = (v: unknown) =>
      typeof v === "string" || typeof v === "number" || typeof v === "boolean" ? String(v) : undefined;
    for (const [k, v] of Object.entries(doc.value)) {
      if ((k === "client-transport-security" || k === "peer-transport-security") && isRecord(v)) {
        const prefix = k === "peer-transport-security" ? "peer-" : "";
        for (const [tk, tv] of Object.entries(v)) {
          const flag = ETCD_TLS_KEYS[tk];
          const s = scalar(tv);
          if (flag !== undefined && s !== undefined)
            argv.push({ text: `--${prefix}${flag}=${s}`, via: `${file.path} ${k}.${tk}` });
        }
        continue;
      }
      if (ETCD_TOP_LEVEL_IGNORED.has(k)) continue; // etcd reads TLS settings only in the sections above
      const s = scalar(v);
      if (s !== undefined) argv.push({ text: `--${k}=${s}`, via: `${file.path} ${k}` });
    }
    return { argv, configFile: file };
  }
  const fromEnv: ArgInput[] = [];
  for (const [name, value] of manifest.env) {
    if (!/^ETCD_[A-Z0-9_]+$/.test(name) || name === "ETCD_CONFIG_FILE") continue;
    const flag = name.slice(5).toLowerCase().replaceAll("_", "-");
    if (cli.occurrences.some((o) => o.name === flag)) continue; // the command line shadows the env
    const via = `env ${name}`;
    fromEnv.push(
      "value" in value
        ? { text: `--${flag}=${value.value}`, via }
        : { text: `--${flag}=`, unresolved: value.unresolved, via },
    );
  }
  return { argv: [...manifest.argv, ...fromEnv] };
}

/** Files the 2.x checks read from etcd's flags. */
export const ETCD_FILE_FLAGS: readonly string[] = ["trusted-ca-file", "peer-trusted-ca-file"];

/** etcd inputs: its effective flags (command line, env, or config file), its CA files and the cluster CA. */
export async function gatherEtcdInputs(
  manifest: ComponentManifest,
  source: string,
  reader: HostReader,
  clusterCa: { path: string; manifest: Pick<ComponentManifest, "mounts" | "workingDir">; via: string },
): Promise<ComponentInputs> {
  const eff = await etcdArgv(manifest, reader);
  if (eff.error !== undefined) {
    const flags = parseFlags([], ETCD_GRAMMAR);
    return { source, pod: manifest.pod, flags, files: {}, unavailable: eff.error };
  }
  const inputs = await gatherComponentInputs(
    manifest,
    source,
    reader,
    ETCD_GRAMMAR,
    ETCD_FILE_FLAGS,
    eff.argv,
  );
  const ca = await readMapped(reader, clusterCa.path, clusterCa.manifest);
  return {
    ...inputs,
    source:
      eff.configFile === undefined
        ? source
        : `${source} (settings from --config-file ${eff.configFile.path})`,
    files: { ...inputs.files, "cluster-ca": { ...ca, path: `${ca.path} (${clusterCa.via})` } },
  };
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

/** What to gather: any component may be absent. */
export interface GatherRequest {
  readonly apiserver?: { readonly manifest: ApiServerManifest; readonly source: string };
  readonly controllerManager?: { readonly manifest: ComponentManifest; readonly source: string };
  readonly scheduler?: { readonly manifest: ComponentManifest; readonly source: string };
  readonly etcd?: { readonly manifest: ComponentManifest; readonly source: string };
  readonly kubelet?: KubeletRequest;
}

/** Gathers the inputs of every requested component through one reader. */
export async function gatherInputs(req: GatherRequest, reader: HostReader): Promise<CisInputs> {
  const apiserver =
    req.apiserver === undefined
      ? undefined
      : await gatherApiServerInputs(req.apiserver.manifest, req.apiserver.source, reader);
  const kubelet = req.kubelet === undefined ? undefined : await gatherKubeletInputs(req.kubelet, reader);
  const controllerManager =
    req.controllerManager === undefined
      ? undefined
      : await gatherComponentInputs(
          req.controllerManager.manifest,
          req.controllerManager.source,
          reader,
          CONTROLLER_MANAGER_GRAMMAR,
          [],
        );
  const scheduler =
    req.scheduler === undefined
      ? undefined
      : await gatherComponentInputs(req.scheduler.manifest, req.scheduler.source, reader, SCHEDULER_GRAMMAR, [
          "config",
        ]);
  const etcd =
    req.etcd === undefined
      ? undefined
      : await gatherEtcdInputs(req.etcd.manifest, req.etcd.source, reader, clusterCaOf(req, apiserver));
  return {
    ...(apiserver === undefined ? {} : { apiserver }),
    ...(controllerManager === undefined ? {} : { controllerManager }),
    ...(scheduler === undefined ? {} : { scheduler }),
    ...(etcd === undefined ? {} : { etcd }),
    ...(kubelet === undefined ? {} : { kubelet }),
  };
}
