import { createHash } from "node:crypto";
import type { ClusterSecurityPolicy, Condition, DriftEntry, Exemption } from "../api/v1alpha1/policy.js";
import { API_VERSION, KIND } from "../api/v1alpha1/policy.js";

/**
 * Policy reports, pure: a policy's status (its bounded findings, drift and conditions, already computed by
 * the reconcile) and its active exemptions become report contents for Policy Reporter and other readers of
 * the `openreports.io` / `wgpolicyk8s.io` report APIs. No I/O here; writer.ts puts them in the cluster.
 */

/** `source` of every result and report. */
export const REPORT_SOURCE = "csp-operator" as const;
/** At most this many results in one report; the rest are counted in the summary and the annotation. */
export const MAX_RESULTS_PER_REPORT = 100;
/** A result message is cut to this length, so a report stays a few hundred KiB at most. */
export const MAX_MESSAGE_CHARS = 512;
/** How many results a report could not list (they are still counted in its summary). */
export const OMITTED_ANNOTATION = "security.csp-operator.io/results-omitted";

export type ResultValue = "pass" | "fail" | "warn" | "error" | "skip";
export type ResultSeverity = "critical" | "high" | "medium" | "low" | "info";

export interface ObjectRef {
  apiVersion?: string;
  kind: string;
  namespace?: string;
  name: string;
  uid?: string;
}

/** One result, in the field names both report APIs share (`message`, `resources`, `properties`). */
export interface ReportResult {
  source: string;
  policy: string;
  rule: string;
  category?: string;
  severity?: ResultSeverity;
  result: ResultValue;
  scored: boolean;
  message: string;
  resources?: ObjectRef[];
  properties?: Record<string, string>;
}

export interface ReportSummary {
  pass: number;
  fail: number;
  warn: number;
  error: number;
  skip: number;
}

/** The content of one report: cluster-scoped (`namespace` undefined) or for one namespace. */
export interface ReportContent {
  namespace?: string;
  summary: ReportSummary;
  results: ReportResult[];
  /** Results counted in the summary but not listed (the per-report cap, or beyond the status's bounded lists). */
  omitted: number;
}

/** Conditions that are not a verdict on the cluster: not turned into results. */
const NOT_RESULTS = new Set(["Ready", "Compliant", "ReportsPublished"]);

const SEVERITY: Record<string, ResultSeverity> = {
  Critical: "critical",
  High: "high",
  Medium: "medium",
  Low: "low",
  Info: "info",
};

/** apiVersion of the kinds findings and drift name, so a reader can link the resource. */
const API_VERSIONS: Record<string, string> = {
  Pod: "v1",
  Node: "v1",
  Namespace: "v1",
  ServiceAccount: "v1",
  Secret: "v1",
  ConfigMap: "v1",
  Service: "v1",
  NetworkPolicy: "networking.k8s.io/v1",
  Role: "rbac.authorization.k8s.io/v1",
  RoleBinding: "rbac.authorization.k8s.io/v1",
  ClusterRole: "rbac.authorization.k8s.io/v1",
  ClusterRoleBinding: "rbac.authorization.k8s.io/v1",
  [KIND]: API_VERSION,
};

/** The area a drifted kind belongs to (drift entries in status carry no area). */
const DRIFT_AREA: Record<string, string> = {
  NetworkPolicy: "networkPolicies",
  Namespace: "podSecurity",
  ServiceAccount: "serviceAccounts",
  Role: "rbac",
  RoleBinding: "rbac",
};

/**
 * `Kind/namespace/name` or `Kind/name` (the form findings and exemptions use) as an object reference;
 * undefined for anything else. A name may itself contain no slash (Kubernetes names never do).
 */
export function parseResource(resource: string): ObjectRef | undefined {
  const parts = resource.split("/");
  if (parts.some((p) => p === "")) return undefined;
  const [kind, a, b] = parts;
  if (!kind || !a || parts.length > 3) return undefined;
  const apiVersion = API_VERSIONS[kind];
  const ref: ObjectRef = b === undefined ? { kind, name: a } : { kind, namespace: a, name: b };
  return apiVersion ? { apiVersion, ...ref } : ref;
}

function cut(text: string): string {
  return text.length > MAX_MESSAGE_CHARS ? `${text.slice(0, MAX_MESSAGE_CHARS - 1)}…` : text;
}

function isActive(e: Exemption, now: Date): boolean {
  return e.expires === undefined || Date.parse(e.expires) > now.getTime();
}

