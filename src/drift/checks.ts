import type { KubernetesObject, V1Namespace, V1ServiceAccount } from "@kubernetes/client-node";
import type { ClusterSecurityPolicy } from "../api/v1alpha1/policy.js";
import { OWNED_FIELDS, type Child, type ChildKind } from "../desired/children.js";
import { FIELD_MANAGER } from "../api/vocabulary.js";
import type { SharedNamespaceState } from "../desired/namespacestate.js";
import { wantedNamespaceLabels } from "../desired/podsecurity.js";
import { effectiveSpec } from "../desired/spec.js";
import { areaExemptInNamespace } from "../api/exemptions.js";
import { objectKey, type Snapshot } from "../cluster/snapshot.js";
import { lastOtherManager } from "./managedfields.js";
import { compact, diffPaths, jsonEqual, normalizeField } from "./normalize.js";
import { controllerRef, hasOwnerReference, observedIndexSteps, ownershipOf } from "./ownership.js";
import { drain, SLICE, type Steps } from "../desired/slices.js";
import { isLevelKey, levelKeyOf, levelRank, ownedLabelKeys } from "./podsecurity.js";

/** Named drift reasons; the same words appear in status, conditions, events and logs. */
/** `Contested`: another writer keeps reverting the object; corrections wait (controller/corrections.ts). */
export const DRIFT_REASONS = ["Missing", "Modified", "Unowned", "Conflict", "Orphaned", "Contested"] as const;
export type DriftReason = (typeof DRIFT_REASONS)[number];

/** The policy area a drift belongs to; each maps to a per-area condition. */
export type Area =
  "networkPolicies" | "podSecurity" | "serviceAccounts" | "rbac" | "auditPolicy" | "encryption";

export interface Drift {
  kind: string;
  namespace?: string;
  name: string;
  reason: DriftReason;
  area: Area;
  fields?: string[];
  manager?: string;
  message: string;
  /** What Enforce mode does about it; absent when nothing may be done (Unowned, Conflict). */
  repair?:
    | {
        action: "apply";
        object: Child;
        /** Its identity marks were rewritten: replace its ownerReferences before applying. */
        reclaim?: boolean;
      }
    | { action: "delete"; object: KubernetesObject };
}

export function areaOf(kind: ChildKind, name?: string): Area {
  if (kind === "NetworkPolicy") return "networkPolicies";
  if (kind === "ConfigMap") return name?.endsWith("-audit-policy") ? "auditPolicy" : "encryption";
  return "rbac";
}

type Observed = KubernetesObject & Record<string, unknown>;

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  !!v && typeof v === "object" && !Array.isArray(v);

/**
 * `null` wherever `have` holds a key `want` lacks, recursing into objects both hold (lists are atomic).
 * `want` is the policy's value as written (no server default filled in): a field the API server defaults
 * (a NetworkPolicy's policyTypes) that another manager set to something else is removed too, so the server
 * defaults it again; `defaulted` (the same value with the defaults, compared in stored form) spares it
 * where it holds the default already.
 */
function removals(want: unknown, have: unknown, defaulted: unknown): Record<string, unknown> | undefined {
  if (!isPlainObject(want) || !isPlainObject(have)) return undefined;
  const byDefault = isPlainObject(defaulted) ? defaulted : {};
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(have)) {
    if (v === undefined) continue;
    if (want[k] === undefined) {
      if (!jsonEqual(byDefault[k], v)) out[k] = null;
    } else {
      const inner = removals(want[k], v, byDefault[k]);
      if (inner) out[k] = inner;
    }
  }
  return Object.keys(out).length ? out : undefined;
}

/** `base` with `overlay` merged in (overlay's nulls win, its objects merge key by key). */
function overlaid(base: unknown, overlay: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = isPlainObject(base) ? { ...base } : {};
  for (const [k, v] of Object.entries(overlay)) out[k] = isPlainObject(v) ? overlaid(out[k], v) : v;
  return out;
}

/**
 * The child as the apply that repairs it: every owned path the observed object holds and the policy does
 * not (compared in the API server's stored form, so server defaults never count) is set to `null`. A
 * forcing server-side apply removes a field set to null even when another field manager added it, in the
 * same single write, and leaves the object owned by csp-operator's `Apply` entry alone (checked on a v1.36
 * API server; an update (PUT) would have needed a GET first and left an `Update` entry that later applies
 * never release). The nulls disappear from the stored object; ownedFieldDiff ignores them.
 */
