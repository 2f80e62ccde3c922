/**
 * The encryption area's persisted state: the key ring, the rotation phase and the bookkeeping that makes
 * every step resumable, held in one Secret in csp-system (`csp-<policy>-encryption`). The Secret also
 * carries the rendered EncryptionConfiguration, which the node agent copies to the file the API server
 * reads. Pure: rendering, parsing and the decision of the next step; the cluster layer does the I/O.
 *
 * Order of operations (crash safety): a step that changes the ring is persisted in the Secret BEFORE
 * anything acts on it, so the operator never delivers a key it has not stored, and a restarted operator
 * resumes from the Secret alone. Key material only travels in the Secret's data; its labels and
 * annotations (visible to anyone who may list Secrets' metadata) hold names, fingerprints and hashes.
 */
import { parse } from "yaml";
import { GROUP, type ClusterSecurityPolicy } from "../api/v1alpha1/policy.js";
import {
  describeKeyRing,
  encryptionConfigHash,
  generateKey,
  keyName,
  nextRotationStep,
  renderEncryptionConfigurationYaml,
  rotationReason,
  RotationStateError,
  type EncryptionKey,
  type EncryptionSpec,
  type KeyProvider,
  type KmsRef,
  type RenderExtras,
  type RotationAction,
  type RotationPhase,
  type RotationState,
} from "./encryption.js";
import { OPERATOR_NAMESPACE, ownershipLabels } from "../api/vocabulary.js";
import { childName } from "./metadata.js";

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
/** At most this many retired key names are remembered (oldest dropped first). */
const MAX_RETIRED = 100;

/** Name of the Secret holding a policy's key ring. */
export function encryptionSecretName(policyName: string): string {
  return childName(policyName, "encryption");
}

/**
 * The rotation state plus what the state machine leaves to its caller: the trigger value already acted
 * on (so a changed `rotation.trigger` starts exactly one rotation) and the key whose rewrite finished
 * (so a crash after the rewrite does not repeat it, and one before it does).
 */
export interface EncryptionRecord extends RotationState {
  lastTrigger?: string;
  /** The rewrite target (see rewriteTarget) whose rewrite finished. */
  rewrittenFor?: string;
  /** Resources the configuration encrypts; absent: the spec's. A removed one stays until drained. */
  resources?: string[];
  /** Resources leaving the configuration: written in plaintext, read with every key, until rewritten. */
  draining?: string[];
  /** KMS providers stored objects may have been written with (kept for decryption). */
  kms?: KmsRef[];
  /** What the operator declared unneeded after a completed rewrite (RETIRED_*_ANNOTATION). */
  retired?: { keys: string[]; resources: string[] };
  /** How far the rewrite in progress got, so a retry resumes instead of starting over. */
  rewrite?: RewriteProgress;
}

/**
 * Progress of a rewrite, persisted after every page: a retry (after a crash, a 403 fixed by an admin, an
 * expired list) resumes where it stopped instead of re-writing everything.
 */
export interface RewriteProgress {
  /** The rewrite this belongs to (rewriteTarget); progress of another target is ignored. */
  target: string;
  /** Resources completely rewritten. */
  done: string[];
  /** The resource being rewritten, the last object handled in it (`ns/name`) and the list position after it. */
  resource?: string;
  after?: string;
  continue?: string;
  /** Objects of `resource` that failed in a finished pass (first MAX_FAILED_NAMES); retried one by one. */
  failed?: string[];
  failedCount?: number;
  /** The last pass over `resource` finished; only the `failed` objects are left to retry. */
  failedOnly?: boolean;
}

/** Failed objects remembered by name; beyond this a retry lists the resource again. */
export const MAX_FAILED_NAMES = 50;

export const EMPTY_RECORD: EncryptionRecord = { phase: "Stable", ring: { primary: "", keys: [] } };

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

/** The record with its fields in a fixed order and empty optional fields left out (for JSON and comparison). */
function canonical(record: EncryptionRecord): EncryptionRecord {
  const out: EncryptionRecord = { phase: record.phase, ring: record.ring };
  if (record.newKey !== undefined) out.newKey = record.newKey;
  if (record.lastTrigger !== undefined) out.lastTrigger = record.lastTrigger;
  if (record.rewrittenFor !== undefined) out.rewrittenFor = record.rewrittenFor;
  if (record.resources !== undefined) out.resources = record.resources;
  if (record.draining?.length) out.draining = record.draining;
  if (record.kms?.length) out.kms = record.kms;
  if (record.retired && (record.retired.keys.length > 0 || record.retired.resources.length > 0))
    out.retired = record.retired;
  if (record.rewrite !== undefined) out.rewrite = record.rewrite;
  return out;
}

/** What the record adds to the spec when rendering (see RenderExtras). */
export function recordExtras(record: EncryptionRecord): RenderExtras {
  const extras: RenderExtras = {};
  if (record.resources !== undefined) extras.resources = record.resources;
  if (record.draining !== undefined) extras.draining = record.draining;
  if (record.kms !== undefined) extras.kms = record.kms;
  return extras;
}

