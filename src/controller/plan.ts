import type { KubernetesObject } from "@kubernetes/client-node";
import {
  MAX_REMEMBERED_CHILDREN,
  type ClusterSecurityPolicy,
  type ClusterSecurityPolicySpec,
} from "../api/v1alpha1/policy.js";
import type { Child } from "../desired/children.js";
import { desiredStateSteps } from "../desired/index.js";
import { sharedNamespaceStatesSteps } from "../desired/namespacestate.js";
import { codeUnitOrder, drain, drainYielding, SLICE, sortedSteps, type Steps } from "../desired/slices.js";
import { ungrantableRoles } from "../desired/rbac.js";
import { effectiveSpec, isDeleting } from "../desired/spec.js";
import { bindingsOnForeignObjects } from "../drift/bindings.js";
import {
  childDriftSteps,
  defaultServiceAccount,
  namespacesByName,
  sharedDriftSteps,
  type Drift,
} from "../drift/checks.js";
import { observedIndexSteps, ownershipOf, rememberedSetOf, uidMark } from "../drift/ownership.js";
import { unlabelledOrphansSteps } from "../drift/orphans.js";
import { sharedWritesSteps, type SharedWrite } from "../drift/shared.js";
import type { Finding } from "../findings/finding.js";
import { wideningFindings } from "../findings/networkpolicies.js";
import { defaultServiceAccountOwnerFindingsSteps } from "../findings/serviceaccounts.js";
import { objectKey, type Snapshot } from "../cluster/snapshot.js";
import { GRANTABLE_CLUSTER_ROLE, notGrantableFailure, type WriteFailure } from "./failures.js";
import { policyFindingsSteps } from "./findings.js";

/** How soon a child blocked by an object the operator may not write is looked at again. */
export const BLOCKED_RECHECK_MS = 30_000;

/** One child write: the drift it repairs, and the spec field to name when the API server rejects it. */
export interface ChildWrite {
  key: string;
  drift: Drift;
  action: "apply" | "delete";
  object: KubernetesObject;
  /** The spec entry the object comes from, so a rejection names what to fix in the policy. */
  field?: string;
  /**
   * Writes in a later phase run only after every write of the earlier phases finished: a RoleBinding
   * (phase 1) after the ServiceAccount and Role it binds (phase 0).
   */
  phase: 0 | 1;
  /** The object's identity marks were rewritten by someone else: its ownerReferences are replaced first. */
  reclaim?: boolean;
  /** The resourceVersion the plan saw at the child's name (null: nothing), for the WriteLedger. */
  seen?: string | null;
}

/**
 * What one reconcile of one policy will do, computed from a snapshot alone (pure, printable, unit-tested):
 * the shared writes (union of every enforcing policy), the child writes and deletes, the drift nothing here
 * repairs, and the failures already known. `reads` is non-empty only when the snapshot lacks the full
 * object at a child's name that looks like the policy's own (its labels were stripped, so the managed
 * caches do not hold it): gather reads those and plans again.
 */
export interface Plan {
  name: string;
  /** Absent when the policy is gone or being deleted: only the shared writes (releases) remain. */
  policy?: ClusterSecurityPolicy;
  spec?: ClusterSecurityPolicySpec;
  enforce: boolean;
  /** Shared objects to write, in order per object (a give-back before the release of the same label). */
  shared: SharedWrite[];
  /** The resourceVersion the plan saw of each shared object it writes (keyed by objectKey; null: none). */
  sharedSeen?: ReadonlyMap<string, string | null>;
  /** Generated RoleBindings to remove: their Role or ServiceAccount is not the policy's (see bindings.ts). */
  deletes: { key: string; object: KubernetesObject }[];
  writes: ChildWrite[];
  /** Drift no write of this plan repairs: Audit mode, Conflict, Unowned, blocked bindings and Roles. */
  remaining: Drift[];
  /** Drift in shared objects: corrected when the shared write to its object succeeds. */
  sharedDrift: Drift[];
  /** Failures known before writing anything (invalid spec, Roles beyond what the operator may grant). */
  failures: WriteFailure[];
  findings: Finding[];
  namespaces: number;
  managedObjects: number;
  /** Objects to read live before this plan may be applied (see above); keys are objectKey(). */
  reads: { key: string; apiVersion: string; kind: string; namespace?: string; name: string }[];
  /**
   * What status.childUIDs should remember: the UID marks of the objects at this policy's children's names
   * that are its own (sorted, at most MAX_REMEMBERED_CHILDREN). Absent when the policy is gone.
   */
  childUIDs?: string[];
  /**
   * What status remembers, kept as it is because a child is seen nowhere (see planSteps): report() adds it
   * to childUIDs. A reference to the status list, not a copy.
   */
  rememberedKept?: readonly string[];
  /** When to look again regardless of events (an exemption expiring, an object blocking a child). */
  requeueAfterMs?: number;
}

