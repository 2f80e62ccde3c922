/**
 * The encryption area's persisted state: the key ring, the rotation phase and the bookkeeping that makes
 * every step resumable, held in one Secret in csp-system (`csp-<policy>-encryption`). The Secret also
 * carries the rendered EncryptionConfiguration, which the node agent copies to the file the API server
 * reads. Pure: building and parsing the Secret; the cluster layer does the I/O.
 *
 * Order of operations (crash safety): a step that changes the ring is persisted in the Secret BEFORE
 * anything acts on it, so the operator never delivers a key it has not stored, and a restarted operator
 * resumes from the Secret alone. Key material only travels in the Secret's data; its labels and
 * annotations (visible to anyone who may list Secrets' metadata) hold names, fingerprints and hashes.
 */
import { parse } from "yaml";
import { GROUP, type ClusterSecurityPolicy } from "../../api/v1alpha1/policy.js";
import { OPERATOR_NAMESPACE, ownershipLabels } from "../../api/vocabulary.js";
import { childName } from "../metadata.js";
import { describeKeyRing, type EncryptionKey, type EncryptionSpec, type KeyProvider } from "./keys.js";
import { encryptionConfigHash, recordConfigYaml, type KmsRef } from "./render.js";
import {
  canonical,
  RotationStateError,
  type EncryptionRecord,
  type RewriteProgress,
  type RotationPhase,
} from "./rotation.js";

/** The Secret's data key holding the EncryptionConfiguration file (what the agent writes to disk). */
export const ENCRYPTION_CONFIG_KEY = "encryption-config.yaml";
/** The Secret's data key holding the persisted rotation state (JSON, includes key material). */
export const ENCRYPTION_STATE_KEY = "state.json";
/** Marks the encryption Secret for the agent and for humans: `app.kubernetes.io/component`. */
export const COMPONENT_LABEL = "app.kubernetes.io/component";
export const ENCRYPTION_COMPONENT = "encryption-config";
export const PHASE_ANNOTATION = `${GROUP}/rotation-phase`;
export const PRIMARY_ANNOTATION = `${GROUP}/primary-key`;
export const CONFIG_HASH_ANNOTATION = `${GROUP}/config-hash`;
export const KEYS_ANNOTATION = `${GROUP}/keys`;
/**
 * Keys (`<provider>/<name>`) and resources the operator no longer needs, each declared only after every
 * stored object concerned was rewritten: the node agent lets exactly these leave the file on disk.
 */
export const RETIRED_KEYS_ANNOTATION = `${GROUP}/retired-keys`;
export const RETIRED_RESOURCES_ANNOTATION = `${GROUP}/retired-resources`;

/** Name of the Secret holding a policy's key ring. */
export function encryptionSecretName(policyName: string): string {
  return childName(policyName, "encryption");
}

/** A Secret as sent to the API server (data base64-encoded, like the API expects). */
export interface EncryptionSecret {
  apiVersion: "v1";
  kind: "Secret";
  metadata: {
    name: string;
    namespace: string;
    labels: Record<string, string>;
    annotations: Record<string, string>;
    resourceVersion?: string;
  };
  type: "Opaque";
  data: Record<string, string>;
}

/** The retired keys and resources a key-ring Secret declares (for the node agent's key guard). */
export function retiredFromAnnotations(annotations: Record<string, string> | undefined): {
  keys: string[];
  resources: string[];
} {
  const list = (v: string | undefined) => (v ? v.split(",").filter((x) => x !== "") : []);
  return {
    keys: list(annotations?.[RETIRED_KEYS_ANNOTATION]),
    resources: list(annotations?.[RETIRED_RESOURCES_ANNOTATION]),
  };
}

function b64(text: string): string {
  return Buffer.from(text, "utf8").toString("base64");
}

/**
 * The Secret for a record: the state, the configuration rendered from its ring, and non-secret
 * annotations (phase, primary key name, config hash, key names with fingerprints) for `kubectl describe`.
 */
