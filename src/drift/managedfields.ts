import type { V1ManagedFieldsEntry } from "@kubernetes/client-node";

/**
 * Reads `metadata.managedFields` (FieldsV1) to tell who owns which field. Paths are dotted with the
 * FieldsV1 prefixes removed: `metadata.labels.app`, `spec.podSelector`; list elements keep their key form
 * (`k:{"port":53}` or `v:"x"`).
 */
export function fieldPaths(fieldsV1: unknown, prefix = ""): string[] {
  if (!fieldsV1 || typeof fieldsV1 !== "object") return [];
  const out: string[] = [];
  for (const [raw, child] of Object.entries(fieldsV1 as Record<string, unknown>)) {
    if (raw === ".") continue;
    const name = raw.startsWith("f:") ? raw.slice(2) : raw;
    const path = prefix ? `${prefix}.${name}` : name;
    out.push(path, ...fieldPaths(child, path));
  }
  return out;
}

interface HasManagedFields {
  metadata?: { managedFields?: V1ManagedFieldsEntry[] };
}

/** Paths owned by `manager` through server-side apply. */
export function appliedPaths(obj: HasManagedFields | undefined, manager: string): ReadonlySet<string> {
  const entries = obj?.metadata?.managedFields;
  if (!entries?.length) return noPaths;
  // A cached object keeps its managedFields until it changes, and one plan asks several times per object.
  const known = appliedMemo.get(entries);
  const hit = known?.length === entries.length ? known.byManager.get(manager) : undefined;
  if (hit) return hit;
  const paths = new Set<string>();
  for (const entry of entries) {
    if (entry.manager === manager && entry.operation === "Apply")
      for (const p of fieldPaths(entry.fieldsV1)) paths.add(p);
  }
  if (known?.length === entries.length) known.byManager.set(manager, paths);
  else appliedMemo.set(entries, { length: entries.length, byManager: new Map([[manager, paths]]) });
  return paths;
}

const noPaths: ReadonlySet<string> = new Set();

/** Per managedFields list: its length when read, and the paths applied by each manager asked about. */
const appliedMemo = new WeakMap<
  readonly V1ManagedFieldsEntry[],
  { length: number; byManager: Map<string, ReadonlySet<string>> }
>();

/**
 * The most recent field manager other than `self` that owns a field under one of `prefixes` — the best
 * answer managedFields can give to "who changed this?". Undefined when nobody else touched those fields.
 */
export function lastOtherManager(
  obj: HasManagedFields | undefined,
  self: string,
  prefixes: readonly string[],
): string | undefined {
  let best: { manager: string; time: number } | undefined;
  for (const entry of obj?.metadata?.managedFields ?? []) {
    if (!entry.manager || entry.manager === self) continue;
    const touches = fieldPaths(entry.fieldsV1).some((p) =>
      prefixes.some((pre) => p === pre || p.startsWith(`${pre}.`)),
    );
    if (!touches) continue;
    const time = entry.time ? new Date(entry.time).getTime() : 0;
    if (!best || time >= best.time) best = { manager: entry.manager, time };
  }
  return best?.manager;
}

/** The metadata fields whose keys the readers above ask about; every other metadata field is dropped. */
const KEPT_METADATA_KEYS = new Set(["f:labels", "f:annotations"]);

/**
 * A FieldsV1 tree cut down to what this project ever asks of it: under `f:metadata`, the keys of
 * `f:labels` and `f:annotations` and whether `f:ownerReferences` is owned; every other top-level field
 * (`f:spec`, `f:data`, `f:rules`, `f:automountServiceAccountToken`...) as a leaf, i.e. "owned or not".
 * `f:status` is dropped (no reader). Every query the readers make (fieldPaths matched against a top-level
 * field, a label or annotation key, or `metadata.ownerReferences`, by equality or prefix) answers the same
 * on the pruned tree as on the full one. Undefined when nothing is left.
 */
export function pruneFieldsV1(fieldsV1: unknown): Record<string, unknown> | undefined {
  if (!fieldsV1 || typeof fieldsV1 !== "object") return undefined;
  const out: Record<string, unknown> = {};
  for (const [key, child] of Object.entries(fieldsV1 as Record<string, unknown>)) {
    if (key === "." || key === "f:status") continue;
    if (key !== "f:metadata") {
      out[key] = {};
      continue;
    }
    const meta: Record<string, unknown> = {};
    for (const [mk, mchild] of Object.entries((child ?? {}) as Record<string, unknown>)) {
      if (mk === "f:ownerReferences") meta[mk] = {};
      else if (KEPT_METADATA_KEYS.has(mk) && mchild && typeof mchild === "object") {
        const keys: Record<string, unknown> = {};
        for (const k of Object.keys(mchild)) if (k !== ".") keys[k] = {};
        if (Object.keys(keys).length) meta[mk] = keys;
      }
    }
    if (Object.keys(meta).length) out[key] = meta;
  }
  return Object.keys(out).length ? out : undefined;
}

/**
 * managedFields as the caches keep them: per entry only `manager`, `operation`, `time` and the pruned
 * FieldsV1 (see pruneFieldsV1); entries left with no field are dropped. client-go's informers drop
 * managedFields altogether with a TransformFunc; this project reads who owns which field (ownership by
 * the operator's own entries, the last other manager of a drifted field, Pod Security labels to give
 * back), so it keeps that and only that: a cached Namespace or NetworkPolicy shrinks by about a third.
 */
export function compactManagedFields(
  entries: readonly V1ManagedFieldsEntry[] | undefined,
): V1ManagedFieldsEntry[] | undefined {
  if (!entries?.length) return undefined;
  const out: V1ManagedFieldsEntry[] = [];
  for (const e of entries) {
    const fieldsV1 = pruneFieldsV1(e.fieldsV1);
    if (!fieldsV1) continue;
    out.push({
      ...(e.manager !== undefined ? { manager: e.manager } : {}),
      ...(e.operation !== undefined ? { operation: e.operation } : {}),
      ...(e.time !== undefined ? { time: e.time } : {}),
      fieldsV1,
    });
  }
  return out.length ? out : undefined;
}

/** A copy of `obj` with its managedFields compacted (see compactManagedFields); other fields shared. */
export function withCompactManagedFields<T extends { metadata?: { managedFields?: V1ManagedFieldsEntry[] } }>(
  obj: T,
): T {
  const m = obj.metadata;
  if (!m?.managedFields) return obj;
  const { managedFields, ...rest } = m;
  const compact = compactManagedFields(managedFields);
  return { ...obj, metadata: { ...rest, ...(compact ? { managedFields: compact } : {}) } };
}
