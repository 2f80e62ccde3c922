import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { V1Namespace } from "@kubernetes/client-node";
import { parseAllDocuments, type Tags } from "yaml";
import { applyDefaults } from "../api/defaults.js";
import type { OpenApiSchema } from "../api/schema.js";
import { API_VERSION, GROUP, KIND, type ClusterSecurityPolicy } from "../api/v1alpha1/policy.js";
import { CRD_FILE } from "../api/v1alpha1/render.js";
import { desiredState } from "../desired/index.js";
import { EMPTY_RECORD, recordConfigYaml } from "../desired/encryptionstate.js";
import { effectiveSpec } from "../desired/spec.js";
import { compileRules, validateCel } from "./cel.js";
import { fieldError, type FieldError } from "./fielderror.js";
import { dropNulls, unknownFields, validateSchema } from "./structural.js";

/** The verdict on one YAML document of one input. */
export interface DocumentResult {
  /** The file as given on the command line (`-` for stdin). */
  file: string;
  /** 0-based position of the document in the file. */
  document: number;
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
    // The server decodes (pruning nulls), defaults, then validates: the schema, metadata, then CEL.
    const value = applyDefaults(this.schema, dropNulls(this.schema, object)) as Record<string, unknown>;
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

  /** Validates every document of one YAML stream (a file's content). */
  validateText(file: string, text: string): DocumentResult[] {
    const docs = parseAllDocuments(text, { version: "1.1", customTags: goYamlTags, uniqueKeys: true });
    const list = Array.isArray(docs) ? docs : [docs];
    const out: DocumentResult[] = [];
    list.forEach((doc, i) => {
      const problems = [...doc.errors, ...doc.warnings];
      if (doc.errors.length > 0) {
        const detail = problems.map((e) => e.message.split("\n")[0]).join("; ");
        out.push({ file, document: i, result: "invalid", errors: [yamlError(detail)] });
        return;
      }
      let object: unknown;
      try {
        object = doc.toJS({ maxAliasCount: 1000 });
      } catch (err) {
        out.push({
          file,
          document: i,
          result: "invalid",
          errors: [yamlError(err instanceof Error ? err.message : String(err))],
        });
        return;
      }
      if (object === null || object === undefined) return; // an empty document, e.g. after a trailing ---
      const o = object as { apiVersion?: unknown; kind?: unknown; metadata?: { name?: unknown } };
      const kind = typeof o.kind === "string" ? o.kind : undefined;
      const name = typeof o.metadata?.name === "string" ? o.metadata.name : undefined;
      const base = { file, document: i, ...(kind ? { kind } : {}), ...(name ? { name } : {}) };
      const apiVersion = typeof o.apiVersion === "string" ? o.apiVersion : "";
      const ours = kind === KIND || apiVersion.split("/")[0] === GROUP;
      if (!ours) {
        out.push({ ...base, result: "skipped", errors: [] });
        return;
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
        return;
      }
      const errors = this.validate(object);
      out.push({ ...base, result: errors.length > 0 ? "invalid" : "valid", errors });
    });
    return out;
  }
}

function yamlError(detail: string): FieldError {
  return { field: "", reason: "FieldValueInvalid", message: `invalid YAML: ${detail}`, source: "schema" };
}

/**
 * kubectl reads YAML with go-yaml's YAML 1.1 rules (yes/no/on/off are booleans) but keeps timestamps as
 * strings when decoding into JSON: the same here, or `expires: 2027-01-01T00:00:00Z` would become a Date.
 */
export function goYamlTags(tags: Tags): Tags {
  return tags.filter(
    (t) => t !== "timestamp" && (typeof t !== "object" || t.tag !== "tag:yaml.org,2002:timestamp"),
  );
}

/** ObjectMeta rules the server applies to a cluster-scoped custom resource on create. */
function validateMetadata(value: Record<string, unknown>): FieldError[] {
  const meta = value.metadata as Record<string, unknown> | undefined;
  const name = meta?.name;
  if (name === undefined || name === "") {
    if (typeof meta?.generateName === "string" && meta.generateName !== "") return [];
    return [fieldError("schema", "metadata.name", "FieldValueRequired", "name or generateName is required")];
  }
  if (typeof name !== "string") return []; // a type error already reported by the schema walk
  const out: FieldError[] = [];
  if (name.length > 253 || !DNS1123_SUBDOMAIN.test(name))
    out.push(
      fieldError(
        "schema",
        "metadata.name",
        "FieldValueInvalid",
        "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and " +
          "must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation " +
          "is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
        name,
      ),
    );
  if (meta && "namespace" in meta && meta.namespace !== "" && meta.namespace !== undefined)
    out.push(
      fieldError(
        "schema",
        "metadata.namespace",
        "FieldValueForbidden",
        "not allowed on this type",
        meta.namespace,
      ),
    );
  return out;
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
