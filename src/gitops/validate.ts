import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { V1Namespace } from "@kubernetes/client-node";
import { parseAllDocuments } from "yaml";
import { applyDefaults } from "../api/defaults.js";
import type { OpenApiSchema } from "../api/schema.js";
import { API_VERSION, GROUP, KIND, type ClusterSecurityPolicy } from "../api/v1alpha1/policy.js";
import { CRD_FILE } from "../api/v1alpha1/render.js";
import { desiredState } from "../desired/index.js";
import { EMPTY_RECORD } from "../desired/encryption/rotation.js";
import { recordConfigYaml } from "../desired/encryption/render.js";
import { effectiveSpec } from "../desired/spec.js";
import { compileRules, validateCel } from "./cel.js";
import { fieldError, type FieldError } from "./fielderror.js";
import { readManifests } from "./manifests.js";
import { dropNulls, unknownFields, validateSchema } from "./structural.js";

/** The verdict on one YAML document of one input. */
export interface DocumentResult {
  /** The file as given on the command line (`-` for stdin). */
  file: string;
  /** 0-based position of the document in the file. */
  document: number;
  /** 0-based position in the document's `items` when the document is a List. */
  item?: number;
  kind?: string;
  name?: string;
  /** `skipped`: not a ClusterSecurityPolicy (a repo's other manifests pass through a pre-commit hook). */
  result: "valid" | "invalid" | "skipped";
  errors: FieldError[];
}

const BLOCKING = new Set<FieldError["reason"]>([
  "FieldValueNotSupported",
  "FieldValueRequired",
  "FieldValueTooLong",
  "FieldValueTooMany",
  "FieldValueTypeInvalid",
]);

// RFC 1123 subdomain, the server's rule for custom resource names.
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/**
 * Validates ClusterSecurityPolicy manifests offline with the rules the API server runs at admission, read
 * from the generated CRD (never re-written here), then the operator's own InvalidSpec checks on what
 * admission would accept. Build one per process: the CRD's CEL rules are compiled once.
 */
export class PolicyValidator {
  private readonly schema: OpenApiSchema;
  /** How many CEL rules the CRD has (compiled at construction). */
  readonly ruleCount: number;

  constructor(crd: unknown) {
    this.schema = storageSchema(crd);
    this.ruleCount = compileRules(this.schema);
  }

  /** Every error the server (then the operator) would report for one decoded object; [] when valid. */
  validate(object: unknown): FieldError[] {
    if (typeof object !== "object" || object === null || Array.isArray(object))
      return [
        fieldError("schema", "", "FieldValueTypeInvalid", "a manifest must be a YAML mapping", typeof object),
      ];
    // kubectl's strict field validation: the server refuses unknown fields while decoding, before any
    // other check, so they are the only errors it reports.
    const unknown = unknownFields(this.schema, object);
    if (unknown.length > 0)
      return unknown.map((f): FieldError => ({
        field: f,
        reason: "FieldValueUnknown",
        message: `unknown field ${JSON.stringify(f)}`,
        source: "schema",
      }));
    // ObjectMeta of the wrong shape never reaches the server: kubectl (and the server's decoder) stop at it.
    const undecodable = metadataTypeErrors((object as { metadata?: unknown }).metadata);
    if (undecodable.length > 0) return undecodable;
    // The server decodes (pruning nulls), defaults, then validates: the schema, metadata, then CEL.
    const decoded = applyDefaults(this.schema, dropNulls(this.schema, object)) as Record<string, unknown>;
    // With generateName and no name, the server generates the name (5 random characters) before the schema,
    // the metadata checks and the rules run: they see a name of that length.
    const value = withGeneratedName(decoded);
    const errors = [...validateSchema(this.schema, value), ...validateMetadata(value)];
    // Like the server: after a "blocking" schema error (wrong type, unsupported value, required, too long,
    // too many) no CEL rule runs, and one error says so.
    if (errors.some((e) => BLOCKING.has(e.reason)))
      errors.push(
        fieldError(
          "cel",
          "",
          "FieldValueInvalid",
          "some validation rules were not checked because the object was invalid; correct the existing errors " +
            "to complete validation",
          null,
        ),
      );
    else errors.push(...validateCel(this.schema, value));
    if (errors.length > 0) return errors;
    try {
      return operatorChecks(value as unknown as ClusterSecurityPolicy);
    } catch (err) {
      // The controller would fail this policy's reconcile: report it, never crash the run.
      const text = err instanceof Error ? err.message : String(err);
      return [
        {
          field: "spec",
          reason: "FieldValueInvalid",
          message: `spec: InvalidSpec: ${text}`,
          source: "operator",
        },
      ];
    }
  }

