/**
 * A tiny schema builder: each builder returns a Kubernetes structural OpenAPI v3 schema AND carries the
 * TypeScript type of the value it describes. The CRD in crds/ is generated from these schemas and the
 * operator's types are inferred from the same objects (`Static<typeof X>`), so the two cannot disagree.
 *
 * Only what CRDs need is here: objects, arrays, strings, integers, booleans, enums, maps, CEL rules and
 * the `x-kubernetes-*` extensions.
 */

/**
 * A CEL validation rule. `message` is what the API server shows when the rule fails; `messageExpression`,
 * when given, is a CEL string expression that replaces it (so the message can name the offending entries),
 * and `message` stays the fallback should the expression itself fail.
 */
export interface ValidationRule {
  rule: string;
  message: string;
  messageExpression?: string;
  /** Evaluate the rule on create too, with `oldSelf` an optional that has no value there. */
  optionalOldSelf?: boolean;
  fieldPath?: string;
  reason?: string;
}

/** A structural schema as the API server wants it. */
export interface OpenApiSchema {
  type?: "object" | "array" | "string" | "integer" | "boolean" | "number";
  description?: string;
  properties?: Record<string, OpenApiSchema>;
  required?: string[];
  items?: OpenApiSchema;
  additionalProperties?: OpenApiSchema;
  enum?: unknown[];
  default?: unknown;
  format?: string;
  pattern?: string;
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  minItems?: number;
  maxItems?: number;
  maxProperties?: number;
  "x-kubernetes-validations"?: ValidationRule[];
  "x-kubernetes-preserve-unknown-fields"?: boolean;
  "x-kubernetes-embedded-resource"?: boolean;
  "x-kubernetes-list-type"?: "atomic" | "set" | "map";
  "x-kubernetes-list-map-keys"?: string[];
  "x-kubernetes-map-type"?: "atomic" | "granular";
}

/** A schema tagged with the static type it validates. The `_type` field exists only at compile time. */
export interface Schema<T> {
  readonly openapi: OpenApiSchema;
  readonly _type?: T;
}

export type Static<S> = S extends Schema<infer T> ? T : never;

/** Options shared by every builder. */
export interface Common {
  description: string;
  default?: unknown;
  rules?: ValidationRule[];
}

function base(type: OpenApiSchema["type"], c: Common, extra: OpenApiSchema = {}): OpenApiSchema {
  const s: OpenApiSchema = { ...(type ? { type } : {}), description: c.description, ...extra };
  if (c.default !== undefined) s.default = c.default;
  if (c.rules?.length) s["x-kubernetes-validations"] = c.rules;
  return s;
}

export function str(
  c: Common & { pattern?: string; maxLength?: number; minLength?: number; format?: string },
): Schema<string> {
  const extra: OpenApiSchema = {};
  if (c.pattern !== undefined) extra.pattern = c.pattern;
  if (c.maxLength !== undefined) extra.maxLength = c.maxLength;
  if (c.minLength !== undefined) extra.minLength = c.minLength;
  if (c.format !== undefined) extra.format = c.format;
  return { openapi: base("string", c, extra) };
}

export function enumOf<const V extends readonly string[]>(values: V, c: Common): Schema<V[number]> {
  return { openapi: base("string", c, { enum: [...values] }) };
}

export function int(c: Common & { minimum?: number; maximum?: number }): Schema<number> {
  const extra: OpenApiSchema = { format: "int32" };
  if (c.minimum !== undefined) extra.minimum = c.minimum;
  if (c.maximum !== undefined) extra.maximum = c.maximum;
  return { openapi: base("integer", c, extra) };
}

export function bool(c: Common): Schema<boolean> {
  return { openapi: base("boolean", c) };
}

export function arrayOf<T>(
  item: Schema<T>,
  c: Common & {
    maxItems?: number;
    minItems?: number;
    listType?: "atomic" | "set" | "map";
    mapKeys?: string[];
  },
): Schema<T[]> {
  const extra: OpenApiSchema = { items: item.openapi };
  if (c.maxItems !== undefined) extra.maxItems = c.maxItems;
  if (c.minItems !== undefined) extra.minItems = c.minItems;
  if (c.listType) extra["x-kubernetes-list-type"] = c.listType;
  if (c.mapKeys) extra["x-kubernetes-list-map-keys"] = c.mapKeys;
  return { openapi: base("array", c, extra) };
}

export function mapOf<T>(
  value: Schema<T>,
  c: Common & { maxProperties?: number },
): Schema<Record<string, T>> {
  const extra: OpenApiSchema = { additionalProperties: value.openapi };
  if (c.maxProperties !== undefined) extra.maxProperties = c.maxProperties;
  return { openapi: base("object", c, extra) };
}

/** An opaque embedded object (e.g. a NetworkPolicySpec) validated later by the API server itself. */
export function opaque<T>(c: Common): Schema<T> {
  return { openapi: base("object", c, { "x-kubernetes-preserve-unknown-fields": true }) };
}

type Props = Record<string, Schema<unknown>>;
type RequiredKeys<P extends Props, R extends keyof P> = { [K in R]: Static<P[K]> };
type OptionalKeys<P extends Props, R extends keyof P> = { [K in Exclude<keyof P, R>]?: Static<P[K]> };
type Flatten<T> = { [K in keyof T]: T[K] };

export function obj<P extends Props, R extends keyof P & string = never>(
  props: P,
  c: Common & { required?: readonly R[] },
): Schema<Flatten<RequiredKeys<P, R> & OptionalKeys<P, R>>> {
  const properties: Record<string, OpenApiSchema> = {};
  for (const [k, v] of Object.entries(props)) properties[k] = v.openapi;
  const extra: OpenApiSchema = { properties };
  if (c.required?.length) extra.required = [...c.required];
  return { openapi: base("object", c, extra) };
}