const RESULT_ORDER: readonly ResultValue[] = ["fail", "error", "warn", "skip", "pass"];
const SEVERITY_ORDER: readonly (ResultSeverity | undefined)[] = ["critical", "high", "medium", "low", "info"];

function refKey(r: ReportResult): string {
  const ref = r.resources?.[0];
  return ref ? `${ref.kind}/${ref.namespace ?? ""}/${ref.name}` : "";
}

/** Worst first (fail, error, warn, skip, pass; then by severity), then by rule and resource: stable output. */
export function sortResults(results: readonly ReportResult[]): ReportResult[] {
  const sev = (s: ResultSeverity | undefined) => (s ? SEVERITY_ORDER.indexOf(s) : SEVERITY_ORDER.length);
  return [...results].sort(
    (a, b) =>
      RESULT_ORDER.indexOf(a.result) - RESULT_ORDER.indexOf(b.result) ||
      sev(a.severity) - sev(b.severity) ||
      a.rule.localeCompare(b.rule) ||
      refKey(a).localeCompare(refKey(b)) ||
      a.message.localeCompare(b.message),
  );
}

function summarize(results: readonly ReportResult[]): ReportSummary {
  const s: ReportSummary = { pass: 0, fail: 0, warn: 0, error: 0, skip: 0 };
  for (const r of results) s[r.result]++;
  return s;
}

function conditionResult(policy: string, self: ObjectRef, c: Condition): ReportResult | undefined {
  if (NOT_RESULTS.has(c.type) && !(c.type === "Ready" && c.status === "False")) return undefined;
  const result: ResultValue =
    c.type === "Ready" || c.status === "Unknown" ? "error" : c.status === "True" ? "pass" : "fail";
  return {
    source: REPORT_SOURCE,
    policy,
    rule: c.type,
    category: "conditions",
    result,
    scored: true,
    message: cut(`${c.reason}: ${c.message}`),
    resources: [self],
    properties: { reason: c.reason },
  };
}

function findingResult(
  policy: string,
  f: { id: string; severity: string; resource: string; message: string; area?: string },
): ReportResult {
  const ref = parseResource(f.resource);
  const cis = /^CIS-(\d+(?:\.\d+)*)$/.exec(f.id)?.[1];
  const properties: Record<string, string> = {};
  if (cis) properties.cisId = cis;
  if (!ref) properties.resource = f.resource;
  const severity = SEVERITY[f.severity];
  return {
    source: REPORT_SOURCE,
    policy,
    rule: f.id,
    ...(f.area ? { category: f.area } : {}),
    ...(severity ? { severity } : {}),
    // Info findings are checks that could not be decided or notices: they do not count against Compliant.
    result: f.severity === "Info" ? "warn" : "fail",
    scored: f.severity !== "Info",
    message: cut(f.message),
    ...(ref ? { resources: [ref] } : {}),
    ...(Object.keys(properties).length ? { properties } : {}),
  };
}

function driftResult(policy: string, d: DriftEntry): ReportResult {
  const apiVersion = API_VERSIONS[d.kind];
  const ref: ObjectRef = {
    ...(apiVersion ? { apiVersion } : {}),
    kind: d.kind,
    ...(d.namespace ? { namespace: d.namespace } : {}),
    name: d.name,
  };
  const properties: Record<string, string> = { reason: d.reason };
  if (d.fields?.length) properties.fields = cut(d.fields.join(", "));
  if (d.manager) properties.manager = d.manager;
  const area = DRIFT_AREA[d.kind];
  return {
    source: REPORT_SOURCE,
    policy,
    rule: `DRIFT-${d.reason.toUpperCase()}`,
    ...(area ? { category: area } : {}),
    severity: "medium",
    result: "fail",
    scored: true,
    message: cut(d.message ?? `${d.kind} ${d.namespace ? `${d.namespace}/` : ""}${d.name}: ${d.reason}`),
    resources: [ref],
    properties,
  };
}

/**
 * An active exemption as skip results: one in each namespace it names (its resource there, or the Namespace),
 * else one where its resource lives.
 */
