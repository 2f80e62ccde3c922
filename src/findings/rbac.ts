/**
 * Findings about RBAC that already exists in the cluster. The operator does not own these objects, so it
 * reports them and never edits them.
 *
 * A role is judged by where it is bound, never in isolation. An unbound ClusterRole full of wildcards
 * grants nothing, so it is not reported. A RoleBinding that references a ClusterRole grants it only in the
 * binding's namespace, so its findings are scoped (and rated) accordingly. Every finding is about a
 * binding, because the binding is what you delete or narrow to fix it.
 *
 * Pure: takes a snapshot of the four RBAC kinds and returns sorted, deduplicated findings. Odd input
 * (missing rules, subjects or names, unknown kinds) is skipped and never causes an exception.
 */
import type {
  V1ClusterRole,
  V1ClusterRoleBinding,
  V1ObjectMeta,
  V1PolicyRule,
  V1Role,
  V1RoleBinding,
} from "@kubernetes/client-node";
import type { ClusterSecurityPolicySpec } from "../api/v1alpha1/policy.js";
import type { Finding, Severity } from "./finding.js";
import { objectKey } from "../cluster/snapshot.js";
import { drain, SLICE, sortedSteps, type Steps } from "../desired/slices.js";
import { SEVERITY_ORDER, sortFindings } from "./finding.js";

/** A bound role's rules include `*` verbs, resources or API groups (or `*\/subresource`). */
export const RBAC_WILDCARD = "RBAC-WILDCARD";
/** cluster-admin, or a ClusterRole granting `*` on `*` in `*`, bound cluster-wide to a subject not allowed to hold it. */
export const RBAC_CLUSTER_ADMIN = "RBAC-CLUSTER-ADMIN";
/** Rights granted to unauthenticated requests (`system:anonymous`, `system:unauthenticated`). */
export const RBAC_ANONYMOUS = "RBAC-ANONYMOUS";
/** Rights granted to every authenticated identity (`system:authenticated`) beyond the Kubernetes defaults. */
export const RBAC_AUTHENTICATED = "RBAC-AUTHENTICATED";
/** escalate/bind on roles, or impersonate on identities: ways to obtain rights one was not given. */
export const RBAC_ESCALATION = "RBAC-ESCALATION";
/** get, list or watch on Secrets, without resourceNames. */
export const RBAC_SECRETS_READ = "RBAC-SECRETS-READ";
/** Access to `nodes/proxy`, which reaches the kubelet API (exec into any pod on the node). */
export const RBAC_NODES_PROXY = "RBAC-NODES-PROXY";
/** Rights granted to a namespace's `default` ServiceAccount, which every pod without its own uses. */
export const RBAC_DEFAULT_SA = "RBAC-DEFAULT-SA";
/** A binding to a role that does not exist: grants nothing now, but whoever creates that role later does. */
export const RBAC_DANGLING_BINDING = "RBAC-DANGLING-BINDING";

/** Every id this module can emit, e.g. for documentation and exemption validation. */
export const RBAC_FINDING_IDS: readonly string[] = [
  RBAC_WILDCARD,
  RBAC_CLUSTER_ADMIN,
  RBAC_ANONYMOUS,
  RBAC_AUTHENTICATED,
  RBAC_ESCALATION,
  RBAC_SECRETS_READ,
  RBAC_NODES_PROXY,
  RBAC_DEFAULT_SA,
  RBAC_DANGLING_BINDING,
];

/** A snapshot of the cluster's RBAC objects; the caller lists them, this module only reads them. */
export interface RbacInventory {
  clusterRoles: readonly V1ClusterRole[];
  roles: readonly V1Role[];
  clusterRoleBindings: readonly V1ClusterRoleBinding[];
  roleBindings: readonly V1RoleBinding[];
}

/** `spec.rbac.audit` of the policy; every field is optional and defaults as the CRD does. */
export type RbacAuditSpec = NonNullable<NonNullable<ClusterSecurityPolicySpec["rbac"]>["audit"]>;

/** Options that do not come from the policy. */
export interface RbacFindingOptions {
  /**
   * Value of `app.kubernetes.io/managed-by` on the operator's own generated Roles and RoleBindings. They
   * are analysed like everything else (they must be clean); the label only adds a hint to the message
   * that the fix belongs in `spec.rbac.roles`, since editing the object would be reverted.
   */
  ignoreManagedBy?: string;
}

