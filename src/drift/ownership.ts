import type { KubernetesObject, V1OwnerReference } from "@kubernetes/client-node";
import {
  API_VERSION,
  CHILD_UID_MARK_LENGTH,
  KIND,
  type ClusterSecurityPolicy,
} from "../api/v1alpha1/policy.js";
import { OWNED_FIELDS, type ChildKind } from "../desired/children.js";
import { FIELD_MANAGER, MANAGED_BY_LABEL, POLICY_LABEL } from "../api/vocabulary.js";
import { objectKey, type Snapshot } from "../cluster/snapshot.js";
import { fieldPaths } from "./managedfields.js";
import { drain, SLICE, type Steps } from "../desired/slices.js";

/**
 * Who an object at the name of a desired child belongs to. Labels never decide it: anyone with `edit` in a
 * namespace can change them. The operator's identity marks are
 * - its controller ownerReference carrying the policy's UID (what the garbage collector follows), and
 * - the object's UID remembered in the policy's status.childUIDs (only the operator writes status; a
 *   field-manager name is not authenticated, so `csp-operator` entries in `managedFields` alone prove
 *   nothing).
 *
 * - `ours`: this policy's object; restored in full (spec, labels and ownerReference) when it drifted.
 * - `otherPolicy`: another ClusterSecurityPolicy is its controller, or remembers its UID (`remembered`): a
 *   collision, reported, never written.
 * - `foreign`: someone else's object (a user's, another controller's): reported Unowned, never written.
 * - `shared`: an object no policy may own (a namespace, the `default` ServiceAccount): only fields in it
 *   are managed, through the shared writes.
 */
export type Ownership =
  | { kind: "ours"; via: "ownerReference" | "managedFields" | "remembered" }
  | { kind: "otherPolicy"; policy: string; uid: string; remembered?: true }
  | { kind: "foreign"; controller?: string }
  | { kind: "shared" };

/**
 * Objects that belong to the namespace, not to any policy. The `default` ServiceAccount is used by every
 * pod that names no ServiceAccount: a policy that owned it would have it garbage-collected with the policy
 * (a new UID invalidates every running pod's bound token). Policies only set fields in these.
 */
export function isSharedObject(kind: string, name: string | undefined): boolean {
  return kind === "Namespace" || (kind === "ServiceAccount" && name === "default");
}

function isPolicyRef(ref: V1OwnerReference): boolean {
  return ref.kind === KIND && ref.apiVersion.split("/")[0] === API_VERSION.split("/")[0];
}

/** The object's controller ownerReference, if any (Kubernetes allows at most one). */
export function controllerRef(obj: KubernetesObject | undefined): V1OwnerReference | undefined {
  return obj?.metadata?.ownerReferences?.find((r) => r.controller === true);
}

/** Whether the object carries an ownerReference with this policy's UID (the garbage collector's view). */
export function hasOwnerReference(obj: KubernetesObject | undefined, policy: ClusterSecurityPolicy): boolean {
  const uid = policy.metadata.uid;
  return !!uid && !!obj?.metadata?.ownerReferences?.some((r) => r.uid === uid && isPolicyRef(r));
}

/** Whether the object carries this policy's controller ownerReference, exactly as the operator writes it. */
export function hasControllerReference(
  obj: KubernetesObject | undefined,
  policy: ClusterSecurityPolicy,
): boolean {
  const ref = controllerRef(obj);
  return !!ref && !!policy.metadata.uid && ref.uid === policy.metadata.uid && isPolicyRef(ref);
}

/**
 * Whether the operator's own field manager has applied the fields that make this kind of object a child
 * (its spec-like fields, the ownership labels, the ownerReference): only `Apply` entries count (the
 * operator creates and repairs children with server-side apply). Field-manager names are not
 * authenticated: anyone may write as `csp-operator`, so this alone never makes an object a child (see
 * ownershipOf).
 */
export function writtenByOperator(obj: KubernetesObject | undefined, kind: string): boolean {
  const prefixes = [
    ...(OWNED_FIELDS[kind as ChildKind] ?? []),
    `metadata.labels.${MANAGED_BY_LABEL}`,
    `metadata.labels.${POLICY_LABEL}`,
    "metadata.ownerReferences",
  ];
  return (obj?.metadata?.managedFields ?? []).some(
    (e) =>
      e.manager === FIELD_MANAGER &&
      e.operation === "Apply" &&
      fieldPaths(e.fieldsV1).some((p) => prefixes.some((pre) => p === pre || p.startsWith(`${pre}.`))),
  );
}