function exemptionResults(
  policy: string,
  e: Exemption,
  index: number,
): { namespace: string | undefined; result: ReportResult }[] {
  const properties: Record<string, string> = {
    exemption: `spec.exemptions[${index}]`,
    reason: cut(e.reason),
  };
  if (e.ticket) properties.ticket = e.ticket;
  if (e.expires) properties.expires = e.expires;
  const base = {
    source: REPORT_SOURCE,
    policy,
    rule: e.findingId ?? `area:${e.area ?? ""}`,
    ...(e.area ? { category: e.area } : {}),
    result: "skip" as const,
    scored: false,
    message: cut(`exempted: ${e.reason}${e.ticket ? ` (${e.ticket})` : ""}`),
    properties,
  };
  const ref = e.resource ? parseResource(e.resource) : undefined;
  if (e.namespaces?.length)
    return [...new Set(e.namespaces)].map((ns) => ({
      namespace: ns,
      result: {
        ...base,
        resources: [ref ? { ...ref, namespace: ns } : { apiVersion: "v1", kind: "Namespace", name: ns }],
      },
    }));
  return [{ namespace: ref?.namespace, result: { ...base, ...(ref ? { resources: [ref] } : {}) } }];
}

/** Which report a result goes to: the namespace of its resource, none for cluster-scoped ones. */
function namespaceOf(r: ReportResult): string | undefined {
  return r.resources?.[0]?.namespace;
}

/**
 * The reports of one policy: one cluster report (conditions, cluster-scoped findings and drift, exemptions
 * without a namespace) and one report per namespace that has results. Results beyond
 * MAX_RESULTS_PER_REPORT are counted in the summary but not listed, most severe kept; findings and drift
 * beyond the status's own bounded lists (status.summary counts them all) are counted as omitted failures in
 * the cluster report. `now` decides which exemptions are still active.
 */
export function policyReports(
  policy: ClusterSecurityPolicy,
  now: Date,
): { cluster: ReportContent; namespaced: ReportContent[] } {
  const name = policy.metadata.name;
  const status = policy.status ?? {};
  const self: ObjectRef = {
    apiVersion: API_VERSION,
    kind: KIND,
    name,
    ...(policy.metadata.uid ? { uid: policy.metadata.uid } : {}),
  };
  const all: { namespace: string | undefined; result: ReportResult }[] = [];
  const add = (result: ReportResult) => all.push({ namespace: namespaceOf(result), result });
  for (const c of status.conditions ?? []) {
    const r = conditionResult(name, self, c);
    if (r) add(r);
  }
  for (const f of status.findings ?? []) add(findingResult(name, f));
  for (const d of status.drift ?? []) add(driftResult(name, d));
  (policy.spec?.exemptions ?? []).forEach((e, i) => {
    if (isActive(e, now)) all.push(...exemptionResults(name, e, i));
  });

  const groups = new Map<string | undefined, ReportResult[]>([[undefined, []]]);
  for (const { namespace, result } of all) {
    const group = groups.get(namespace);
    if (group) group.push(result);
    else groups.set(namespace, [result]);
  }
  // What the status could not list: its summary counts every scored finding and every drift.
  const listedScored = (status.findings ?? []).filter((f) => f.severity !== "Info").length;
  const beyondStatus =
    Math.max(0, (status.summary?.findings ?? 0) - listedScored) +
    Math.max(0, (status.summary?.drifted ?? 0) - (status.drift ?? []).length);

  const content = (ns: string | undefined, results: ReportResult[]): ReportContent => {
    const sorted = sortResults(results);
    const summary = summarize(sorted);
    let omitted = Math.max(0, sorted.length - MAX_RESULTS_PER_REPORT);
    if (ns === undefined && beyondStatus > 0) {
      summary.fail += beyondStatus;
      omitted += beyondStatus;
    }
    return {
      ...(ns !== undefined ? { namespace: ns } : {}),
      summary,
      results: sorted.slice(0, MAX_RESULTS_PER_REPORT),
      omitted,
    };
  };
  const namespaced = [...groups]
    .filter((g): g is [string, ReportResult[]] => g[0] !== undefined)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([ns, results]) => content(ns, results));
  return { cluster: content(undefined, groups.get(undefined) ?? []), namespaced };
}

/**
 * The name of a policy's reports (`csp-<policy>`, the same in every namespace): within the 253 characters
 * of a name, cut with a hash for the longest policy names so two policies never share one.
 */
export function reportName(policy: string): string {
  const name = `csp-${policy}`;
  if (name.length <= 253) return name;
  const hash = createHash("sha256").update(policy).digest("hex").slice(0, 10);
  return `${name.slice(0, 242).replace(/[.-]+$/, "")}-${hash}`;
}
