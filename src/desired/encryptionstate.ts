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
  type RotationAction,
  type RotationPhase,
  type RotationState,
} from "./encryption.js";
import { childName, OPERATOR_NAMESPACE, ownershipLabels } from "./metadata.js";

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
  rewrittenFor?: string;
}

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
  const yaml = renderEncryptionConfigurationYaml(spec, record.ring);
  const state: EncryptionRecord = { phase: record.phase, ring: record.ring };
  if (record.newKey !== undefined) state.newKey = record.newKey;
  if (record.lastTrigger !== undefined) state.lastTrigger = record.lastTrigger;
  if (record.rewrittenFor !== undefined) state.rewrittenFor = record.rewrittenFor;
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
  return record;
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
}

/** The evidence a step needs, gathered by the cluster layer. */
export interface EncryptionEvidence {
  /** Every API server reports the hash of the configuration rendered from the current record's ring. */
  allServersLoaded: boolean;
}

/**
 * One step of the encryption workflow for a reconcile: decides whether a rotation is due (rotationReason),
 * generates the candidate key when the state machine asks for one, and records the trigger acted on.
 * Pure apart from `random` (defaulting to the CSPRNG inside generateKey); `now` comes from the snapshot.
 */
export function planEncryption(
  spec: EncryptionSpec,
  record: EncryptionRecord,
  evidence: EncryptionEvidence,
  now: Date,
  random?: (size: number) => Uint8Array,
): EncryptionPlan {
  const reason = rotationReason(spec, record.ring, now, record.lastTrigger);
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
  const persist = step.action === "Apply";
  return {
    record: persist ? next : record,
    persist,
    action: step.action,
    message: reason && started ? `${step.message} (rotation: ${reason})` : step.message,
  };
}

/** The record after a rewrite of every stored object completed for the rotation in progress. */
export function withRewriteDone(record: EncryptionRecord): EncryptionRecord {
  return record.newKey === undefined ? record : { ...record, rewrittenFor: record.newKey };
}
