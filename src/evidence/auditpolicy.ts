/**
 * PURE: the `AuditPolicyApplied` condition. The operator can render the audit Policy and publish it, but
 * only the node that runs kube-apiserver can place it at `--audit-policy-file`; so the condition is True
 * only when an agent reports having written exactly the rendered bytes, and otherwise says where the file
 * is and how to deliver it.
 */
import type { AreaCondition } from "../status/status.js";
import { judgeDelivery, type FileReport } from "./agentreports.js";

export const AUDIT_POLICY_APPLIED = "AuditPolicyApplied";

export function auditPolicyCondition(
  configMap: { namespace: string; name: string },
  expectedHash: string,
  reports: readonly FileReport[],
  enforce: boolean,
): AreaCondition {
  const where = `ConfigMap ${configMap.namespace}/${configMap.name}`;
  const howTo =
    "deploy the agent overlay (kubectl apply -k config/agent), or copy its audit-policy.yaml to the path given to kube-apiserver --audit-policy-file";
  if (!enforce)
    return {
      type: AUDIT_POLICY_APPLIED,
      status: "False",
      reason: "NotDelivered",
      message: `Audit mode: the policy would be rendered into ${where}; nothing written`,
    };
  const d = judgeDelivery(`ConfigMap/${configMap.namespace}/${configMap.name}`, expectedHash, reports);
  if (d.delivered)
    return {
      type: AUDIT_POLICY_APPLIED,
      status: "True",
      reason: "Delivered",
      message: `audit policy ${d.message}`,
    };
  return {
    type: AUDIT_POLICY_APPLIED,
    status: d.reports.length === 0 ? "Unknown" : "False",
    reason: "NotDelivered",
    message: `the audit policy is rendered into ${where} (${d.message}); to deliver it, ${howTo}`,
  };
}
