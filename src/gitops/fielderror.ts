/**
 * A validation error shaped like the API server's (k8s.io/apimachinery field.Error): a field path such as
 * `spec.rbac.roles[0].name`, the cause type the server puts in `Status.details.causes[].reason`, and the
 * message the server prints (`<field>: <Type>: <detail>`). Same shape, so a GitOps reviewer reads the same
 * words offline as `kubectl apply` would print, and tests compare ours with the server's cause by cause.
 */
export interface FieldError {
  /** Dotted path with [index] and [key] like the server's; "" for the object itself. */
  field: string;
  reason: FieldReason;
  /** The full message, e.g. `spec.mode: Unsupported value: "Enforcing": supported values: "Enforce", "Audit"`. */
  message: string;
  /** Where the check came from: the CRD's OpenAPI schema, one of its CEL rules, or the operator's own checks. */
  source: "schema" | "cel" | "operator";
}

/** The API server's cause types (metav1.CauseType) for field errors. */
export type FieldReason =
  | "FieldValueRequired"
  | "FieldValueNotSupported"
  | "FieldValueInvalid"
  | "FieldValueDuplicate"
  | "FieldValueTooMany"
  | "FieldValueTooLong"
  | "FieldValueTypeInvalid"
  | "FieldValueForbidden"
  | "FieldValueUnknown";

const TITLES: Record<FieldReason, string> = {
  FieldValueRequired: "Required value",
  FieldValueNotSupported: "Unsupported value",
  FieldValueInvalid: "Invalid value",
  FieldValueDuplicate: "Duplicate value",
  FieldValueTooMany: "Too many",
  FieldValueTooLong: "Too long",
  FieldValueTypeInvalid: "Invalid value",
  FieldValueForbidden: "Forbidden",
  FieldValueUnknown: "Unknown field",
};

/** Builds a FieldError; `value` (when given) is printed like Go's %q / %d, as the server does. */
export function fieldError(
  source: FieldError["source"],
  field: string,
  reason: FieldReason,
  detail: string,
  value?: unknown,
): FieldError {
  const parts = [field === "" ? "<nil>" : field, TITLES[reason]];
  if (value !== undefined) parts.push(goValue(value));
  if (detail !== "") parts.push(detail);
  return { field, reason, message: parts.join(": "), source };
}

/** A value the way the API server quotes it in messages: strings quoted, numbers bare. */
export function goValue(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value);
  if (typeof value === "number" || typeof value === "bigint" || typeof value === "boolean")
    return String(value);
  if (value === null) return "null";
  return JSON.stringify(value);
}

/** `parent.child`, `parent[3]`, `parent[key]`: the server's path syntax. */
export function child(path: string, key: string): string {
  return path === "" ? key : `${path}.${key}`;
}

export function index(path: string, i: number | string): string {
  return `${path}[${i}]`;
}
