/**
 * Maps CIS results to operator findings: control-plane settings are reported, never changed, by the
 * operator. Only failures and checks that could not be evaluated become findings; Pass, Manual and
 * NotApplicable results stay in the report. The severity is the check definition's own (see
 * {@link CisCheck.severity}); there is no fallback.
 */
import type { Finding } from "../../findings/finding.js";
import type { CheckResult } from "../checks/check.js";
import { checkDefinition } from "../checks/registry.js";

/** Which object a finding is about, per component. */
export interface CisTargets {
  /** Default `Pod/kube-system/kube-apiserver`. */
  readonly apiserver?: string;
  /** Default `Pod/kube-system/kube-controller-manager`. */
  readonly controllerManager?: string;
  /** Default `Pod/kube-system/kube-scheduler`. */
  readonly scheduler?: string;
  /** Default `Pod/kube-system/etcd`. */
  readonly etcd?: string;
  /** Default `Node/unknown`; the in-cluster path passes `Node/<name>`. */
  readonly kubelet?: string;
  /** Whose files the 1.1.x/4.1.x results are about; default the kubelet target, else `Node/unknown`. */
  readonly node?: string;
  /** What the 5.x (cluster policy) results are about; default `Cluster/kubernetes`. */
  readonly cluster?: string;
}

/** The object a result is about, by its benchmark section. */
export function resourceOf(id: string, targets: CisTargets = {}): string {
  if (id.startsWith("1.1.") || id.startsWith("4.1."))
    return targets.node ?? targets.kubelet ?? "Node/unknown";
  if (id.startsWith("4.")) return targets.kubelet ?? "Node/unknown";
  if (id.startsWith("1.3.")) return targets.controllerManager ?? "Pod/kube-system/kube-controller-manager";
  if (id.startsWith("1.4.")) return targets.scheduler ?? "Pod/kube-system/kube-scheduler";
  if (id.startsWith("2.")) return targets.etcd ?? "Pod/kube-system/etcd";
  if (id.startsWith("5.")) return targets.cluster ?? "Cluster/kubernetes";
  return targets.apiserver ?? "Pod/kube-system/kube-apiserver";
}

/**
 * One Finding per failed check (id `CIS-<id>`, area `controlPlane`, severity from the check's definition),
 * and one Info finding per Unknown result saying why it could not be evaluated. A failed result whose id
 * no definition has (an agent of another version) is reported Info, saying so, rather than guessed.
 */
export function cisFindings(results: readonly CheckResult[], targets: CisTargets = {}): Finding[] {
  const out: Finding[] = [];
  for (const r of results) {
    if (r.status !== "Fail" && r.status !== "Unknown") continue;
    const severity = r.severity ?? checkDefinition(r.id)?.severity;
    out.push({
      id: `CIS-${r.id}`,
      severity: r.status === "Fail" ? (severity ?? "Info") : "Info",
      resource: resourceOf(r.id, targets),
      message:
        r.status === "Fail"
          ? `CIS ${r.id} (${r.title}) fails: ${r.evidence}${severity === undefined ? " (a check this operator has no definition of; severity not judged)" : ""}`
          : `CIS ${r.id} (${r.title}) could not be evaluated: ${r.evidence}`,
      area: "controlPlane",
    });
  }
  return out;
}