export function withRemovals(desired: Child, observed: Record<string, unknown>): Child {
  let out: Child | undefined;
  for (const field of OWNED_FIELDS[desired.kind]) {
    const want = normalizeField(desired.kind, field, desired[field]);
    const have = normalizeField(desired.kind, field, observed[field]);
    if (want === undefined && have !== undefined) {
      out = { ...(out ?? desired), [field]: null };
      continue;
    }
    const nulls = removals(compact(desired[field]), have, want);
    if (nulls) out = { ...(out ?? desired), [field]: overlaid(desired[field], nulls) };
  }
  return out ?? desired;
}

/**
 * Compares the fields the operator owns, its labels and its controller ownerReference; returns the
 * differing paths (empty when equal).
 */
export function ownedFieldDiff(
  desired: Child,
  observed: Record<string, unknown>,
  metadataOnly = false,
): string[] {
  const paths: string[] = [];
  for (const field of metadataOnly ? [] : OWNED_FIELDS[desired.kind]) {
    const want = normalizeField(desired.kind, field, desired[field]);
    const have = normalizeField(desired.kind, field, observed[field]);
    paths.push(...diffPaths(want, have, field));
  }
  const meta = observed["metadata"] as KubernetesObject["metadata"];
  const labels = meta?.labels ?? {};
  for (const [k, v] of Object.entries(desired.metadata.labels))
    if (labels[k] !== v) paths.push(`metadata.labels.${k}`);
  for (const ref of desired.metadata.ownerReferences)
    if (!meta?.ownerReferences?.some((r) => r.uid === ref.uid && r.controller === ref.controller))
      paths.push("metadata.ownerReferences");
  return paths;
}

/**
 * Drift of the children a policy owns. What sits at a desired child's name is judged by identity
 * (ownership.ts), never by labels: this policy's object is Missing or Modified (relabelled or stripped
 * ones included, and restored in place); another policy's is a Conflict naming it; anything else, and
 * always the shared `default` ServiceAccount, is Unowned and never touched. Orphaned (deleted) are only
 * objects carrying this policy's UID in their ownerReferences that it no longer wants: labelled ones, and
 * unlabelled NetworkPolicies that open a direction to everything (snapshot.wideningNetworkPolicies).
 */
export function childDrift(
  policy: ClusterSecurityPolicy,
  desired: readonly Child[],
  snapshot: Snapshot,
  /**
   * Keys of children observed as metadata only (Audit mode does not read a label-stripped child's body):
   * judged by their labels and ownerReferences, their owned fields not compared.
   */
  metadataOnly: ReadonlySet<string> = new Set(),
): Drift[] {
  return drain(childDriftSteps(policy, desired, snapshot, metadataOnly));
}

