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
export function appliedPaths(obj: HasManagedFields | undefined, manager: string): Set<string> {
  const paths = new Set<string>();
  for (const entry of obj?.metadata?.managedFields ?? []) {
    if (entry.manager === manager && entry.operation === "Apply")
      for (const p of fieldPaths(entry.fieldsV1)) paths.add(p);
  }
  return paths;
}

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
