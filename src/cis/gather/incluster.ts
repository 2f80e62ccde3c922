/**
 * The in-cluster side of the CIS checks: what the API can show about kube-apiserver (its mirror pod) and
 * the kubelet (its `configz`), turned into the same {@link CisInputs} the offline command builds, and the
 * verdict of a whole control plane. Pure: the cluster layer does the reading and hands the raw objects here.
 *
 * What the API cannot show is Unknown with the reason, never guessed: files named by flags live on the
 * node (only the node agent can read them), and the kubelet's command-line-only flags are not in configz.
 */
import type { V1ConfigMap } from "@kubernetes/client-node";
import { agentCheckResults } from "../../evidence/agentreports.js";
import type { Exemption } from "../../api/v1alpha1/policy.js";
import { exempts, isActive } from "../../findings/exemptions.js";
import type { Finding } from "../../findings/finding.js";
import type { AreaCondition } from "../../status/status.js";
import type { CheckResult } from "../checks/check.js";
import { cisFindings } from "../output/findings.js";
import type { ApiServerInputs, ComponentInputs, HostReader, KubeletInputs } from "./inputs.js";
import {
  DEFAULT_CLUSTER_CA,
  gatherApiServerInputs,
  gatherComponentInputs,
  gatherEtcdInputs,
  gatherKubeletInputs,
} from "./inputs.js";
import { CONTROLLER_MANAGER_GRAMMAR, SCHEDULER_GRAMMAR } from "../parse/grammars.js";
import { parseApiServerManifest, parseComponentManifest } from "../parse/manifest.js";
import type { Parsed } from "../parse/yaml.js";
import { isRecord } from "../parse/yaml.js";
import { runCisChecks } from "../checks/run.js";

/** Why a check that needs a node file is Unknown in-cluster. */
export const NODE_FILES_UNREADABLE =
  "node files cannot be read through the Kubernetes API; the node agent (csp-operator agent) checks them on the node";

/** Why 4.2.7 is Unknown in-cluster. */
export const KUBELET_FLAGS_UNAVAILABLE =
  "the kubelet's command line is not visible through the API: configz holds its configuration (config-backed flags merged), not command-line-only flags such as --hostname-override";

/** A reader for the in-cluster path: every file is out of reach, with the reason. */
export const IN_CLUSTER_READER: HostReader = {
  readFile: () => Promise.reject(new Error(NODE_FILES_UNREADABLE)),
};

/**
 * API server inputs from its pod object as the API returns it (a mirror pod of the static manifest): the
 * same manifest parsing as `csp-operator check --apiserver-manifest`, so flags, `$(VAR)` env references and
 * repeated flags are judged identically.
 */
export async function apiServerInputsFromPod(pod: unknown): Promise<Parsed<ApiServerInputs>> {
  if (!isRecord(pod)) return { ok: false, reason: "is not an object" };
  const meta = isRecord(pod.metadata) ? pod.metadata : {};
  const { managedFields: _ignored, ...metadata } = meta;
  const manifest = parseApiServerManifest(JSON.stringify({ kind: "Pod", ...pod, metadata }));
  if (!manifest.ok) return manifest;
  const { namespace, name } = manifest.value.pod;
  return {
    ok: true,
    value: await gatherApiServerInputs(manifest.value, `Pod ${namespace}/${name}`, IN_CLUSTER_READER),
  };
}

function podRef(pod: unknown): string {
  const meta = isRecord(pod) && isRecord(pod.metadata) ? pod.metadata : {};
  const str = (v: unknown, d: string) => (typeof v === "string" ? v : d);
  return `Pod/${str(meta.namespace, "kube-system")}/${str(meta.name, "?")}`;
}

/**
 * Controller manager, scheduler or etcd inputs from its mirror pod, parsed like the static manifest
 * offline. Files (the scheduler's --config, etcd's CA files, an etcd --config-file) are out of reach here:
 * the checks that need them are Unknown with the reason.
 */