/**
 * Walks every ClusterRoleBinding and RoleBinding to the role it grants and reports what is unsafe about
 * that grant, sorted (`sortFindings`) and deduplicated.
 *
 * Built-in bindings: a binding is treated as Kubernetes' own when its name is `cluster-admin` or starts
 * with `system:` (a prefix reserved for Kubernetes) AND every subject is a control-plane identity (a
 * `system:` user or group other than anonymous/authenticated/unauthenticated/serviceaccounts, or a
 * non-default ServiceAccount in kube-system). Such bindings are exempt from the permission checks
 * (wildcards, escalation, secrets, nodes/proxy) that the controllers' bootstrap roles legitimately trip.
 * Both conditions are needed: adding a user to a `system:` binding, or naming a binding `system:x` to
 * grant rights to a person, is reported. The subject checks (anonymous, authenticated, default
 * ServiceAccount) and the cluster-admin check are never exempt; group `system:masters` may always hold
 * cluster-admin because the API server treats it as superuser without RBAC anyway.
 */
export function rbacFindings(
  inv: RbacInventory,
  audit: RbacAuditSpec,
  opts: RbacFindingOptions = {},
): Finding[] {
  return drain(rbacFindingsSteps(inv, audit, opts));
}

/**
 * rbacFindings in steps (see desired/slices.ts): the memo compared, the bindings viewed and judged, the
 * findings sorted, each a pass that yields every SLICE items, so a full plan at 10,000 bindings never
 * holds the event loop for one unsliced walk.
 */
export function* rbacFindingsSteps(
  inv: RbacInventory,
  audit: RbacAuditSpec,
  opts: RbacFindingOptions = {},
): Steps<Finding[]> {
  // Every reconcile and every repair of every policy asks, mostly of the very same objects (the informers
  // hand the same object until it changes): the answer for the same objects is kept, per configuration
  // and per scope (the whole cluster, or one namespace's repair: see memoOf).
  const config = JSON.stringify([audit, opts.ignoreManagedBy ?? null]);
  const scope = scopeOf(inv);
  const memo = memoOf(scope);
  const key = scope === FULL ? config : `${config}\u0000${scope}`;
  const known = memo.get(key);
  if (known && (yield* sameInventorySteps(known.inv, inv))) {
    memo.touch(key, known);
    return [...known.findings];
  }
  const ctx = contextOf(audit, opts);
  const index = indexRoles(inv);
  const findings: Finding[] = [];
  let n = 0;
  for (const [kind, bindings] of [
    ["ClusterRoleBinding", list(inv.clusterRoleBindings)],
    ["RoleBinding", list(inv.roleBindings)],
  ] as const) {
    for (const b of bindings) {
      const v = viewOf(b, kind);
      if (v) findings.push(...analyseBinding(v, index, ctx));
      if (++n % SLICE === 0) yield;
    }
  }
  const out = yield* sortedSteps(dedupe(findings), findingOrder);
  memo.set(key, { inv: copyInventory(inv), findings: out });
  return [...out];
}

/** sortFindings' order (most severe first, then id, resource and message), for sortedSteps. */
function findingOrder(a: Finding, b: Finding): number {
  const rank = (s: Severity) => SEVERITY_ORDER.indexOf(s);
  return (
    rank(a.severity) - rank(b.severity) ||
    a.id.localeCompare(b.id) ||
    a.resource.localeCompare(b.resource) ||
    a.message.localeCompare(b.message)
  );
}

interface Judged {
  inv: RbacInventory;
  findings: readonly Finding[];
}

/** A bounded memo: `touch` marks an entry used; past `size` entries, the least recently used goes. */
class Memo {
  private readonly entries = new Map<string, Judged>();
  constructor(private readonly size: number) {}
  get(key: string): Judged | undefined {
    return this.entries.get(key);
  }
  touch(key: string, value: Judged): void {
    this.entries.delete(key);
    this.entries.set(key, value);
  }
  set(key: string, value: Judged): void {
    this.touch(key, value);
    while (this.entries.size > this.size) this.entries.delete(this.entries.keys().next().value!);
  }
  clear(): void {
    this.entries.clear();
  }
}

/** The scope of an inventory made for a plan of the whole cluster. */
const FULL = "";

/**
 * What an inventory covers: one namespace's (a repair's: that namespace's Roles and RoleBindings, no
 * ClusterRoleBinding) is keyed by that namespace; anything else is the whole cluster's (which always
 * holds Kubernetes' own ClusterRoleBindings). One pass of
 * string comparisons, stopped at the first that differs.
 */
