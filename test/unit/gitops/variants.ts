/**
 * Policies generated from the samples by one mutation each, covering every kind of rule the CRD has
 * (types, enums, patterns, lengths, counts, int32 and minimum bounds, date-time, list-type set/map, unknown
 * fields, null pruning, YAML 1.1 booleans, metadata, every CEL rule and its fieldPath/messageExpression)
 * plus the operator's own checks. The integration test submits each to the API server as a dry-run create
 * and requires validate's verdict and error fields to be the server's.
 */

type Obj = Record<string, unknown>;

export interface Variant {
  name: string;
  /** Mutates a deep copy of a base policy; the policy's name is set before. */
  mutate: (p: Obj) => void;
  /** YAML text instead of a mutation (for things only YAML can say). */
  yaml?: string;
}

function spec(p: Obj): Obj {
  p.spec ??= {};
  return p.spec as Obj;
}

function at(p: Obj, path: string[]): Obj {
  let o = spec(p);
  for (const k of path) {
    o[k] ??= {};
    o = o[k] as Obj;
  }
  return o;
}

const role = (extra: Obj = {}) => ({
  name: "reader",
  rules: [{ apiGroups: [""], resources: ["pods"], verbs: ["get"] }],
  ...extra,
});

export const VARIANTS: Variant[] = [
  { name: "valid: unchanged", mutate: () => {} },
  { name: "unknown field in spec", mutate: (p) => void (spec(p).modes = "Audit") },
  { name: "unknown nested field", mutate: (p) => void (at(p, ["networkPolicies"]).denyAll = true) },
  {
    name: "unknown fields with other errors",
    mutate: (p) => {
      spec(p).modes = "Audit";
      spec(p).mode = "x";
      at(p, ["rbac"]).rolez = [];
    },
  },
  { name: "unknown metadata field", mutate: (p) => void ((p.metadata as Obj).lables = { a: "b" }) },
  { name: "wrong type: mode integer", mutate: (p) => void (spec(p).mode = 3) },
  {
    name: "wrong type: boolean as string",
    mutate: (p) => void (at(p, ["networkPolicies"]).allowDNS = "true"),
  },
  { name: "wrong type: array for object", mutate: (p) => void (spec(p).podSecurity = ["restricted"]) },
  {
    name: "enum: audit policy level",
    mutate: (p) => void (spec(p).auditPolicy = { rules: [{ level: "All" }] }),
  },
  { name: "pattern: pod security version", mutate: (p) => void (at(p, ["podSecurity"]).version = "1.30") },
  {
    name: "pattern: exclude namespace",
    mutate: (p) => void (at(p, ["namespaces"]).exclude = ["Kube_System"]),
  },
  {
    name: "maxLength: label value",
    mutate: (p) => void (at(p, ["namespaces", "selector"]).matchLabels = { a: "x".repeat(64) }),
  },
  {
    name: "minLength: exemption reason",
    mutate: (p) => void (spec(p).exemptions = [{ area: "rbac", reason: "" }]),
  },
  {
    name: "maxItems: exclude",
    mutate: (p) => void (at(p, ["namespaces"]).exclude = Array.from({ length: 51 }, (_, i) => `ns-${i}`)),
  },
  { name: "minItems: role rules", mutate: (p) => void (at(p, ["rbac"]).roles = [role({ rules: [] })]) },
  {
    name: "minItems: verbs",
    mutate: (p) => void (at(p, ["rbac"]).roles = [role({ rules: [{ resources: ["pods"], verbs: [] }] })]),
  },
  {
    name: "minimum: certificate expiry days",
    mutate: (p) => void (spec(p).credentials = { certificateExpiryWarningDays: 0 }),
  },
  {
    name: "int32 overflow",
    mutate: (p) => void (spec(p).clusterVersion = { warnBeforeEndOfLifeDays: 3000000000 }),
  },
  {
    name: "number for integer",
    mutate: (p) => void (spec(p).clusterVersion = { warnBeforeEndOfLifeDays: 1.5 }),
  },
  {
    name: "date-time",
    mutate: (p) => void (spec(p).exemptions = [{ area: "rbac", reason: "r", expires: "next week" }]),
  },
  {
    name: "valid: date-time",
    mutate: (p) =>
      void (spec(p).exemptions = [{ area: "rbac", reason: "r", expires: "2030-01-02T03:04:05Z" }]),
  },
  { name: "list-type set duplicate", mutate: (p) => void (at(p, ["namespaces"]).exclude = ["a", "b", "a"]) },
  {
    name: "list-type map duplicate roles",
    mutate: (p) => void (at(p, ["rbac"]).roles = [role(), role({ serviceAccount: "other" })]),
  },
  { name: "required: role rules", mutate: (p) => void (at(p, ["rbac"]).roles = [{ name: "r" }]) },
  {
    name: "required: kms fields",
    mutate: (p) => void (spec(p).encryption = { provider: "kms", kms: { name: "k" } }),
  },
  {
    name: "pattern: kms endpoint",
    mutate: (p) => void (spec(p).encryption = { provider: "kms", kms: { name: "k", endpoint: "tcp://x" } }),
  },
  { name: "CEL: kms provider without kms", mutate: (p) => void (spec(p).encryption = { provider: "kms" }) },
  {
    name: "CEL: service account subject without namespace",
    mutate: (p) =>
      void (at(p, ["rbac", "audit"]).allowedClusterAdminSubjects = [{ kind: "ServiceAccount", name: "x" }]),
  },
  { name: "CEL: exemption without id or area", mutate: (p) => void (spec(p).exemptions = [{ reason: "r" }]) },
  {
    name: "CEL: escalate verb",
    mutate: (p) =>
      void (at(p, ["rbac"]).roles = [role({ rules: [{ resources: ["roles"], verbs: ["escalate"] }] })]),
  },
  {
    name: "CEL: subresource wildcard",
    mutate: (p) =>
      void (at(p, ["rbac"]).roles = [role({ rules: [{ resources: ["*/status"], verbs: ["get"] }] })]),
  },
  {
    name: "CEL: apiGroups wildcard",
    mutate: (p) =>
      void (at(p, ["rbac"]).roles = [
        role({ rules: [{ apiGroups: ["*"], resources: ["pods"], verbs: ["get"] }] }),
      ]),
  },
  {
    name: "valid: wildcard with riskAcceptance",
    mutate: (p) =>
      void (at(p, ["rbac"]).roles = [
        role({ rules: [{ resources: ["*"], verbs: ["*"] }], riskAcceptance: { reason: "break-glass" } }),
      ]),
  },
  {
    name: "CEL: In without values",
    mutate: (p) => void (at(p, ["namespaces", "selector"]).matchExpressions = [{ key: "a", operator: "In" }]),
  },
  {
    name: "CEL: three roles sharing",
    mutate: (p) =>
      void (at(p, ["rbac"]).roles = [
        role(),
        role({ name: "b", serviceAccount: "reader" }),
        role({ name: "c", serviceAccount: "reader" }),
      ]),
  },
  { name: "null is pruned then defaulted", mutate: (p) => void (spec(p).mode = null) },
  { name: "null nested object", mutate: (p) => void (spec(p).networkPolicies = null) },
  { name: "null array item", mutate: (p) => void (at(p, ["namespaces"]).exclude = [null]) },
  { name: "metadata: name missing", mutate: (p) => void delete (p.metadata as Obj).name },
  { name: "metadata: uppercase name", mutate: (p) => void ((p.metadata as Obj).name = "Team-A") },
  {
    name: "several errors at once",
    mutate: (p) => {
      spec(p).mode = "Enforcing";
      at(p, ["podSecurity"]).enforce = "strict";
      spec(p).exemptions = [{ reason: "r" }];
    },
  },
  {
    name: "schema and CEL errors together",
    mutate: (p) => {
      spec(p).mode = "x";
      spec(p).encryption = { provider: "kms" };
    },
  },
  {
    name: "YAML 1.1 booleans as kubectl reads them",
    mutate: () => {},
    yaml:
      "apiVersion: security.csp-operator.io/v1alpha1\nkind: ClusterSecurityPolicy\nmetadata:\n  name: NAME\n" +
      "spec:\n  networkPolicies:\n    allowDNS: yes\n    allowSameNamespace: off\n",
  },
  {
    name: "YAML timestamp stays a string",
    mutate: () => {},
    yaml:
      "apiVersion: security.csp-operator.io/v1alpha1\nkind: ClusterSecurityPolicy\nmetadata:\n  name: NAME\n" +
      "spec:\n  exemptions:\n    - area: rbac\n      reason: r\n      expires: 2030-01-02T03:04:05Z\n",
  },
];

