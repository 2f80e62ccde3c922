/**
 * The inputs CIS checks evaluate, and the gatherer that assembles them. Checks are pure functions of
 * {@link CisInputs}; everything that touches a filesystem goes through a {@link HostReader}, so the offline
 * command (reading under `--host-root`) and an in-cluster agent (reading however it can) share one code path.
 *
 * A file that a flag refers to but that cannot be read or parsed is kept as a failed {@link FileResult} with
 * the reason, and the checks that need it report Unknown — they never guess its content.
 */
import { posix } from "node:path";
import { isScalar, parseAllDocuments, visit } from "yaml";
import type { Document, Tags } from "yaml";
import type { ArgItem, FlagGrammar, ParsedFlags } from "./flags.js";
import { parseFlags, stringFlag } from "./flags.js";
import { quote } from "./text.js";

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

/**
 * kube-apiserver v1.36 flag grammar: its boolean flags (taken from `kube-apiserver --help` of v1.36.3, where
 * pflag lists a bool flag without a type) and its shorthands.
 */
export const APISERVER_GRAMMAR: FlagGrammar = {
  component: "kube-apiserver",
  boolFlags: new Set([
    "aggregator-reject-forwarding-redirect",
    "allow-privileged",
    "anonymous-auth",
    "audit-log-batch-throttle-enable",
    "audit-log-compress",
    "audit-log-truncate-enabled",
    "audit-webhook-batch-throttle-enable",
    "audit-webhook-truncate-enabled",
    "contention-profiling",
    "disable-http2-serving",
    "emulation-forward-compatible",
    "enable-aggregator-routing",
    "enable-bootstrap-token-auth",
    "enable-garbage-collector",
    "enable-logs-handler",
    "enable-priority-and-fairness",
    "encryption-provider-config-automatic-reload",
    "help",
    "log-json-split-stream",
    "log-text-split-stream",
    "permit-address-sharing",
    "permit-port-sharing",
    "profiling",
    "runtime-config-emulation-forward-compatible",
    "service-account-extend-token-expiration",
    "service-account-lookup",
    "shutdown-send-retry-after",
    "watch-cache",
  ]),
  optionalValueFlags: new Set(["version"]),
  shorthands: { v: "v", h: "help" },
};

/**
 * kubelet v1.36 flag grammar: boolean flags registered in cmd/kubelet/app/options (BoolVar calls), the
 * cadvisor booleans it re-registers, and its shorthands.
 */
export const KUBELET_GRAMMAR: FlagGrammar = {
  component: "kubelet",
  boolFlags: new Set([
    "anonymous-auth",
    "authentication-token-webhook",
    "cgroups-per-qos",
    "contention-profiling",
    "cpu-cfs-quota",
    "enable-controller-attach-detach",
    "enable-debugging-handlers",
    "enable-load-reader",
    "enable-server",
    "exit-on-lock-contention",
    "experimental-allocatable-ignore-eviction",
    "fail-cgroupv1",
    "fail-swap-on",
    "help",
    "kernel-memcg-notification",
    "local-storage-capacity-isolation",
    "log-cadvisor-usage",
    "make-iptables-util-chains",
    "protect-kernel-defaults",
    "register-node",
    "rotate-certificates",
    "rotate-server-certificates",
    "runonce",
    "seccomp-default",
    "serialize-image-pulls",
    "storage-driver-secure",
    "windows-service",
  ]),
  optionalValueFlags: new Set(["version"]),
  shorthands: { v: "v", h: "help" },
};

/** Flags of the kube-apiserver whose value is a file some check reads. */
export const APISERVER_FILE_FLAGS: readonly string[] = [
  "authorization-config",
  "authentication-config",
  "encryption-provider-config",
  "audit-policy-file",
  "admission-control-config-file",
];

/** A parse result: the value, or a message that names the problem. */
export type Parsed<T> =
  { readonly ok: true; readonly value: T } | { readonly ok: false; readonly reason: string };