export async function componentInputsFromPod(
  pod: unknown,
  component: "kube-controller-manager" | "kube-scheduler" | "etcd",
): Promise<Parsed<ComponentInputs>> {
  if (!isRecord(pod)) return { ok: false, reason: "is not an object" };
  const meta = isRecord(pod.metadata) ? pod.metadata : {};
  const { managedFields: _ignored, ...metadata } = meta;
  const manifest = parseComponentManifest(JSON.stringify({ kind: "Pod", ...pod, metadata }), component);
  if (!manifest.ok) return manifest;
  const { namespace, name } = manifest.value.pod;
  const source = `Pod ${namespace}/${name}`;
  if (component === "etcd") {
    return {
      ok: true,
      value: await gatherEtcdInputs(manifest.value, source, IN_CLUSTER_READER, {
        path: DEFAULT_CLUSTER_CA,
        manifest: { mounts: [], workingDir: "/" },
        via: "the cluster CA",
      }),
    };
  }
  const grammar = component === "kube-scheduler" ? SCHEDULER_GRAMMAR : CONTROLLER_MANAGER_GRAMMAR;
  const files = component === "kube-scheduler" ? ["config"] : [];
  return {
    ok: true,
    value: await gatherComponentInputs(manifest.value, source, IN_CLUSTER_READER, grammar, files),
  };
}

/**
 * Kubelet inputs from the body of `GET /api/v1/nodes/<node>/proxy/configz`: `{"kubeletconfig": {...}}`,
 * the kubelet's effective KubeletConfiguration (v1beta1 field names, defaults applied, config-backed
 * flags merged). It is judged as a loaded config file with no command line.
 */
export async function kubeletInputsFromConfigz(node: string, body: unknown): Promise<Parsed<KubeletInputs>> {
  if (!isRecord(body) || !isRecord(body.kubeletconfig)) {
    return { ok: false, reason: "configz did not return an object with a kubeletconfig field" };
  }
  const text = JSON.stringify({
    ...body.kubeletconfig,
    apiVersion: "kubelet.config.k8s.io/v1beta1",
    kind: "KubeletConfiguration",
  });
  const source = `configz of Node/${node}`;
  const inputs = await gatherKubeletInputs({ argv: [], source, config: { source, text } }, IN_CLUSTER_READER);
  if (inputs.config.state === "error") return { ok: false, reason: inputs.config.reason };
  return { ok: true, value: { ...inputs, flagsUnavailable: KUBELET_FLAGS_UNAVAILABLE } };
}

/** Labels that name a node pool on common platforms; nodes of one pool normally share a kubelet config. */
const POOL_LABELS = [
  "cloud.google.com/gke-nodepool",
  "eks.amazonaws.com/nodegroup",
  "kubernetes.azure.com/agentpool",
  "karpenter.sh/nodepool",
  "node.kubernetes.io/instance-type",
];

/** The few fields of a Node that sampling looks at. */
export interface NodeSummary {
  readonly name: string;
  readonly labels?: Readonly<Record<string, string>>;
  readonly kubeletVersion?: string;
}

/**
 * Which nodes' configz to read: at most `max`, one per group first (kubelet version, node pool label,
 * control-plane role: nodes of a group are normally configured alike), then more by name. Deterministic,
 * so an unchanged cluster yields an unchanged status.
 */
export function sampleNodes(nodes: readonly NodeSummary[], max: number): string[] {
  const groupOf = (n: NodeSummary) => {
    const labels = n.labels ?? {};
    const pool = POOL_LABELS.map((l) => labels[l]).find((v) => v !== undefined) ?? "";
    const cp = "node-role.kubernetes.io/control-plane" in labels ? "control-plane" : "";
    return `${n.kubeletVersion ?? ""}|${pool}|${cp}`;
  };
  const byName = [...nodes].sort((a, b) => a.name.localeCompare(b.name));
  const picked: string[] = [];
  const seen = new Set<string>();
  for (const n of byName) {
    const g = groupOf(n);
    if (seen.has(g)) continue;
    seen.add(g);
    picked.push(n.name);
  }
  for (const n of byName) if (!picked.includes(n.name)) picked.push(n.name);
  return picked.slice(0, Math.max(0, max)).sort();
}

/** Why a component could not be checked at all: a CamelCase reason (NoMirrorPod, Forbidden, ...). */
export interface Problem {
  readonly reason: string;
  readonly message: string;
}

/** The mirror pods of one control-plane component as read, or why they could not be. */
export type ComponentPods = { readonly pods: readonly unknown[] } | { readonly failed: Problem };

/** What the cluster layer read; a component left undefined is disabled by the policy. */
export interface ControlPlaneObservation {
  readonly apiServer?: ComponentPods;
  /** kube-controller-manager mirror pods (1.3.x). */
  readonly controllerManager?: ComponentPods;
  /** kube-scheduler mirror pods (1.4.x). */
  readonly scheduler?: ComponentPods;
  /** etcd mirror pods (2.x); none is normal for an external etcd. */
  readonly etcd?: ComponentPods;
  readonly kubelet?:
    | {
        readonly totalNodes: number;
        readonly nodes: readonly {
          readonly name: string;
          readonly configz: { readonly body: unknown } | { readonly failed: Problem };
        }[];
      }
    | { readonly failed: Problem };
}