/** A small seeded PRNG (mulberry32), so a failing generated case can be replayed from its seed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface SchemaNode {
  type?: string;
  properties?: Record<string, SchemaNode>;
  items?: SchemaNode;
  additionalProperties?: SchemaNode;
  enum?: unknown[];
  maxLength?: number;
  maxItems?: number;
}

/** Every path (property names, 0 for an array item, "k" for a map value) under spec in the CRD schema. */
export function schemaPaths(root: SchemaNode): { path: (string | number)[]; schema: SchemaNode }[] {
  const out: { path: (string | number)[]; schema: SchemaNode }[] = [];
  const walk = (s: SchemaNode, path: (string | number)[]) => {
    out.push({ path, schema: s });
    for (const [k, v] of Object.entries(s.properties ?? {})) walk(v, [...path, k]);
    if (s.items) walk(s.items, [...path, 0]);
    if (s.additionalProperties) walk(s.additionalProperties, [...path, "k"]);
  };
  walk(root.properties!.spec!, ["spec"]);
  return out.filter((p) => p.path.length > 1);
}

/** A value that is wrong, borderline or right for this schema, picked at random. */
function randomValue(s: SchemaNode, rnd: () => number): unknown {
  const pick = <T>(xs: T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const wrong = [null, 7, -1, 2.5, 3000000000, "x", "", true, [], {}, ["a", "a"], "Upper_Case", "*"];
  const right: unknown[] = [];
  if (s.enum) right.push(...s.enum);
  if (s.type === "string")
    right.push("a", "x".repeat((s.maxLength ?? 8) + 1), "default", "2030-01-01T00:00:00Z");
  if (s.type === "integer") right.push(0, 1, 90);
  if (s.type === "boolean") right.push(true, false);
  if (s.type === "array")
    right.push([], [randomValue(s.items ?? {}, rnd)], Array(Math.min((s.maxItems ?? 2) + 1, 70)).fill("a"));
  if (s.type === "object") right.push({}, { name: "default" }, { kind: "ServiceAccount", name: "x" });
  return rnd() < 0.5 && right.length > 0 ? pick(right) : pick(wrong);
}

/** Sets a random schema path of a copy of `base` to a random value; returns the mutated policy. */
export function randomVariant(base: Obj, root: SchemaNode, seed: number): Obj {
  const rnd = prng(seed);
  const paths = schemaPaths(root);
  const p = structuredClone(base);
  const mutations = 1 + Math.floor(rnd() * 3);
  for (let m = 0; m < mutations; m++) {
    const { path, schema } = paths[Math.floor(rnd() * paths.length)]!;
    let o: Obj | unknown[] = p;
    for (const [i, k] of path.entries()) {
      const last = i === path.length - 1;
      const container = o as Record<string | number, unknown>;
      if (last) container[k] = randomValue(schema, rnd);
      else {
        const next = path[i + 1];
        const cur = container[k];
        if (typeof cur !== "object" || cur === null) container[k] = typeof next === "number" ? [] : {};
        o = container[k] as Obj | unknown[];
      }
    }
  }
  return p;
}
