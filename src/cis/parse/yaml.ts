/**
 * YAML/JSON documents as the Go decoders of the components read them: one plain mapping, duplicate keys
 * refused, aliases bounded, and typed config objects checked for their apiVersion/kind.
 */
import { isScalar, parseAllDocuments, visit } from "yaml";
import type { Document, Tags } from "yaml";
import { quote } from "../output/text.js";

/** A parse result: the value, or a message that names the problem. */
export type Parsed<T> =
  { readonly ok: true; readonly value: T } | { readonly ok: false; readonly reason: string };

/**
 * A YAML/JSON mapping as a Go decoder sees one: a plain object only. The yaml library turns `!!omap`,
 * `!!set` and `!!binary` into a Map, Set or Uint8Array, which would otherwise pass as an empty mapping (and
 * a check would judge the defaults of a section the component could not even decode).
 */
export function isRecord(v: unknown): v is Record<string, unknown> {
  if (typeof v !== "object" || v === null || Array.isArray(v)) return false;
  const proto: unknown = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

// go-yaml v2 (under sigs.k8s.io/yaml) resolves neither sexagesimal numbers (`1:30`) nor timestamps, so
// those stay strings as they do for the Go components.
const goYamlTags = (tags: Tags): Tags =>
  tags.filter(
    (t) => typeof t === "string" || (t.format !== "TIME" && t.tag !== "tag:yaml.org,2002:timestamp"),
  );

// What each yaml error code means, in words of our own: the parser's messages may quote the offending
// source (a tag, an escape sequence) and its code frame quotes whole lines, so neither is ever shown.
const YAML_ERRORS: Readonly<Record<string, string>> = {
  ALIAS_PROPS: "an alias has an anchor or tag",
  BAD_ALIAS: "an alias is invalid",
  BAD_DIRECTIVE: "a directive is invalid",
  BAD_DQ_ESCAPE: "a double-quoted string has an invalid escape sequence",
  BAD_INDENT: "bad indentation",
  BAD_PROP_ORDER: "anchors and tags are in the wrong order",
  BAD_SCALAR_START: "a plain value starts with a reserved character",
  BLOCK_AS_IMPLICIT_KEY: "a block collection is used as an implicit key",
  BLOCK_IN_FLOW: "a block collection is inside a flow collection",
  DUPLICATE_KEY: "a mapping has a duplicate key",
  IMPOSSIBLE: "the document cannot be parsed",
  KEY_OVER_1024_CHARS: "an implicit key is longer than 1024 characters",
  MISSING_CHAR: "a required character is missing",
  MULTILINE_IMPLICIT_KEY: "an implicit key spans several lines",
  MULTIPLE_ANCHORS: "a node has several anchors",
  MULTIPLE_DOCS: "several documents where one is expected",
  MULTIPLE_TAGS: "a node has several tags",
  NON_STRING_KEY: "a mapping key is not a string",
  RESOURCE_EXHAUSTION: "it is nested too deeply",
  TAB_AS_INDENT: "a tab is used for indentation",
  TAG_RESOLVE_FAILED: "a tag cannot be resolved",
  UNEXPECTED_TOKEN: "an unexpected token",
  BAD_COLLECTION_TYPE: "a tag does not fit its collection",
};

/** At most this many aliases are expanded per document; more is an alias bomb, refused. */
export const MAX_YAML_ALIASES = 100;

/** A duplicate key in any mapping of `doc`, as the offset of the second occurrence. */
function duplicateKeyOffset(doc: Document.Parsed): number | undefined {
  // yaml's own uniqueKeys check compares each key with every earlier one: quadratic, minutes for a 1 MiB
  // file of keys. The same rule (scalars with equal values), with a set per mapping.
  let found: number | undefined;
  visit(doc, {
    Map(_, map) {
      const seen = new Set<string>();
      for (const pair of map.items) {
        if (!isScalar(pair.key)) continue;
        const v: unknown = pair.key.value;
        const id = `${typeof v}:${String(v)}`;
        if (seen.has(id)) {
          found = pair.key.range?.[0] ?? 0;
          return visit.BREAK;
        }
        seen.add(id);
      }
      return undefined;
    },
  });
  return found;
}

function lineAndColumn(text: string, offset: number): string {
  let line = 1;
  let start = 0;
  for (let i = text.indexOf("\n"); i >= 0 && i < offset; i = text.indexOf("\n", i + 1)) {
    line++;
    start = i + 1;
  }
  return `line ${line}, column ${offset - start + 1}`;
}

function yamlErrorText(e: { code?: unknown; linePos?: readonly { line: number; col: number }[] }): string {
  const what = (typeof e.code === "string" ? YAML_ERRORS[e.code] : undefined) ?? "a syntax error";
  const at = e.linePos?.[0];
  return at === undefined ? what : `${what} at line ${at.line}, column ${at.col}`;
}

/**
 * Parses a single YAML (or JSON) document into a mapping. Kubernetes components decode config through
 * sigs.k8s.io/yaml, which follows YAML 1.1 (`yes`/`on` are booleans), so we parse as 1.1 too. Duplicate
 * keys are rejected: the lenient Go decoders keep one of them "in an undefined order", which we will not
 * guess at. Errors name the problem and its line and column, never the file's content (a config file may
 * hold keys); an alias bomb (more than {@link MAX_YAML_ALIASES} aliases) is an error, not an expansion.
 */
export function parseYamlMapping(text: string): Parsed<Record<string, unknown>> {
  let value: unknown;
  try {
    const docs = parseAllDocuments(text, { version: "1.1", uniqueKeys: false, customTags: goYamlTags });
    if (!Array.isArray(docs)) return { ok: false, reason: "is not valid YAML" };
    const firstError = docs.flatMap((d) => d.errors)[0];
    if (firstError !== undefined)
      return { ok: false, reason: `is not valid YAML: ${yamlErrorText(firstError)}` };
    for (const d of docs) {
      const dup = duplicateKeyOffset(d);
      if (dup !== undefined) {
        return {
          ok: false,
          reason: `is not valid YAML: ${YAML_ERRORS.DUPLICATE_KEY} at ${lineAndColumn(text, dup)}`,
        };
      }
    }
    const nonEmpty = docs.filter((d) => d.contents !== null);
    if (nonEmpty.length === 0) return { ok: false, reason: "is empty" };
    if (nonEmpty.length > 1)
      return { ok: false, reason: `holds ${nonEmpty.length} YAML documents, expected one` };
    value = (nonEmpty[0] as (typeof nonEmpty)[number]).toJS({ maxAliasCount: MAX_YAML_ALIASES });
  } catch (e) {
    if (e instanceof ReferenceError && /alias/i.test(e.message)) {
      return /excessive/i.test(e.message)
        ? { ok: false, reason: "is not valid YAML: too many aliases (a YAML alias bomb?)" }
        : { ok: false, reason: "is not valid YAML: an alias refers to no anchor" };
    }
    if (e instanceof RangeError) {
      return { ok: false, reason: `is not valid YAML: ${YAML_ERRORS.RESOURCE_EXHAUSTION}` };
    }
    return { ok: false, reason: `is not valid YAML: ${yamlErrorText(e as { code?: unknown })}` };
  }
  if (!isRecord(value)) return { ok: false, reason: "is not a YAML mapping" };
  return { ok: true, value };
}

/**
 * Parses a config file and checks its apiVersion/kind against what the component accepts.
 * `accepted` lists `apiVersion/kind` pairs.
 */
/**
 * A type identifier as found, quoted only when it looks like one: this also runs on key-bearing files
 * (EncryptionConfiguration), where whatever else stands there may be key material.
 */
export function typeName(v: unknown): string {
  if (typeof v === "string" && /^[A-Za-z0-9./-]{1,63}$/.test(v)) return quote(v);
  if (typeof v === "string") return `a string of ${v.length} characters`;
  return v === undefined || v === null
    ? "(none)"
    : `a${Array.isArray(v) ? "" : "n"} ${Array.isArray(v) ? "list" : typeof v}`;
}

export function parseConfigObject(
  text: string,
  accepted: readonly { apiVersion: string; kind: string }[],
): Parsed<Record<string, unknown>> {
  const doc = parseYamlMapping(text);
  if (!doc.ok) return doc;
  const { apiVersion, kind } = doc.value;
  if (!accepted.some((a) => a.apiVersion === apiVersion && a.kind === kind)) {
    const want = accepted.map((a) => `${a.apiVersion} ${a.kind}`).join(" or ");
    return {
      ok: false,
      reason: `has apiVersion ${typeName(apiVersion)} kind ${typeName(kind)}, expected ${want}`,
    };
  }
  return doc;
}
