import type { OpenApiSchema } from "../api/schema.js";
import { child, fieldError, goValue, index, type FieldError } from "./fielderror.js";
import { re2 } from "./re2.js";

/**
 * Kubernetes structural-schema validation of a custom resource, offline, with the API server's semantics
 * rather than JSON Schema's (why not ajv: most of what the server does here is not JSON Schema — unknown
 * fields are errors under kubectl's strict field validation, `null` in a non-nullable field is pruned and
 * then defaulted, `x-kubernetes-list-type` map/set means uniqueness by key, `format: int32` bounds the
 * value, and the messages must read like the server's). Covers the subset of OpenAPI a structural CRD
 * may use. Pure.
 */

interface Schema extends OpenApiSchema {
  nullable?: boolean;
  "x-kubernetes-int-or-string"?: boolean;
}

/** The ObjectMeta fields a manifest may set (others are unknown fields to the server's strict decoder). */
const OBJECT_META_FIELDS = new Set([
  "name",
  "generateName",
  "namespace",
  "selfLink",
  "uid",
  "resourceVersion",
  "generation",
  "creationTimestamp",
  "deletionTimestamp",
  "deletionGracePeriodSeconds",
  "labels",
  "annotations",
  "ownerReferences",
  "finalizers",
  "managedFields",
]);

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/**
 * Paths of fields the schema does not know, as the server's strict decoder names them (`spec.foo`,
 * `spec.rbac.roles[0].nmae`). kubectl create/apply use strict field validation by default, so the server
 * rejects these; with fieldValidation=Ignore it would silently drop them, which is worse for a reviewer.
 */
export function unknownFields(schema: Schema, value: unknown, path = ""): string[] {
  if (schema["x-kubernetes-preserve-unknown-fields"]) return [];
  if (Array.isArray(value)) {
    const items = schema.items ?? {};
    return value.flatMap((v, i) => unknownFields(items, v, index(path, i)));
  }
  if (!isObject(value)) return [];
  const out: string[] = [];
  const props = schema.properties ?? {};
  for (const [k, v] of Object.entries(value)) {
    const p = child(path, k);
    if (path === "" && k === "metadata") {
      for (const m of Object.keys(isObject(v) ? v : {}))
        if (!OBJECT_META_FIELDS.has(m)) out.push(child(p, m));
      continue;
    }
    // An object where the schema wants a scalar: each of its keys is unknown to the decoder, too.
    const s = props[k] ?? schema.additionalProperties;
    if (!s) out.push(p);
    else out.push(...unknownFields(s, v, p));
  }
  return out;
}

/**
 * Drops `null` where the schema does not say `nullable: true`, as the server does before defaulting (a
 * null field then gets its default, or is absent). Returns a new value.
 */
export function dropNulls(schema: Schema, value: unknown): unknown {
  if (Array.isArray(value) && schema.items) {
    const items = schema.items;
    return value.map((v) => dropNulls(items, v));
  }
  if (!isObject(value)) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    const s = schema.properties?.[k] ?? schema.additionalProperties;
    if (v === null && s && !(s as Schema).nullable) continue;
    out[k] = s ? dropNulls(s, v) : v;
  }
  return out;
}

const INT32 = { min: -2147483648, max: 2147483647 };
// RFC 3339 date-time as Go's strfmt accepts it (kube-openapi's "date-time" format).
const DATE_TIME = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;

function typeOf(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "array";
  if (typeof v === "number") return Number.isInteger(v) ? "integer" : "number";
  if (typeof v === "bigint") return "integer";
  return typeof v;
}

function typeMatches(type: Schema["type"], v: unknown): boolean {
  const t = typeOf(v);
  if (type === "number") return t === "number" || t === "integer";
  return t === type;
}

/** Validates `value` (already null-pruned and defaulted) against `schema`; every error, not just the first. */
export function validateSchema(schema: Schema, value: unknown, path = ""): FieldError[] {
  const err = (field: string, reason: FieldError["reason"], detail: string, v?: unknown) =>
    fieldError("schema", field, reason, detail, v);
  const out: FieldError[] = [];
  // The server's type and enum validators are independent: a wrong type (null included) can fail both.
  if (schema.enum && !schema.enum.some((e) => e === value)) {
    const supported = schema.enum.map((e) => goValue(e)).join(", ");
    out.push(err(path, "FieldValueNotSupported", `supported values: ${supported}`, value));
  }
  if (value === null) {
    if (schema.nullable) return [];
    return [
      err(path, "FieldValueTypeInvalid", `${path} in body must be of type ${schema.type}: "null"`, "null"),
      ...out,
    ];
  }
  if (schema["x-kubernetes-int-or-string"]) {
    const t = typeOf(value);
    if (t !== "integer" && t !== "string")
      return [
        err(path, "FieldValueTypeInvalid", `${path} in body must be of type integer,string: "${t}"`, t),
      ];
  } else if (schema.type && !typeMatches(schema.type, value)) {
    const t = typeOf(value);
    // A date-time field is checked against its format first, with Go's type name (an empty array passes).
    if (schema.format === "date-time") {
      if (Array.isArray(value) && value.length === 0) return out;
      const go =
        t === "integer"
          ? "int64"
          : t === "number"
            ? "float64"
            : t === "boolean" || t === "object"
              ? ""
              : undefined;
      if (go !== undefined)
        return [
          err(path, "FieldValueTypeInvalid", `${path} in body must be of type date-time: "${go}"`, go),
          ...out,
        ];
    }
    // Go's validator names a fraction float64 and fails the int32 format check as well; a boolean or an
    // object it checks against the format, with no type name at all.
    if (schema.format === "int32" && t === "number")
      return [
        err(path, "FieldValueTypeInvalid", `${path} in body must be of type int32: "float64"`, "float64"),
        int32Error(path),
        ...out,
      ];
    if (schema.format === "int32" && (t === "boolean" || t === "object"))
      return [err(path, "FieldValueTypeInvalid", `${path} in body must be of type int32: ""`, ""), ...out];
    return [
      err(path, "FieldValueTypeInvalid", `${path} in body must be of type ${schema.type}: "${t}"`, t),
      ...out,
    ];
  }
  if (typeof value === "string") out.push(...validateString(schema, value, path));
  if (typeof value === "number" || typeof value === "bigint")
    out.push(...validateNumber(schema, value, path));
  if (Array.isArray(value)) out.push(...validateArray(schema, value, path));
  if (isObject(value)) out.push(...validateObject(schema, value, path));
  return out;
}

