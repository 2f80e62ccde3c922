import type { ChildKind } from "../desired/children.js";

/** Drops undefined values and empty arrays (Go's omitempty), recursively; keeps empty objects. */
export function compact(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(compact);
  if (value && typeof value === "object" && !(value instanceof Date)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      if (v === undefined || v === null || (Array.isArray(v) && v.length === 0)) continue;
      if (k === "matchLabels" && typeof v === "object" && Object.keys(v as object).length === 0) continue;
      out[k] = compact(v);
    }
    return out;
  }
  return value;
}

function withPortDefaults(rules: unknown): unknown {
  if (!Array.isArray(rules)) return rules;
  return rules.map((r: Record<string, unknown>) =>
    Array.isArray(r["ports"])
      ? { ...r, ports: r["ports"].map((p: Record<string, unknown>) => ({ protocol: "TCP", ...p })) }
      : r,
  );
}

/**
 * Puts an owned field into the form the API server stores, so a desired value compares equal to the
 * observed one the server defaulted: NetworkPolicy ports default to TCP and policyTypes to
 * [Ingress] (+ Egress when egress rules exist); RBAC subjects get their default apiGroup.
 */
export function normalizeField(kind: ChildKind, field: string, value: unknown): unknown {
  if (kind === "NetworkPolicy" && field === "spec" && value && typeof value === "object") {
    const spec = { ...(value as Record<string, unknown>) };
    if (!Array.isArray(spec["policyTypes"]) || spec["policyTypes"].length === 0) {
      spec["policyTypes"] =
        Array.isArray(spec["egress"]) && spec["egress"].length > 0 ? ["Ingress", "Egress"] : ["Ingress"];
    }
    spec["ingress"] = withPortDefaults(spec["ingress"]);
    spec["egress"] = withPortDefaults(spec["egress"]);
    return compact(spec);
  }
  if (kind === "RoleBinding" && field === "subjects" && Array.isArray(value)) {
    return compact(
      value.map((s: Record<string, unknown>) => ({
        ...s,
        apiGroup: s["apiGroup"] ?? (s["kind"] === "ServiceAccount" ? "" : "rbac.authorization.k8s.io"),
      })),
    );
  }
  if (kind === "ServiceAccount" && field === "automountServiceAccountToken") return value ?? true;
  return compact(value);
}

/** Deep equality of JSON values; object key order does not matter, array order does. */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) || Array.isArray(b)) {
    return (
      Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((x, i) => jsonEqual(x, b[i]))
    );
  }
  if (a && b && typeof a === "object" && typeof b === "object") {
    const ka = Object.keys(a).filter((k) => (a as Record<string, unknown>)[k] !== undefined);
    const kb = Object.keys(b).filter((k) => (b as Record<string, unknown>)[k] !== undefined);
    return (
      ka.length === kb.length &&
      ka.every((k) => jsonEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]))
    );
  }
  return false;
}

/** Paths (at most `depth` levels deep) where two JSON values differ, for the drift list's `fields`. */
export function diffPaths(a: unknown, b: unknown, prefix: string, depth = 2): string[] {
  if (jsonEqual(a, b)) return [];
  const isObj = (v: unknown) => v && typeof v === "object" && !Array.isArray(v);
  if (depth <= 0 || !isObj(a) || !isObj(b)) return [prefix];
  const keys = [...new Set([...Object.keys(a as object), ...Object.keys(b as object)])].sort();
  return keys.flatMap((k) =>
    diffPaths(
      (a as Record<string, unknown>)[k],
      (b as Record<string, unknown>)[k],
      `${prefix}.${k}`,
      depth - 1,
    ),
  );
}
