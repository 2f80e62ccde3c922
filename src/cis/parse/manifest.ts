/**
 * Static Pod manifests (and mirror pods) of control-plane components: the container's effective argv after
 * Kubernetes' `$(VAR)` expansion, its env, and the hostPath mounts that map container paths to host paths.
 */
import { posix } from "node:path";
import type { ArgItem } from "./flags.js";
import { quote } from "../output/text.js";
import type { Parsed } from "./yaml.js";
import { isRecord, parseYamlMapping, typeName } from "./yaml.js";

/** A hostPath mount of the API server container: container path prefix -> host path. */
export interface PathMount {
  readonly mountPath: string;
  /** Host path (hostPath volume path joined with subPath), or undefined for a non-hostPath volume. */
  readonly hostPath: string | undefined;
  /** The volume's kind when it is not a hostPath (`configMap`, `emptyDir`, ...). */
  readonly volumeKind: string;
}

/** The control-plane components whose static Pod manifests are read. */
export type ManifestComponent = "kube-apiserver" | "kube-controller-manager" | "kube-scheduler" | "etcd";

/** What a control-plane static-pod manifest yields. */
export interface ComponentManifest {
  readonly pod: { readonly name: string; readonly namespace: string };
  /** The flags: `command[1:]` + `args`, with `$(VAR)` references expanded from the container env. */
  readonly argv: readonly ArgItem[];
  readonly mounts: readonly PathMount[];
  readonly workingDir: string;
  /** The container's env after expansion (etcd reads `ETCD_*` variables for flags not on its command line). */
  readonly env: ReadonlyMap<string, EnvValue>;
}

/** What a kube-apiserver static-pod manifest yields. */
export type ApiServerManifest = ComponentManifest;

/** A container env var: its value, or why it is only known at run time. */
export type EnvValue = { readonly value: string } | { readonly unresolved: string };

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

/** Reads a kube-apiserver static-pod manifest; see {@link parseComponentManifest}. */
export function parseApiServerManifest(text: string): Parsed<ApiServerManifest> {
  return parseComponentManifest(text, "kube-apiserver");
}

/**
 * A `valueFrom.fieldRef` the manifest itself answers: `metadata.namespace`, and an annotation or label it
 * sets (`metadata.annotations['k']`, `metadata.labels['k']`; an absent one is ""). Not the name (the
 * kubelet appends the node's), nor the `kubernetes.io/config.*` annotations the kubelet adds.
 */
function fieldRefFromManifest(
  pod: Readonly<Record<string, unknown>>,
  valueFrom: unknown,
): string | undefined {
  if (!isRecord(valueFrom) || !isRecord(valueFrom.fieldRef) || Object.keys(valueFrom).length !== 1)
    return undefined;
  const path = valueFrom.fieldRef.fieldPath;
  if (typeof path !== "string") return undefined;
  const meta = isRecord(pod.metadata) ? pod.metadata : {};
  if (path === "metadata.namespace") return typeof meta.namespace === "string" ? meta.namespace : "default";
  const m = /^metadata\.(annotations|labels)\['([^']*)'\]$/.exec(path);
  if (!m) return undefined;
  const [, kind, key] = m as unknown as [string, "annotations" | "labels", string];
  if (kind === "annotations" && key.startsWith("kubernetes.io/config.")) return undefined;
  const map = meta[kind];
  const v = isRecord(map) ? map[key] : undefined;
  return typeof v === "string" ? v : v === undefined ? "" : undefined;
}

/**
 * Reads a control-plane static-pod manifest: a single `v1` `Pod`; the container named after the component
 * (else the one whose command runs it, else `spec.containers[0]`); its flags are `command` (minus the
 * binary) followed by `args`, after `$(VAR)` expansion from the container's env. Errors are messages
 * suitable for "the manifest ...".
 */
export function parseComponentManifest(
  text: string,
  component: ManifestComponent,
): Parsed<ComponentManifest> {
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
    containers.find((c) => c.name === component) ??
    containers.find((c) => Array.isArray(c.command) && posix.basename(String(c.command[0])) === component) ??
    containers[0];
  if (container === undefined) return { ok: false, reason: "has no container object in spec.containers" };
  const command = stringList(container.command, "the container's command");
  if (!command.ok) return command;
  const args = stringList(container.args, "the container's args");
  if (!args.ok) return args;
  let cmd = command.value;
  if (cmd.length > 0) {
    const bin = posix.basename(cmd[0] as string);
    if (bin !== component) {
      return {
        ok: false,
        reason: `runs ${quote(cmd[0])}, not ${component}, so its flags cannot be read from command/args`,
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
      const known = fieldRefFromManifest(pod, e.valueFrom);
      env.set(
        e.name,
        known !== undefined
          ? { value: known }
          : { unresolved: `it uses $(${e.name}), which comes from valueFrom and is only known at run time` },
      );
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
        name: typeof meta.name === "string" ? meta.name : component,
        namespace: typeof meta.namespace === "string" ? meta.namespace : "kube-system",
      },
      argv,
      mounts,
      workingDir: typeof container.workingDir === "string" ? container.workingDir : "/",
      env,
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
  manifest: Pick<ComponentManifest, "mounts" | "workingDir">,
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