/** The configuration a record renders to: what the agent writes to disk. */
export function recordConfigYaml(spec: EncryptionSpec, record: EncryptionRecord): string {
  return renderEncryptionConfigurationYaml(spec, record.ring, recordExtras(record));
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

/**
 * Reads the record from the Secret's data (base64 values, as the API returns them). Throws
 * RotationStateError naming the field when the Secret was edited into something inconsistent; the message
 * never contains key material.
 */
export function parseEncryptionRecord(data: Record<string, string> | undefined): EncryptionRecord {
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

/** What the reconciler must do after `planEncryption`. */
export interface EncryptionPlan {
  /** The record to persist when `persist` is true (always the one to act on). */
  record: EncryptionRecord;
  /** The record changed: write it to the Secret before anything else. */
  persist: boolean;
  action: RotationAction;
  message: string;
  /** RewriteObjects: the resources to rewrite, and the target the rewrite is recorded for. */
  rewrite?: { resources: string[]; target: string };
}

/** The evidence a step needs, gathered by the cluster layer. */
export interface EncryptionEvidence {
  /** Every API server reports the hash of the configuration rendered from the current record. */
  allServersLoaded: boolean;
}

const sorted = (xs: Iterable<string>) => [...new Set(xs)].sort();
const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

/**
 * What a rewrite of the record's current step is for: `drain:<resources>` while resources leave the
 * configuration, the new key's name during a rotation. A rewrite is recorded done (rewrittenFor) for it.
 */
export function rewriteTarget(record: EncryptionRecord): string | undefined {
  if (record.phase === "Stable" && record.draining?.length)
    return `drain:${sorted(record.draining).join(",")}`;
  return record.newKey;
}

/**
 * One step of the encryption workflow for a reconcile. Besides the key rotation (rotationReason,
 * nextRotationStep) it owns the set of encrypted resources:
 * - a resource added to the spec is encrypted from the next configuration on;
 * - a resource removed from the spec is never simply dropped (its stored objects would become unreadable):
 *   when no rotation is in progress it is *drained*: rendered identity-first with every key (new writes
 *   plaintext, every stored object readable), and once every API server loaded that, its stored objects
 *   are rewritten in plaintext; only then does it leave the configuration, declared retired. No rotation
 *   starts while a drain is in progress, so no key leaves the ring while a draining object may need it.
 * - KMS providers objects were written with stay (decrypt-only) until a rotation rewrote every object.
 * Pure apart from `random` (defaulting to the CSPRNG inside generateKey); `now` comes from the snapshot.
 */
export function planEncryption(
  spec: EncryptionSpec,
  record: EncryptionRecord,
  evidence: EncryptionEvidence,
  now: Date,
  random?: (size: number) => Uint8Array,
): EncryptionPlan {
  const wanted = [...new Set(spec.resources ?? ["secrets"])];
  const encrypted = record.resources ?? wanted;
  const draining = record.draining ?? [];
  const specKms: KmsRef | undefined =
    (spec.provider ?? "aescbc") === "kms" && spec.kms
      ? { name: spec.kms.name, endpoint: spec.kms.endpoint }
      : undefined;
  const kms = [...(record.kms ?? [])];
  if (specKms && !kms.some((k) => k.name === specKms.name)) kms.push(specKms);
  const retired = { keys: record.retired?.keys ?? [], resources: record.retired?.resources ?? [] };
  const base = (r: EncryptionRecord): EncryptionRecord => {
    const out: EncryptionRecord = { ...r };
    if (kms.length > 0) out.kms = kms;
    return out;
  };

  if (record.phase === "Stable") {
    const back = draining.filter((r) => wanted.includes(r));
    const removed = encrypted.filter((r) => !wanted.includes(r));
    if (back.length > 0 || removed.length > 0) {
      const stillDraining = sorted([...draining.filter((r) => !back.includes(r)), ...removed]);
      const next = base({ ...record, resources: wanted, draining: stillDraining });
      if (stillDraining.length === 0) delete next.draining;
      delete next.rewrite;
      next.retired = { keys: retired.keys, resources: retired.resources.filter((r) => !wanted.includes(r)) };
      const message =
        removed.length > 0
          ? `${removed.join(", ")} removed from spec.encryption.resources: new writes are stored in plaintext; ` +
            `every key is kept until each stored object of ${removed.length > 1 ? "them" : "it"} is rewritten`
          : `${back.join(", ")} back in spec.encryption.resources: encrypted again`;
      return { record: next, persist: true, action: "Apply", message };
    }
    if (draining.length > 0) {
      const target = rewriteTarget(record)!;
      if (!evidence.allServersLoaded)
        return {
          record,
          persist: false,
          action: "WaitForAPIServers",
          message: `waiting for every API server to write ${draining.join(", ")} in plaintext before the rewrite`,
        };
      if (record.rewrittenFor !== target)
        return {
          record,
          persist: false,
          action: "RewriteObjects",
          message: `rewriting stored ${draining.join(", ")} in plaintext`,
          rewrite: { resources: [...draining], target },
        };
      const next = base({ ...record });
      delete next.draining;
      delete next.rewrittenFor;
      delete next.rewrite;
      next.retired = { keys: retired.keys, resources: sorted([...retired.resources, ...draining]) };
      return {
        record: next,
        persist: true,
        action: "Apply",
        message: `every stored object of ${draining.join(", ")} is plaintext: removed from the configuration`,
      };
    }
  }

  // Objects written by a KMS provider the spec no longer names need a rotation to a key of the ring.
  const staleKms = !specKms && kms.length > 0;
  const reason =
    rotationReason(spec, record.ring, now, record.lastTrigger) ??
    (staleKms && record.phase === "Stable" ? ("ProviderChanged" as const) : undefined);
  const obs = {
    rotationDue: reason !== undefined,
    allServersLoaded: evidence.allServersLoaded,
    rewriteComplete: record.newKey !== undefined && record.rewrittenFor === record.newKey,
  };
  let step = nextRotationStep(record, obs);
  if (step.action === "GenerateKey") {
    const provider = (spec.provider ?? "aescbc") as KeyProvider;
    let name = keyName(now);
    // Two rotations within one second: keep names unique (the ring rejects duplicates).
    for (let i = 1; record.ring.keys.some((k) => k.name === name); i++) name = `${keyName(now)}-${i}`;
    const candidate = random
      ? generateKey(provider, name, now.toISOString(), random)
      : generateKey(provider, name, now.toISOString());
    step = nextRotationStep(record, { ...obs, candidate });
  }
  const next: EncryptionRecord = { phase: step.phase, ring: step.ring };
  if (step.newKey !== undefined) next.newKey = step.newKey;
  // The trigger is acted on when a rotation starts; remembered until the spec changes it again.
  const trigger = spec.rotation?.trigger;
  const started = record.phase === "Stable" && step.phase === "NewKeyAdded";
  const lastTrigger = started && trigger ? trigger : record.lastTrigger;
  if (lastTrigger !== undefined) next.lastTrigger = lastTrigger;
  if (step.phase !== "Stable" && record.rewrittenFor !== undefined && record.rewrittenFor === step.newKey)
    next.rewrittenFor = record.rewrittenFor;
  // Resources added to the spec are encrypted from now on; removals wait for Stable (a drain, above).
  next.resources = step.phase === "Stable" ? wanted : sorted([...encrypted, ...wanted]);
  let nextKms = kms;
  let nextRetired = retired;
  if (record.phase === "Rewritten" && step.phase === "Stable") {
    // Every stored object was rewritten with the new primary: the old keys and KMS providers go, declared.
    const gone = record.ring.keys.filter((k) => k.name !== step.newKey && k.name !== step.ring.primary);
    const goneKms = kms.filter((k) => !specKms || k.name !== specKms.name);
    nextKms = specKms ? [specKms] : [];
    nextRetired = {
      keys: [
        ...retired.keys,
        ...gone.map((k) => `${k.provider}/${k.name}`),
        ...goneKms.map((k) => `kms/${k.name}`),
      ]
        .filter((k, i, all) => all.indexOf(k) === i)
        .slice(-MAX_RETIRED),
      resources: retired.resources,
    };
  }
  nextRetired = {
    keys: nextRetired.keys,
    resources: nextRetired.resources.filter((r) => !wanted.includes(r)),
  };
  if (nextKms.length > 0) next.kms = nextKms;
  if (nextRetired.keys.length > 0 || nextRetired.resources.length > 0) next.retired = nextRetired;
  if (record.rewrite && record.rewrite.target === rewriteTarget(next) && step.phase !== "Stable")
    next.rewrite = record.rewrite;
  const extrasChanged =
    !same(record.resources, next.resources) ||
    !same(record.kms ?? [], next.kms ?? []) ||
    !same(canonical({ ...record, retired }).retired, canonical({ ...next, retired: nextRetired }).retired);
  const persist = step.action === "Apply" || extrasChanged;
  const action = step.action === "None" && persist ? "Apply" : step.action;
  const target = rewriteTarget(record);
  return {
    record: persist ? next : record,
    persist,
    action,
    message: reason && started ? `${step.message} (rotation: ${reason})` : step.message,
    ...(action === "RewriteObjects" && target ? { rewrite: { resources: [...encrypted], target } } : {}),
  };
}

/** The record after a rewrite of every stored object completed for the step in progress. */
export function withRewriteDone(record: EncryptionRecord): EncryptionRecord {
  const target = rewriteTarget(record);
  if (target === undefined) return record;
  const out: EncryptionRecord = { ...record, rewrittenFor: target };
  delete out.rewrite;
  return out;
}

/** The record with rewrite progress saved (or cleared with undefined). */
export function withRewriteProgress(
  record: EncryptionRecord,
  progress: RewriteProgress | undefined,
): EncryptionRecord {
  const out: EncryptionRecord = { ...record };
  if (progress) out.rewrite = progress;
  else delete out.rewrite;
  return out;
}
