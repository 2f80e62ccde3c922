/**
 * Which policies an RBAC event concerns, in proportion to what it changes. RBAC findings judge every
 * binding in the cluster (spec.rbac.audit defaults to {}, so every policy audits), but each finding is
 * about one binding judged with the one role it references: an event on a binding can only move that
 * binding's findings, an event on a role only those of the bindings referencing it. RbacFindingsMemo
 * keeps, per audit configuration, the findings of every binding that has some (a fingerprint each), and
 * answers which configurations an event moved; only the policies with such a configuration are
 * reconciled, plus those whose desired state depends on the object (a Role or RoleBinding at a generated
 * child's name, the ClusterRoles bounding what generated Roles may grant, an object a policy controls) and,
 * for grants that may concern the operator itself, every policy (a Forbidden write waits for them).
 *
 * Findings are compared before exemptions: exemptions only split the same findings into counted and
 * exempted, so findings that did not move cannot move a policy's counts (an exemption that expires
 * requeues its policy by itself).
 */
import type {
  KubernetesObject,
  V1ClusterRole,
  V1ClusterRoleBinding,
  V1Namespace,
  V1Role,
  V1RoleBinding,
} from "@kubernetes/client-node";
import type { ClusterSecurityPolicy } from "../api/v1alpha1/policy.js";
import { GRANTABLE_CLUSTER_ROLE, MANAGED_BY_VALUE, OPERATOR_NAMESPACE } from "../api/vocabulary.js";
import { selectNamespaces } from "../desired/namespaces.js";
import { effectiveSpec, isDeleting } from "../desired/spec.js";
import { controllingPolicy } from "../drift/ownership.js";
import { bindingFindings, type BindingKind, type RbacAuditSpec } from "../findings/rbac.js";
import { objectKey } from "./snapshot.js";

/** What the memo reads of the RBAC caches: lookups by name and the binding lists. */
export interface RbacView {
  clusterRole(name: string): V1ClusterRole | undefined;
  role(namespace: string, name: string): V1Role | undefined;
  clusterRoleBinding(name: string): V1ClusterRoleBinding | undefined;
  roleBinding(namespace: string, name: string): V1RoleBinding | undefined;
  clusterRoleBindings(): readonly V1ClusterRoleBinding[];
  roleBindings(): readonly V1RoleBinding[];
}

/**
 * The audit configuration a policy's findings are computed with, or undefined when it reads no RBAC
 * findings: spec.rbac.audit, and the control-plane area's CIS 5.x checks (they read the same findings,
 * with `{}` when there is no audit).
 */
export function findingsAudit(policy: ClusterSecurityPolicy): RbacAuditSpec | undefined {
  const spec = effectiveSpec(policy);
  return spec.rbac?.audit ?? (spec.controlPlane ? {} : undefined);
}

/** One key per distinct audit configuration. */
export function auditKey(audit: RbacAuditSpec): string {
  const sorted = (v: unknown): unknown =>
    Array.isArray(v)
      ? v.map(sorted)
      : v && typeof v === "object"
        ? Object.fromEntries(
            Object.entries(v)
              .sort(([a], [b]) => a.localeCompare(b))
              .map(([k, x]) => [k, sorted(x)]),
          )
        : v;
  return JSON.stringify(sorted(audit));
}

type Ref = { kind: BindingKind; namespace: string | undefined; name: string };

const isBinding = (o: KubernetesObject): boolean => "roleRef" in o || "subjects" in o;

/** The bindings whose findings an event on `o` may move: itself, or those referencing the role. */
function affectedBindings(o: KubernetesObject, view: RbacView): Ref[] {
  const name = o.metadata?.name;
  const namespace = o.metadata?.namespace;
  if (!name) return [];
  if (isBinding(o)) return [{ kind: namespace ? "RoleBinding" : "ClusterRoleBinding", namespace, name }];
  const refs: Ref[] = [];
  const add = (kind: BindingKind, b: V1RoleBinding | V1ClusterRoleBinding) => {
    if (b.metadata?.name) refs.push({ kind, namespace: b.metadata.namespace, name: b.metadata.name });
  };
  if (namespace) {
    for (const b of view.roleBindings())
      if (b.metadata?.namespace === namespace && b.roleRef?.kind === "Role" && b.roleRef.name === name)
        add("RoleBinding", b);
    return refs;
  }
  for (const b of view.clusterRoleBindings())
    if (b.roleRef?.kind === "ClusterRole" && b.roleRef.name === name) add("ClusterRoleBinding", b);
  for (const b of view.roleBindings())
    if (b.roleRef?.kind === "ClusterRole" && b.roleRef.name === name) add("RoleBinding", b);
  return refs;
}

/**
 * The last known RBAC findings of every binding that has some, per audit configuration (bindings without
 * findings cost nothing). Kept equal to what the RBAC caches hold by being told every event after the
 * cache applied it; reset() whenever that chain may have broken (a cache not synced).
 */
export class RbacFindingsMemo {
  private readonly byAudit = new Map<string, Map<string, string>>();

  reset(): void {
    this.byAudit.clear();
  }

  /** How many fingerprints are kept (for tests and memory estimates). */
  get size(): number {
    let n = 0;
    for (const m of this.byAudit.values()) n += m.size;
    return n;
  }