  /** Validates every object of one YAML stream (a file's content), the items of a List one by one. */
  validateText(file: string, text: string): DocumentResult[] {
    const out: DocumentResult[] = [];
    for (const m of readManifests(text)) {
      const at = { file, document: m.document, ...(m.item !== undefined ? { item: m.item } : {}) };
      if (m.error !== undefined) {
        out.push({ ...at, result: "invalid", errors: [yamlError(m.error)] });
        continue;
      }
      const object = m.object;
      if (typeof object !== "object" || object === null || Array.isArray(object)) {
        // kubectl refuses it too ("Object 'Kind' is missing"): a scalar or a sequence is not a manifest.
        out.push({ ...at, result: "invalid", errors: [yamlError("a manifest must be a YAML mapping")] });
        continue;
      }
      const o = object as { apiVersion?: unknown; kind?: unknown; metadata?: { name?: unknown } };
      const kind = typeof o.kind === "string" ? o.kind : undefined;
      const name = typeof o.metadata?.name === "string" ? o.metadata.name : undefined;
      const base = { ...at, ...(kind ? { kind } : {}), ...(name ? { name } : {}) };
      const apiVersion = typeof o.apiVersion === "string" ? o.apiVersion : "";
      const ours = kind === KIND || apiVersion.split("/")[0] === GROUP;
      if (!ours) {
        out.push({ ...base, result: "skipped", errors: [] });
        continue;
      }
      if (kind !== KIND || apiVersion !== API_VERSION) {
        const what = `${apiVersion || "<no apiVersion>"}, Kind=${kind ?? "<no kind>"}`;
        out.push({
          ...base,
          result: "invalid",
          errors: [
            fieldError("schema", "", "FieldValueNotSupported", `expected ${API_VERSION}, Kind=${KIND}`, what),
          ],
        });
        continue;
      }
      const errors = this.validate(object);
      out.push({ ...base, result: errors.length > 0 ? "invalid" : "valid", errors });
    }
    return out;
  }
}

function yamlError(detail: string): FieldError {
  return { field: "", reason: "FieldValueInvalid", message: `invalid YAML: ${detail}`, source: "schema" };
}

export { goYamlTags } from "./manifests.js";

