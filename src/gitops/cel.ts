import { Environment, Optional, type ParseResult } from "@marcbachmann/cel-js";
import type { OpenApiSchema, ValidationRule } from "../api/schema.js";
import { re2 } from "./re2.js";
import { child, fieldError, index, type FieldError, type FieldReason } from "./fielderror.js";

/**
 * The CRD's `x-kubernetes-validations` CEL rules evaluated offline on a create, the way the API server runs
 * them: `self` is the value at the rule's node (integers as CEL int, date-time strings as timestamps),
 * `oldSelf` is an optional with no value for `optionalOldSelf` rules and any other transition rule (one
 * that reads `oldSelf`) is skipped, as on create. `messageExpression`, `fieldPath` and `reason` shape the
 * error as the server does. Evaluator: @marcbachmann/cel-js, which has CEL's optional types (the server's
 * `oldSelf.hasValue()`), the macros including three-argument `map`, and the string functions our rules use.
 */

const env = new Environment({ unlistedVariablesAreDyn: true, enableOptionalTypes: true });
// CEL's matches() is RE2 on the server; the evaluator's own is JavaScript's RegExp and cannot be replaced
// (same signature), so rules are parsed with `.matches(` read as this RE2 one (see re2.ts).
env.registerFunction("string.re2Matches(string): bool", (s: string, p: string) => re2(p).test(s));
const compiled = new Map<string, ParseResult>();

/** Parses a rule once; a rule the evaluator cannot parse is a broken CRD, never a user error. */
function compile(expr: string): ParseResult {
  let p = compiled.get(expr);
  if (!p) {
    p = env.parse(expr.replace(/\.matches\(/g, ".re2Matches("));
    compiled.set(expr, p);
  }
  return p;
}

/** Parses every rule of a schema up front, so a rule the evaluator cannot read fails loudly at start. */
export function compileRules(schema: OpenApiSchema): number {
  let n = 0;
  walkSchema(schema, (rules) => {
    for (const r of rules) {
      compile(r.rule);
      if (r.messageExpression) compile(r.messageExpression);
      n++;
    }
  });
  return n;
}

function walkSchema(s: OpenApiSchema, visit: (rules: ValidationRule[]) => void): void {
  if (s["x-kubernetes-validations"]) visit(s["x-kubernetes-validations"]);
  for (const p of Object.values(s.properties ?? {})) walkSchema(p, visit);
  if (s.items) walkSchema(s.items, visit);
  if (s.additionalProperties) walkSchema(s.additionalProperties, visit);
}

const TRANSITION = /\boldSelf\b/;

/** Runs every CEL rule that applies to `value` (null-pruned and defaulted), depth first like the server. */
export function validateCel(schema: OpenApiSchema, value: unknown, path = ""): FieldError[] {
  if (value === undefined || value === null) return [];
  const out: FieldError[] = [];
  if (Array.isArray(value) && schema.items) {
    const items = schema.items;
    value.forEach((v, i) => out.push(...validateCel(items, v, index(path, i))));
  } else if (typeof value === "object" && !Array.isArray(value)) {
    const obj = value as Record<string, unknown>;
    for (const [k, v] of Object.entries(obj)) {
      const prop = schema.properties?.[k];
      if (prop) out.push(...validateCel(prop, v, child(path, k)));
      else if (schema.additionalProperties)
        out.push(...validateCel(schema.additionalProperties, v, `${path}[${k}]`));
    }
  }
  const rules = schema["x-kubernetes-validations"] ?? [];
  if (rules.length === 0) return out;
  const self = toCel(schema, value);
  for (const rule of rules) {
    const usesOld = TRANSITION.test(rule.rule);
    if (usesOld && !rule.optionalOldSelf) continue;
    const ctx: Record<string, unknown> = { self };
    if (usesOld) ctx.oldSelf = Optional.none();
    const field = rule.fieldPath ? path + rule.fieldPath : path;
    const reason = (rule.reason ?? "FieldValueInvalid") as FieldReason;
    let ok: unknown;
    try {
      ok = compile(rule.rule)(ctx);
    } catch (err) {
      out.push(
        fieldError("cel", field, "FieldValueInvalid", `${celMessage(err)} evaluating rule: ${rule.rule}`),
      );
      continue;
    }
    if (ok === true) continue;
    // The server omits the value from a rule's error: the message is the rule's.
    out.push(fieldError("cel", field, reason, message(rule, ctx)));
  }
  return out;
}

function message(rule: ValidationRule, ctx: Record<string, unknown>): string {
  if (rule.messageExpression) {
    try {
      const m: unknown = compile(rule.messageExpression)(ctx);
      if (typeof m === "string" && m.trim() !== "" && !m.includes("\n")) return m;
    } catch {
      // The server falls back to `message` when the expression fails.
    }
  }
  return rule.message || `failed rule: ${rule.rule}`;
}

function celMessage(err: unknown): string {
  const m = err instanceof Error ? err.message : String(err);
  return m.split("\n")[0] ?? m;
}

/** A JSON value as CEL sees it under this schema: integers as int (bigint), date-time strings as timestamps. */
export function toCel(schema: OpenApiSchema | undefined, v: unknown): unknown {
  if (Array.isArray(v)) return v.map((x) => toCel(schema?.items, x));
  if (typeof v === "object" && v !== null) {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v as Record<string, unknown>))
      out[k] = toCel(schema?.properties?.[k] ?? schema?.additionalProperties, x);
    return out;
  }
  if (typeof v === "number" && (schema?.type === "integer" || (!schema?.type && Number.isInteger(v))))
    return BigInt(v);
  if (typeof v === "string" && schema?.format === "date-time") {
    const d = new Date(v);
    return Number.isNaN(d.getTime()) ? v : d;
  }
  return v;
}
