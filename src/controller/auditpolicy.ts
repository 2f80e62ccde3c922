import { auditPolicyConfigMap, renderAuditPolicy, renderAuditPolicyYaml } from "../desired/auditpolicy.js";
import { contentHash, fileReports } from "../evidence/agentreports.js";
import { auditPolicyCondition } from "../evidence/auditpolicy.js";
import { lintAuditPolicy } from "../findings/auditpolicy-lint.js";
import type { AreaFactory, AreaInput, AreaReconciler, AreaReport } from "./areas.js";

/**
 * The audit policy area. Its ConfigMap is an ordinary child (desired/index.ts: created, restored on
 * drift, garbage-collected with the policy); this area adds what children cannot say: lint findings about
 * the rendered policy, and whether a node agent reports having written it where kube-apiserver reads it.
 */
export class AuditPolicyArea implements AreaReconciler {
  readonly name = "auditPolicy";

  inUse(spec: AreaInput["spec"]): boolean {
    return !!spec.auditPolicy;
  }

  reconcile(input: AreaInput): Promise<AreaReport> {
    const policy = renderAuditPolicy(input.spec.auditPolicy!);
    const yaml = renderAuditPolicyYaml(policy);
    const cm = auditPolicyConfigMap(input.policy.metadata.name, yaml);
    const ref = { namespace: cm.metadata!.namespace!, name: cm.metadata!.name! };
    return Promise.resolve({
      findings: lintAuditPolicy(policy, `ConfigMap/${ref.namespace}/${ref.name}`),
      conditions: [
        auditPolicyCondition(
          ref,
          contentHash(yaml),
          fileReports(input.snapshot.configMaps ?? []),
          input.enforce,
        ),
      ],
    });
  }
}

export const auditPolicyArea: AreaFactory = () => new AuditPolicyArea();
