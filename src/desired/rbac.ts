import type { V1ClusterRole } from "@kubernetes/client-node";
import type { ClusterSecurityPolicySpec } from "../api/v1alpha1/policy.js";
import type { Child } from "./children.js";
import { describePermissions, uncovered } from "./grantable.js";

export type GeneratedRole = NonNullable<NonNullable<ClusterSecurityPolicySpec["rbac"]>["roles"]>[number];

/**
 * Least-privilege access for one `spec.rbac.roles` entry in one namespace: a Role with exactly the given
 * rules, a dedicated ServiceAccount whose token is not automounted (pods opt in with a projected token),
 * and a RoleBinding between them. The Role and the binding share the entry's name and the binding's roleRef
 * never changes, so the immutable roleRef never needs a replacement. Admission keeps each entry's
 * ServiceAccount distinct from every other entry's and from `default`.
 */
export function desiredRoleObjects(
  role: GeneratedRole,
  namespace: string,
  child: (
    kind: "Role" | "RoleBinding" | "ServiceAccount",
    name: string,
    fields: Record<string, unknown>,
    source: string,
  ) => Child,
): Child[] {
  const sa = role.serviceAccount ?? role.name;
  const field = `spec.rbac.roles[name=${role.name}]`;
  const rules = role.rules.map((r) => {
    const rule: Record<string, string[]> = {};
    if (r.apiGroups) rule["apiGroups"] = [...r.apiGroups];
    if (r.resources) rule["resources"] = [...r.resources];
    if (r.resourceNames) rule["resourceNames"] = [...r.resourceNames];
    rule["verbs"] = [...r.verbs];
    return rule;
  });
  return [
    child(
      "ServiceAccount",
      sa,
      { automountServiceAccountToken: false },
      `${field}.${role.serviceAccount === undefined ? "name" : "serviceAccount"}`,
    ),
    child("Role", role.name, { rules }, field),
    child(
      "RoleBinding",
      role.name,
      {
        roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: role.name },
        subjects: [{ kind: "ServiceAccount", name: sa, namespace }],
      },
      field,
    ),
  ];
}

/**
 * The `spec.rbac.roles` entries whose rules fall outside the granting ClusterRole's rules (as the
 * aggregation controller filled them in), each with the permissions it is missing in words. Such an entry
 * must not be applied: the API server's own escalation check would let through anything the operator
 * holds for its other work (Roles, bindings, Secrets with the encryption overlay), not only what it may
 * grant. An absent ClusterRole grants nothing. Pure.
 */
export function ungrantableRoles(
  roles: readonly GeneratedRole[],
  clusterRoles: readonly V1ClusterRole[],
  grantableName: string,
): Map<string, string> {
  const out = new Map<string, string>();
  const grantable = clusterRoles.find((r) => r.metadata?.name === grantableName);
  for (const role of roles) {
    const missing = uncovered(grantable?.rules ?? [], role.rules);
    if (missing.length === 0) continue;
    out.set(
      role.name,
      describePermissions(missing) + (grantable ? "" : ` (ClusterRole ${grantableName} does not exist)`),
    );
  }
  return out;
}