/** ObjectMeta rules the server applies to a cluster-scoped custom resource on create (ValidateObjectMeta). */
function validateMetadata(value: Record<string, unknown>): FieldError[] {
  const meta = (value.metadata ?? {}) as Record<string, unknown>;
  const out: FieldError[] = [];
  const invalid = (field: string, v: unknown, detail: string) =>
    out.push(fieldError("schema", field, "FieldValueInvalid", detail, v));
  const generateName = typeof meta.generateName === "string" ? meta.generateName : "";
  // generateName is checked as a name prefix: apimachinery's maskTrailingDash (its quirk included).
  if (generateName !== "") {
    const masked =
      generateName.length > 1 && generateName.endsWith("-") ? `${generateName.slice(0, -2)}a` : generateName;
    for (const msg of dns1123Subdomain(masked)) invalid("metadata.generateName", generateName, msg);
  }
  const name = meta.name;
  if (name === undefined || name === "") {
    if (generateName === "")
      out.push(
        fieldError("schema", "metadata.name", "FieldValueRequired", "name or generateName is required"),
      );
  } else if (typeof name === "string")
    for (const msg of dns1123Subdomain(name)) invalid("metadata.name", name, msg);
  if ("namespace" in meta && meta.namespace !== "" && meta.namespace !== undefined)
    out.push(
      fieldError(
        "schema",
        "metadata.namespace",
        "FieldValueForbidden",
        "not allowed on this type",
        meta.namespace,
      ),
    );
  const labels = stringMap(meta.labels);
  for (const [k, v] of labels) {
    for (const msg of qualifiedName(k)) invalid("metadata.labels", k, msg);
    for (const msg of labelValue(v)) invalid("metadata.labels", v, msg);
  }
  const annotations = stringMap(meta.annotations);
  let size = 0;
  for (const [k, v] of annotations) {
    // QualifiedName except that case does not matter.
    for (const msg of qualifiedName(k.toLowerCase())) invalid("metadata.annotations", k, msg);
    size += Buffer.byteLength(k) + Buffer.byteLength(v);
  }
  if (size > ANNOTATIONS_MAX_BYTES)
    out.push(
      fieldError(
        "schema",
        "metadata.annotations",
        "FieldValueTooLong",
        `may not be more than ${ANNOTATIONS_MAX_BYTES} bytes`,
      ),
    );
  if (Array.isArray(meta.finalizers))
    for (const f of meta.finalizers)
      if (typeof f === "string") for (const msg of qualifiedName(f)) invalid("metadata.finalizers", f, msg);
  if (Array.isArray(meta.ownerReferences)) {
    let controller = "";
    for (const r of meta.ownerReferences as Record<string, unknown>[]) {
      const ref = typeof r === "object" && r !== null ? r : {};
      const str = (k: string) => (typeof ref[k] === "string" ? ref[k] : "");
      const apiVersion = str("apiVersion");
      const version = apiVersion.includes("/") ? apiVersion.slice(apiVersion.indexOf("/") + 1) : apiVersion;
      const f = "metadata.ownerReferences";
      if (version === "" || apiVersion.split("/").length > 2)
        invalid(`${f}.apiVersion`, apiVersion, "version must not be empty");
      if (str("kind") === "") invalid(`${f}.kind`, str("kind"), "must not be empty");
      if (str("name") === "") invalid(`${f}.name`, str("name"), "must not be empty");
      if (str("uid") === "") invalid(`${f}.uid`, str("uid"), "must not be empty");
      if (ref.controller === true) {
        const current = `${str("kind")}/${str("name")}`;
        if (controller !== "")
          out.push(
            fieldError(
              "schema",
              f,
              "FieldValueInvalid",
              `Only one reference can have Controller set to true. Found "true" in references for ${controller} and ${current}`,
              "[...]",
            ),
          );
        else controller = current;
      }
    }
  }
  return out;
}

/** Go's encoding/json name for a JSON value's type, as in its UnmarshalTypeError. */
function jsonType(v: unknown): string {
  if (Array.isArray(v)) return "array";
  if (typeof v === "boolean") return "bool";
  return typeof v === "object" ? "object" : typeof v;
}

/**
 * ObjectMeta fields whose JSON type is not the Go type (labels of numbers, a uid that is an int): kubectl
 * refuses to decode the file, with encoding/json's message; validate reports the same, and nothing else.
 */
function metadataTypeErrors(meta: unknown): FieldError[] {
  if (typeof meta !== "object" || meta === null || Array.isArray(meta)) return [];
  const out: FieldError[] = [];
  const m = meta as Record<string, unknown>;
  const wrong = (struct: string, field: string, v: unknown, goType: string) =>
    out.push({
      field,
      reason: "FieldValueTypeInvalid",
      message: `json: cannot unmarshal ${jsonType(v)} into Go struct field ${struct}.${field} of type ${goType}`,
      source: "schema",
    });
  const str = (struct: string, field: string, v: unknown, goType = "string") => {
    if (v !== null && v !== undefined && typeof v !== "string") wrong(struct, field, v, goType);
  };
  for (const f of ["name", "generateName", "namespace", "uid", "resourceVersion"])
    str("ObjectMeta", `metadata.${f}`, m[f]);
  for (const f of ["labels", "annotations"]) {
    const v = m[f];
    if (v === null || v === undefined) continue;
    if (typeof v !== "object" || Array.isArray(v))
      wrong("ObjectMeta", `metadata.${f}`, v, "map[string]string");
    else for (const x of Object.values(v)) str("ObjectMeta", `metadata.${f}`, x);
  }
  const list = (f: string, each: (x: unknown) => void, goType: string) => {
    const v = m[f];
    if (v === null || v === undefined) return;
    if (!Array.isArray(v)) wrong("ObjectMeta", `metadata.${f}`, v, goType);
    else v.forEach(each);
  };
  list("finalizers", (x) => str("ObjectMeta", "metadata.finalizers", x), "[]string");
  list(
    "ownerReferences",
    (x) => {
      if (x === null) return;
      if (typeof x !== "object" || Array.isArray(x))
        return wrong("ObjectMeta", "metadata.ownerReferences", x, "v1.OwnerReference");
      const r = x as Record<string, unknown>;
      for (const f of ["apiVersion", "kind", "name"])
        str("OwnerReference", `metadata.ownerReferences.${f}`, r[f]);
      str("OwnerReference", "metadata.ownerReferences.uid", r.uid, "types.UID");
      for (const f of ["controller", "blockOwnerDeletion"])
        if (r[f] !== null && r[f] !== undefined && typeof r[f] !== "boolean")
          wrong("OwnerReference", `metadata.ownerReferences.${f}`, r[f], "bool");
    },
    "[]v1.OwnerReference",
  );
  return out.slice(0, 1); // encoding/json stops at the first
}