/**
 * A YAML/JSON mapping as a Go decoder sees one: a plain object only. The yaml library turns `!!omap`,
 * `!!set` and `!!binary` into a Map, Set or Uint8Array, which would otherwise pass as an empty mapping (and
 * a check would judge the defaults of a section the component could not even decode).
 */
export function isRecord(v: unknown): v is Record<string, unknown> {
  if (typeof v !== "object" || v === null || Array.isArray(v)) return false;
  const proto: unknown = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

// go-yaml v2 (under sigs.k8s.io/yaml) resolves neither sexagesimal numbers (`1:30`) nor timestamps, so
// those stay strings as they do for the Go components.
const goYamlTags = (tags: Tags): Tags =>
  tags.filter(
    (t) => typeof t === "string" || (t.format !== "TIME" && t.tag !== "tag:yaml.org,2002:timestamp"),
  );

// What each yaml error code means, in words of our own: the parser's messages may quote the offending
// source (a tag, an escape sequence) and its code frame quotes whole lines, so neither is ever shown.
const YAML_ERRORS: Readonly<Record<string, string>> = {
  ALIAS_PROPS: "an alias has an anchor or tag",
  BAD_ALIAS: "an alias is invalid",
  BAD_DIRECTIVE: "a directive is invalid",
  BAD_DQ_ESCAPE: "a double-quoted string has an invalid escape sequence",
  BAD_INDENT: "bad indentation",
  BAD_PROP_ORDER: "anchors and tags are in the wrong order",
  BAD_SCALAR_START: "a plain value starts with a reserved character",
  BLOCK_AS_IMPLICIT_KEY: "a block collection is used as an implicit key",
  BLOCK_IN_FLOW: "a block collection is inside a flow collection",
  DUPLICATE_KEY: "a mapping has a duplicate key",
  IMPOSSIBLE: "the document cannot be parsed",
  KEY_OVER_1024_CHARS: "an implicit key is longer than 1024 characters",
  MISSING_CHAR: "a required character is missing",
  MULTILINE_IMPLICIT_KEY: "an implicit key spans several lines",
  MULTIPLE_ANCHORS: "a node has several anchors",
  MULTIPLE_DOCS: "several documents where one is expected",
  MULTIPLE_TAGS: "a node has several tags",
  NON_STRING_KEY: "a mapping key is not a string",
  RESOURCE_EXHAUSTION: "it is nested too deeply",
  TAB_AS_INDENT: "a tab is used for indentation",
  TAG_RESOLVE_FAILED: "a tag cannot be resolved",
  UNEXPECTED_TOKEN: "an unexpected token",
  BAD_COLLECTION_TYPE: "a tag does not fit its collection",
};

/** At most this many aliases are expanded per document; more is an alias bomb, refused. */
export const MAX_YAML_ALIASES = 100;

/** A duplicate key in any mapping of `doc`, as the offset of the second occurrence. */
function duplicateKeyOffset(doc: Document.Parsed): number | undefined {
  // yaml's own uniqueKeys check compares each key with every earlier one: quadratic, minutes for a 1 MiB
  // file of keys. The same rule (scalars with equal values), with a set per mapping.
  let found: number | undefined;
  visit(doc, {
    Map(_, map) {
      const seen = new Set<string>();
      for (const pair of map.items) {
        if (!isScalar(pair.key)) continue;
        const v: unknown = pair.key.value;
        const id = `${typeof v}:${String(v)}`;
        if (seen.has(id)) {
          found = pair.key.range?.[0] ?? 0;
          return visit.BREAK;
        }
        seen.add(id);
      }
      return undefined;
    },
  });
  return found;
}

function lineAndColumn(text: string, offset: number): string {
  let line = 1;
  let start = 0;
  for (let i = text.indexOf("\n"); i >= 0 && i < offset; i = text.indexOf("\n", i + 1)) {
    line++;
    start = i + 1;
  }
  return `line ${line}, column ${offset - start + 1}`;
}

function yamlErrorText(e: { code?: unknown; linePos?: readonly { line: number; col: number }[] }): string {
  const what = (typeof e.code === "string" ? YAML_ERRORS[e.code] : undefined) ?? "a syntax error";
  const at = e.linePos?.[0];
  return at === undefined ? what : `${what} at line ${at.line}, column ${at.col}`;
}

/**
 * Parses a single YAML (or JSON) document into a mapping. Kubernetes components decode config through
 * sigs.k8s.io/yaml, which follows YAML 1.1 (`yes`/`on` are booleans), so we parse as 1.1 too. Duplicate
 * keys are rejected: the lenient Go decoders keep one of them "in an undefined order", which we will not
 * guess at. Errors name the problem and its line and column, never the file's content (a config file may
 * hold keys); an alias bomb (more than {@link MAX_YAML_ALIASES} aliases) is an error, not an expansion.
 */
export function parseYamlMapping(text: string): Parsed<Record<string, unknown>> {
  let value: unknown;
  try {
    const docs = parseAllDocuments(text, { version: "1.1", uniqueKeys: false, customTags: goYamlTags });
    if (!Array.isArray(docs)) return { ok: false, reason: "is not valid YAML" };
    const firstError = docs.flatMap((d) => d.errors)[0];
    if (firstError !== undefined)
      return { ok: false, reason: `is not valid YAML: ${yamlErrorText(firstError)}` };
    for (const d of docs) {
      const dup = duplicateKeyOffset(d);
      if (dup !== undefined) {
        return {
          ok: false,
          reason: `is not valid YAML: ${YAML_ERRORS.DUPLICATE_KEY} at ${lineAndColumn(text, dup)}`,
        };
      }
    }
    const nonEmpty = docs.filter((d) => d.contents !== null);
    if (nonEmpty.length === 0) return { ok: false, reason: "is empty" };
    if (nonEmpty.length > 1)
      return { ok: false, reason: `holds ${nonEmpty.length} YAML documents, expected one` };
    value = (nonEmpty[0] as (typeof nonEmpty)[number]).toJS({ maxAliasCount: MAX_YAML_ALIASES });
  } catch (e) {
    if (e instanceof ReferenceError && /alias/i.test(e.message)) {
      return /excessive/i.test(e.message)
        ? { ok: false, reason: "is not valid YAML: too many aliases (a YAML alias bomb?)" }
        : { ok: false, reason: "is not valid YAML: an alias refers to no anchor" };
    }
    if (e instanceof RangeError) {
      return { ok: false, reason: `is not valid YAML: ${YAML_ERRORS.RESOURCE_EXHAUSTION}` };
    }
    return { ok: false, reason: `is not valid YAML: ${yamlErrorText(e as { code?: unknown })}` };
  }
  if (!isRecord(value)) return { ok: false, reason: "is not a YAML mapping" };
  return { ok: true, value };
}

/**
 * Parses a config file and checks its apiVersion/kind against what the component accepts.
 * `accepted` lists `apiVersion/kind` pairs.
 */
/**
 * A type identifier as found, quoted only when it looks like one: this also runs on key-bearing files
 * (EncryptionConfiguration), where whatever else stands there may be key material.
 */
function typeName(v: unknown): string {
  if (typeof v === "string" && /^[A-Za-z0-9./-]{1,63}$/.test(v)) return quote(v);
  if (typeof v === "string") return `a string of ${v.length} characters`;
  return v === undefined || v === null
    ? "(none)"
    : `a${Array.isArray(v) ? "" : "n"} ${Array.isArray(v) ? "list" : typeof v}`;
}

export function parseConfigObject(
  text: string,
  accepted: readonly { apiVersion: string; kind: string }[],
): Parsed<Record<string, unknown>> {
  const doc = parseYamlMapping(text);
  if (!doc.ok) return doc;
  const { apiVersion, kind } = doc.value;
  if (!accepted.some((a) => a.apiVersion === apiVersion && a.kind === kind)) {
    const want = accepted.map((a) => `${a.apiVersion} ${a.kind}`).join(" or ");
    return {
      ok: false,
      reason: `has apiVersion ${typeName(apiVersion)} kind ${typeName(kind)}, expected ${want}`,
    };
  }
  return doc;
}

/** A hostPath mount of the API server container: container path prefix -> host path. */
export interface PathMount {
  readonly mountPath: string;
  /** Host path (hostPath volume path joined with subPath), or undefined for a non-hostPath volume. */
  readonly hostPath: string | undefined;
  /** The volume's kind when it is not a hostPath (`configMap`, `emptyDir`, ...). */
  readonly volumeKind: string;
}

/** What a kube-apiserver static-pod manifest yields. */
export interface ApiServerManifest {
  readonly pod: { readonly name: string; readonly namespace: string };
  /** The flags: `command[1:]` + `args`, with `$(VAR)` references expanded from the container env. */
  readonly argv: readonly ArgItem[];
  readonly mounts: readonly PathMount[];
  readonly workingDir: string;
}

type EnvValue = { readonly value: string } | { readonly unresolved: string };

/**
 * Kubernetes' `$(VAR)` expansion of command/args (third_party/forked/golang/expansion): `$$` is a literal
 * `$`, `$(NAME)` is replaced when NAME is defined and kept verbatim otherwise. A reference to a variable
 * whose value is only known at run time (`valueFrom`) marks the item unresolved.
 */
export function expandEnvRefs(input: string, env: ReadonlyMap<string, EnvValue>): ArgItem {
  let out = "";
  let unresolved: string | undefined;
  let i = 0;
  while (i < input.length) {
    const c = input[i] as string;
    if (c !== "$" || i + 1 >= input.length) {
      out += c;
      i++;
      continue;
    }
    const next = input[i + 1] as string;
    if (next === "$") {
      out += "$";
      i += 2;
    } else if (next === "(") {
      const close = input.indexOf(")", i + 2);
      if (close < 0) {
        out += "$(";
        i += 2;
        continue;
      }
      const name = input.slice(i + 2, close);
      const v = env.get(name);
      if (v === undefined) out += `$(${name})`;
      else if ("value" in v) out += v.value;
      else {
        out += `$(${name})`;
        unresolved ??= v.unresolved;
      }
      i = close + 1;
    } else {
      out += c + next;
      i += 2;
    }
  }
  return unresolved === undefined ? { text: out } : { text: out, unresolved };
}

function stringList(v: unknown, what: string): Parsed<string[]> {
  if (v === undefined || v === null) return { ok: true, value: [] };
  if (!Array.isArray(v)) return { ok: false, reason: `${what} is not a list` };
  const out: string[] = [];
  for (const [i, item] of v.entries()) {
    if (typeof item !== "string") return { ok: false, reason: `${what}[${i}] is not a string` };
    out.push(item);
  }
  return { ok: true, value: out };
}

/**
 * Reads a kube-apiserver static-pod manifest: a single `v1` `Pod`; the container named `kube-apiserver`
 * (else `spec.containers[0]`); its flags are `command` (minus the binary) followed by `args`, after
 * `$(VAR)` expansion from the container's env. Errors are messages suitable for "the manifest ...".
 */
export function parseApiServerManifest(text: string): Parsed<ApiServerManifest> {
  const doc = parseYamlMapping(text);
  if (!doc.ok) return doc;
  const pod = doc.value;
  if (pod.kind !== "Pod") {
    return { ok: false, reason: `is not a Pod (kind: ${typeName(pod.kind)})` };
  }
  const spec = pod.spec;
  if (!isRecord(spec) || !Array.isArray(spec.containers) || spec.containers.length === 0) {
    return { ok: false, reason: "is a Pod without spec.containers" };
  }
  const containers = spec.containers.filter(isRecord);
  const container =
    containers.find((c) => c.name === "kube-apiserver") ??
    containers.find(
      (c) => Array.isArray(c.command) && posix.basename(String(c.command[0])) === "kube-apiserver",
    ) ??
    containers[0];
  if (container === undefined) return { ok: false, reason: "has no container object in spec.containers" };
  const command = stringList(container.command, "the container's command");
  if (!command.ok) return command;
  const args = stringList(container.args, "the container's args");
  if (!args.ok) return args;
  let cmd = command.value;
  if (cmd.length > 0) {
    const bin = posix.basename(cmd[0] as string);
    if (bin !== "kube-apiserver") {
      return {
        ok: false,
        reason: `runs ${quote(cmd[0])}, not kube-apiserver, so its flags cannot be read from command/args`,
      };
    }
    cmd = cmd.slice(1);
  }

  // Container env, each value expanded with the ones before it, as the kubelet does.
  const env = new Map<string, EnvValue>();
  const envList = Array.isArray(container.env) ? container.env.filter(isRecord) : [];
  for (const e of envList) {
    if (typeof e.name !== "string") continue;
    if (e.valueFrom !== undefined) {
      env.set(e.name, {
        unresolved: `it uses $(${e.name}), which comes from valueFrom and is only known at run time`,
      });
    } else {
      const expanded = expandEnvRefs(typeof e.value === "string" ? e.value : "", env);
      env.set(
        e.name,
        expanded.unresolved === undefined ? { value: expanded.text } : { unresolved: expanded.unresolved },
      );
    }
  }
  const argv = [...cmd, ...args.value].map((a) => expandEnvRefs(a, env));

  const volumes = new Map<string, Record<string, unknown>>();
  if (Array.isArray(spec.volumes)) {
    for (const v of spec.volumes.filter(isRecord)) if (typeof v.name === "string") volumes.set(v.name, v);
  }
  const mounts: PathMount[] = [];
  const vms = Array.isArray(container.volumeMounts) ? container.volumeMounts.filter(isRecord) : [];
  for (const m of vms) {
    if (typeof m.mountPath !== "string" || typeof m.name !== "string") continue;
    const vol = volumes.get(m.name);
    const hp = vol?.hostPath;
    const kind = vol === undefined ? "missing" : (Object.keys(vol).find((k) => k !== "name") ?? "unknown");
    const sub = typeof m.subPath === "string" ? m.subPath : "";
    mounts.push({
      mountPath: posix.resolve("/", m.mountPath),
      hostPath: isRecord(hp) && typeof hp.path === "string" ? posix.join(hp.path, sub) : undefined,
      volumeKind: kind,
    });
  }
  const meta = isRecord(pod.metadata) ? pod.metadata : {};
  return {
    ok: true,
    value: {
      pod: {
        name: typeof meta.name === "string" ? meta.name : "kube-apiserver",
        namespace: typeof meta.namespace === "string" ? meta.namespace : "kube-system",
      },
      argv,
      mounts,
      workingDir: typeof container.workingDir === "string" ? container.workingDir : "/",
    },
  };
}

/**
 * Maps a path as the API server container sees it to the host path holding it: through the hostPath
 * mount with the longest matching mountPath. A path on another kind of volume cannot be read from the
 * host; a path on no mount at all is read at the same path on the host (the kubeadm layout), and the
 * returned note says so.
 */
export function containerPathOnHost(
  path: string,
  manifest: Pick<ApiServerManifest, "mounts" | "workingDir">,
): Parsed<{ hostPath: string; note?: string }> {
  const abs = posix.resolve(manifest.workingDir, path);
  let best: PathMount | undefined;
  for (const m of manifest.mounts) {
    const covers = abs === m.mountPath || abs.startsWith(m.mountPath === "/" ? "/" : `${m.mountPath}/`);
    if (covers && (best === undefined || m.mountPath.length > best.mountPath.length)) best = m;
  }
  if (best === undefined) {
    return {
      ok: true,
      value: {
        hostPath: abs,
        note: "not on a hostPath volume of the pod; read at the same path on the host",
      },
    };
  }
  if (best.hostPath === undefined) {
    return {
      ok: false,
      reason: `${abs} is on a ${best.volumeKind} volume mounted at ${best.mountPath}, not on the host`,
    };
  }
  return { ok: true, value: { hostPath: posix.join(best.hostPath, posix.relative(best.mountPath, abs)) } };
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