/** Results of one checked object (`Pod/kube-system/<name>` or `Node/<name>`). */
export interface TargetResults {
  readonly resource: string;
  readonly results: readonly CheckResult[];
}

/** Everything the in-cluster checks concluded, before exemptions. */
export interface ControlPlaneEvaluation {
  readonly targets: readonly TargetResults[];
  /** Components or objects that could not be checked, with the reason. */
  readonly problems: readonly Problem[];
  /** How the kubelet checks were bounded, for the condition message. */
  readonly notes: readonly string[];
}

/** Runs the CIS checks over what was read: the same `runCisChecks` as `csp-operator check`. */
export async function evaluateControlPlane(obs: ControlPlaneObservation): Promise<ControlPlaneEvaluation> {
  const targets: TargetResults[] = [];
  const problems: Problem[] = [];
  const notes: string[] = [];
  if (obs.apiServer !== undefined) {
    if ("failed" in obs.apiServer) problems.push(obs.apiServer.failed);
    else if (obs.apiServer.pods.length === 0) {
      problems.push({
        reason: "NoMirrorPod",
        message:
          "no pod labelled component=kube-apiserver in kube-system: the API server does not run as a static pod here (managed control plane?), so its flags cannot be read",
      });
    }
    for (const pod of obs.apiServer && "pods" in obs.apiServer ? obs.apiServer.pods : []) {
      const meta = isRecord(pod) && isRecord(pod.metadata) ? pod.metadata : {};
      const str = (v: unknown, d: string) => (typeof v === "string" ? v : d);
      const ref = `Pod/${str(meta.namespace, "kube-system")}/${str(meta.name, "?")}`;
      const inputs = await apiServerInputsFromPod(pod);
      if (!inputs.ok) {
        problems.push({ reason: "InvalidManifest", message: `${ref} ${inputs.reason}` });
        continue;
      }
      targets.push({ resource: ref, results: runCisChecks({ apiserver: inputs.value }) });
    }
  }
  for (const [component, pods] of [
    ["kube-controller-manager", obs.controllerManager],
    ["kube-scheduler", obs.scheduler],
    ["etcd", obs.etcd],
  ] as const) {
    if (pods === undefined) continue;
    if ("failed" in pods) {
      problems.push(pods.failed);
      continue;
    }
    if (pods.pods.length === 0) {
      notes.push(
        component === "etcd"
          ? "no etcd mirror pod in kube-system: etcd is external or managed, 2.x not checked here"
          : `no ${component} mirror pod in kube-system: ${component} not checked`,
      );
    }
    for (const pod of pods.pods) {
      const ref = podRef(pod);
      const inputs = await componentInputsFromPod(pod, component);
      if (!inputs.ok) {
        problems.push({ reason: "InvalidManifest", message: `${ref} ${inputs.reason}` });
        continue;
      }
      const key =
        component === "kube-controller-manager"
          ? "controllerManager"
          : component === "kube-scheduler"
            ? "scheduler"
            : "etcd";
      targets.push({ resource: ref, results: runCisChecks({ [key]: inputs.value }) });
    }
  }
  if (obs.kubelet !== undefined) {
    if ("failed" in obs.kubelet) problems.push(obs.kubelet.failed);
    else if (obs.kubelet.totalNodes === 0) {
      problems.push({ reason: "NoNodes", message: "the cluster has no Node objects: no kubelet to check" });
    } else {
      const n = obs.kubelet.nodes.length;
      if (n < obs.kubelet.totalNodes) {
        notes.push(
          `kubelet: sampled ${n} of ${obs.kubelet.totalNodes} nodes (one per kubelet version/node pool, then by name)`,
        );
      }
      for (const node of obs.kubelet.nodes) {
        const ref = `Node/${node.name}`;
        if ("failed" in node.configz) {
          problems.push({
            reason: node.configz.failed.reason,
            message: `${ref}: ${node.configz.failed.message}`,
          });
          continue;
        }
        const inputs = await kubeletInputsFromConfigz(node.name, node.configz.body);
        if (!inputs.ok) {
          problems.push({ reason: "InvalidConfigz", message: `${ref}: ${inputs.reason}` });
          continue;
        }
        targets.push({ resource: ref, results: runCisChecks({ kubelet: inputs.value }) });
      }
    }
  }
  return { targets, problems, notes };
}