/** The spec entry a child comes from, so a message names what to fix; undefined for fixed children. */
function specFieldOf(child: Child, spec: ClusterSecurityPolicySpec): string | undefined {
  const extra = (spec.networkPolicies?.extra ?? []).find((e) => child.metadata.name.endsWith(`.${e.name}`));
  if (child.kind === "NetworkPolicy" && extra) return `spec.networkPolicies.extra[name=${extra.name}].spec`;
  if (child.kind === "Role" || child.kind === "RoleBinding")
    return `spec.rbac.roles[name=${child.metadata.name}]`;
  return undefined;
}

/**
 * Plans the reconcile of policy `name` from `snapshot`. Pure. Every call recomputes everything
 * (level-triggered): there is no shortcut on observedGeneration.
 */
export function plan(name: string, snapshot: Snapshot): Plan {
  return drain(planSteps(name, snapshot));
}

/**
 * The same plan, computed with the event loop let run whenever the computation has held it for a few
 * milliseconds (desired/slices.ts): at thousands of namespaces a whole plan takes tens to hundreds of
 * milliseconds of CPU (bench/plan-micro.ts), which would otherwise hold back every watch event and repair
 * for that long. Every pass over the namespaces or the children yields every few dozen items.
 */
export async function planYielding(name: string, snapshot: Snapshot, budgetMs?: number): Promise<Plan> {
  return drainYielding(planSteps(name, snapshot), budgetMs);
}