export function encryptionSecret(
  policy: ClusterSecurityPolicy,
  spec: EncryptionSpec,
  record: EncryptionRecord,
): EncryptionSecret {
  const yaml = recordConfigYaml(spec, record);
  const state = canonical(record);
  const retired: Record<string, string> = {};
  if (record.retired?.keys.length) retired[RETIRED_KEYS_ANNOTATION] = record.retired.keys.join(",");
  if (record.retired?.resources.length)
    retired[RETIRED_RESOURCES_ANNOTATION] = record.retired.resources.join(",");
  return {
    apiVersion: "v1",
    kind: "Secret",
    metadata: {
      name: encryptionSecretName(policy.metadata.name),
      namespace: OPERATOR_NAMESPACE,
      labels: { ...ownershipLabels(policy.metadata.name), [COMPONENT_LABEL]: ENCRYPTION_COMPONENT },
      annotations: {
        [PHASE_ANNOTATION]: record.phase,
        [PRIMARY_ANNOTATION]: record.ring.primary,
        [CONFIG_HASH_ANNOTATION]: encryptionConfigHash(yaml),
        [KEYS_ANNOTATION]: describeKeyRing(record.ring)
          .keys.map((k) => `${k.name}:${k.provider}:${k.fingerprint}`)
          .join(","),
        ...retired,
      },
      // Deliberately no ownerReference: deleting the policy must not garbage-collect the only copy of keys
      // that stored objects (and the file on the control-plane nodes) still need. A policy of the same name
      // adopts it again; otherwise delete it by hand once nothing is encrypted with its keys.
    },
    type: "Opaque",
    data: { [ENCRYPTION_CONFIG_KEY]: b64(yaml), [ENCRYPTION_STATE_KEY]: b64(JSON.stringify(state)) },
  };
}

const PHASES: readonly RotationPhase[] = ["Stable", "NewKeyAdded", "NewKeyLoaded", "Promoted", "Rewritten"];
const PROVIDERS: readonly KeyProvider[] = ["aescbc", "aesgcm", "secretbox"];

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** How far in the future a stored timestamp may be (clock skew between replicas) and still be kept. */
export const RECORD_CLOCK_SKEW_MS = 5 * 60_000;
const RFC3339 =
  /^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])[Tt]([01]\d|2[0-3]):[0-5]\d:([0-5]\d|60)(\.\d{1,9})?([Zz]|[+-]([01]\d|2[0-3]):[0-5]\d)$/;

/**
 * A stored timestamp as kept: a strict RFC 3339 time no later than `now` plus the clock skew, else
 * undefined. Only bookkeeping (metrics, "since"), never a reason to stop the key ring: a bad one is
 * treated as absent, and the plan stamps it anew.
 */
export function recordTime(v: unknown, now: Date): string | undefined {
  if (typeof v !== "string" || !RFC3339.test(v)) return undefined;
  const t = Date.parse(v);
  return Number.isFinite(t) && t <= now.getTime() + RECORD_CLOCK_SKEW_MS ? v : undefined;
}

/**
 * Reads the record from the Secret's data (base64 values, as the API returns them). Throws
 * RotationStateError naming the field when the Secret was edited into something inconsistent; the message
 * never contains key material. A `phaseSince` or `rotationCompletedAt` that is not a strict RFC 3339 time,
 * or lies in the future (beyond {@link RECORD_CLOCK_SKEW_MS} after `now`), is dropped (see {@link recordTime}).
 */
export function parseEncryptionRecord(
  data: Record<string, string> | undefined,
  now: Date = new Date(),
): EncryptionRecord {
  const raw = data?.[ENCRYPTION_STATE_KEY];
  if (raw === undefined) throw new RotationStateError(`data.${ENCRYPTION_STATE_KEY} is missing`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(raw, "base64").toString("utf8"));
  } catch {
    throw new RotationStateError(`data.${ENCRYPTION_STATE_KEY} is not valid JSON`);
  }
  if (!isObject(parsed)) throw new RotationStateError(`data.${ENCRYPTION_STATE_KEY} is not an object`);
  const phase = parsed["phase"];
  if (typeof phase !== "string" || !PHASES.includes(phase as RotationPhase))
    throw new RotationStateError(`data.${ENCRYPTION_STATE_KEY}: phase must be one of ${PHASES.join(", ")}`);
  const ring = parsed["ring"];
  if (!isObject(ring) || typeof ring["primary"] !== "string" || !Array.isArray(ring["keys"]))
    throw new RotationStateError(`data.${ENCRYPTION_STATE_KEY}: ring must have primary and keys`);
  const keys: EncryptionKey[] = ring["keys"].map((k: unknown, i) => {
    if (
      !isObject(k) ||
      typeof k["name"] !== "string" ||
      typeof k["secret"] !== "string" ||
      typeof k["createdAt"] !== "string" ||
      !PROVIDERS.includes(k["provider"] as KeyProvider)
    )
      throw new RotationStateError(
        `data.${ENCRYPTION_STATE_KEY}: ring.keys[${i}] needs name, secret, createdAt and provider`,
      );
    return {
      name: k["name"],
      secret: k["secret"],
      createdAt: k["createdAt"],
      provider: k["provider"] as KeyProvider,
    };
  });
  const record: EncryptionRecord = {
    phase: phase as RotationPhase,
    ring: { primary: ring["primary"], keys },
  };
  for (const field of ["newKey", "lastTrigger", "rewrittenFor"] as const) {
    const v = parsed[field];
    if (v === undefined) continue;
    if (typeof v !== "string")
      throw new RotationStateError(`data.${ENCRYPTION_STATE_KEY}: ${field} must be a string`);
    record[field] = v;
  }
  for (const field of ["phaseSince", "rotationCompletedAt"] as const) {
    const v = recordTime(parsed[field], now);
    if (v !== undefined) record[field] = v;
  }
  const strings = (v: unknown, field: string): string[] | undefined => {
    if (v === undefined) return undefined;
    if (!Array.isArray(v) || !v.every((x) => typeof x === "string"))
      throw new RotationStateError(`data.${ENCRYPTION_STATE_KEY}: ${field} must be a list of strings`);
    return v;
  };
  const resources = strings(parsed["resources"], "resources");
  const draining = strings(parsed["draining"], "draining");
  if (resources) record.resources = resources;
  if (draining) record.draining = draining;
  const kms = parsed["kms"];
  if (kms !== undefined) {
    if (
      !Array.isArray(kms) ||
      !kms.every((k) => isObject(k) && typeof k["name"] === "string" && typeof k["endpoint"] === "string")
    )
      throw new RotationStateError(`data.${ENCRYPTION_STATE_KEY}: kms must be a list of {name, endpoint}`);
    record.kms = (kms as KmsRef[]).map((k) => ({ name: k.name, endpoint: k.endpoint }));
  }
  const retired = parsed["retired"];
  if (retired !== undefined) {
    if (!isObject(retired))
      throw new RotationStateError(`data.${ENCRYPTION_STATE_KEY}: retired must be an object`);
    record.retired = {
      keys: strings(retired["keys"], "retired.keys") ?? [],
      resources: strings(retired["resources"], "retired.resources") ?? [],
    };
  }
  const rewrite = parsed["rewrite"];
  if (rewrite !== undefined) record.rewrite = parseProgress(rewrite);
  // A record written before `resources` and `kms` were persisted: what its rendered configuration holds.
  if (record.resources === undefined || record.kms === undefined) {
    const fromConfig = extrasFromConfig(secretConfigYaml(data));
    if (record.resources === undefined && fromConfig.resources) record.resources = fromConfig.resources;
    if (record.kms === undefined && fromConfig.kms.length > 0) record.kms = fromConfig.kms;
  }
  return record;
}