/** childDrift in steps (see desired/slices.ts). */
export function* childDriftSteps(
  policy: ClusterSecurityPolicy,
  desired: readonly Child[],
  snapshot: Snapshot,
  metadataOnly: ReadonlySet<string> = new Set(),
): Steps<Drift[]> {
  const index = yield* observedIndexSteps(snapshot);
  const wanted = new Set<string>();
  const out: Drift[] = [];
  let n = 0;
  for (const d of desired) {
    if (++n % SLICE === 0) yield;
    const { namespace, name } = d.metadata;
    const key = objectKey(d.kind, namespace, name);
    wanted.add(key);
    const at = { kind: d.kind, namespace, name, area: areaOf(d.kind, name) };
    const observed = (index.get(key) ?? snapshot.occupied?.get(key)) as Observed | undefined;
    if (!observed) {
      out.push({
        ...at,
        reason: "Missing",
        message: `${d.kind} ${namespace}/${name} does not exist`,
        repair: { action: "apply", object: d },
      });
      continue;
    }
    const owner = ownershipOf(observed, d.kind, policy, snapshot.policies);
    if (owner.kind === "shared") {
      out.push({
        ...at,
        reason: "Unowned",
        message: `${d.kind} ${namespace}/${name} belongs to the namespace and is never owned by a policy; left untouched (use a dedicated ServiceAccount)`,
      });
      continue;
    }
    if (owner.kind === "otherPolicy") {
      const which =
        owner.policy === policy.metadata.name
          ? `an earlier policy named ${owner.policy} (uid ${owner.uid}), until it is garbage-collected`
          : `policy ${owner.policy}`;
      out.push({
        ...at,
        reason: "Conflict",
        message: owner.remembered
          ? `${d.kind} ${namespace}/${name} is a child of policy ${owner.policy} (its status remembers the object's UID)${controllerRef(observed)?.uid === policy.metadata.uid ? "; the controller ownerReference naming this policy was not written by csp-operator" : ""}; left untouched`
          : `${d.kind} ${namespace}/${name} is controlled by ${which}; left untouched`,
      });
      continue;
    }
    if (owner.kind === "foreign") {
      out.push({
        ...at,
        reason: "Unowned",
        message: `${d.kind} ${namespace}/${name} exists and was not created by csp-operator${owner.controller ? ` (controlled by ${owner.controller})` : ""}; left untouched`,
      });
      continue;
    }
    const partial = metadataOnly.has(key);
    const fields = ownedFieldDiff(d, observed, partial);
    if (fields.length === 0) continue;
    const manager = lastOtherManager(observed, FIELD_MANAGER, [
      ...OWNED_FIELDS[d.kind],
      "metadata.labels",
      "metadata.ownerReferences",
    ]);
    const readopt =
      owner.via === "managedFields"
        ? "; its ownerReference was removed (created by csp-operator, per managedFields)"
        : owner.via === "remembered"
          ? "; its ownerReferences and managedFields were rewritten (created by csp-operator, per the UID the policy's status remembers)"
          : "";
    out.push({
      ...at,
      reason: "Modified",
      fields,
      ...(manager ? { manager } : {}),
      message: `${fields.join(", ")} differ from the policy${manager ? ` (changed by ${manager})` : ""}${readopt}${partial ? `; its ${OWNED_FIELDS[d.kind].join(", ")} not read (Audit mode)` : ""}`,
      repair: {
        action: "apply",
        // The observed object's UID: the write lands on that object or nowhere. Fields another manager
        // added are set to null: the one apply removes them too.
        object: withRemovals(
          observed.metadata?.uid ? { ...d, metadata: { ...d.metadata, uid: observed.metadata.uid } } : d,
          observed,
        ),
        ...(owner.via === "remembered" ? { reclaim: true } : {}),
      },
    });
  }
  // A namespace the cache does not know while it holds an object in it is a contradiction (a LIST that
  // came back short), not evidence: deleting a namespace's children is the garbage collector's job anyway.
  const namespaces = new Set(snapshot.namespaces.map((ns) => ns.metadata?.name));
  // Unlabelled NetworkPolicies pointing at this policy too (a child whose managed-by label was stripped, a
  // user's object with a controller reference to the policy): the managed caches do not hold them, the
  // summaries of those opening a direction to everything are at hand. Deleting one is what the garbage
  // collector would do with the policy; the delete carries the observed UID.
  const unlabelled = new Map<string, KubernetesObject>();
  for (const s of snapshot.wideningNetworkPolicies ?? []) {
    const name = s.metadata?.name;
    if (!name) continue;
    const key = objectKey("NetworkPolicy", s.metadata?.namespace, name);
    if (!index.has(key) && hasOwnerReference(s, policy)) unlabelled.set(key, s);
  }
  for (const [key, observed] of [...index, ...unlabelled]) {
    if (++n % SLICE === 0) yield;
    if (wanted.has(key)) continue;
    const ns = observed.metadata?.namespace;
    if (ns !== undefined && !namespaces.has(ns)) continue;
    const kind = key.split("/")[0] as ChildKind;
    // Deleted only on the garbage collector's own evidence: this policy's UID, and no other controller.
    const owner = ownershipOf(observed, kind, policy, snapshot.policies);
    if (owner.kind !== "ours" || owner.via !== "ownerReference") continue;
    out.push({
      kind,
      ...(observed.metadata?.namespace ? { namespace: observed.metadata.namespace } : {}),
      name: observed.metadata!.name!,
      area: areaOf(kind, observed.metadata?.name),
      reason: "Orphaned",
      message: unlabelled.has(key)
        ? "not wanted by the policy, yet its ownerReference names the policy (without the managed-by label) and it allows all traffic in a direction"
        : "no longer wanted by the policy",
      repair: { action: "delete", object: observed },
    });
  }
  return out;
}

/**
 * Drift of what a policy wants on shared objects (namespace Pod Security labels, the default
 * ServiceAccount's token automount), seen from this policy. Repairs of shared objects are computed for all
 * policies at once by sharedWrites(); here a value another policy won is a Conflict, reported on both sides.
 */
export function sharedDrift(
  policy: ClusterSecurityPolicy,
  namespaces: readonly string[],
  snapshot: Snapshot,
  states: ReadonlyMap<string, SharedNamespaceState>,
): Drift[] {
  return drain(sharedDriftSteps(policy, namespaces, snapshot, states));
}

