import type {
  ClusterSecurityPolicy,
  ClusterSecurityPolicySpec,
  ClusterSecurityPolicyStatus,
  Condition,
  DriftEntry,
} from "../api/v1alpha1/policy.js";
import type { Area, Drift } from "../drift/checks.js";
import { jsonEqual } from "../drift/normalize.js";
import { SEVERITY_ORDER, sortFindings, type Finding } from "../findings/finding.js";

/** Bounded lists keep the object far below etcd's size limit however large the cluster. */
export const MAX_LIST = 50;

/** Per-area condition types (API.md) and the areas that feed each. */
export const AREA_CONDITIONS: {
  type: string;
  areas: readonly string[];
  inUse: (s: ClusterSecurityPolicySpec) => boolean;
}[] = [
  { type: "NetworkIsolated", areas: ["networkPolicies"], inUse: (s) => !!s.networkPolicies },
  { type: "PodSecurityEnforced", areas: ["podSecurity"], inUse: (s) => !!s.podSecurity },
  {
    type: "LeastPrivilegeRBAC",
    areas: ["rbac", "serviceAccounts"],
    inUse: (s) => !!s.rbac || !!s.serviceAccounts,
  },
  { type: "AuditPolicyApplied", areas: ["auditPolicy"], inUse: (s) => !!s.auditPolicy },
  { type: "EncryptionAtRest", areas: ["encryption"], inUse: (s) => !!s.encryption },
  { type: "ControlPlaneHardened", areas: ["controlPlane"], inUse: (s) => !!s.controlPlane },
  { type: "ClusterVersionSupported", areas: ["clusterVersion"], inUse: (s) => !!s.clusterVersion },
  { type: "CredentialsRotated", areas: ["credentials"], inUse: (s) => !!s.credentials },
  { type: "NodesIsolated", areas: ["nodeIsolation"], inUse: (s) => !!s.nodeIsolation },
  { type: "APIAccessNormal", areas: ["apiServerMonitoring"], inUse: (s) => !!s.apiServerMonitoring },
];

/**
 * Conditions about the operator's own outputs (ReportsPublished: are policy reports being written?), not
 * about the cluster: shown like any area condition, never counted against Compliant.
 */
export const INFORMATIONAL_CONDITIONS: ReadonlySet<string> = new Set(["ReportsPublished"]);

/** Everything a reconcile learned; the status is a pure function of it. */
export interface ReconcileOutcome {
  policy: ClusterSecurityPolicy;
  spec: ClusterSecurityPolicySpec;
  namespaces: number;
  managedObjects: number;
  /** Drift still present in the cluster after this reconcile (all of it in Audit mode). */
  drift: readonly Drift[];
  /** Drift this reconcile corrected (Enforce mode). */
  corrected: readonly Drift[];
  findings: readonly Finding[];
  /** Set when the reconcile could not finish: Ready=False with this reason. */
  error?: { reason: string; message: string };
  /**
   * Conditions an area decides from its own evidence (e.g. EncryptionAtRest from API server metrics). Each
   * replaces the condition of the same type computed from drift and findings; one with status False makes
   * the policy non-compliant, one with status Unknown is named in Compliant's message.
   */
  areaConditions?: readonly AreaCondition[];
  now: Date;
}

function driftEntry(d: Drift): DriftEntry {
  const e: DriftEntry = { kind: d.kind, name: d.name, reason: d.reason };
  if (d.namespace) e.namespace = d.namespace;
  if (d.fields?.length) e.fields = d.fields;
  if (d.manager) e.manager = d.manager;
  if (d.message) e.message = d.message;
  return e;
}

const REASON_ORDER = ["Unowned", "Conflict", "Contested", "Modified", "Missing", "Orphaned"];
function sortDrift(drift: readonly Drift[]): Drift[] {
  return [...drift].sort(
    (a, b) =>
      REASON_ORDER.indexOf(a.reason) - REASON_ORDER.indexOf(b.reason) ||
      a.kind.localeCompare(b.kind) ||
      (a.namespace ?? "").localeCompare(b.namespace ?? "") ||
      a.name.localeCompare(b.name),
  );
}

function countBy(items: readonly { reason: string }[]): string {
  const counts = new Map<string, number>();
  for (const i of items) counts.set(i.reason, (counts.get(i.reason) ?? 0) + 1);
  return [...counts].map(([r, n]) => `${n} ${r}`).join(", ");
}

function mostCommonReason(items: readonly { reason: string }[]): string {
  const sorted = [...items].sort((a, b) => REASON_ORDER.indexOf(a.reason) - REASON_ORDER.indexOf(b.reason));
  return sorted[0]?.reason ?? "Drifted";
}

/**
 * Whether a finding counts against compliance. Info findings (a check that could not be evaluated, a binding
 * to a role that does not exist) are listed in status.findings but are not failures: a cluster must be able
 * to be Compliant while, say, file checks wait for the node agent. The area's own condition says Unknown.
 */
function counts(f: Finding): boolean {
  return f.severity !== "Info";
}

type NewCondition = Omit<Condition, "lastTransitionTime" | "observedGeneration">;
/** A condition without its bookkeeping fields, as areas report them. */
export type AreaCondition = NewCondition;

