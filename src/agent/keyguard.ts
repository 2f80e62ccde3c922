import { LineCounter, parseDocument } from "yaml";

/**
 * The key guard: whether replacing an EncryptionConfiguration on disk could make stored objects unreadable.
 * It compares, resource by resource, what could decrypt before with what can decrypt after, because the
 * API server reads an object of a resource only with the providers of the first entry matching that
 * resource (a resource matched by no entry is read as plaintext).
 *
 * The files it reads hold key material, so nothing it returns ever quotes them: a malformed file is
 * reported by line and column only (a YAML parser's error message carries a code frame of the source).
 */

/** One `resources[]` entry: the resource names it matches and what can decrypt them. */
interface Entry {
  resources: string[];
  /** `identity`, `<provider>/<key name>` or `kms/<name>`. */
  decryptors: Set<string>;
}

/** A parsed configuration, or why it could not be read (line and column, never content). */
export type ParsedEncryptionConfig = { ok: true; entries: Entry[] } | { ok: false; problem: string };

/** What the operator declared it no longer needs (after a completed rewrite), from the source Secret. */
export interface Retired {
  /** `<provider>/<name>` of keys no stored object uses any more. */
  keys: readonly string[];
  /** Resources whose stored objects were all rewritten in plaintext and left the configuration. */
  resources: readonly string[];
}

/** Parses an EncryptionConfiguration's text; a problem names a position, never the text there. */
export function parseEncryptionConfig(yamlText: string): ParsedEncryptionConfig {
  const lineCounter = new LineCounter();
  const doc = parseDocument(yamlText, { lineCounter, prettyErrors: false });
  const error = doc.errors[0];
  if (error) {
    const at = lineCounter.linePos(error.pos[0]);
    return { ok: false, problem: `malformed YAML at line ${at.line}, column ${at.col} (${error.code})` };
  }
  let value: unknown;
  try {
    // An EncryptionConfiguration has no use for aliases: a few are tolerated, a bomb or a dangling one is refused.
    value = doc.toJS({ maxAliasCount: 10 });
  } catch (err) {
    const reason =
      err instanceof ReferenceError ? "an unresolved or excessive YAML alias" : "unreadable YAML";
    return { ok: false, problem: `malformed YAML: ${reason}` };
  }
  if (value === null || value === undefined) return { ok: true, entries: [] };
  const resources = (value as { resources?: unknown }).resources;
  if (typeof value !== "object" || (resources !== undefined && !Array.isArray(resources)))
    return { ok: false, problem: "not an EncryptionConfiguration (resources must be a list)" };
  const entries: Entry[] = [];
  for (const [i, r] of ((resources as unknown[] | undefined) ?? []).entries()) {
    const names = (r as { resources?: unknown } | null)?.resources;
    const providers = (r as { providers?: unknown } | null)?.providers;
    if (!Array.isArray(names) || !Array.isArray(providers))
      return { ok: false, problem: `resources[${i}] needs resources and providers lists` };
    const decryptors = new Set<string>();
    for (const p of providers) {
      if (!p || typeof p !== "object") continue;
      for (const [provider, conf] of Object.entries(p as Record<string, unknown>)) {
        if (provider === "identity") {
          decryptors.add("identity");
          continue;
        }
        if (!conf || typeof conf !== "object") continue;
        if (provider === "kms") {
          const name = (conf as { name?: unknown }).name;
          if (typeof name === "string") decryptors.add(`kms/${name}`);
          continue;
        }
        const list = (conf as { keys?: unknown }).keys;
        if (!Array.isArray(list)) continue;
        for (const k of list) {
          const name = (k as { name?: unknown } | null)?.name;
          if (typeof name === "string") decryptors.add(`${provider}/${name}`);
        }
      }
    }
    entries.push({ resources: names.filter((n): n is string => typeof n === "string"), decryptors });
  }
  return { ok: true, entries };
}