/** sharedDrift in steps (see desired/slices.ts). */
export function* sharedDriftSteps(
  policy: ClusterSecurityPolicy,
  namespaces: readonly string[],
  snapshot: Snapshot,
  states: ReadonlyMap<string, SharedNamespaceState>,
): Steps<Drift[]> {
  const spec = effectiveSpec(policy);
  const self = policy.metadata.name;
  const wanted = wantedNamespaceLabels(policy);
  const wantedSorted = Object.entries(wanted).sort(([a], [b]) => a.localeCompare(b));
  const byName = namespacesByName(snapshot.namespaces);
  const out: Drift[] = [];
  let n = 0;
  for (const ns of namespaces) {
    if (++n % SLICE === 0) yield;
    const observedNs = byName.get(ns);
    const labels = observedNs?.metadata?.labels ?? {};
    const owned = ownedLabelKeys(observedNs);
    const state = states.get(ns);
    const exempt = (area: string) => areaExemptInNamespace(spec.exemptions, area, ns, snapshot.now);
    const wantedHere: Record<string, string> = exempt("podSecurity") ? {} : wanted;
    for (const [key, value] of wantedHere === wanted ? wantedSorted : []) {
      const at = {
        kind: "Namespace",
        name: ns,
        area: "podSecurity" as const,
        fields: [`metadata.labels.${key}`],
      };
      const others = (state?.wants[key] ?? []).filter((w) => w.policy !== self && w.value !== value);
      const winner = state?.labels[key];
      if (others.length > 0) {
        const who = others.map((w) => `${w.policy} wants ${w.value}`).join(", ");
        const outcome =
          winner === value ? `${value} applies` : `${winner ?? labels[key] ?? "nothing"} applies`;
        out.push({
          ...at,
          reason: "Conflict",
          message: `${key}: this policy wants ${value}; ${who}; ${outcome}`,
        });
        continue;
      }
      if (isLevelKey(key) ? levelRank(labels[key]) >= levelRank(value) : labels[key] === value) continue;
      // A version goes with its level: the namespace's own level (at or above the policy's) keeps its own.
      const level = levelKeyOf(key);
      const wantedLevel = level === undefined ? undefined : wantedHere[level];
      if (level && !owned.has(level) && levelRank(labels[level]) >= levelRank(wantedLevel)) continue;
      const manager = lastOtherManager(observedNs, FIELD_MANAGER, [`metadata.labels.${key}`]);
      out.push({
        ...at,
        reason: labels[key] === undefined ? "Missing" : "Modified",
        ...(manager ? { manager } : {}),
        message: `${key} is ${labels[key] ?? "unset"}, want ${value}`,
      });
    }
    if (spec.serviceAccounts?.automountDefaultToken === false && !exempt("serviceAccounts")) {
      const sa = defaultServiceAccount(snapshot, ns);
      const at = { kind: "ServiceAccount", namespace: ns, name: "default", area: "serviceAccounts" as const };
      if (!sa)
        out.push({ ...at, reason: "Missing", message: "the default ServiceAccount does not exist yet" });
      else if (sa.automountServiceAccountToken !== false) {
        const manager = lastOtherManager(sa, FIELD_MANAGER, ["automountServiceAccountToken"]);
        out.push({
          ...at,
          reason: "Modified",
          fields: ["automountServiceAccountToken"],
          ...(manager ? { manager } : {}),
          message: `automountServiceAccountToken is ${String(sa.automountServiceAccountToken ?? "unset (true)")}, want false`,
        });
      }
    }
  }
  return out;
}

/**
 * A snapshot's namespaces by name (the last of two with one name, as `new Map(list)` keeps), built once
 * per list: a snapshot's lists never change, and each pass of a plan asks. Do not change it.
 */
export function namespacesByName(namespaces: readonly V1Namespace[]): ReadonlyMap<string, V1Namespace> {
  let index = namespaceIndexes.get(namespaces);
  if (!index || index.length !== namespaces.length) {
    index = {
      length: namespaces.length,
      byName: new Map(namespaces.map((ns) => [ns.metadata?.name ?? "", ns])),
    };
    namespaceIndexes.set(namespaces, index);
  }
  return index.byName;
}
const namespaceIndexes = new WeakMap<
  readonly V1Namespace[],
  { length: number; byName: ReadonlyMap<string, V1Namespace> }
>();

/** Helper for tests and the gatherer: the default ServiceAccount of a namespace in the snapshot. */
export function defaultServiceAccount(snapshot: Snapshot, namespace: string): V1ServiceAccount | undefined {
  // Indexed once per snapshot list (never mutated): a lookup per namespace must not scan every account.
  let index = defaultAccounts.get(snapshot.serviceAccounts);
  if (!index) {
    index = new Map();
    for (const s of snapshot.serviceAccounts)
      if (
        s.metadata?.name === "default" &&
        s.metadata.namespace !== undefined &&
        !index.has(s.metadata.namespace)
      )
        index.set(s.metadata.namespace, s);
    defaultAccounts.set(snapshot.serviceAccounts, index);
  }
  return index.get(namespace);
}
const defaultAccounts = new WeakMap<readonly V1ServiceAccount[], Map<string, V1ServiceAccount>>();
