/**
 * Maps CIS results to operator findings: control-plane settings are reported, never changed, by the
 * operator. Only failures and checks that could not be evaluated become findings; Pass, Manual and
 * NotApplicable results stay in the report.
 */
import type { Finding, Severity } from "../findings/finding.js";
import type { CheckResult } from "./check.js";

/**
 * Severity of a failed check, judged by what an attacker gains: an authorizer or admission bypass is
 * Critical/High, missing TLS identities and audit are Medium, hardening and hygiene are Low.
 */
export const CIS_SEVERITY: Readonly<Record<string, Severity>> = {
  "1.1.1": "Medium",
  "1.1.2": "Medium",
  "1.1.3": "Medium",
  "1.1.4": "Medium",
  "1.1.5": "Medium",
  "1.1.6": "Medium",
  "1.1.7": "Medium",
  "1.1.8": "Medium",
  "1.1.9": "Low",
  "1.1.10": "Low",
  "1.1.11": "High",
  "1.1.12": "Low",
  "1.1.13": "High",
  "1.1.14": "High",
  "1.1.15": "High",
  "1.1.16": "Medium",
  "1.1.17": "High",
  "1.1.18": "Medium",
  "1.1.19": "Medium",
  "1.1.20": "Low",
  "1.1.21": "High",
  "1.2.1": "Medium",
  "1.2.2": "Medium",
  "1.2.3": "Low",
  "1.2.4": "Medium",
  "1.2.5": "Medium",
  "1.2.6": "Critical",
  "1.2.7": "Medium",
  "1.2.8": "High",
  "1.2.9": "Low",
  "1.2.10": "High",
  "1.2.11": "Low",
  "1.2.12": "Medium",
  "1.2.13": "Medium",
  "1.2.14": "High",
  "1.2.15": "Low",
  "1.2.16": "Medium",
  "1.2.17": "Low",
  "1.2.18": "Low",
  "1.2.19": "Low",
  "1.2.20": "Low",
  "1.2.21": "Medium",
  "1.2.22": "Low",
  "1.2.23": "High",
  "1.2.24": "Medium",
  "1.2.25": "Medium",
  "1.2.26": "High",
  "1.2.27": "Medium",
  "1.2.28": "Medium",
  "1.2.29": "Low",
  "1.2.30": "Low",
  "4.1.1": "Medium",
  "4.1.2": "Medium",
  "4.1.3": "Medium",
  "4.1.4": "Medium",
  "4.1.5": "High",
  "4.1.6": "Medium",
  "4.1.7": "Medium",
  "4.1.8": "Medium",
  "4.1.9": "Medium",
  "4.1.10": "Medium",
  "4.2.1": "High",
  "4.2.2": "Critical",
  "4.2.3": "Medium",
  "4.2.4": "Medium",
  "4.2.5": "Low",
  "4.2.6": "Low",
  "4.2.7": "Low",
  "4.2.8": "Low",
  "4.2.9": "Medium",
  "4.2.10": "Low",
  "4.2.11": "Low",
  "4.2.12": "Low",
  "4.2.13": "Low",
  "4.2.14": "Low",
};

/** Which object a finding is about, per component. */
export interface CisTargets {
  /** Default `Pod/kube-system/kube-apiserver`. */
  readonly apiserver?: string;
  /** Default `Node/unknown`; the in-cluster path passes `Node/<name>`. */
  readonly kubelet?: string;
  /** Whose files the 1.1.x/4.1.x results are about; default the kubelet target, else `Node/unknown`. */
  readonly node?: string;
}

/**
 * One Finding per failed check (id `CIS-<id>`, area `controlPlane`, severity from {@link CIS_SEVERITY}),
 * and one Info finding per Unknown result saying why it could not be evaluated.
 */
export function cisFindings(results: readonly CheckResult[], targets: CisTargets = {}): Finding[] {
  const out: Finding[] = [];
  for (const r of results) {
    if (r.status !== "Fail" && r.status !== "Unknown") continue;
    const resource =
      r.id.startsWith("1.1.") || r.id.startsWith("4.1.")
        ? (targets.node ?? targets.kubelet ?? "Node/unknown")
        : r.id.startsWith("4.")
          ? (targets.kubelet ?? "Node/unknown")
          : (targets.apiserver ?? "Pod/kube-system/kube-apiserver");
    out.push({
      id: `CIS-${r.id}`,
      severity: r.status === "Fail" ? (CIS_SEVERITY[r.id] ?? "Medium") : "Info",
      resource,
      message:
        r.status === "Fail"
          ? `CIS ${r.id} (${r.title}) fails: ${r.evidence}`
          : `CIS ${r.id} (${r.title}) could not be evaluated: ${r.evidence}`,
      area: "controlPlane",
    });
  }
  return out;
}
