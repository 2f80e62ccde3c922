import { objectKey } from "../cluster/snapshot.js";
import type { Child } from "../desired/children.js";
import type { Drift } from "./checks.js";

/**
 * Generated RoleBindings whose Role or ServiceAccount, at the generated name, is not this policy's own
 * (another policy's, or an object someone else created: drift `Conflict` or `Unowned`). Binding them would
 * grant a foreign Role's rules, or give a foreign account the policy's Role, which is exactly what a
 * least-privilege policy must never do: such a binding is neither created nor kept. Keys are
 * `RoleBinding/<namespace>/<name>`. Pure.
 */
export function bindingsOnForeignObjects(children: readonly Child[], drift: readonly Drift[]): Set<string> {
  const blocked = new Set(
    drift
      .filter((d) => d.reason === "Conflict" || d.reason === "Unowned")
      .map((d) => objectKey(d.kind, d.namespace, d.name)),
  );
  const out = new Set<string>();
  for (const c of children) {
    if (c.kind !== "RoleBinding") continue;
    const ns = c.metadata.namespace;
    const roleRef = c.roleRef as { kind?: string; name?: string } | undefined;
    const subjects = (c.subjects ?? []) as { kind?: string; name?: string; namespace?: string }[];
    const targets = [
      ...(roleRef?.kind === "Role" && roleRef.name ? [objectKey("Role", ns, roleRef.name)] : []),
      ...subjects
        .filter((s) => s.kind === "ServiceAccount" && s.name)
        .map((s) => objectKey("ServiceAccount", s.namespace ?? ns, s.name!)),
    ];
    if (targets.some((t) => blocked.has(t))) out.add(objectKey("RoleBinding", ns, c.metadata.name));
  }
  return out;
}