/** plan()'s body; each `yield` is a point where planYielding may let the event loop run (exported for bench/plan-micro.ts). */
export function* planSteps(name: string, snapshot: Snapshot): Steps<Plan> {
  // Shared objects (namespace labels, default ServiceAccounts) carry the union of all enforcing policies.
  const states = yield* sharedNamespaceStatesSteps(snapshot);
  const shared = yield* sharedWritesSteps(snapshot, states);
  const sharedSeen = yield* seenOfSharedSteps(snapshot, shared);
  const policy = snapshot.policies.find((p) => p.metadata.name === name);
  const empty = {
    name,
    shared,
    sharedSeen,
    enforce: false,
    deletes: [],
    writes: [],
    remaining: [],
    sharedDrift: [],
    failures: [],
    findings: [],
    namespaces: 0,
    managedObjects: 0,
    reads: [],
  };
  // Children go with the policy through their ownerReferences; shared fields are released by `shared`.
  if (!policy || isDeleting(policy)) return empty;

  // Ownership is judged with the children the operator created that status does not remember yet (a
  // repair's create, remembered in status by the full reconcile that follows): the policy it returns keeps
  // its status as read, so what status must still learn is reported (lane.ts, report.ts).
  const judged = withUnremembered(policy, snapshot.unrememberedChildren?.(policy) ?? []);
  const spec = effectiveSpec(policy);
  const enforce = spec.mode !== "Audit";
  const desired = yield* desiredStateSteps(policy, snapshot);
  const failures: WriteFailure[] = desired.invalid.map((message) => ({
    reason: "InvalidSpec",
    message,
    terminal: true,
  }));
  // Roles beyond csp-operator-grantable are never applied, however much more the operator itself holds.
  const ungrantable = ungrantableRoles(
    spec.rbac?.roles ?? [],
    snapshot.rbac?.clusterRoles ?? [],
    GRANTABLE_CLUSTER_ROLE,
  );
  for (const [role, missing] of ungrantable) {
    const roles = desired.children.filter((c) => c.kind === "Role" && c.metadata.name === role);
    const more = roles.length > 1 ? ` and ${roles.length - 1} more` : "";
    const first = roles[0] && objectKey("Role", roles[0].metadata.namespace, role) + more;
    if (first) failures.push(notGrantableFailure(first, `spec.rbac.roles[name=${role}]`, missing));
  }

  // The managed caches only hold labelled objects (and every default ServiceAccount). What sits at the
  // name of a desired child they do not hold comes from the occupancy cache (metadata only, enough to
  // judge ownership); only an object that is the policy's own needs its full body, read live (rare: its
  // labels were stripped by hand).
  const cached = yield* observedIndexSteps(snapshot);
  const occupied = new Map<string, KubernetesObject>(snapshot.occupied ?? []);
  const reads: Plan["reads"] = [];
  // Audit mode never repairs, so such a child is judged from its metadata (it lost its managed-by label:
  // that is drift already) instead of being read live on every reconcile.
  const metadataOnly = new Set<string>();
  let n = 0;
  for (const c of desired.children) {
    if (++n % SLICE === 0) yield;
    const key = objectKey(c.kind, c.metadata.namespace, c.metadata.name);
    if (cached.has(key) || occupied.has(key)) continue;
    const meta = snapshot.occupant?.(c.kind, c.metadata.namespace, c.metadata.name);
    if (!meta) continue;
    if (ownershipOf(meta, c.kind, judged).kind === "ours" && !enforce) {
      metadataOnly.add(key);
      occupied.set(key, meta);
    } else if (ownershipOf(meta, c.kind, judged).kind === "ours")
      reads.push({
        key,
        apiVersion: c.apiVersion,
        kind: c.kind,
        namespace: c.metadata.namespace,
        name: c.metadata.name,
      });
    else occupied.set(key, meta);
  }
  const view: Snapshot = { ...snapshot, occupied };
  const childUIDs = new Set<string>();
  let unseen = false;
  for (const c of desired.children) {
    if (++n % SLICE === 0) yield;
    const key = objectKey(c.kind, c.metadata.namespace, c.metadata.name);
    const at =
      cached.get(key) ??
      occupied.get(key) ??
      snapshot.occupant?.(c.kind, c.metadata.namespace, c.metadata.name);
    const uid = at?.metadata?.uid;
    if (!at) unseen = true;
    if (at && uid && ownershipOf(at, c.kind, judged, snapshot.policies).kind === "ours")
      childUIDs.add(uidMark(uid));
  }
  // A child seen nowhere may be between the caches (its managed-by label just removed: gone from the
  // managed cache, not yet in the occupancy cache): what status remembers is kept until every child is
  // seen, or the memory that proves the child is the policy's would be lost in that instant.
  // Kept by reference (report() merges it): a repair of one namespace copies and sorts nothing per child
  // of the others.
  const rememberedKept = unseen ? (judged.status?.childUIDs ?? []) : [];

  const children = yield* childDriftSteps(judged, desired.children, view, metadataOnly);
  const drift = [...children, ...(yield* sharedDriftSteps(policy, desired.namespaces, view, states))];
  // Unlabelled children it no longer wants, pruned only when provably its own (drift/orphans.ts).
  const orphans = yield* unlabelledOrphansSteps(judged, desired.children, view, drift);
  drift.push(...orphans.drift);
  for (const m of orphans.remembered) childUIDs.add(m);
  const remaining: Drift[] = [];
  const sharedDriftList: Drift[] = [];
  const writes: ChildWrite[] = [];
  const deletes: Plan["deletes"] = [];
  // A binding to a Role or ServiceAccount that is not this policy's is neither created nor kept.
  const foreignBindings = bindingsOnForeignObjects(desired.children, drift);
  for (const key of foreignBindings) {
    const live = cached.get(key) ?? occupied.get(key);
    if (!enforce || !live || ownershipOf(live, "RoleBinding", judged, snapshot.policies).kind !== "ours")
      continue;
    deletes.push({ key, object: live });
  }
  for (const d of drift) {
    if (++n % SLICE === 0) yield;
    const key = objectKey(d.kind, d.namespace, d.name);
    if (!enforce || d.reason === "Conflict" || d.reason === "Unowned") {
      remaining.push(d);
      continue;
    }
    if (!d.repair) {
      sharedDriftList.push(d);
      continue;
    }
    if (d.kind === "RoleBinding" && foreignBindings.has(key)) {
      remaining.push({
        ...d,
        message: `${d.message}; not applied: its Role or ServiceAccount at the generated name is not this policy's`,
      });
      continue;
    }
    if (d.repair.action === "apply" && /^Role(Binding)?$/.test(d.kind) && ungrantable.has(d.name)) {
      remaining.push({ ...d, message: `${d.message}; not applied: beyond ${GRANTABLE_CLUSTER_ROLE}` });
      continue;
    }
    const field = d.repair.action === "apply" ? specFieldOf(d.repair.object, spec) : undefined;
    const live = cached.get(key) ?? occupied.get(key);
    writes.push({
      key,
      drift: d,
      action: d.repair.action,
      object: d.repair.object,
      ...(field ? { field } : {}),
      phase: d.kind === "RoleBinding" && d.repair.action === "apply" ? 1 : 0,
      ...(d.repair.action === "apply" && d.repair.reclaim ? { reclaim: true } : {}),
      seen: live ? (live.metadata?.resourceVersion ?? null) : null,
    });
  }

  let requeueAfterMs: number | undefined;
  // An exemption that expires changes the desired state then: come back at that moment, not at resync.
  for (const e of spec.exemptions ?? []) {
    const left = e.expires ? Date.parse(e.expires) - snapshot.now.getTime() : NaN;
    // Capped: timers beyond ~24.8 days fire at once in Node, and the periodic resync covers long waits.
    if (left > 0) requeueAfterMs = Math.min(requeueAfterMs ?? Infinity, left + 1000, 6 * 3_600_000);
  }
  // An object blocking a child (Unowned, Conflict) may go without an event that names this policy.
  if (remaining.some((d) => d.repair === undefined && (d.reason === "Unowned" || d.reason === "Conflict")))
    requeueAfterMs = Math.min(requeueAfterMs ?? Infinity, BLOCKED_RECHECK_MS);

  const areaFindings = yield* policyFindingsSteps(policy, spec, view);
  const desiredNetworkPolicies = new Set<string>();
  for (const c of desired.children) {
    if (++n % SLICE === 0) yield;
    if (c.kind === "NetworkPolicy")
      desiredNetworkPolicies.add(objectKey(c.kind, c.metadata.namespace, c.metadata.name));
  }
  const findings = [
    ...areaFindings,
    ...wideningFindings(
      policy,
      spec,
      desired.namespaces,
      snapshot.policies,
      snapshot.wideningNetworkPolicies ?? [],
      { desired: desiredNetworkPolicies, labelled: snapshot.networkPolicies },
    ),
    ...(yield* defaultServiceAccountOwnerFindingsSteps(desired.namespaces, snapshot.serviceAccounts)),
  ];
  const remembered = yield* sortedSteps([...childUIDs], codeUnitOrder);
  return {
    ...empty,
    policy,
    spec,
    enforce,
    deletes,
    writes,
    remaining,
    sharedDrift: sharedDriftList,
    failures,
    findings,
    namespaces: desired.namespaces.length,
    managedObjects: desired.children.length,
    reads,
    childUIDs: remembered.slice(0, MAX_REMEMBERED_CHILDREN),
    ...(rememberedKept.length > 0 ? { rememberedKept } : {}),
    ...(requeueAfterMs !== undefined ? { requeueAfterMs } : {}),
  };
}