/** What status.childUIDs keeps of a UID. */
export function uidMark(uid: string): string {
  return uid.slice(0, CHILD_UID_MARK_LENGTH);
}

const rememberedSets = new WeakMap<readonly string[], ReadonlySet<string>>();

/**
 * `list` (a status.childUIDs) as a set, built once per list: a policy object in the cache keeps its list
 * until its next event, so thousands of ownership questions per reconcile share one set.
 */
export function rememberedSetOf(list: readonly string[]): ReadonlySet<string> {
  let set = rememberedSets.get(list);
  if (!set) rememberedSets.set(list, (set = new Set(list)));
  return set;
}

/**
 * Whether the policy's status remembers `obj`'s UID as one of its children. Status is where namespace
 * users cannot write: an editor can rewrite an object's ownerReferences and managedFields, not this.
 */
export function rememberedChild(obj: KubernetesObject, policy: ClusterSecurityPolicy): boolean {
  const list = policy.status?.childUIDs;
  const uid = obj.metadata?.uid;
  if (!list?.length || !uid) return false;
  return rememberedSetOf(list).has(uidMark(uid));
}

/**
 * Decides who owns `obj`, an object of `kind` found at the name of one of `policy`'s desired children.
 * Order matters: a controller reference is authoritative, except over an object whose UID the policy's
 * status remembers as its child; an object without one is this policy's only when it carries the policy's
 * UID in a non-controller reference or a remembered UID (with the operator's own managedFields entries
 * too: its ownerReference was removed by hand). Labels are never consulted. With `policies` (the
 * snapshot's), a UID another policy remembers goes first (see rememberedElsewhere).
 */
export function ownershipOf(
  obj: KubernetesObject,
  kind: string,
  policy: ClusterSecurityPolicy,
  policies?: readonly ClusterSecurityPolicy[],
): Ownership {
  const own = ownershipByMarks(obj, kind, policy);
  // Only what would be this policy's is looked up in the others' status (one set probe per policy).
  return own.kind === "ours" && policies ? (rememberedElsewhere(obj, policy, policies) ?? own) : own;
}

function ownershipByMarks(obj: KubernetesObject, kind: string, policy: ClusterSecurityPolicy): Ownership {
  if (isSharedObject(kind, obj.metadata?.name)) return { kind: "shared" };
  const ref = controllerRef(obj);
  if (ref) {
    if (hasControllerReference(obj, policy)) return { kind: "ours", via: "ownerReference" };
    // Its identity marks were rewritten (a user's controller ownerReference, forged managedFields), but
    // the policy created this very object: it is restored, its foreign controller reference removed.
    if (rememberedChild(obj, policy)) return { kind: "ours", via: "remembered" };
    if (isPolicyRef(ref)) return { kind: "otherPolicy", policy: ref.name, uid: ref.uid };
    return { kind: "foreign", controller: `${ref.kind}/${ref.name}` };
  }
  if (hasOwnerReference(obj, policy)) return { kind: "ours", via: "ownerReference" };
  // The operator's own managedFields entries say "created by csp-operator" only for an object whose UID
  // the policy's status remembers: a user can create their own object at a child's name as csp-operator.
  if (rememberedChild(obj, policy))
    return { kind: "ours", via: writtenByOperator(obj, kind) ? "managedFields" : "remembered" };
  return { kind: "foreign" };
}

/**
 * The policies among `policies` whose status remembers `obj`'s UID. Each status list's set is built once
 * and kept while that status is (rememberedChild), so a lookup costs one set probe per policy remembering
 * children, with no index rebuilt per snapshot (at 10 policies of 10,000 children one would cost ~40 ms).
 */
export function rememberedBy(
  obj: KubernetesObject,
  policies: readonly ClusterSecurityPolicy[],
): ClusterSecurityPolicy[] {
  const uid = obj.metadata?.uid;
  if (!uid) return [];
  let sets = setsOfPolicies.get(policies);
  if (!sets) {
    sets = [];
    for (const p of policies) {
      const list = p.status?.childUIDs;
      if (list?.length) sets.push([p, rememberedSetOf(list)]);
    }
    setsOfPolicies.set(policies, sets);
  }
  const mark = uidMark(uid);
  return sets.filter(([, set]) => set.has(mark)).map(([p]) => p);
}