  /**
   * The audit keys (of `audits`) whose findings the event on `o` moved. A configuration seen for the first
   * time is computed over every binding now and counts as moved (there is nothing to compare with).
   */
  moved(o: KubernetesObject, view: RbacView, audits: ReadonlyMap<string, RbacAuditSpec>): Set<string> {
    for (const k of this.byAudit.keys()) if (!audits.has(k)) this.byAudit.delete(k);
    const moved = new Set<string>();
    let refs: Ref[] | undefined;
    for (const [key, audit] of audits) {
      let memo = this.byAudit.get(key);
      if (!memo) {
        this.byAudit.set(key, (memo = new Map<string, string>()));
        const all: Ref[] = [
          ...view.clusterRoleBindings().map((b) => refOf("ClusterRoleBinding", b)),
          ...view.roleBindings().map((b) => refOf("RoleBinding", b)),
        ].filter((r): r is Ref => r !== undefined);
        for (const r of all) this.update(memo, r, view, audit);
        moved.add(key);
        continue;
      }
      refs ??= affectedBindings(o, view);
      for (const r of refs) if (this.update(memo, r, view, audit)) moved.add(key);
    }
    return moved;
  }

  /** Recomputes one binding's findings into `memo`; whether they changed. */
  private update(memo: Map<string, string>, r: Ref, view: RbacView, audit: RbacAuditSpec): boolean {
    const key = objectKey(r.kind, r.namespace, r.name);
    const binding =
      r.kind === "RoleBinding"
        ? r.namespace
          ? view.roleBinding(r.namespace, r.name)
          : undefined
        : view.clusterRoleBinding(r.name);
    const findings = binding
      ? bindingFindings(binding, r.kind, view, audit, { ignoreManagedBy: MANAGED_BY_VALUE })
      : [];
    const now = findings.length ? JSON.stringify(findings) : undefined;
    const before = memo.get(key);
    if (now === before) return false;
    if (now === undefined) memo.delete(key);
    else memo.set(key, now);
    return true;
  }
}

function refOf(kind: BindingKind, b: V1RoleBinding | V1ClusterRoleBinding): Ref | undefined {
  const name = b.metadata?.name;
  return name ? { kind, namespace: b.metadata?.namespace, name } : undefined;
}

/** Subjects that may be (or include) the operator's own ServiceAccount in OPERATOR_NAMESPACE. */
function mayGrantOperator(b: V1RoleBinding | V1ClusterRoleBinding): boolean {
  const ns = b.metadata?.namespace;
  return (b.subjects ?? []).some((s) => {
    if (s.kind === "ServiceAccount") return (s.namespace ?? ns) === OPERATOR_NAMESPACE;
    if (s.kind === "User") return s.name.startsWith(`system:serviceaccount:${OPERATOR_NAMESPACE}:`);
    return (
      s.kind === "Group" &&
      [
        "system:authenticated",
        "system:serviceaccounts",
        `system:serviceaccounts:${OPERATOR_NAMESPACE}`,
      ].includes(s.name)
    );
  });
}

/**
 * Whether the event may change what the operator itself is allowed to do: a binding whose subjects may
 * include the operator, a role in the operator's namespace, or a Role or ClusterRole such a binding
 * references (a Role granted to the operator by a RoleBinding in its own namespace). A
 * write that failed Forbidden (an encryption rewrite, a Role beyond what the operator holds) waits for
 * such a change without a retry loop, so it concerns every policy. Rare, and cheap to over-approximate.
 */
export function mayConcernOperator(o: KubernetesObject, view: RbacView): boolean {
  const name = o.metadata?.name;
  const namespace = o.metadata?.namespace;
  if (isBinding(o)) {
    const current = namespace
      ? name && view.roleBinding(namespace, name)
      : name && view.clusterRoleBinding(name);
    // A deleted binding is judged from the event's own object (the cache no longer holds it).
    return mayGrantOperator((current || o) as V1RoleBinding);
  }
  if (namespace)
    return (
      namespace === OPERATOR_NAMESPACE ||
      view
        .roleBindings()
        .some(
          (b) =>
            b.metadata?.namespace === namespace &&
            b.roleRef?.kind === "Role" &&
            b.roleRef.name === name &&
            mayGrantOperator(b),
        )
    );
  return [...view.clusterRoleBindings(), ...view.roleBindings()].some(
    (b) => b.roleRef?.kind === "ClusterRole" && b.roleRef.name === name && mayGrantOperator(b),
  );
}

/**
 * The policies an RBAC event concerns:
 * - those reading RBAC findings (findingsAudit) whose audit configuration's findings the event moved
 *   (`moved`: RbacFindingsMemo.moved, or "all" when the memo cannot tell, e.g. a cache not synced);
 * - for a Role or RoleBinding: the policies selecting its namespace that generate a Role of that name
 *   (an object at a child's name, or a RoleBinding child's Role);
 * - for a ClusterRole: the policies generating Roles when it is the one bounding what they may grant;
 * - the policy an unlabelled object's controller ownerReference names (a stripped child: orphans.ts).
 * `namespace` is the object's namespace as cached (undefined for cluster-scoped ones).
 */
export function rbacEventPolicies(
  policies: readonly ClusterSecurityPolicy[],
  o: KubernetesObject,
  namespace: V1Namespace | undefined,
  moved: ReadonlySet<string> | "all" = "all",
): string[] {
  const name = o.metadata?.name;
  const namespaced = o.metadata?.namespace !== undefined;
  const controller = controllingPolicy(o);
  return policies
    .filter((p) => {
      if (isDeleting(p)) return false;
      if (controller === p.metadata.name) return true;
      const audit = findingsAudit(p);
      if (audit && (moved === "all" || moved.has(auditKey(audit)))) return true;
      const spec = effectiveSpec(p);
      const roles = spec.rbac?.roles ?? [];
      if (roles.length === 0) return false;
      if (!namespaced) return !isBinding(o) && name === GRANTABLE_CLUSTER_ROLE;
      return (
        roles.some((r) => r.name === name) &&
        namespace !== undefined &&
        selectNamespaces(spec, [namespace]).length > 0
      );
    })
    .map((p) => p.metadata.name);
}
