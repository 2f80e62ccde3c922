/**
 * A finding: something in the cluster that the policy considers unsafe but that the operator does not (or
 * cannot) correct itself — risky RBAC it does not own, a control-plane flag, an audit-policy lint.
 * Findings are reported in status, never "fixed" by touching objects the operator does not own.
 */
export type Severity = "Critical" | "High" | "Medium" | "Low" | "Info";

/** Most severe first; status lists and reports sort by this order. */
export const SEVERITY_ORDER: readonly Severity[] = ["Critical", "High", "Medium", "Low", "Info"];

export interface Finding {
  /** Stable identifier of the check, e.g. `RBAC-WILDCARD-VERB`; exemptions refer to it. */
  id: string;
  severity: Severity;
  /** The object the finding is about, `Kind/namespace/name` or `Kind/name` for cluster-scoped ones. */
  resource: string;
  /** One sentence a user can act on. Never contains key material. */
  message: string;
  /** Which area of the policy produced it; maps to the per-area condition (e.g. `rbac`, `controlPlane`). */
  area: string;
}

/** Sorts findings most severe first, then by id and resource, so status output is deterministic. */
export function sortFindings(findings: readonly Finding[]): Finding[] {
  const rank = (s: Severity) => SEVERITY_ORDER.indexOf(s);
  return [...findings].sort(
    (a, b) =>
      rank(a.severity) - rank(b.severity) ||
      a.id.localeCompare(b.id) ||
      a.resource.localeCompare(b.resource) ||
      a.message.localeCompare(b.message),
  );
}