function scopeOf(inv: RbacInventory): string {
  if (list(inv.clusterRoleBindings).length > 0) return FULL;
  let ns: string | undefined;
  for (const o of [...list(inv.roleBindings), ...list(inv.roles)]) {
    const n = o?.metadata?.namespace;
    if (typeof n !== "string") return FULL;
    if (ns === undefined) ns = n;
    else if (n !== ns) return FULL;
  }
  // No binding, no role at all: a namespace with none (judged at once), not the cluster's inventory.
  return `ns:${ns ?? ""}`;
}

/**
 * The whole cluster's inventories, one per audit configuration (a handful), apart from the namespaces'
 * (one per repaired namespace and configuration, the most recently used kept): a repair never evicts what
 * the next full plan needs.
 */
const fullMemo = new Memo(16);
const namespaceMemo = new Memo(64);
const memoOf = (scope: string): Memo => (scope === FULL ? fullMemo : namespaceMemo);

/** Forgets every judged inventory (tests). */
export function clearRbacFindingsMemo(): void {
  fullMemo.clear();
  namespaceMemo.clear();
}

/** The lists as they are now (a caller's array may change after the call; the objects in it do not). */
function copyInventory(inv: RbacInventory): RbacInventory {
  return {
    clusterRoles: [...list(inv.clusterRoles)],
    roles: [...list(inv.roles)],
    clusterRoleBindings: [...list(inv.clusterRoleBindings)],
    roleBindings: [...list(inv.roleBindings)],
  };
}

/**
 * Whether two inventories hold the very same objects in the same order (an informer replaces an object
 * it saw change, it never edits one in place): one pointer comparison per object, in steps.
 */
function* sameInventorySteps(a: RbacInventory, b: RbacInventory): Steps<boolean> {
  const pairs = [
    [a.clusterRoles, list(b.clusterRoles)],
    [a.roles, list(b.roles)],
    [a.clusterRoleBindings, list(b.clusterRoleBindings)],
    [a.roleBindings, list(b.roleBindings)],
  ] as const;
  for (const [x, y] of pairs) if (x.length !== y.length) return false;
  for (const [x, y] of pairs) {
    if (x === y) continue;
    for (let i = 0; i < x.length; i++) {
      if (x[i] !== y[i]) return false;
      if ((i + 1) % (SLICE * 64) === 0) yield;
    }
  }
  return true;
}