/** The object as the server validates it after generating a name from generateName (5 characters). */
function withGeneratedName(value: Record<string, unknown>): Record<string, unknown> {
  const meta = value.metadata as Record<string, unknown> | undefined;
  if (!meta || (meta.name !== undefined && meta.name !== "") || typeof meta.generateName !== "string")
    return value;
  if (meta.generateName === "") return value;
  // apimachinery's SimpleNameGenerator: the prefix cut to 58 characters, then 5 random ones.
  return { ...value, metadata: { ...meta, name: `${meta.generateName.slice(0, 58)}xxxxx` } };
}

const ANNOTATIONS_MAX_BYTES = 256 * 1024;
const QNAME = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const QNAME_RE = new RegExp(`^${QNAME}$`);
const QNAME_MSG =
  "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const LABEL_VALUE_RE = new RegExp(`^(${QNAME})?$`);
const DNS1123_MSG =
  "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must " +
  "start and end with an alphanumeric character";
const DNS1123_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";

/** apimachinery's RegexError: the message, examples, and the regular expression. */
function regexError(msg: string, fmt: string, ...examples: string[]): string {
  return `${msg} (e.g. ${examples.map((e) => `'${e}', `).join(" or ")}regex used for validation is '${fmt}')`;
}

/** apimachinery's IsDNS1123Subdomain. */
function dns1123Subdomain(value: string): string[] {
  const errs: string[] = [];
  if (value.length > 253) errs.push("must be no more than 253 characters");
  if (!DNS1123_SUBDOMAIN.test(value)) errs.push(regexError(DNS1123_MSG, DNS1123_FMT, "example.com"));
  return errs;
}

/** apimachinery's IsQualifiedName: `[prefix/]name`, the prefix a DNS subdomain, the name 63 characters at most. */
function qualifiedName(value: string): string[] {
  const errs: string[] = [];
  const parts = value.split("/");
  let name: string;
  if (parts.length === 1) name = parts[0]!;
  else if (parts.length === 2) {
    const prefix = parts[0]!;
    name = parts[1]!;
    if (prefix.length === 0) errs.push("prefix part must be non-empty");
    else errs.push(...dns1123Subdomain(prefix).map((m) => `prefix part ${m}`));
  } else
    return [
      `a valid label key ${regexError(QNAME_MSG, QNAME, "MyName", "my.name", "123-abc")} with an optional DNS ` +
        "subdomain prefix and '/' (e.g. 'example.com/MyName')",
    ];
  if (name.length === 0) errs.push("name part must be non-empty");
  else if (name.length > 63) errs.push("name part must be no more than 63 characters");
  if (!QNAME_RE.test(name))
    errs.push(`name part ${regexError(QNAME_MSG, QNAME, "MyName", "my.name", "123-abc")}`);
  return errs;
}

/** apimachinery's IsValidLabelValue. */
function labelValue(value: string): string[] {
  const errs: string[] = [];
  if (value.length > 63) errs.push("must be no more than 63 characters");
  if (!LABEL_VALUE_RE.test(value))
    errs.push(
      regexError(
        "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must " +
          "start and end with an alphanumeric character",
        `(${QNAME})?`,
        "MyValue",
        "my_value",
        "12345",
      ),
    );
  return errs;
}