/** `policy` as ownership judges it: its status.childUIDs with `marks` added (see Snapshot.unrememberedChildren). */
function withUnremembered(policy: ClusterSecurityPolicy, marks: readonly string[]): ClusterSecurityPolicy {
  if (marks.length === 0) return policy;
  // The same marks (the ledger answers with one array while nothing changed) for the same policy object:
  // the same judged policy, so its merged list (and the set ownership builds of it) is built once.
  const last = judgedPolicies.get(marks);
  if (last?.policy === policy) return last.judged;
  const remembered = policy.status?.childUIDs ?? [];
  const known = rememberedSetOf(remembered);
  const more = marks.filter((m) => !known.has(m));
  const judged =
    more.length === 0
      ? policy
      : { ...policy, status: { ...policy.status, childUIDs: [...remembered, ...more] } };
  judgedPolicies.set(marks, { policy, judged });
  return judged;
}

const judgedPolicies = new WeakMap<
  readonly string[],
  { policy: ClusterSecurityPolicy; judged: ClusterSecurityPolicy }
>();

/** The resourceVersion of each shared object a write goes to, as the snapshot holds it (null: none). */
function* seenOfSharedSteps(
  snapshot: Snapshot,
  shared: readonly SharedWrite[],
): Steps<Map<string, string | null>> {
  const seen = new Map<string, string | null>();
  if (shared.length === 0) return seen;
  const namespaces = namespacesByName(snapshot.namespaces);
  let n = 0;
  for (const w of shared) {
    if (++n % SLICE === 0) yield;
    const ns = w.object.metadata?.namespace;
    const name = w.object.metadata?.name ?? "";
    const live =
      w.object.kind === "Namespace"
        ? namespaces.get(name)
        : w.object.kind === "ServiceAccount" && ns
          ? defaultServiceAccount(snapshot, ns)
          : undefined;
    seen.set(objectKey(w.object.kind ?? "", ns, name), live?.metadata?.resourceVersion ?? null);
  }
  return seen;
}

/** A one-line-per-action rendering of a plan, for logs and `render`. */
export function describePlan(p: Plan): string[] {
  const lines: string[] = [];
  for (const w of p.shared)
    lines.push(
      `shared ${objectKey(w.object.kind!, w.object.metadata?.namespace, w.object.metadata!.name!)}: ${w.reason}`,
    );
  for (const d of p.deletes) lines.push(`delete ${d.key} (binds an object that is not the policy's)`);
  for (const w of p.writes) lines.push(`${w.action} ${w.key} (${w.drift.reason})`);
  for (const d of p.remaining) lines.push(`report ${objectKey(d.kind, d.namespace, d.name)} (${d.reason})`);
  for (const f of p.failures) lines.push(`fail ${f.reason}: ${f.message}`);
  return lines;
}