const MAX_MESSAGE = 1000;
function bounded(parts: readonly string[]): string {
  const text = parts.filter((p) => p !== "").join("; ");
  return text.length <= MAX_MESSAGE ? text : `${text.slice(0, MAX_MESSAGE - 1)}…`;
}

/**
 * Adds what only the nodes can tell, from the agents' reports: each node's files (1.1.x/4.1.x), and its
 * kube-apiserver judged from the static Pod manifest and the files it names. The latter supersedes the
 * mirror pod's evaluation of the same API server (`kube-apiserver-<node>`), which cannot read those files.
 */
export function withAgentResults(
  evaluation: ControlPlaneEvaluation,
  configMaps: readonly V1ConfigMap[],
  apiServerEnabled: boolean,
): ControlPlaneEvaluation {
  const fromAgents: TargetResults[] = [
    ...agentCheckResults(configMaps, "files").map((a) => ({
      resource: `Node/${a.node}`,
      results: a.results,
    })),
    ...(apiServerEnabled ? agentCheckResults(configMaps, "apiserver") : []).map((a) => ({
      resource: `Pod/kube-system/kube-apiserver-${a.node}`,
      results: a.results,
    })),
  ];
  const superseded = new Set(fromAgents.map((t) => t.resource));
  return {
    ...evaluation,
    targets: [...evaluation.targets.filter((t) => !superseded.has(t.resource)), ...fromAgents],
  };
}

/**
 * Findings (one per failing or unevaluable check and object, as `cisFindings` gives offline) and the
 * `ControlPlaneHardened` condition: False when a check fails that no active exemption covers, True when at
 * least one check was evaluated and none fails, Unknown (reason of the first problem) when nothing could be
 * evaluated. Expired exemptions are reported by the reconciler, which applies exemptions to every finding.
 */
export function controlPlaneReport(
  evaluation: ControlPlaneEvaluation,
  exemptions: readonly Exemption[] | undefined,
  now: Date,
): { findings: Finding[]; condition: AreaCondition } {
  const type = "ControlPlaneHardened";
  const findings: Finding[] = [];
  const failing: Finding[] = [];
  let evaluated = 0;
  let unknowns = 0;
  const active = (exemptions ?? []).filter((e) => isActive(e, now));
  for (const t of evaluation.targets) {
    const r = t.resource;
    const found = cisFindings(
      t.results,
      r.startsWith("Node/")
        ? { kubelet: r }
        : { apiserver: r, controllerManager: r, scheduler: r, etcd: r, cluster: r },
    );
    findings.push(...found);
    evaluated += t.results.filter((r) => r.status !== "Unknown").length;
    unknowns += t.results.filter((r) => r.status === "Unknown").length;
    for (const f of found) if (f.severity !== "Info" && !active.some((e) => exempts(e, f))) failing.push(f);
  }
  const problems = evaluation.problems.map((p) => p.message);
  const unknownNote = unknowns > 0 ? `${unknowns} check(s) could not be evaluated (see status.findings)` : "";
  if (failing.length > 0) {
    const ids = failing.map((f) => `${f.id} on ${f.resource}`);
    return {
      findings,
      condition: {
        type,
        status: "False",
        reason: "ChecksFailed",
        message: bounded([
          `${failing.length} CIS check(s) fail: ${ids.slice(0, 10).join(", ")}${ids.length > 10 ? ", ..." : ""}`,
          unknownNote,
          ...evaluation.notes,
          ...problems,
        ]),
      },
    };
  }
  if (evaluated > 0) {
    return {
      findings,
      condition: {
        type,
        status: "True",
        reason: "ChecksPassed",
        message: bounded([
          `${evaluated} CIS check result(s) on ${evaluation.targets.length} object(s), none failing`,
          unknownNote,
          ...evaluation.notes,
          ...problems,
        ]),
      },
    };
  }
  const first = evaluation.problems[0];
  return {
    findings,
    condition: {
      type,
      status: "Unknown",
      reason: first?.reason ?? "ChecksDisabled",
      message: bounded(
        first === undefined
          ? ["no control-plane check could run: spec.controlPlane disables every component", unknownNote]
          : [...problems, unknownNote, ...evaluation.notes],
      ),
    },
  };
}
