import type { KubernetesObject } from "@kubernetes/client-node";

/**
 * Most of what an informer cache holds repeats from object to object: every child of a policy carries the
 * same labels, ownerReference and NetworkPolicy spec; every managedFields entry the same manager, operation
 * and (pruned) field tree; kinds, apiVersions and timestamps recur by the thousand. JSON.parse gives each
 * occurrence its own copy. The Interner keeps one canonical, frozen copy of each such value and each such
 * string, and `shareCommonParts` rebuilds a cached object around them: with 5000 namespaces the operator's
 * heap per managed object fell from ~2.0 KB to ~0.6 KB (docs/benchmarks-memory.md). What is unique to an
 * object (name, uid, resourceVersion, a Namespace's own name label) is never put in the tables.
 *
 * Shared values are deep-frozen: code that tried to change a cached object in place (it must not: a cache
 * is the informer's, and a snapshot is read-only) fails loudly instead of changing every object at once.
 * The tables are bounded by the characters they hold (1 Mi each by default; values over 2 KiB of JSON are
 * never entered): when one is full it starts again empty, so a stream of distinct values (many RoleBindings,
 * one subject each; large ClusterRoles) costs at most that; values already shared stay shared.
 */
export class Interner {
  private strings = new Map<string, string>();
  private values = new Map<string, unknown>();
  /** Characters held by each table (keys; a value's canonical copy is about as large as its key). */
  private stringChars = 0;
  private valueChars = 0;

  constructor(
    /** Characters each table may hold before it starts again (~2 bytes per character at most). */
    private readonly capacityChars = 1 << 20,
    /** Values whose JSON is longer than this are kept as they are (a large unique value is not worth a key). */
    private readonly maxJsonLength = 2048,
  ) {}

  /** The canonical copy of `s` (strings longer than maxJsonLength are returned as they are). */
  string(s: string): string {
    if (s.length > this.maxJsonLength) return s;
    const known = this.strings.get(s);
    if (known !== undefined) return known;
    if (this.stringChars + s.length > this.capacityChars) {
      this.strings = new Map();
      this.stringChars = 0;
    }
    this.strings.set(s, s);
    this.stringChars += s.length;
    return s;
  }

  /**
   * A frozen copy of the JSON value `v` that equals it (same JSON, same key order), shared with every other
   * value that serialises alike. Undefined stays undefined.
   */
  value<T>(v: T): T {
    if (v === undefined || v === null || typeof v !== "object") return v;
    const key = JSON.stringify(v);
    if (key.length > this.maxJsonLength) return v;
    const known = this.values.get(key);
    if (known !== undefined) return known as T;
    if (this.valueChars + key.length > this.capacityChars) {
      this.values = new Map();
      this.valueChars = 0;
    }
    // Parsed back from its key: plain data only (no undefined members, no prototypes), then frozen.
    const canonical = deepFreeze(this.internStrings(JSON.parse(key) as unknown)) as T;
    this.values.set(key, canonical);
    this.valueChars += key.length;
    return canonical;
  }

  /** Sizes of the tables, for tests. */
  get sizes(): { strings: number; values: number; stringChars: number; valueChars: number } {
    return {
      strings: this.strings.size,
      values: this.values.size,
      stringChars: this.stringChars,
      valueChars: this.valueChars,
    };
  }

  private internStrings(v: unknown): unknown {
    if (typeof v === "string") return this.string(v);
    if (Array.isArray(v)) return v.map((x) => this.internStrings(x));
    if (v && typeof v === "object") {
      const o = v as Record<string, unknown>;
      for (const k of Object.keys(o)) o[k] = this.internStrings(o[k]);
    }
    return v;
  }
}

function deepFreeze<T>(v: T): T {
  if (v && typeof v === "object" && !Object.isFrozen(v)) {
    for (const x of Object.values(v as object)) deepFreeze(x);
    Object.freeze(v);
  }
  return v;
}

/** The process-wide tables every informer shares (the same labels recur across kinds). */
export const sharedInterner = new Interner();

/**
 * A copy of a cached object whose repeating parts are shared (see Interner): apiVersion, kind, the
 * namespace and timestamps as canonical strings; labels (unless they name the object itself, like a
 * Namespace's `kubernetes.io/metadata.name`), ownerReferences, managedFields (compacted by then: objects
 * written by one manager in the same second share them) and every top-level field other than metadata
 * (spec, status, rules, subjects...) as shared frozen values.
 * Annotation values are shared strings. Name, uid and resourceVersion are kept as they are. The result
 * serialises to exactly the same JSON as `obj` (a unit test holds this).
 */
export function shareCommonParts<T extends KubernetesObject>(obj: T, interner: Interner = sharedInterner): T {
  if (!obj || typeof obj !== "object") return obj;
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(obj)) {
    if (key === "metadata") out[key] = shareMetadata(v as Metadata | undefined, interner);
    else if (typeof v === "string") out[key] = interner.string(v);
    else out[key] = interner.value(v);
  }
  return out as T;
}

type Metadata = NonNullable<KubernetesObject["metadata"]> & Record<string, unknown>;

const UNIQUE_METADATA = new Set(["name", "uid", "resourceVersion", "generateName", "selfLink"]);

function shareMetadata(m: Metadata | undefined, interner: Interner): Metadata | undefined {
  if (!m || typeof m !== "object") return m;
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(m)) {
    if (UNIQUE_METADATA.has(key) || v === undefined || v === null) out[key] = v;
    else if (typeof v === "string") out[key] = interner.string(v);
    else if (key === "labels") out[key] = shareLabels(v as Record<string, string>, m.name, interner);
    else if (key === "annotations") out[key] = shareStrings(v as Record<string, string>, interner);
    else out[key] = interner.value(v);
  }
  return out;
}

/** Labels naming the object (a Namespace's own name label) are unique: values shared one by one. */
function shareLabels(
  labels: Record<string, string>,
  name: string | undefined,
  interner: Interner,
): Record<string, string> {
  if (typeof labels !== "object") return labels;
  if (name !== undefined && Object.values(labels).includes(name)) return shareStrings(labels, interner, name);
  return interner.value(labels);
}

function shareStrings(
  o: Record<string, string>,
  interner: Interner,
  unique?: string,
): Record<string, string> {
  if (typeof o !== "object") return o;
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(o))
    out[k] = typeof v === "string" && v !== unique ? interner.string(v) : v;
  return out;
}
