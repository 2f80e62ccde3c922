/**
 * CIS 1.1.x (control-plane node files) and 4.1.x (worker node files): permissions and ownership of the
 * manifests, kubeconfigs, PKI, etcd data directory and kubelet files, numbered and titled as kube-bench's
 * cfg/cis-1.12. The checks are pure functions of {@link FileFacts}; {@link gatherFileFacts} fills those
 * through a {@link StatReader}, so `csp-operator check --host-root` and the node agent judge identically.
 *
 * "600 or more restrictive" is kube-bench's bitmask test: no permission bit outside the given mode (setuid,
 * setgid and sticky bits count as outside). A file that does not exist is NotApplicable where the benchmark
 * says "if ... exists", and Unknown elsewhere: a wrong path must not read as a pass.
 */
import { posix } from "node:path";
import type { CheckOutcome, CheckResult, CisCheck } from "./check.js";
import { evaluateAll, fail, notApplicable, pass, unknown } from "./check.js";
import { stringFlag } from "../parse/flags.js";
import type { CisInputs } from "../gather/inputs.js";
import { KUBELET_SETTINGS, kubeletSetting } from "./kubelet.js";

/** What stat says about one path (following symlinks, as `stat` in the benchmark's audits does). */
export interface FileStat {
  readonly type: "file" | "directory" | "other";
  /** Permission bits including setuid/setgid/sticky (`mode & 0o7777`). */
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
}

/**
 * How file checks reach the host. Paths are absolute host paths; the reader maps them (e.g. under
 * `--host-root`). `stat` resolves to undefined when the path does not exist and rejects when it cannot tell.
 */
export interface StatReader {
  readonly stat: (path: string) => Promise<FileStat | undefined>;
  /** Every entry under `dir`, recursively (files and directories), as paths relative to it. */
  readonly listAll: (dir: string) => Promise<string[]>;
  /** Used for /etc/passwd and /etc/group, to name owners other than root (etcd:etcd). */
  readonly readFile: (path: string) => Promise<string>;
}

/** Where the files live on the node; defaults are the kubeadm layout kube-bench assumes. */
export interface FilePaths {
  readonly apiServerManifest: string;
  readonly controllerManagerManifest: string;
  readonly schedulerManifest: string;
  readonly etcdManifest: string;
  /** CNI configuration directory and the host-local IPAM state directory (1.1.9/1.1.10). */
  readonly cniDirs: readonly string[];
  readonly etcdDataDir: string;
  /** admin.conf and (Kubernetes 1.29+) super-admin.conf; those that exist are checked. */
  readonly adminKubeconfigs: readonly string[];
  readonly schedulerKubeconfig: string;
  readonly controllerManagerKubeconfig: string;
  readonly pkiDir: string;
  /** Candidates for the kubelet's systemd unit or drop-in; the first that exists is checked. */
  readonly kubeletServiceFiles: readonly string[];
  /** The kube-proxy kubeconfig kubeadm's layout would have; see {@link proxyKubeconfigCandidates}. */
  readonly proxyKubeconfig: string;
  /**
   * Where else a host kube-proxy's kubeconfig is looked for, as kube-bench does: its usual paths on
   * kubeadm-like and hand-made installations (all under directories the node agent mounts; microk8s, rke2
   * and k3s keep theirs under /var/snap and /var/lib/rancher, which it does not). A `--kubeconfig` named in a kube-proxy unit or static pod (see {@link proxyUnitFiles})
   * wins over all of them.
   */
  readonly proxyKubeconfigCandidates: readonly string[];
  /** kube-proxy systemd units and static pod manifest whose `--kubeconfig` names the file. */
  readonly proxyUnitFiles: readonly string[];
  readonly kubeletKubeconfig: string;
  readonly kubeletClientCA: string;
  readonly kubeletConfig: string;
}

