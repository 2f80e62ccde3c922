/**
 * The inputs of the CIS 5.x checks (src/cis/checks/policies.ts) read from a cluster, for `csp-operator check
 * --kubeconfig`: namespaces and their labels, every Role and binding (judged by the RBAC findings with the
 * defaults of `spec.rbac.audit`), NetworkPolicies, the objects in `default`, and on request every Pod for
 * 5.4.1. The operator's controlPlane area builds the same inputs from its caches instead. A read that
 * fails leaves its input out with the reason: its checks are Unknown, never Pass.
 */
import type { PolicyObjects } from "../../cluster/cispolicies.js";
import { problemOf } from "../../cluster/cispolicies.js";
import { rbacFindings, type RbacInventory } from "../../findings/rbac.js";
import { MANAGED_BY_VALUE } from "../../api/vocabulary.js";
import type { PolicyInputs } from "../checks/policies.js";

/** The reads {@link gatherPolicyInputs} needs; src/cluster/cispolicies.ts PolicyObjectReader has them. */
export interface PolicyReads {
  namespaces(): Promise<{ name: string; labels: Record<string, string> }[]>;
  rbacInventory(): Promise<RbacInventory>;
  policyObjects(opts: { secretEnv?: boolean }): Promise<PolicyObjects>;
}

/** Reads what the 5.x checks need; `secretEnv` adds the scan of every Pod (5.4.1). */
export async function gatherPolicyInputs(reads: PolicyReads, secretEnv: boolean): Promise<PolicyInputs> {
  const missing: { -readonly [K in keyof NonNullable<PolicyInputs["missing"]>]: string } = {};
  let namespaces: PolicyInputs["namespaces"];
  try {
    namespaces = await reads.namespaces();
  } catch (err) {
    missing.namespaces = problemOf(err, "listing namespaces", "list on namespaces").message;
  }
  let findings: PolicyInputs["rbacFindings"];
  try {
    findings = rbacFindings(await reads.rbacInventory(), {}, { ignoreManagedBy: MANAGED_BY_VALUE });
  } catch (err) {
    missing.rbacFindings = problemOf(
      err,
      "listing Roles, ClusterRoles and their bindings",
      "list on roles, clusterroles, rolebindings and clusterrolebindings",
    ).message;
  }
  const extra = await reads.policyObjects({ secretEnv });
  return {
    ...(namespaces ? { namespaces } : {}),
    ...(findings ? { rbacFindings: findings } : {}),
    ...(extra.networkPolicyNamespaces ? { networkPolicyNamespaces: extra.networkPolicyNamespaces } : {}),
    ...(extra.defaultNamespaceObjects ? { defaultNamespaceObjects: extra.defaultNamespaceObjects } : {}),
    ...(extra.secretEnv ? { secretEnv: extra.secretEnv } : {}),
    missing: { ...missing, ...extra.missing },
  };
}