function areaCondition(type: string, areas: readonly string[], o: ReconcileOutcome): NewCondition {
  const drift = o.drift.filter((d) => areas.includes(d.area));
  const findings = o.findings.filter((f) => areas.includes(f.area) && counts(f));
  const verb = o.spec.mode === "Audit" ? "would be corrected in Enforce mode" : "could not be corrected";
  if (drift.length > 0) {
    return {
      type,
      status: "False",
      reason: mostCommonReason(drift),
      message: `${drift.length} difference(s) (${countBy(drift)}); ${drift.some((d) => d.repair) ? verb : "see status.drift"}`,
    };
  }
  if (findings.length > 0) {
    return {
      type,
      status: "False",
      reason: "FindingsPresent",
      message: `${findings.length} finding(s); see status.findings`,
    };
  }
  // A correction is told by a DriftCorrected Event, not here: the condition a repair leaves is the one it
  // found (Compliant), so a repair costs no status write, and the next reconcile none either.
  return { type, status: "True", reason: "Compliant", message: "the cluster matches the policy" };
}

/**
 * Builds the next status from a reconcile's outcome. A condition whose status, reason and message did not
 * change keeps its lastTransitionTime, so an unchanged cluster yields an identical status and no write.
 */
export function computeStatus(
  o: ReconcileOutcome,
  previous: ClusterSecurityPolicyStatus | undefined,
): ClusterSecurityPolicyStatus {
  const generation = o.policy.metadata.generation ?? 0;
  const conds: NewCondition[] = [];
  if (o.error) {
    conds.push({ type: "Ready", status: "False", reason: o.error.reason, message: o.error.message });
    conds.push({
      type: "Compliant",
      status: "Unknown",
      reason: o.error.reason,
      message: "not evaluated: the policy could not be reconciled",
    });
    // What an area decided from evidence (EncryptionAtRest from the API server's metrics, ...) stays true
    // whatever else failed: dropping it would make `kubectl wait --for=condition=...` lose the fact.
    conds.push(...(o.areaConditions ?? []));
  } else {
    const audit = o.spec.mode === "Audit";
    conds.push({
      type: "Ready",
      status: "True",
      reason: audit ? "Evaluated" : "Reconciled",
      message: audit ? "generation evaluated (Audit mode: nothing written)" : "generation reconciled",
    });
    const areaConds: NewCondition[] = [];
    const decided = new Map((o.areaConditions ?? []).map((c) => [c.type, c]));
    for (const a of AREA_CONDITIONS) {
      if (a.inUse(o.spec)) areaConds.push(decided.get(a.type) ?? areaCondition(a.type, a.areas, o));
      decided.delete(a.type);
    }
    areaConds.push(...decided.values());
    const verdict = (c: NewCondition) => !INFORMATIONAL_CONDITIONS.has(c.type);
    const failing = [...(o.areaConditions ?? [])]
      .filter((c) => c.status === "False" && verdict(c))
      .map((c) => c.type);
    const unknown = areaConds.filter((c) => c.status === "Unknown" && verdict(c)).map((c) => c.type);
    const open = o.findings.filter(counts).length;
    const compliant = o.drift.length === 0 && open === 0 && failing.length === 0;
    const notes = [
      ...(failing.length ? [`not met: ${failing.join(", ")}`] : []),
      ...(unknown.length ? [`unverified: ${unknown.join(", ")}`] : []),
    ];
    conds.push({
      type: "Compliant",
      status: compliant ? "True" : "False",
      reason: compliant
        ? "Compliant"
        : o.drift.length > 0
          ? "Drifted"
          : open > 0
            ? "FindingsPresent"
            : "RequirementsNotMet",
      message: [
        compliant
          ? "the live cluster matches the policy"
          : `${o.drift.length} difference(s), ${open} finding(s)`,
        ...notes,
      ].join("; "),
    });
    conds.push(...areaConds);
  }
  const prev = new Map((previous?.conditions ?? []).map((c) => [c.type, c]));
  const conditions: Condition[] = conds.map((c) => {
    const old = prev.get(c.type);
    const same = old && old.status === c.status && old.reason === c.reason && old.message === c.message;
    return {
      ...c,
      observedGeneration: generation,
      lastTransitionTime:
        same && old.lastTransitionTime
          ? old.lastTransitionTime
          : o.now.toISOString().replace(/\.\d{3}Z$/, "Z"),
    };
  });
  return {
    observedGeneration: generation,
    conditions,
    summary: {
      namespaces: o.namespaces,
      managedObjects: o.managedObjects,
      drifted: o.drift.length,
      findings: o.findings.filter(counts).length,
      findingsBySeverity: bySeverity(o.findings),
    },
    drift: sortDrift(o.drift).slice(0, MAX_LIST).map(driftEntry),
    findings: sortFindings(o.findings)
      .slice(0, MAX_LIST)
      .map((f) => ({
        id: f.id,
        severity: f.severity,
        resource: f.resource,
        message: f.message,
        area: f.area,
      })),
  };
}

/**
 * Every finding counted by severity (the list in status is bounded; these totals are not). Every severity is
 * present, 0 included: status is written as a JSON merge patch, where a key left out keeps its old value.
 */
function bySeverity(findings: readonly Finding[]): Record<Finding["severity"], number> {
  const out = Object.fromEntries(SEVERITY_ORDER.map((s) => [s, 0])) as Record<Finding["severity"], number>;
  for (const f of findings) out[f.severity]++;
  return out;
}

/** Whether writing `next` would change anything (status is written only when it changed). */
export function statusChanged(
  previous: ClusterSecurityPolicyStatus | undefined,
  next: ClusterSecurityPolicyStatus,
): boolean {
  return !jsonEqual(JSON.parse(JSON.stringify(previous ?? {})), JSON.parse(JSON.stringify(next)));
}

/** Used by per-area condition helpers that are added by later areas. */
export type { Area };