export const DEFAULT_FILE_PATHS: FilePaths = {
  apiServerManifest: "/etc/kubernetes/manifests/kube-apiserver.yaml",
  controllerManagerManifest: "/etc/kubernetes/manifests/kube-controller-manager.yaml",
  schedulerManifest: "/etc/kubernetes/manifests/kube-scheduler.yaml",
  etcdManifest: "/etc/kubernetes/manifests/etcd.yaml",
  cniDirs: ["/etc/cni/net.d", "/var/lib/cni/networks"],
  etcdDataDir: "/var/lib/etcd",
  adminKubeconfigs: ["/etc/kubernetes/admin.conf", "/etc/kubernetes/super-admin.conf"],
  schedulerKubeconfig: "/etc/kubernetes/scheduler.conf",
  controllerManagerKubeconfig: "/etc/kubernetes/controller-manager.conf",
  pkiDir: "/etc/kubernetes/pki",
  kubeletServiceFiles: [
    "/etc/systemd/system/kubelet.service.d/10-kubeadm.conf",
    "/usr/lib/systemd/system/kubelet.service.d/10-kubeadm.conf",
    "/etc/systemd/system/kubelet.service",
    "/usr/lib/systemd/system/kubelet.service",
    "/lib/systemd/system/kubelet.service",
  ],
  proxyKubeconfig: "/var/lib/kube-proxy/kubeconfig.conf",
  proxyKubeconfigCandidates: [
    "/etc/kubernetes/proxy.conf",
    "/etc/kubernetes/proxy.kubeconfig",
    "/etc/kubernetes/kube-proxy.kubeconfig",
    "/etc/kubernetes/ssl/kubecfg-kube-proxy.yaml",
    "/var/lib/kube-proxy/kubeconfig",
  ],
  proxyUnitFiles: [
    "/etc/systemd/system/kube-proxy.service",
    "/usr/lib/systemd/system/kube-proxy.service",
    "/lib/systemd/system/kube-proxy.service",
    "/etc/kubernetes/manifests/kube-proxy.yaml",
  ],
  kubeletKubeconfig: "/etc/kubernetes/kubelet.conf",
  kubeletClientCA: "/etc/kubernetes/pki/ca.crt",
  kubeletConfig: "/var/lib/kubelet/config.yaml",
};

/**
 * The node file paths as the kubelet's own inputs name them (`--kubeconfig`, `--config`, the effective
 * client CA file), falling back to `base` (the kubeadm layout) for what they do not name.
 */
export function fileCheckPaths(
  inputs: CisInputs,
  defaults: FilePaths = DEFAULT_FILE_PATHS,
  manifestsDir?: string,
): FilePaths {
  const dir = manifestsDir === undefined ? undefined : posix.resolve("/", manifestsDir);
  let base: FilePaths =
    dir === undefined
      ? defaults
      : {
          ...defaults,
          apiServerManifest: posix.join(dir, "kube-apiserver.yaml"),
          controllerManagerManifest: posix.join(dir, "kube-controller-manager.yaml"),
          schedulerManifest: posix.join(dir, "kube-scheduler.yaml"),
          etcdManifest: posix.join(dir, "etcd.yaml"),
        };
  const e = inputs.etcd === undefined ? undefined : stringFlag(inputs.etcd.flags, "data-dir");
  if (e?.ok === true && e.value !== "") base = { ...base, etcdDataDir: posix.resolve("/", e.value) };
  const k = inputs.kubelet;
  if (k === undefined) return base;
  const named = (flag: string) => {
    const v = stringFlag(k.flags, flag);
    return v.ok && v.value !== "" ? posix.resolve("/", v.value) : undefined;
  };
  const ca = kubeletSetting(k, KUBELET_SETTINGS.clientCAFile);
  return {
    ...base,
    kubeletKubeconfig: named("kubeconfig") ?? base.kubeletKubeconfig,
    kubeletConfig: named("config") ?? base.kubeletConfig,
    kubeletClientCA: ca.ok && ca.value !== "" ? posix.resolve("/", ca.value) : base.kubeletClientCA,
  };
}

/** One path as stat'ed: present with its stat, absent, or unreadable with the reason. */
export type PathFact =
  | { readonly state: "present"; readonly stat: FileStat }
  | { readonly state: "missing" }
  | { readonly state: "error"; readonly reason: string };

/** Everything the file checks judge. */
export interface FileFacts {
  readonly paths: FilePaths;
  /** Keyed by absolute host path; directory trees are expanded into their entries. */
  readonly stats: ReadonlyMap<string, PathFact>;
  /** Directory -> its entries (absolute), or why they could not be listed. */
  readonly trees: ReadonlyMap<string, { readonly entries: readonly string[] } | { readonly reason: string }>;
  /** uid/gid -> name from the host's /etc/passwd and /etc/group, or why they could not be read. */
  readonly users: ReadonlyMap<number, string> | string;
  readonly groups: ReadonlyMap<number, string> | string;
  /** The kube-proxy kubeconfig found (and how), or the places looked at when there is none. */
  readonly proxyKubeconfig: { readonly path: string; readonly via: string } | { readonly lookedAt: string };
}