/** Per list of policies (one per snapshot): the policies remembering children, with their sets. */
const setsOfPolicies = new WeakMap<
  readonly ClusterSecurityPolicy[],
  [ClusterSecurityPolicy, ReadonlySet<string>][]
>();

/**
 * The ownership of `obj` when ANOTHER policy among `policies` remembers its UID as its child: a controller
 * reference can be rewritten by anyone with `edit`, a status only by the operator, so the object is that
 * policy's (`otherPolicy`: a Conflict, never written) even when its controller reference names `policy`,
 * unless `policy` remembers it too. Both remembering it (a state earlier versions could reach) is decided
 * by the controller reference, when it names one of them, else by the first name: exactly one keeps it.
 * Undefined: no other policy remembers it, the usual rules decide.
 */
export function rememberedElsewhere(
  obj: KubernetesObject,
  policy: ClusterSecurityPolicy,
  policies: readonly ClusterSecurityPolicy[],
): Ownership | undefined {
  const others = rememberedBy(obj, policies).filter((p) => p.metadata.name !== policy.metadata.name);
  if (others.length === 0) return undefined;
  const other = (p: ClusterSecurityPolicy): Ownership => ({
    kind: "otherPolicy",
    policy: p.metadata.name,
    uid: p.metadata.uid ?? "",
    remembered: true,
  });
  if (!rememberedChild(obj, policy)) return other(others[0]!);
  const ref = controllerRef(obj);
  if (ref && isPolicyRef(ref)) {
    if (hasControllerReference(obj, policy)) return undefined;
    const named = others.find((p) => p.metadata.uid === ref.uid);
    if (named) return other(named);
  }
  const first = [...others].sort((a, b) => a.metadata.name.localeCompare(b.metadata.name))[0]!;
  return first.metadata.name.localeCompare(policy.metadata.name) < 0 ? other(first) : undefined;
}

/** The policy name an object's controller ownerReference points at, for enqueueing its reconcile. */
export function controllingPolicy(obj: KubernetesObject | undefined): string | undefined {
  const ref = controllerRef(obj);
  return ref && isPolicyRef(ref) ? ref.name : undefined;
}

/**
 * Every object the snapshot holds in the lists children live in, keyed by `Kind/namespace/name`. Built
 * once per set of lists (a snapshot's lists never change; one plan asks three times): do not change it.
 */
export function observedIndex(snapshot: Snapshot): ReadonlyMap<string, KubernetesObject> {
  return drain(observedIndexSteps(snapshot));
}

/** observedIndex in steps (see desired/slices.ts). */
export function* observedIndexSteps(snapshot: Snapshot): Steps<ReadonlyMap<string, KubernetesObject>> {
  const lists = [
    snapshot.networkPolicies,
    snapshot.serviceAccounts,
    snapshot.roles,
    snapshot.roleBindings,
    snapshot.configMaps ?? noObjects,
  ] as const;
  const known = observedIndexes.get(snapshot.networkPolicies);
  if (known && known.lists.every((l, i) => l === lists[i] && known.lengths[i] === l.length))
    return known.index;
  const index = new Map<string, KubernetesObject>();
  let n = 0;
  const kinds = ["NetworkPolicy", "ServiceAccount", "Role", "RoleBinding", "ConfigMap"];
  for (const [i, objs] of lists.entries())
    for (const o of objs) {
      if (o.metadata?.name) index.set(objectKey(kinds[i]!, o.metadata.namespace, o.metadata.name), o);
      if (++n % SLICE === 0) yield;
    }
  observedIndexes.set(snapshot.networkPolicies, { lists, lengths: lists.map((l) => l.length), index });
  return index;
}

const noObjects: readonly KubernetesObject[] = [];

/** Per snapshot (keyed by its NetworkPolicy list): the lists an index was built from, and the index. */
const observedIndexes = new WeakMap<
  readonly KubernetesObject[],
  {
    lists: readonly (readonly KubernetesObject[])[];
    lengths: readonly number[];
    index: ReadonlyMap<string, KubernetesObject>;
  }
>();