/** The string entries of a map[string]string field (other values are type errors reported elsewhere). */
function stringMap(v: unknown): [string, string][] {
  if (typeof v !== "object" || v === null || Array.isArray(v)) return [];
  return Object.entries(v as Record<string, unknown>)
    .filter((e): e is [string, string] => typeof e[1] === "string")
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

/**
 * The operator's own InvalidSpec checks, on a policy admission would accept: spec fields that generate the
 * same child (desiredState's `invalid`, evaluated in a namespace the selector selects) and an encryption
 * spec the EncryptionConfiguration renderer refuses. The very functions the controller runs, imported.
 */
export function operatorChecks(policy: ClusterSecurityPolicy): FieldError[] {
  const out: FieldError[] = [];
  const spec = effectiveSpec(policy);
  const namespace = selectedNamespace(spec.namespaces?.selector);
  const desired = desiredState(policy, {
    policies: [policy],
    namespaces: [namespace],
    networkPolicies: [],
    serviceAccounts: [],
    roles: [],
    roleBindings: [],
    now: new Date(),
  });
  for (const message of desired.invalid)
    out.push({
      field: "spec",
      reason: "FieldValueInvalid",
      message: `spec: InvalidSpec: ${message}`,
      source: "operator",
    });
  if (spec.encryption) {
    try {
      recordConfigYaml(spec.encryption, EMPTY_RECORD);
    } catch (err) {
      const text = err instanceof Error ? err.message : String(err);
      out.push({
        field: "spec.encryption",
        reason: "FieldValueInvalid",
        message: `spec.encryption: InvalidSpec: ${text}`,
        source: "operator",
      });
    }
  }
  return out;
}

type Selector = NonNullable<NonNullable<ReturnType<typeof effectiveSpec>["namespaces"]>["selector"]>;

/** A namespace whose labels satisfy the selector where one can (In: its first value; Exists: any value). */
function selectedNamespace(selector: Selector | undefined): V1Namespace {
  const labels: Record<string, string> = { ...(selector?.matchLabels ?? {}) };
  for (const e of selector?.matchExpressions ?? []) {
    if (e.operator === "In" && e.values?.[0] !== undefined && labels[e.key] === undefined)
      labels[e.key] = e.values[0];
    if (e.operator === "Exists" && labels[e.key] === undefined) labels[e.key] = "x";
  }
  return { metadata: { name: "csp-validate-namespace", labels } };
}

/** The served storage version's openAPIV3Schema of a CustomResourceDefinition object. */
function storageSchema(crd: unknown): OpenApiSchema {
  const versions = (crd as { spec?: { versions?: { name: string; storage?: boolean; schema?: unknown }[] } })
    ?.spec?.versions;
  const v = versions?.find((x) => x.storage) ?? versions?.[0];
  const schema = (v?.schema as { openAPIV3Schema?: OpenApiSchema } | undefined)?.openAPIV3Schema;
  if (!schema) throw new Error("the CRD has no spec.versions[].schema.openAPIV3Schema");
  return schema;
}

/**
 * Finds the generated CRD: `explicit` if given, else crds/ in the nearest ancestor of this module that has
 * it (the repository when run from source or dist/, /app in the image).
 */
export function findCrdFile(explicit?: string): string {
  if (explicit) return explicit;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, CRD_FILE);
    if (existsSync(candidate)) return candidate;
    const parent = dirname(dir);
    if (parent === dir)
      throw new Error(`${CRD_FILE} not found above ${fileURLToPath(import.meta.url)}; pass --crd`);
    dir = parent;
  }
}

/** Reads the CRD file (YAML or JSON) and builds a validator from it. */
export function loadValidator(crdFile?: string): PolicyValidator {
  const file = findCrdFile(crdFile);
  const docs = parseAllDocuments(readFileSync(file, "utf8"));
  const list = Array.isArray(docs) ? docs : [docs];
  const crd = list
    .map((d) => d.toJS() as unknown)
    .find((o) => (o as { kind?: string })?.kind === "CustomResourceDefinition");
  if (!crd) throw new Error(`${file} holds no CustomResourceDefinition`);
  return new PolicyValidator(crd);
}