function parseProgress(v: unknown): RewriteProgress {
  const bad = () => new RotationStateError(`data.${ENCRYPTION_STATE_KEY}: rewrite is malformed`);
  if (!isObject(v) || typeof v["target"] !== "string" || !Array.isArray(v["done"])) throw bad();
  const progress: RewriteProgress = { target: v["target"], done: [] };
  if (!v["done"].every((d) => typeof d === "string")) throw bad();
  progress.done = v["done"];
  for (const field of ["resource", "after", "continue"] as const) {
    const f = v[field];
    if (f === undefined) continue;
    if (typeof f !== "string") throw bad();
    progress[field] = f;
  }
  if (v["failed"] !== undefined) {
    if (!Array.isArray(v["failed"]) || !v["failed"].every((d) => typeof d === "string")) throw bad();
    progress.failed = v["failed"];
  }
  if (v["failedCount"] !== undefined) {
    if (typeof v["failedCount"] !== "number") throw bad();
    progress.failedCount = v["failedCount"];
  }
  if (v["failedOnly"] !== undefined) {
    if (typeof v["failedOnly"] !== "boolean") throw bad();
    progress.failedOnly = v["failedOnly"];
  }
  return progress;
}

/** Resources of the first entry and every KMS provider of a configuration the operator rendered. */
function extrasFromConfig(yaml: string | undefined): { resources?: string[]; kms: KmsRef[] } {
  let doc: unknown;
  try {
    doc = yaml === undefined ? undefined : parse(yaml);
  } catch {
    return { kms: [] }; // never echo the text: it holds keys
  }
  const entries = isObject(doc) && Array.isArray(doc["resources"]) ? (doc["resources"] as unknown[]) : [];
  const first = entries[0];
  const resources =
    isObject(first) && Array.isArray(first["resources"])
      ? first["resources"].filter((r): r is string => typeof r === "string")
      : undefined;
  const kms: KmsRef[] = [];
  for (const e of entries) {
    const providers = isObject(e) && Array.isArray(e["providers"]) ? (e["providers"] as unknown[]) : [];
    for (const p of providers) {
      const k = isObject(p) ? p["kms"] : undefined;
      if (isObject(k) && typeof k["name"] === "string" && typeof k["endpoint"] === "string")
        if (!kms.some((x) => x.name === k["name"])) kms.push({ name: k["name"], endpoint: k["endpoint"] });
    }
  }
  return resources ? { resources, kms } : { kms };
}

/** The configuration text the Secret carries, decoded. */
export function secretConfigYaml(data: Record<string, string> | undefined): string | undefined {
  const raw = data?.[ENCRYPTION_CONFIG_KEY];
  return raw === undefined ? undefined : Buffer.from(raw, "base64").toString("utf8");
}
