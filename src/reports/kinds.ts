import type { KubernetesObject, V1OwnerReference } from "@kubernetes/client-node";
import { OMITTED_ANNOTATION, REPORT_SOURCE, type ReportContent } from "./model.js";

/**
 * The report APIs the operator writes to, whichever are installed (both when both are):
 * `openreports.io/v1alpha1` Report / ClusterReport (the successor, written by Kyverno 1.15+) and
 * `wgpolicyk8s.io/v1alpha2` PolicyReport / ClusterPolicyReport. Both take the same result shape
 * (`policy`, `rule`, `result`, `severity`, `message`, `resources`, `properties`, `source`); openreports also
 * carries `source` on the report itself.
 */
export interface ReportApi {
  /** Short name used in logs and the condition message. */
  readonly id: "openreports" | "wgpolicyk8s";
  readonly group: string;
  readonly version: string;
  readonly namespaced: { kind: string; plural: string };
  readonly cluster: { kind: string; plural: string };
  /** Whether the report itself has a top-level `source` field. */
  readonly reportSource: boolean;
}

export const REPORT_APIS: readonly ReportApi[] = [
  {
    id: "openreports",
    group: "openreports.io",
    version: "v1alpha1",
    namespaced: { kind: "Report", plural: "reports" },
    cluster: { kind: "ClusterReport", plural: "clusterreports" },
    reportSource: true,
  },
  {
    id: "wgpolicyk8s",
    group: "wgpolicyk8s.io",
    version: "v1alpha2",
    namespaced: { kind: "PolicyReport", plural: "policyreports" },
    cluster: { kind: "ClusterPolicyReport", plural: "clusterpolicyreports" },
    reportSource: false,
  },
];

/** One report kind the API server serves (discovery found it). */
export interface ReportKind {
  api: ReportApi;
  scope: "namespaced" | "cluster";
  kind: string;
  plural: string;
}

export function apiVersionOf(k: ReportKind): string {
  return `${k.api.group}/${k.api.version}`;
}

/** `Report (openreports.io/v1alpha1)`: how the condition and logs name a kind. */
export function describeKind(k: ReportKind): string {
  return `${k.kind} (${apiVersionOf(k)})`;
}

/** The REST path of a report kind: all namespaces, one namespace, or one object. */
export function reportPath(k: ReportKind, namespace?: string, name?: string): string {
  const ns = k.scope === "namespaced" && namespace ? `/namespaces/${encodeURIComponent(namespace)}` : "";
  return `/apis/${apiVersionOf(k)}${ns}/${k.plural}${name ? `/${encodeURIComponent(name)}` : ""}`;
}

/** The kinds a discovery document (APIResourceList of one group version) lists, of the known report APIs. */
export function kindsInDiscovery(
  api: ReportApi,
  resources: readonly { name?: string; kind?: string; namespaced?: boolean }[],
): ReportKind[] {
  const out: ReportKind[] = [];
  for (const scope of ["namespaced", "cluster"] as const) {
    const want = api[scope];
    const found = resources.find((r) => r.name === want.plural && r.kind === want.kind);
    if (found && found.namespaced === (scope === "namespaced"))
      out.push({ api, scope, kind: want.kind, plural: want.plural });
  }
  return out;
}

/** A report object as the operator server-side applies it. */
export interface ReportObject extends KubernetesObject {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    labels: Record<string, string>;
    annotations?: Record<string, string>;
    ownerReferences: V1OwnerReference[];
  };
  source?: string;
  summary: ReportContent["summary"];
  results: ReportContent["results"];
}

/**
 * The object of one report content for one kind: labelled like every object the operator creates, owned by
 * the policy (controller ownerReference with its UID, so deleting the policy garbage-collects its reports).
 */
export function reportObject(
  k: ReportKind,
  content: ReportContent,
  meta: { name: string; labels: Record<string, string>; owner: V1OwnerReference },
): ReportObject {
  return {
    apiVersion: apiVersionOf(k),
    kind: k.kind,
    metadata: {
      name: meta.name,
      ...(k.scope === "namespaced" && content.namespace !== undefined
        ? { namespace: content.namespace }
        : {}),
      labels: meta.labels,
      ...(content.omitted > 0 ? { annotations: { [OMITTED_ANNOTATION]: String(content.omitted) } } : {}),
      ownerReferences: [meta.owner],
    },
    ...(k.api.reportSource ? { source: REPORT_SOURCE } : {}),
    summary: content.summary,
    results: content.results,
  };
}