/** The `--kubeconfig` a kube-proxy unit or static pod names (`--kubeconfig=P`, `--kubeconfig P`, `"--kubeconfig=P"`). */
export function kubeconfigFlagIn(text: string): string | undefined {
  const m = /--kubeconfig(?:=|\s+)["']?([^\s"'\\]+)/.exec(text);
  return m?.[1];
}

/** Entries listed per directory tree; a PKI or CNI directory beyond this is judged on the first ones. */
export const MAX_TREE_ENTRIES = 2000;

function idNames(text: string): Map<number, string> {
  const out = new Map<number, string>();
  for (const line of text.split("\n")) {
    const f = line.split(":");
    const id = Number(f[2]);
    if (f[0] && Number.isInteger(id) && !out.has(id)) out.set(id, f[0]);
  }
  return out;
}

/** Stats every path the checks need (and lists the PKI and CNI trees) through `reader`. */
export async function gatherFileFacts(reader: StatReader, paths: FilePaths): Promise<FileFacts> {
  const stats = new Map<string, PathFact>();
  const trees = new Map<string, { entries: string[] } | { reason: string }>();
  const statOne = async (p: string) => {
    if (stats.has(p)) return;
    try {
      const s = await reader.stat(p);
      stats.set(p, s === undefined ? { state: "missing" } : { state: "present", stat: s });
    } catch (e) {
      stats.set(p, { state: "error", reason: `cannot stat ${p}: ${(e as Error).message}` });
    }
  };
  const singles = [
    paths.apiServerManifest,
    paths.controllerManagerManifest,
    paths.schedulerManifest,
    paths.etcdManifest,
    paths.etcdDataDir,
    ...paths.adminKubeconfigs,
    paths.schedulerKubeconfig,
    paths.controllerManagerKubeconfig,
    ...paths.kubeletServiceFiles,
    paths.proxyKubeconfig,
    paths.kubeletKubeconfig,
    paths.kubeletClientCA,
    paths.kubeletConfig,
  ];
  for (const p of singles) await statOne(p);
  for (const dir of [...paths.cniDirs, paths.pkiDir]) {
    await statOne(dir);
    const d = stats.get(dir);
    if (d?.state !== "present" || d.stat.type !== "directory") continue;
    try {
      const entries = (await reader.listAll(dir))
        .sort()
        .slice(0, MAX_TREE_ENTRIES)
        .map((e) => posix.join(dir, e));
      trees.set(dir, { entries });
      for (const e of entries) await statOne(e);
    } catch (e) {
      trees.set(dir, { reason: `cannot list ${dir}: ${(e as Error).message}` });
    }
  }
  const names = async (file: string) => {
    try {
      return idNames(await reader.readFile(file));
    } catch (e) {
      return `cannot read ${file} to name owners: ${(e as Error).message}`;
    }
  };
  return {
    paths,
    stats,
    trees,
    users: await names("/etc/passwd"),
    groups: await names("/etc/group"),
    proxyKubeconfig: await findProxyKubeconfig(reader, paths, statOne, stats),
  };
}

/**
 * The host kube-proxy's kubeconfig, looked for where kube-bench looks: the `--kubeconfig` of a kube-proxy
 * unit or static pod first, then the usual paths of kubeadm and other distributions.
 */
async function findProxyKubeconfig(
  reader: StatReader,
  paths: FilePaths,
  statOne: (p: string) => Promise<void>,
  stats: ReadonlyMap<string, PathFact>,
): Promise<FileFacts["proxyKubeconfig"]> {
  for (const unit of paths.proxyUnitFiles) {
    let text: string;
    try {
      text = await reader.readFile(unit);
    } catch {
      continue;
    }
    const named = kubeconfigFlagIn(text);
    if (named !== undefined) {
      const p = posix.resolve("/", named);
      await statOne(p);
      return { path: p, via: `named by --kubeconfig in ${unit}` };
    }
  }
  const candidates = [paths.proxyKubeconfig, ...paths.proxyKubeconfigCandidates];
  for (const p of candidates) {
    await statOne(p);
    if (stats.get(p)?.state !== "missing") return { path: p, via: "found at a usual path" };
  }
  return {
    lookedAt: `no kube-proxy kubeconfig: none named by --kubeconfig in ${paths.proxyUnitFiles.join(", ")}, none at ${candidates.join(", ")}`,
  };
}

/** 4.1.3/4.1.4: the proxy kubeconfig found, judged; NotApplicable (the benchmark's "if ... exists") without one. */
function onProxyKubeconfig(judge: Judge) {
  return (f: FileFacts): CheckOutcome => {
    const found = f.proxyKubeconfig;
    if ("lookedAt" in found) return notApplicable(found.lookedAt);
    const fact = f.stats.get(found.path) ?? { state: "missing" };
    if (fact.state === "error") return unknown(fact.reason);
    if (fact.state === "missing")
      return unknown(`${found.path} (${found.via}) does not exist; kube-proxy cannot start without it`);
    const out = judge(found.path, fact.stat, f);
    return { ...out, evidence: `${out.evidence} (${found.via})` };
  };
}

/**
 * etcd files (1.1.7/1.1.8 pod spec, 1.1.11/1.1.12 data dir): the benchmark scopes them to nodes where etcd
 * runs. With neither the etcd manifest nor its data directory on the node, etcd is external here:
 * NotApplicable, saying so. One without the other is Unknown (something is where it should not be).
 */
function onEtcdFile(path: (p: FilePaths) => string, judge: Judge, staticPodOnly: boolean) {
  const inner = onFile(path, judge);
  return (f: FileFacts): CheckOutcome => {
    const manifest = f.stats.get(f.paths.etcdManifest) ?? { state: "missing" };
    const data = f.stats.get(f.paths.etcdDataDir) ?? { state: "missing" };
    if (manifest.state === "missing" && data.state === "missing")
      return notApplicable(
        `etcd does not run on this node (no ${f.paths.etcdManifest}, no ${f.paths.etcdDataDir}): an external etcd is checked on its own nodes`,
      );
    if (staticPodOnly && manifest.state === "missing")
      return notApplicable(
        `${f.paths.etcdManifest} does not exist: etcd does not run as a static pod here (its data directory ${f.paths.etcdDataDir} exists; a systemd etcd has no pod specification file)`,
      );
    return inner(f);
  };
}

const octal = (m: number) => m.toString(8).padStart(3, "0");

type Judge = (path: string, s: FileStat, f: FileFacts) => CheckOutcome;

/** kube-bench's `bitmask` comparison: no permission bit outside `max`. */
function permissions(max: number): Judge {
  return (path, s) =>
    (s.mode & ~max) === 0
      ? pass(`${path} has permissions ${octal(s.mode)}`)
      : fail(`${path} has permissions ${octal(s.mode)}, more permissive than ${octal(max)}`);
}

/** Ownership by name; root:root is judged by id 0:0, any other name through the host's passwd/group. */
function owner(user: string, group: string): Judge {
  return (path, s, f) => {
    const name = (ids: ReadonlyMap<number, string> | string, id: number, want: string) => {
      if (want === "root" && id === 0) return "root";
      if (typeof ids === "string") return want === "root" ? String(id) : undefined;
      return ids.get(id) ?? String(id);
    };
    const u = name(f.users, s.uid, user);
    const g = name(f.groups, s.gid, group);
    if (u === undefined || g === undefined) {
      const why = [f.users, f.groups].find((x) => typeof x === "string") ?? "owner names unknown";
      return unknown(`${path} is owned by ${s.uid}:${s.gid}; ${String(why)}`);
    }
    return u === user && g === group
      ? pass(`${path} is owned by ${u}:${g}`)
      : fail(`${path} is owned by ${u}:${g}, not ${user}:${group}`);
  };
}

/** One file that must exist; `optional` files that do not exist make the check NotApplicable. */
function onFile(path: (p: FilePaths) => string, judge: Judge, optional = false) {
  return (f: FileFacts): CheckOutcome => {
    const p = path(f.paths);
    const fact = f.stats.get(p) ?? { state: "missing" };
    if (fact.state === "error") return unknown(fact.reason);
    if (fact.state === "missing") {
      return optional
        ? notApplicable(`${p} does not exist`)
        : unknown(`${p} does not exist; if this node keeps it elsewhere, check that path`);
    }
    return judge(p, fact.stat, f);
  };
}

/** Several paths judged together: fails on any failing one; `missingOk` paths may be absent. */
function onPaths(
  paths: (f: FileFacts) => readonly string[] | { reason: string },
  judge: Judge,
  what: string,
) {
  return (f: FileFacts): CheckOutcome => {
    const list = paths(f);
    if (!Array.isArray(list)) return unknown((list as { reason: string }).reason);
    const outcomes = (list as readonly string[]).map((p): CheckOutcome => {
      const fact = f.stats.get(p) ?? { state: "missing" };
      if (fact.state === "error") return unknown(fact.reason);
      if (fact.state === "missing") return notApplicable(`${p} does not exist`);
      return judge(p, fact.stat, f);
    });
    const present = outcomes.filter((o) => o.status !== "NotApplicable");
    if (present.length === 0) return unknown(`no ${what} found`);
    const failed = present.filter((o) => o.status === "Fail");
    const unknowns = present.filter((o) => o.status === "Unknown");
    const show = (os: CheckOutcome[]) =>
      os
        .slice(0, 5)
        .map((o) => o.evidence)
        .join("; ") + (os.length > 5 ? `; and ${os.length - 5} more` : "");
    if (failed.length > 0) return fail(show(failed));
    if (unknowns.length > 0) return unknown(show(unknowns));
    return pass(`${present.length} ${what} checked: ${show(present)}`);
  };
}

/** The entries of directory trees (the directory itself included when `withRoot`), filtered by `keep`. */
function treeEntries(
  dirs: (p: FilePaths) => readonly string[],
  withRoot: boolean,
  keep: (e: string) => boolean,
) {
  return (f: FileFacts): readonly string[] | { reason: string } => {
    const out: string[] = [];
    for (const dir of dirs(f.paths)) {
      const t = f.trees.get(dir);
      if (t !== undefined && "reason" in t) return { reason: t.reason };
      if (withRoot && f.stats.get(dir)?.state === "present") out.push(dir);
      out.push(...(t?.entries ?? []).filter(keep));
    }
    return out;
  };
}

const isFile = (f: FileFacts) => (p: string) => {
  const s = f.stats.get(p);
  return s?.state !== "present" || s.stat.type === "file";
};

/** The first kubelet service file candidate that exists (kube-bench's `svc` list semantics). */
function kubeletService(f: FileFacts): readonly string[] | { reason: string } {
  for (const p of f.paths.kubeletServiceFiles) {
    const s = f.stats.get(p);
    if (s?.state === "error") return { reason: s.reason };
    if (s?.state === "present") return [p];
  }
  return { reason: `no kubelet service file at ${f.paths.kubeletServiceFiles.join(", ")}` };
}

/** CIS 1.1.x: control-plane node configuration files. */
export const MASTER_FILE_CHECKS: readonly CisCheck<FileFacts>[] = [
  {
    id: "1.1.1",
    severity: "Medium",
    reads: ["host file metadata"],
    title: "Ensure that the API server pod specification file permissions are set to 600 or more restrictive",
    automated: true,
    evaluate: onFile((p) => p.apiServerManifest, permissions(0o600)),
  },
  {
    id: "1.1.2",
    severity: "Medium",
    reads: ["host file metadata"],
    title: "Ensure that the API server pod specification file ownership is set to root:root",
    automated: true,
    evaluate: onFile((p) => p.apiServerManifest, owner("root", "root")),
  },
  {
    id: "1.1.3",
    severity: "Medium",
    reads: ["host file metadata"],
    title:
      "Ensure that the controller manager pod specification file permissions are set to 600 or more restrictive",
    automated: true,
    evaluate: onFile((p) => p.controllerManagerManifest, permissions(0o600)),
  },
  {
    id: "1.1.4",
    severity: "Medium",
    reads: ["host file metadata"],
    title: "Ensure that the controller manager pod specification file ownership is set to root:root",
    automated: true,
    evaluate: onFile((p) => p.controllerManagerManifest, owner("root", "root")),
  },
  {
    id: "1.1.5",
    severity: "Medium",
    reads: ["host file metadata"],
    title: "Ensure that the scheduler pod specification file permissions are set to 600 or more restrictive",
    automated: true,
    evaluate: onFile((p) => p.schedulerManifest, permissions(0o600)),
  },
  {
    id: "1.1.6",
    severity: "Medium",
    reads: ["host file metadata"],
    title: "Ensure that the scheduler pod specification file ownership is set to root:root",
    automated: true,
    evaluate: onFile((p) => p.schedulerManifest, owner("root", "root")),
  },
  {
    id: "1.1.7",
    severity: "Medium",
    reads: ["host file metadata"],
    title: "Ensure that the etcd pod specification file permissions are set to 600 or more restrictive",
    automated: true,
    evaluate: onEtcdFile((p) => p.etcdManifest, permissions(0o600), true),
  },
  {
    id: "1.1.8",
    severity: "Medium",
    reads: ["host file metadata"],
    title: "Ensure that the etcd pod specification file ownership is set to root:root",
    automated: true,
    evaluate: onEtcdFile((p) => p.etcdManifest, owner("root", "root"), true),
  },
  {
    id: "1.1.9",
    severity: "Low",
    reads: ["host file metadata"],
    title: "Ensure that the Container Network Interface file permissions are set to 600 or more restrictive",
    automated: false,
    evaluate: (f) =>
      onPaths(
        treeEntries((p) => p.cniDirs, false, isFile(f)),
        permissions(0o600),
        "CNI file(s)",
      )(f),
  },
  {
    id: "1.1.10",
    severity: "Low",
    reads: ["host file metadata"],
    title: "Ensure that the Container Network Interface file ownership is set to root:root",
    automated: false,
    evaluate: (f) =>
      onPaths(
        treeEntries((p) => p.cniDirs, false, isFile(f)),
        owner("root", "root"),
        "CNI file(s)",
      )(f),
  },
  {
    id: "1.1.11",
    severity: "High",
    reads: ["host file metadata"],
    title: "Ensure that the etcd data directory permissions are set to 700 or more restrictive",
    automated: true,
    evaluate: onEtcdFile((p) => p.etcdDataDir, permissions(0o700), false),
  },
  {
    id: "1.1.12",
    severity: "Low",
    reads: ["host file metadata"],
    title: "Ensure that the etcd data directory ownership is set to etcd:etcd",
    automated: true,
    evaluate: onEtcdFile((p) => p.etcdDataDir, owner("etcd", "etcd"), false),
  },
  {
    id: "1.1.13",
    severity: "High",
    reads: ["host file metadata"],
    title: "Ensure that the default administrative credential file permissions are set to 600",
    automated: true,
    evaluate: onPaths((f) => f.paths.adminKubeconfigs, permissions(0o600), "administrative kubeconfig(s)"),
  },
  {
    id: "1.1.14",
    severity: "High",
    reads: ["host file metadata"],
    title: "Ensure that the default administrative credential file ownership is set to root:root",
    automated: true,
    evaluate: onPaths((f) => f.paths.adminKubeconfigs, owner("root", "root"), "administrative kubeconfig(s)"),
  },
  {
    id: "1.1.15",
    severity: "High",
    reads: ["host file metadata"],
    title: "Ensure that the scheduler.conf file permissions are set to 600 or more restrictive",
    automated: true,
    evaluate: onFile((p) => p.schedulerKubeconfig, permissions(0o600)),
  },
  {
    id: "1.1.16",
    severity: "Medium",
    reads: ["host file metadata"],
    title: "Ensure that the scheduler.conf file ownership is set to root:root",
    automated: true,
    evaluate: onFile((p) => p.schedulerKubeconfig, owner("root", "root")),
  },
  {
    id: "1.1.17",
    severity: "High",
    reads: ["host file metadata"],
    title: "Ensure that the controller-manager.conf file permissions are set to 600 or more restrictive",
    automated: true,
    evaluate: onFile((p) => p.controllerManagerKubeconfig, permissions(0o600)),
  },
  {
    id: "1.1.18",
    severity: "Medium",
    reads: ["host file metadata"],
    title: "Ensure that the controller-manager.conf file ownership is set to root:root",
    automated: true,
    evaluate: onFile((p) => p.controllerManagerKubeconfig, owner("root", "root")),
  },
  {
    id: "1.1.19",
    severity: "Medium",
    reads: ["host file metadata"],
    title: "Ensure that the Kubernetes PKI directory and file ownership is set to root:root",
    automated: true,
    evaluate: onPaths(
      treeEntries(
        (p) => [p.pkiDir],
        true,
        () => true,
      ),
      owner("root", "root"),
      "PKI path(s)",
    ),
  },
  {
    id: "1.1.20",
    severity: "Low",
    reads: ["host file metadata"],
    title: "Ensure that the Kubernetes PKI certificate file permissions are set to 644 or more restrictive",
    automated: false,
    evaluate: onPaths(
      treeEntries(
        (p) => [p.pkiDir],
        false,
        (e) => e.endsWith(".crt"),
      ),
      permissions(0o644),
      "PKI certificate(s)",
    ),
  },
  {
    id: "1.1.21",
    severity: "High",
    reads: ["host file metadata"],
    title: "Ensure that the Kubernetes PKI key file permissions are set to 600",
    automated: false,
    evaluate: onPaths(
      treeEntries(
        (p) => [p.pkiDir],
        false,
        (e) => e.endsWith(".key"),
      ),
      permissions(0o600),
      "PKI key(s)",
    ),
  },
];

/** CIS 4.1.x: worker node configuration files. */
export const NODE_FILE_CHECKS: readonly CisCheck<FileFacts>[] = [
  {
    id: "4.1.1",
    severity: "Medium",
    reads: ["host file metadata"],
    title: "Ensure that the kubelet service file permissions are set to 600 or more restrictive",
    automated: true,
    evaluate: onPaths(kubeletService, permissions(0o600), "kubelet service file"),
  },
  {
    id: "4.1.2",
    severity: "Medium",
    reads: ["host file metadata"],
    title: "Ensure that the kubelet service file ownership is set to root:root",
    automated: true,
    evaluate: onPaths(kubeletService, owner("root", "root"), "kubelet service file"),
  },
  {
    id: "4.1.3",
    severity: "Medium",
    reads: ["host file metadata"],
    title: "If proxy kubeconfig file exists ensure permissions are set to 600 or more restrictive",
    automated: false,
    evaluate: onProxyKubeconfig(permissions(0o600)),
  },
  {
    id: "4.1.4",
    severity: "Medium",
    reads: ["host file metadata"],
    title: "If proxy kubeconfig file exists ensure ownership is set to root:root",
    automated: false,
    evaluate: onProxyKubeconfig(owner("root", "root")),
  },
  {
    id: "4.1.5",
    severity: "High",
    reads: ["host file metadata"],
    title: "Ensure that the --kubeconfig kubelet.conf file permissions are set to 600 or more restrictive",
    automated: true,
    evaluate: onFile((p) => p.kubeletKubeconfig, permissions(0o600)),
  },
  {
    id: "4.1.6",
    severity: "Medium",
    reads: ["host file metadata"],
    title: "Ensure that the --kubeconfig kubelet.conf file ownership is set to root:root",
    automated: true,
    evaluate: onFile((p) => p.kubeletKubeconfig, owner("root", "root")),
  },
  {
    id: "4.1.7",
    severity: "Medium",
    reads: ["host file metadata"],
    title: "Ensure that the certificate authorities file permissions are set to 644 or more restrictive",
    automated: false,
    evaluate: onFile((p) => p.kubeletClientCA, permissions(0o644)),
  },
  {
    id: "4.1.8",
    severity: "Medium",
    reads: ["host file metadata"],
    title: "Ensure that the client certificate authorities file ownership is set to root:root",
    automated: false,
    evaluate: onFile((p) => p.kubeletClientCA, owner("root", "root")),
  },
  {
    id: "4.1.9",
    severity: "Medium",
    reads: ["host file metadata"],
    title:
      "If the kubelet config.yaml configuration file is being used validate permissions set to 600 or more restrictive",
    automated: true,
    evaluate: onFile((p) => p.kubeletConfig, permissions(0o600), true),
  },
  {
    id: "4.1.10",
    severity: "Medium",
    reads: ["host file metadata"],
    title:
      "If the kubelet config.yaml configuration file is being used validate file ownership is set to root:root",
    automated: true,
    evaluate: onFile((p) => p.kubeletConfig, owner("root", "root"), true),
  },
];

/** Which node roles to check: control-plane files (1.1.x), worker files (4.1.x), or both. */
export interface FileTargets {
  readonly master: boolean;
  readonly node: boolean;
}

/**
 * The entry point for file checks (the offline command and the node agent): stats what `paths` name
 * through `reader` and returns 1.1.x and/or 4.1.x results in benchmark order.
 */
export async function fileChecks(
  reader: StatReader,
  paths: FilePaths = DEFAULT_FILE_PATHS,
  targets: FileTargets = { master: true, node: true },
): Promise<CheckResult[]> {
  const facts = await gatherFileFacts(reader, paths);
  return [
    ...(targets.master ? evaluateAll(MASTER_FILE_CHECKS, facts) : []),
    ...(targets.node ? evaluateAll(NODE_FILE_CHECKS, facts) : []),
  ];
}
