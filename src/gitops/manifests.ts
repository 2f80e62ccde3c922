/**
 * Reading manifest files the way kubectl and the API server do (go-yaml v2 under sigs.k8s.io/yaml), shared by
 * validate, render and diff: the encoding from the byte order mark (UTF-8, UTF-16LE/BE), invalid UTF-8 read
 * as U+FFFD as kubectl does, NUL bytes refused, YAML 1.1 scalars as go-yaml v2 resolves them (no base-60
 * integers, `0o17` is octal, timestamps stay strings), duplicate keys refused in linear time, inputs above
 * the API server's 3 MiB request limit refused before parsing, and a `kind: List` (any `*List` with
 * `items`) opened into its items.
 */
import { isAlias, isMap, isPair, isScalar, isSeq, parseAllDocuments, type Node, type Tags } from "yaml";

/** The API server refuses a request body larger than this (apiserver's MaxRequestBodyBytes). */
export const MAX_INPUT_BYTES = 3 * 1024 * 1024;

/** One object read from a file: its document (0-based), its position in a List's items, or why it is unreadable. */
export interface Manifest {
  document: number;
  /** 0-based index in the document's `items` when the document is a List. */
  item?: number;
  object?: unknown;
  /** Set when the document (or the whole input) cannot be read: the object is then absent. */
  error?: string;
}

/** Where a manifest is, for messages: `file`, `file (document 2)`, `file (document 1, item 3)` (1-based). */
export function where(file: string, m: { document: number; item?: number }): string {
  if (m.item !== undefined) return `${file} (document ${m.document + 1}, item ${m.item + 1})`;
  return m.document > 0 ? `${file} (document ${m.document + 1})` : file;
}

/** Bytes to text as go-yaml reads them: BOM-selected UTF-16 or UTF-8; throws on bytes that are not text. */
export function decodeInput(input: Uint8Array | string): string {
  if (typeof input === "string") return checkText(input);
  if (input.length > MAX_INPUT_BYTES) throw new Error(tooLarge(input.length));
  let encoding = "utf-8";
  let start = 0;
  if (input[0] === 0xff && input[1] === 0xfe) [encoding, start] = ["utf-16le", 2];
  else if (input[0] === 0xfe && input[1] === 0xff) [encoding, start] = ["utf-16be", 2];
  else if (input[0] === 0xef && input[1] === 0xbb && input[2] === 0xbf) start = 3;
  let text: string;
  try {
    // Invalid UTF-8 is read as kubectl reads it (U+FFFD in its place, which the server then accepts, as the
    // red-team case of a Latin-1 annotation showed); UTF-16 that does not decode is refused.
    const fatal = encoding !== "utf-8";
    text = new TextDecoder(encoding, { fatal, ignoreBOM: true }).decode(input.subarray(start));
  } catch {
    throw new Error(`not valid ${encoding.toUpperCase()} text`);
  }
  return checkText(text);
}

function tooLarge(bytes: number): string {
  return (
    `input is ${(bytes / 1024 / 1024).toFixed(1)} MiB, larger than the ${MAX_INPUT_BYTES / 1024 / 1024} MiB ` +
    "the API server accepts in one request: split it"
  );
}

function checkText(text: string): string {
  if (Buffer.byteLength(text, "utf8") > MAX_INPUT_BYTES) throw new Error(tooLarge(Buffer.byteLength(text)));
  const nul = text.indexOf("\0");
  if (nul >= 0) throw new Error(`control character NUL (0x00) at offset ${nul}: not a YAML or JSON text`);
  return text;
}

/** go-yaml v2's octal `0o17` (Go's strconv.ParseInt with base 0), which YAML 1.1 itself does not have. */
const intOctO = {
  identify: (v: unknown) => typeof v === "number" && Number.isInteger(v),
  default: true,
  tag: "tag:yaml.org,2002:int",
  format: "OCT",
  test: /^[-+]?0o[0-7_]+$/,
  resolve: (s: string) => {
    const n = parseInt(s.replace(/^[-+]?0o/, "").replace(/_/g, ""), 8);
    return s.startsWith("-") ? -n : n;
  },
};

/**
 * YAML 1.1 scalars as go-yaml v2 resolves them when kubectl decodes into JSON: yes/no/on/off are booleans,
 * but timestamps stay strings and base-60 (`1:00`) is a string, not 60; `0o17` is octal.
 */
export function goYamlTags(tags: Tags): Tags {
  const kept = tags.filter((t) => {
    if (typeof t === "string") return t !== "timestamp";
    if (t.tag === "tag:yaml.org,2002:timestamp") return false;
    return t.format !== "TIME"; // intTime, floatTime: sexagesimal numbers
  });
  return [intOctO, ...kept];
}

/** Every object of a YAML (or JSON) stream, Lists opened; empty documents left out. */
export function readManifests(text: string): Manifest[] {
  const docs = parseAllDocuments(text, { version: "1.1", customTags: goYamlTags, uniqueKeys: false });
  const list = Array.isArray(docs) ? docs : [docs];
  const out: Manifest[] = [];
  list.forEach((doc, i) => {
    if (doc.errors.length > 0) {
      out.push({ document: i, error: `${doc.errors.map((e) => e.message.split("\n")[0]).join("; ")}` });
      return;
    }
    const duplicate = duplicateKey(doc.contents);
    if (duplicate) {
      out.push({ document: i, error: `${duplicate}` });
      return;
    }
    let object: unknown;
    try {
      object = doc.toJS({ maxAliasCount: 1000 });
    } catch (err) {
      out.push({ document: i, error: `${err instanceof Error ? err.message : String(err)}` });
      return;
    }
    if (object === null || object === undefined) return; // an empty document, e.g. after a trailing ---
    if (isList(object)) object.items.forEach((item, j) => out.push({ document: i, item: j, object: item }));
    else out.push({ document: i, object });
  });
  // kubectl refuses a file without objects ("no objects passed"): so does a check meant to stand in for it.
  if (out.length === 0) out.push({ document: 0, error: "no object in it" });
  return out;
}

/** kubectl's List: any `*List` kind with an `items` array (v1 List, NamespaceList, ...). */
function isList(o: unknown): o is { kind: string; items: unknown[] } {
  if (typeof o !== "object" || o === null || Array.isArray(o)) return false;
  const r = o as Record<string, unknown>;
  return typeof r.kind === "string" && r.kind.endsWith("List") && Array.isArray(r.items);
}

/** The first key given twice in one mapping, found in one pass over the tree (no recursion: deep input is fine). */
function duplicateKey(root: Node | null): string | undefined {
  const stack: unknown[] = [root];
  while (stack.length > 0) {
    const node = stack.pop();
    if (isMap(node)) {
      const seen = new Set<string>();
      for (const pair of node.items) {
        const k = pair.key;
        const key = isScalar(k) ? `${typeof k.value}:${String(k.value)}` : JSON.stringify(k);
        if (seen.has(key)) {
          const shown = isScalar(k) ? String(k.value) : String(k);
          const line = k && isScalar(k) && k.range ? ` (offset ${k.range[0]})` : "";
          return `mapping key ${JSON.stringify(shown)} already defined${line}`;
        }
        seen.add(key);
        stack.push(pair.value);
      }
    } else if (isSeq(node)) stack.push(...node.items);
    else if (isPair(node)) stack.push(node.value);
    else if (isAlias(node)) continue;
  }
  return undefined;
}