/**
 * The keys an EncryptionConfiguration can decrypt with, as `<provider>/<name>` (kms: `kms/<name>`), over
 * every resource entry. identity contributes nothing; an unparseable file gives none.
 */
export function decryptionKeys(yamlText: string): Set<string> {
  const parsed = parseEncryptionConfig(yamlText);
  const keys = new Set<string>();
  if (!parsed.ok) return keys;
  for (const e of parsed.entries) for (const d of e.decryptors) if (d !== "identity") keys.add(d);
  return keys;
}

/** The API group of a resource name as an EncryptionConfiguration spells it (`secrets`: "", `x.apps`: "apps"). */
function groupOf(name: string): string {
  const dot = name.indexOf(".");
  return dot < 0 ? "" : name.slice(dot + 1);
}

/** Whether an entry's resource pattern matches a name (`*.*` everything, `*.<group>` a group, `*.` core). */
function matches(pattern: string, name: string): boolean {
  if (pattern === name || pattern === "*.*") return true;
  return pattern.startsWith("*.") && !name.startsWith("*.") && pattern.slice(2) === groupOf(name);
}

/** What can decrypt objects of `name`: the first matching entry's providers, or identity when none matches. */
function chain(entries: readonly Entry[], name: string): Set<string> {
  const entry = entries.find((e) => e.resources.some((p) => matches(p, name)));
  return entry ? entry.decryptors : new Set(["identity"]);
}

function droppedBetween(before: readonly Entry[], after: readonly Entry[], retired?: Retired): string[] {
  const names = new Set([...before, ...after].flatMap((e) => e.resources));
  const out: string[] = [];
  for (const name of names) {
    if (retired?.resources.includes(name)) continue;
    const kept = chain(after, name);
    for (const d of chain(before, name)) {
      if (kept.has(d) || retired?.keys.includes(d)) continue;
      out.push(`${name}: ${d}`);
    }
  }
  return out.sort();
}

/**
 * What a file on disk can decrypt, per resource, that the replacement cannot: `<resource>: <provider>/<key>`
 * or `<resource>: identity` (plaintext objects). Overwriting with such a replacement makes every object of
 * that resource stored under it unreadable, unless the operator declared it `retired` after rewriting them.
 * An unparseable file counts as losing nothing here; use overwriteRefusal, which refuses it.
 */
export function keysDropped(existing: string, replacement: string, retired?: Retired): string[] {
  const before = parseEncryptionConfig(existing);
  const after = parseEncryptionConfig(replacement);
  if (!before.ok) return [];
  return droppedBetween(before.entries, after.ok ? after.entries : [], retired);
}

/**
 * Why the agent must not replace the EncryptionConfiguration at `path` (whoever wrote it, the agent itself
 * included) with `replacement`, or undefined when it may. A file that cannot be parsed is never replaced:
 * nobody can tell which keys it held (the API server may still run an earlier version of it).
 */
export function overwriteRefusal(
  path: string,
  existing: string,
  replacement: string,
  retired: Retired | undefined,
): string | undefined {
  const before = parseEncryptionConfig(existing);
  if (!before.ok)
    return (
      `not overwriting ${path}: the file on disk is ${before.problem}, so the keys it holds cannot be ` +
      `checked; repair it or move it aside once no stored object needs its keys`
    );
  const after = parseEncryptionConfig(replacement);
  if (!after.ok) return `not writing ${path}: the rendered configuration is ${after.problem}`;
  const dropped = droppedBetween(before.entries, after.entries, retired);
  if (dropped.length === 0) return undefined;
  return (
    `not overwriting ${path}: it can decrypt with keys the rendered configuration lacks ` +
    `(${dropped.join(", ")}); objects stored with them would become unreadable. Rewrite the stored ` +
    `objects with a key the operator manages first (or restore the key-ring Secret from a backup if it was ` +
    `deleted), or move the file aside if those keys are unused`
  );
}