function validateString(schema: Schema, value: string, path: string): FieldError[] {
  const out: FieldError[] = [];
  // The server counts characters (runes), not UTF-16 units.
  const length = [...value].length;
  if (schema.maxLength !== undefined && length > schema.maxLength)
    out.push(
      fieldError("schema", path, "FieldValueTooLong", `may not be more than ${schema.maxLength} bytes`),
    );
  if (schema.minLength !== undefined && length < schema.minLength)
    out.push(
      fieldError(
        "schema",
        path,
        "FieldValueInvalid",
        `${path} in body should be at least ${schema.minLength} chars long`,
        value,
      ),
    );
  if (schema.pattern !== undefined && !re2(schema.pattern).test(value))
    out.push(
      fieldError(
        "schema",
        path,
        "FieldValueInvalid",
        `${path} in body should match '${schema.pattern}'`,
        value,
      ),
    );
  if (schema.format === "date-time" && !DATE_TIME.test(value))
    out.push(
      fieldError(
        "schema",
        path,
        "FieldValueTypeInvalid",
        `${path} in body must be of type date-time: ${goValue(value)}`,
        value,
      ),
    );
  return out;
}

/** The server's (oddly placed) error for a value outside format int32: on the root, naming the field. */
function int32Error(path: string): FieldError {
  return fieldError(
    "schema",
    "",
    "FieldValueInvalid",
    `Checked value must be of type integer with format int32 in ${path}`,
    "",
  );
}

function validateNumber(schema: Schema, value: number | bigint, path: string): FieldError[] {
  const out: FieldError[] = [];
  const n = Number(value);
  const inv = (detail: string) => fieldError("schema", path, "FieldValueInvalid", detail, value);
  if (schema.minimum !== undefined && n < schema.minimum)
    out.push(inv(`${path} in body should be greater than or equal to ${schema.minimum}`));
  if (schema.maximum !== undefined && n > schema.maximum)
    out.push(inv(`${path} in body should be less than or equal to ${schema.maximum}`));
  if (schema.format === "int32" && (n < INT32.min || n > INT32.max || !Number.isInteger(n)))
    out.push(int32Error(path));
  return out;
}

function validateArray(schema: Schema, value: unknown[], path: string): FieldError[] {
  const out: FieldError[] = [];
  if (schema.maxItems !== undefined && value.length > schema.maxItems)
    out.push(
      fieldError(
        "schema",
        path,
        "FieldValueTooMany",
        `must have at most ${schema.maxItems} items`,
        value.length,
      ),
    );
  if (schema.minItems !== undefined && value.length < schema.minItems)
    out.push(
      fieldError(
        "schema",
        path,
        "FieldValueInvalid",
        `${path} in body should have at least ${schema.minItems} items`,
        value.length,
      ),
    );
  if (schema.items) {
    const items = schema.items;
    value.forEach((v, i) => out.push(...validateSchema(items, v, index(path, i))));
  }
  out.push(...listUniqueness(schema, value, path));
  return out;
}

/** `x-kubernetes-list-type: set` (unique values) and `map` (unique by the map keys), as the server checks. */
function listUniqueness(schema: Schema, value: unknown[], path: string): FieldError[] {
  const type = schema["x-kubernetes-list-type"];
  if (type !== "set" && type !== "map") return [];
  const keys = schema["x-kubernetes-list-map-keys"] ?? [];
  const seen = new Map<string, number>();
  const out: FieldError[] = [];
  for (const [i, v] of value.entries()) {
    let identity: unknown = v;
    if (type === "map") {
      // A null entry counts as one without keys; any other non-object stops the check, as on the server.
      if (v !== null && !isObject(v)) {
        out.push(
          fieldError(
            "schema",
            index(path, i),
            "FieldValueInvalid",
            "must be an object for an array of list-type map",
            v,
          ),
        );
        return out;
      }
      const o = v ?? {};
      identity = Object.fromEntries(keys.filter((k) => o[k] !== undefined).map((k) => [k, o[k]]));
    }
    const id = JSON.stringify(identity);
    const count = (seen.get(id) ?? 0) + 1;
    seen.set(id, count);
    // Each repeated value once, at its first repeat; a map entry is printed by its keys as JSON.
    if (count === 2) out.push(fieldError("schema", index(path, i), "FieldValueDuplicate", "", identity));
  }
  return out;
}

function validateObject(schema: Schema, value: Record<string, unknown>, path: string): FieldError[] {
  const out: FieldError[] = [];
  for (const r of schema.required ?? [])
    if (value[r] === undefined) out.push(fieldError("schema", child(path, r), "FieldValueRequired", ""));
  for (const [k, v] of Object.entries(value)) {
    const prop = schema.properties?.[k];
    if (prop) out.push(...validateSchema(prop, v, child(path, k)));
    else if (schema.additionalProperties)
      out.push(...validateSchema(schema.additionalProperties, v, child(path, k)));
  }
  return out;
}
