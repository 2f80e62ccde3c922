import type { OpenApiSchema } from "./schema.js";

/**
 * Structural defaulting exactly as the API server does it for CRDs: a property that is absent and has a
 * `default` gets it, recursively into objects and array items; a parent that is absent gets no defaults
 * for its children unless it has a default of its own. Running the same rules in the operator means a
 * policy read from a file (offline render, unit tests) behaves like one read from the API server.
 * Pure: returns a new value, never mutates its input.
 */
export function applyDefaults(schema: OpenApiSchema, value: unknown): unknown {
  if (value === undefined || value === null) return value;
  if (schema.type === "array" && Array.isArray(value) && schema.items) {
    const items = schema.items;
    return value.map((v) => applyDefaults(items, v));
  }
  if (schema.type === "object" && typeof value === "object" && !Array.isArray(value)) {
    const input = value as Record<string, unknown>;
    const out: Record<string, unknown> = { ...input };
    for (const [key, prop] of Object.entries(schema.properties ?? {})) {
      let v = out[key];
      if (v === undefined && prop.default !== undefined) v = structuredClone(prop.default);
      if (v !== undefined) out[key] = applyDefaults(prop, v);
    }
    if (schema.additionalProperties) {
      const ap = schema.additionalProperties;
      for (const [key, v] of Object.entries(out)) {
        if (!(key in (schema.properties ?? {}))) out[key] = applyDefaults(ap, v);
      }
    }
    return out;
  }
  return value;
}