function sameItems<T>(a: readonly T[], b: readonly T[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Where bindingFindings looks up the role a binding references (an informer cache, for one). */
export interface RoleSource {
  clusterRole(name: string): V1ClusterRole | undefined;
  role(namespace: string, name: string): V1Role | undefined;
}

/**
 * The findings of one binding: exactly the ones `rbacFindings` reports with that binding as `resource`
 * (every finding is about one binding, judged with the one role it references), so a change to a binding
 * or a role can be judged without walking every binding in the cluster.
 */
export function bindingFindings(
  binding: V1ClusterRoleBinding | V1RoleBinding,
  kind: BindingKind,
  roles: RoleSource,
  audit: RbacAuditSpec,
  opts: RbacFindingOptions = {},
): Finding[] {
  const v = viewOf(binding, kind);
  if (!v) return [];
  const roleView = (r: V1ClusterRole | V1Role | undefined): RoleView | undefined =>
    r && nonEmpty(r.metadata?.name) ? { rules: rulesOf(r.rules), labels: labelsOf(r.metadata) } : undefined;
  const index: RoleIndex = {
    clusterRoles: { get: (name) => roleView(roles.clusterRole(name)) },
    roles: {
      get: (key) => {
        const slash = key.indexOf("/");
        return roleView(roles.role(key.slice(0, slash), key.slice(slash + 1)));
      },
    },
  };
  return sortFindings(dedupe(analyseBinding(v, index, contextOf(audit, opts))));
}

// ---------------------------------------------------------------------------------------------------
// Model

type SubjectKind = "User" | "Group" | "ServiceAccount";
export type BindingKind = "ClusterRoleBinding" | "RoleBinding";
type RoleKind = "ClusterRole" | "Role";

/** A subject normalised: ServiceAccount namespaces filled in, `system:serviceaccount:ns:name` users as SAs. */
interface Who {
  kind: SubjectKind;
  name: string;
  /** Only for ServiceAccounts. */
  namespace: string | undefined;
}

/** The parts of either binding kind the checks need. */
interface BindingView {
  kind: BindingKind;
  name: string;
  /** Undefined for a ClusterRoleBinding: the grant is cluster-wide. */
  namespace: string | undefined;
  roleRef: { kind: string; name: string } | undefined;
  subjects: readonly unknown[];
  labels: Readonly<Record<string, string>>;
}

/** A binding resolved to the role it grants: the unit every check judges. */
interface Grant {
  ref: string;
  /** Undefined when the grant is cluster-wide. */
  namespace: string | undefined;
  roleKind: RoleKind;
  roleName: string;
  rules: readonly V1PolicyRule[];
  subjects: readonly Who[];
  /** Kubernetes' own binding to its control-plane components; see `rbacFindings`. */
  builtIn: boolean;
  /** The role grants every verb on every resource in every group (or is cluster-admin). */
  adminEquivalent: boolean;
  /** Binding or role carries the operator's managed-by label. */
  generated: boolean;
}

interface Context {
  forbidWildcards: boolean;
  forbidClusterAdmin: boolean;
  allowedAdmins: ReadonlySet<string>;
  managedBy: string | undefined;
}

/** The last ClusterRoles indexed (see indexRoles). */
let clusterRoleIndex: { of: readonly V1ClusterRole[]; index: ReadonlyMap<string, RoleView> } | undefined;

interface RoleIndex {
  clusterRoles: { get(name: string): RoleView | undefined };
  /** Keyed `namespace/name`. */
  roles: { get(key: string): RoleView | undefined };
}

interface RoleView {
  rules: readonly V1PolicyRule[];
  labels: Readonly<Record<string, string>>;
}

const MANAGED_BY = "app.kubernetes.io/managed-by";
const ANONYMOUS_USER = "system:anonymous";
const UNAUTHENTICATED = "system:unauthenticated";
const AUTHENTICATED = "system:authenticated";
const SUPERUSER_GROUP = "system:masters";
const MAX_SUBJECTS_IN_MESSAGE = 5;

/**
 * ClusterRoles Kubernetes' bootstrap policy binds to these broad groups. They grant discovery, version
 * and self-review only, so the default bindings are fine; any other grant to the group is a finding.
 */
const DEFAULT_BROAD_GRANTS: ReadonlyMap<string, ReadonlySet<string>> = new Map([
  [AUTHENTICATED, new Set(["system:basic-user", "system:discovery", "system:public-info-viewer"])],
  [UNAUTHENTICATED, new Set(["system:public-info-viewer"])],
]);

/** `system:` groups that are not control-plane identities: they contain users, workloads or anyone. */
const BROAD_SYSTEM_GROUPS: ReadonlySet<string> = new Set([
  AUTHENTICATED,
  UNAUTHENTICATED,
  ANONYMOUS_USER,
  "system:serviceaccounts",
]);

// ---------------------------------------------------------------------------------------------------
// Input normalisation (never throws)

function list<T>(xs: readonly T[] | undefined | null): readonly T[] {
  return Array.isArray(xs) ? (xs as readonly T[]) : [];
}

function strings(xs: unknown): string[] {
  return Array.isArray(xs) ? xs.filter((x): x is string => typeof x === "string") : [];
}

function rulesOf(rules: unknown): V1PolicyRule[] {
  return Array.isArray(rules)
    ? rules.filter((r): r is V1PolicyRule => typeof r === "object" && r !== null)
    : [];
}

function labelsOf(meta: V1ObjectMeta | undefined): Readonly<Record<string, string>> {
  const labels = meta?.labels;
  return typeof labels === "object" && labels !== null ? labels : {};
}

function nonEmpty(s: unknown): string | undefined {
  return typeof s === "string" && s !== "" ? s : undefined;
}

function contextOf(audit: RbacAuditSpec | undefined, opts: RbacFindingOptions): Context {
  const allowed = list(audit?.allowedClusterAdminSubjects)
    .map((s) => normaliseSubject(s, undefined))
    .filter((w): w is Who => w !== undefined);
  return {
    forbidWildcards: audit?.forbidWildcards ?? true,
    forbidClusterAdmin: audit?.forbidClusterAdminBindings ?? true,
    allowedAdmins: new Set(allowed.map(whoKey)),
    managedBy: nonEmpty(opts.ignoreManagedBy),
  };
}

function indexRoles(inv: RbacInventory): RoleIndex {
  // The ClusterRoles are the same for every namespace's repair: indexed once while they stay the same.
  const all = list(inv.clusterRoles);
  let clusterRoles =
    clusterRoleIndex && sameItems(clusterRoleIndex.of, all) ? clusterRoleIndex.index : undefined;
  if (!clusterRoles) {
    const index = new Map<string, RoleView>();
    for (const r of all) {
      const name = nonEmpty(r?.metadata?.name);
      if (name) index.set(name, { rules: rulesOf(r.rules), labels: labelsOf(r.metadata) });
    }
    clusterRoleIndex = { of: [...all], index };
    clusterRoles = index;
  }
  const roles = new Map<string, RoleView>();
  for (const r of list(inv.roles)) {
    const name = nonEmpty(r?.metadata?.name);
    const ns = nonEmpty(r?.metadata?.namespace);
    if (name && ns) roles.set(`${ns}/${name}`, { rules: rulesOf(r.rules), labels: labelsOf(r.metadata) });
  }
  return { clusterRoles, roles };
}

function viewOf(
  b: V1ClusterRoleBinding | V1RoleBinding | undefined,
  kind: BindingKind,
): BindingView | undefined {
  const name = nonEmpty(b?.metadata?.name);
  const namespace = kind === "RoleBinding" ? nonEmpty(b?.metadata?.namespace) : undefined;
  if (!b || !name || (kind === "RoleBinding" && !namespace)) return undefined;
  const refKind = nonEmpty(b.roleRef?.kind);
  const refName = nonEmpty(b.roleRef?.name);
  return {
    kind,
    name,
    namespace,
    roleRef: refKind && refName ? { kind: refKind, name: refName } : undefined,
    subjects: list(b.subjects),
    labels: labelsOf(b.metadata),
  };
}

/**
 * Normalises a subject the way the RBAC authorizer reads it: a ServiceAccount without a namespace is in
 * the RoleBinding's namespace (and matches nobody in a ClusterRoleBinding); a User named
 * `system:serviceaccount:<ns>:<name>` is that ServiceAccount. Unknown kinds yield undefined.
 */
function normaliseSubject(s: unknown, bindingNamespace: string | undefined): Who | undefined {
  if (typeof s !== "object" || s === null) return undefined;
  const { kind, name, namespace } = s as Partial<Record<"kind" | "name" | "namespace", unknown>>;
  const n = nonEmpty(name);
  if (!n) return undefined;
  switch (kind) {
    case "User":
      return serviceAccountUser(n) ?? { kind: "User", name: n, namespace: undefined };
    case "Group":
      return { kind: "Group", name: n, namespace: undefined };
    case "ServiceAccount": {
      const ns = nonEmpty(namespace) ?? bindingNamespace;
      return ns ? { kind: "ServiceAccount", name: n, namespace: ns } : undefined;
    }
    default:
      return undefined;
  }
}

function serviceAccountUser(user: string): Who | undefined {
  const m = /^system:serviceaccount:([^:]+):([^:]+)$/.exec(user);
  return m?.[1] && m[2] ? { kind: "ServiceAccount", name: m[2], namespace: m[1] } : undefined;
}

function whoKey(w: Who): string {
  return w.namespace === undefined ? `${w.kind}/${w.name}` : `${w.kind}/${w.namespace}/${w.name}`;
}

function subjectsOf(v: BindingView): Who[] {
  const seen = new Map<string, Who>();
  for (const s of v.subjects) {
    const w = normaliseSubject(s, v.namespace);
    if (w && !seen.has(whoKey(w))) seen.set(whoKey(w), w);
  }
  return [...seen.values()];
}

// ---------------------------------------------------------------------------------------------------
// Binding → grant

/** The role a binding references, or `role: undefined` when it does not exist (a dangling binding). */
interface RoleLookup {
  kind: RoleKind;
  name: string;
  role: RoleView | undefined;
}

/** Undefined when the reference cannot be judged (unknown kind, a ClusterRoleBinding naming a Role). */
function lookupRole(v: BindingView, index: RoleIndex): RoleLookup | undefined {
  const ref = v.roleRef;
  if (ref?.kind === "ClusterRole") {
    return { kind: "ClusterRole", name: ref.name, role: index.clusterRoles.get(ref.name) };
  }
  if (ref?.kind === "Role" && v.namespace !== undefined) {
    return { kind: "Role", name: ref.name, role: index.roles.get(`${v.namespace}/${ref.name}`) };
  }
  return undefined;
}

function analyseBinding(v: BindingView, index: RoleIndex, ctx: Context): Finding[] {
  const lookup = lookupRole(v, index);
  if (!lookup) return [];
  const subjects = subjectsOf(v);
  const ref = objectKey(v.kind, v.namespace, v.name);
  if (!lookup.role) return [danglingFinding(ref, lookup.kind, lookup.name, subjects)];
  if (subjects.length === 0) return [];
  const grant = toGrant(v, ref, { ...lookup, role: lookup.role }, subjects, ctx);
  return CHECKS.map((check) => check(grant, ctx)).filter((f): f is Finding => f !== undefined);
}

function toGrant(
  v: BindingView,
  ref: string,
  { kind, name, role }: RoleLookup & { role: RoleView },
  subjects: readonly Who[],
  ctx: Context,
): Grant {
  return {
    ref,
    namespace: v.namespace,
    roleKind: kind,
    roleName: name,
    rules: role.rules,
    subjects,
    builtIn: isBuiltInBinding(v.name, subjects),
    adminEquivalent: kind === "ClusterRole" && (name === "cluster-admin" || grantsEverything(role.rules)),
    generated:
      ctx.managedBy !== undefined && [v.labels, role.labels].some((l) => l[MANAGED_BY] === ctx.managedBy),
  };
}

/** See `rbacFindings` for why both the name and the subjects decide. */
function isBuiltInBinding(name: string, subjects: readonly Who[]): boolean {
  return (name === "cluster-admin" || name.startsWith("system:")) && subjects.every(isControlPlaneIdentity);
}

function isControlPlaneIdentity(w: Who): boolean {
  switch (w.kind) {
    case "ServiceAccount":
      return w.namespace === "kube-system" && w.name !== "default";
    case "User":
      return w.name.startsWith("system:") && w.name !== ANONYMOUS_USER;
    case "Group":
      return (
        w.name.startsWith("system:") &&
        !BROAD_SYSTEM_GROUPS.has(w.name) &&
        !w.name.startsWith("system:serviceaccounts:")
      );
  }
}

// ---------------------------------------------------------------------------------------------------
// Rule matching, with the RBAC authorizer's wildcard semantics

interface Target {
  group: string;
  /** `resource` or `resource/subresource`; `resource/*` stands for any subresource. */
  resource: string;
}

const SECRETS: readonly Target[] = [{ group: "", resource: "secrets" }];
const NODES_PROXY: readonly Target[] = [{ group: "", resource: "nodes/proxy" }];
const RBAC_ROLES: readonly Target[] = [
  { group: "rbac.authorization.k8s.io", resource: "roles" },
  { group: "rbac.authorization.k8s.io", resource: "clusterroles" },
];
const IDENTITIES: readonly Target[] = [
  { group: "", resource: "users" },
  { group: "", resource: "groups" },
  { group: "", resource: "serviceaccounts" },
  { group: "authentication.k8s.io", resource: "uids" },
  { group: "authentication.k8s.io", resource: "userextras/*" },
];

function resourceMatches(ruleResource: string, target: string): boolean {
  if (ruleResource === "*" || ruleResource === target) return true;
  const slash = target.indexOf("/");
  if (slash < 0) return false;
  const sub = target.slice(slash + 1);
  if (sub === "*")
    return ruleResource.startsWith(target.slice(0, slash + 1)) || ruleResource.startsWith("*/");
  return ruleResource === `*/${sub}`;
}

function ruleCovers(rule: V1PolicyRule, t: Target): boolean {
  const groups = strings(rule.apiGroups);
  return (
    (groups.includes("*") || groups.includes(t.group)) &&
    strings(rule.resources).some((r) => resourceMatches(r, t.resource))
  );
}

function allowsVerb(rule: V1PolicyRule, verb: string): boolean {
  const verbs = strings(rule.verbs);
  return verbs.includes("*") || verbs.includes(verb);
}

/** The verbs from `verbs` that some rule grants on some target, in the order given. */
function grantedVerbs(
  rules: readonly V1PolicyRule[],
  verbs: readonly string[],
  targets: readonly Target[],
): string[] {
  return verbs.filter((verb) =>
    rules.some((r) => allowsVerb(r, verb) && targets.some((t) => ruleCovers(r, t))),
  );
}

function grantsEverything(rules: readonly V1PolicyRule[]): boolean {
  return rules.some(
    (r) =>
      strings(r.resourceNames).length === 0 &&
      strings(r.verbs).includes("*") &&
      strings(r.resources).includes("*") &&
      strings(r.apiGroups).includes("*"),
  );
}

/** Which of verbs/resources/apiGroups hold a wildcard, over resource rules (nonResourceURLs are not judged). */
function wildcardFields(rules: readonly V1PolicyRule[]): string[] {
  const resourceRules = rules.filter((r) => strings(r.resources).length > 0);
  const fields: [string, (r: V1PolicyRule) => boolean][] = [
    ["verbs", (r) => strings(r.verbs).includes("*")],
    ["resources", (r) => strings(r.resources).some((x) => x === "*" || x.startsWith("*/"))],
    ["apiGroups", (r) => strings(r.apiGroups).includes("*")],
  ];
  return fields.filter(([, has]) => resourceRules.some(has)).map(([name]) => name);
}

// ---------------------------------------------------------------------------------------------------
// Checks: each looks at one grant and returns at most one finding

type Check = (g: Grant, ctx: Context) => Finding | undefined;

const CHECKS: readonly Check[] = [
  clusterAdminCheck,
  wildcardCheck,
  escalationCheck,
  secretsReadCheck,
  nodesProxyCheck,
  anonymousCheck,
  authenticatedCheck,
  defaultServiceAccountCheck,
];

/**
 * A cluster-wide cluster-admin grant is judged by the cluster-admin check alone: it implies wildcards,
 * escalation, secrets and nodes/proxy, and re-reporting those would make an allowed subject noisy.
 */
function judgedAsClusterAdmin(g: Grant): boolean {
  return g.namespace === undefined && g.adminEquivalent;
}

/** Skip the permission checks for built-in bindings and cluster-wide cluster-admin grants. */
function permissionChecksApply(g: Grant): boolean {
  return !g.builtIn && !judgedAsClusterAdmin(g);
}

function clusterAdminCheck(g: Grant, ctx: Context): Finding | undefined {
  if (!ctx.forbidClusterAdmin || !judgedAsClusterAdmin(g)) return undefined;
  const outside = g.subjects.filter(
    (w) => !(w.kind === "Group" && w.name === SUPERUSER_GROUP) && !ctx.allowedAdmins.has(whoKey(w)),
  );
  if (outside.length === 0) return undefined;
  const role = g.roleName === "cluster-admin" ? roleText(g) : `${roleText(g)} (equivalent to cluster-admin)`;
  return finding(
    g,
    RBAC_CLUSTER_ADMIN,
    "Critical",
    `grants ${role} cluster-wide to ${subjectsText(outside)}, not listed in spec.rbac.audit.allowedClusterAdminSubjects`,
  );
}

function wildcardCheck(g: Grant, ctx: Context): Finding | undefined {
  if (!ctx.forbidWildcards || !permissionChecksApply(g)) return undefined;
  const fields = wildcardFields(g.rules);
  if (fields.length === 0) return undefined;
  return finding(
    g,
    RBAC_WILDCARD,
    scoped(g, "High", "Medium"),
    `grants ${roleText(g)} with wildcard ${fields.join(", ")} to ${subjectsText(g.subjects)} ${scopeText(g)}`,
  );
}

function escalationCheck(g: Grant): Finding | undefined {
  if (!permissionChecksApply(g)) return undefined;
  const verbs = [
    ...grantedVerbs(g.rules, ["escalate", "bind"], RBAC_ROLES),
    ...grantedVerbs(g.rules, ["impersonate"], IDENTITIES),
  ];
  if (verbs.length === 0) return undefined;
  return finding(
    g,
    RBAC_ESCALATION,
    scoped(g, "High", "Medium"),
    `grants ${roleText(g)}, which allows ${verbs.join(", ")} (privilege escalation), to ${subjectsText(g.subjects)} ${scopeText(g)}`,
  );
}

function secretsReadCheck(g: Grant): Finding | undefined {
  if (!permissionChecksApply(g)) return undefined;
  const unrestricted = g.rules.filter((r) => strings(r.resourceNames).length === 0);
  const verbs = grantedVerbs(unrestricted, ["get", "list", "watch"], SECRETS);
  if (verbs.length === 0) return undefined;
  const what =
    g.namespace === undefined
      ? "every Secret in the cluster"
      : `the Secrets of namespace ${g.namespace} only`;
  return finding(
    g,
    RBAC_SECRETS_READ,
    scoped(g, "High", "Low"),
    `grants ${roleText(g)}, which can ${verbs.join("/")} ${what}, to ${subjectsText(g.subjects)}`,
  );
}

/** nodes are cluster-scoped, so only a ClusterRoleBinding can grant nodes/proxy. */
function nodesProxyCheck(g: Grant): Finding | undefined {
  if (!permissionChecksApply(g) || g.namespace !== undefined) return undefined;
  if (!g.rules.some((r) => strings(r.verbs).length > 0 && NODES_PROXY.some((t) => ruleCovers(r, t))))
    return undefined;
  return finding(
    g,
    RBAC_NODES_PROXY,
    "High",
    `grants ${roleText(g)}, which reaches the kubelet API through nodes/proxy, to ${subjectsText(g.subjects)} cluster-wide`,
  );
}

function isDefaultBroadGrant(g: Grant, group: string): boolean {
  return g.roleKind === "ClusterRole" && (DEFAULT_BROAD_GRANTS.get(group)?.has(g.roleName) ?? false);
}

/** Grants to nobody-in-particular: bootstrap's public-info-viewer for system:unauthenticated is the one default. */
function anonymousCheck(g: Grant): Finding | undefined {
  const hits = g.subjects.filter(
    (w) =>
      (w.kind === "User" && w.name === ANONYMOUS_USER) ||
      (w.kind === "Group" &&
        (w.name === UNAUTHENTICATED || w.name === ANONYMOUS_USER) &&
        !isDefaultBroadGrant(g, w.name)),
  );
  if (hits.length === 0) return undefined;
  return finding(
    g,
    RBAC_ANONYMOUS,
    "Critical",
    `grants ${roleText(g)} to unauthenticated requests (${subjectsText(hits)}) ${scopeText(g)}`,
  );
}

function authenticatedCheck(g: Grant): Finding | undefined {
  const hit = g.subjects.some((w) => w.kind === "Group" && w.name === AUTHENTICATED);
  if (!hit || isDefaultBroadGrant(g, AUTHENTICATED)) return undefined;
  return finding(
    g,
    RBAC_AUTHENTICATED,
    "High",
    `grants ${roleText(g)} to every authenticated user and ServiceAccount (Group ${AUTHENTICATED}) ${scopeText(g)}`,
  );
}

function defaultServiceAccountCheck(g: Grant): Finding | undefined {
  const hits = g.subjects.filter((w) => w.kind === "ServiceAccount" && w.name === "default");
  if (hits.length === 0) return undefined;
  return finding(
    g,
    RBAC_DEFAULT_SA,
    "Medium",
    `grants ${roleText(g)} to ${subjectsText(hits)}, which every pod without its own ServiceAccount runs as, ${scopeText(g)}`,
  );
}

function danglingFinding(ref: string, kind: RoleKind, name: string, subjects: readonly Who[]): Finding {
  const who = subjects.length > 0 ? subjectsText(subjects) : "no subjects";
  return {
    id: RBAC_DANGLING_BINDING,
    severity: "Info",
    area: "rbac",
    resource: ref,
    message: `${ref} references ${kind} ${name}, which does not exist; creating it later would grant it to ${who}.`,
  };
}

// ---------------------------------------------------------------------------------------------------
// Messages and output

function finding(g: Grant, id: string, severity: Severity, what: string): Finding {
  const hint = g.generated
    ? " (generated from the policy's spec.rbac.roles: fix it there, not in the object)"
    : "";
  return { id, severity, area: "rbac", resource: g.ref, message: `${g.ref} ${what}${hint}.` };
}

function scoped(g: Grant, clusterWide: Severity, namespaced: Severity): Severity {
  return g.namespace === undefined ? clusterWide : namespaced;
}

function roleText(g: Grant): string {
  return `${g.roleKind} ${g.roleName}`;
}

function scopeText(g: Grant): string {
  return g.namespace === undefined ? "cluster-wide" : `in namespace ${g.namespace} only`;
}

function whoText(w: Who): string {
  return w.namespace === undefined ? `${w.kind} ${w.name}` : `${w.kind} ${w.namespace}/${w.name}`;
}

function subjectsText(subjects: readonly Who[]): string {
  const shown = subjects.slice(0, MAX_SUBJECTS_IN_MESSAGE).map(whoText);
  const more = subjects.length - shown.length;
  return more > 0 ? `${shown.join(", ")} and ${more} more` : shown.join(", ");
}

function dedupe(findings: readonly Finding[]): Finding[] {
  const byKey = new Map<string, Finding>();
  for (const f of findings) byKey.set(JSON.stringify([f.id, f.severity, f.resource, f.message, f.area]), f);
  return [...byKey.values()];
}
