import type { RbacV1Subject, V1ObjectMeta, V1RoleBinding } from "@kubernetes/client-node";
import { KIND } from "../api/v1alpha1/policy.js";
import { FIELD_MANAGER, MANAGED_BY_LABEL, MANAGED_BY_VALUE, POLICY_LABEL } from "../api/vocabulary.js";
import { withCompactManagedFields } from "../drift/managedfields.js";
import { sharedInterner, shareCommonParts, type Interner } from "./intern.js";

/**
 * Whether a RoleBinding may be one of the operator's own children, or have been one: the managed-by or
 * policy label, an ownerReference to a policy, or a field the operator applied. Such a binding is cached
 * whole (drift compares it, orphan pruning judges it); every other binding only as RBAC findings and
 * occupancy read it.
 */
function mayBeOperators(b: V1RoleBinding): boolean {
  const m = b.metadata;
  return (
    m?.labels?.[MANAGED_BY_LABEL] === MANAGED_BY_VALUE ||
    m?.labels?.[POLICY_LABEL] !== undefined ||
    (m?.ownerReferences ?? []).some((r) => r.kind === KIND) ||
    (m?.managedFields ?? []).some((e) => e.manager === FIELD_MANAGER)
  );
}

/**
 * What the RoleBinding cache keeps of a binding, shared and frozen where it repeats (intern.ts). The
 * operator's own bindings (mayBeOperators) are kept whole, managedFields compacted, as every full cache
 * keeps its objects. Of every other binding, what its readers read (findings/rbac.ts: name, namespace,
 * labels, roleRef, subjects; occupancy and ownership, drift/ownership.ts: uid, ownerReferences,
 * managedFields; the caches: resourceVersion; deletionTimestamp when set), nothing else: annotations (a
 * `kubectl.kubernetes.io/last-applied-configuration` copy of the whole binding, typically) and
 * creationTimestamp are dropped.
 *
 * Subjects are the one part of a binding that rarely repeats (one user, one ServiceAccount per binding):
 * a shared table entry for a subject seen once costs more than the subject (its JSON key, a table slot,
 * ~190 bytes: measured with 5000 one-user bindings, docs/benchmarks-memory.md), so each subject gets its
 * own small frozen object whose kind, apiGroup and namespace strings are shared and whose name is kept as
 * it came. roleRefs repeat (a few roles bound many times) and are shared whole. Objects are built as
 * literals of a fixed shape, so V8 holds their fields inline (an object grown key by key past four
 * fields needs a second allocation for the rest).
 */
export function slimRoleBinding(b: V1RoleBinding, interner: Interner = sharedInterner): V1RoleBinding {
  const compact = withCompactManagedFields(b);
  if (mayBeOperators(compact)) return shareCommonParts(compact, interner);
  const m = compact.metadata ?? {};
  const s = (v: string | undefined) => (v === undefined ? undefined : interner.string(v));
  const metadata =
    compact.metadata &&
    slimMetadata({
      name: m.name,
      namespace: s(m.namespace),
      uid: m.uid,
      resourceVersion: m.resourceVersion,
      labels: m.labels && interner.value(m.labels),
      ownerReferences: m.ownerReferences?.length ? interner.value(m.ownerReferences) : undefined,
      deletionTimestamp: m.deletionTimestamp && s(String(m.deletionTimestamp)),
      managedFields: interner.value(m.managedFields),
    });
  const roleRef = interner.value(compact.roleRef);
  const subjects = Array.isArray(compact.subjects)
    ? Object.freeze(compact.subjects.map((x) => slimSubject(x, interner)))
    : compact.subjects;
  const slim = subjects
    ? { apiVersion: s(compact.apiVersion), kind: s(compact.kind), metadata, roleRef, subjects }
    : { apiVersion: s(compact.apiVersion), kind: s(compact.kind), metadata, roleRef };
  return dropUndefined(slim) as unknown as V1RoleBinding;
}

type SlimMeta = Pick<
  V1ObjectMeta,
  "name" | "namespace" | "uid" | "resourceVersion" | "labels" | "ownerReferences" | "managedFields"
> & { deletionTimestamp?: string };

/**
 * The kept metadata as one literal in the usual case (name, namespace, uid, resourceVersion,
 * managedFields, maybe labels); any other combination (ownerReferences, deletionTimestamp, a field
 * missing) key by key.
 */
function slimMetadata(k: { [K in keyof SlimMeta]: SlimMeta[K] | undefined }): V1ObjectMeta {
  const { name, namespace, uid, resourceVersion, labels, ownerReferences, deletionTimestamp, managedFields } =
    k;
  const usual =
    name !== undefined &&
    namespace !== undefined &&
    uid !== undefined &&
    resourceVersion !== undefined &&
    managedFields !== undefined &&
    ownerReferences === undefined &&
    deletionTimestamp === undefined;
  if (usual)
    return labels
      ? { name, namespace, uid, resourceVersion, labels, managedFields }
      : { name, namespace, uid, resourceVersion, managedFields };
  // (deletionTimestamp is a Date in client-node's types, a string in the JSON the caches hold.)
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(k)) if (v !== undefined) out[key] = v;
  return out;
}

const SUBJECT_FIELDS = new Set(["kind", "apiGroup", "name", "namespace"]);

/** A subject with its repeating strings shared, fields in the API's order (kind, apiGroup, name, namespace). */
function slimSubject(x: RbacV1Subject, interner: Interner): RbacV1Subject {
  // Odd input (the API server validates subjects, a test may not) is kept as it came.
  const plain = (v: unknown) => v === undefined || typeof v === "string";
  if (!x || typeof x !== "object" || typeof x.kind !== "string" || typeof x.name !== "string") return x;
  if (!plain(x.apiGroup) || !plain(x.namespace) || !Object.keys(x).every((k) => SUBJECT_FIELDS.has(k)))
    return x;
  const kind = interner.string(x.kind);
  const name = x.name;
  const { apiGroup, namespace } = x;
  const subject =
    apiGroup !== undefined
      ? namespace !== undefined
        ? { kind, apiGroup: interner.string(apiGroup), name, namespace: interner.string(namespace) }
        : { kind, apiGroup: interner.string(apiGroup), name }
      : namespace !== undefined
        ? { kind, name, namespace: interner.string(namespace) }
        : { kind, name };
  return Object.freeze(subject);
}

/** `o` without its undefined members (a binding with no roleRef: malformed, kept as it came). */
function dropUndefined(o: Record<string, unknown>): Record<string, unknown> {
  if (Object.values(o).every((v) => v !== undefined)) return o;
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
}
