/**
 * Key rotation: the pure state machine (RotationPhase), the record the operator persists for it
 * (EncryptionRecord, held in the key-ring Secret, see secret.ts) and `planEncryption`, one step of the
 * whole workflow (rotation, resources added or drained, KMS providers retired) for a reconcile.
 *
 * Every step is safe to resume after a crash: the step taken depends only on the persisted record and
 * fresh observations, and a step that changes the ring is persisted BEFORE anything acts on it.
 */
import { parseGoDuration } from "../../cis/parse/flags.js";
import {
  assertValidKey,
  assertValidRing,
  generateKey,
  keyName,
  type EncryptionKey,
  type EncryptionSpec,
  type KeyProvider,
  type KeyRing,
} from "./keys.js";
import type { KmsRef } from "./render.js";

/** Why a rotation is due, or undefined. */
export type RotationReason = "NoKey" | "ProviderChanged" | "Triggered" | "PeriodElapsed";

/**
 * Whether the Stable ring should be rotated: no primary key yet, the primary's provider differs from the
 * spec's, `spec.encryption.rotation.trigger` differs from the last trigger acted on (persisted by the
 * caller), or the primary is older than `rotation.period`. Never for kms: the KMS plugin rotates its own
 * key-encryption keys. `now` is passed in so this stays pure.
 */
export function rotationReason(
  spec: EncryptionSpec,
  ring: KeyRing,
  now: Date,
  lastTrigger?: string,
): RotationReason | undefined {
  const provider = spec.provider ?? "aescbc";
  if (provider === "kms") return undefined;
  const primary = ring.keys.find((k) => k.name === ring.primary);
  if (!primary) return "NoKey";
  if (primary.provider !== provider) return "ProviderChanged";
  const trigger = spec.rotation?.trigger;
  if (trigger !== undefined && trigger !== "" && trigger !== lastTrigger) return "Triggered";
  // The schema admits h/m/s only; parsed like Go's time.ParseDuration (nanoseconds) and turned into ms.
  const periodNs = spec.rotation?.period === undefined ? undefined : parseGoDuration(spec.rotation.period);
  const period = periodNs === undefined ? undefined : periodNs / 1e6;
  const created = Date.parse(primary.createdAt);
  if (period !== undefined && period > 0 && !Number.isNaN(created) && now.getTime() - created >= period) {
    return "PeriodElapsed";
  }
  return undefined;
}

/**
 * Phases of a key rotation. The state (phase, ring, newKey) is persisted by the caller — in a Secret,
 * since the ring holds key material — and every phase is safe to resume after a crash: the step taken
 * depends only on the persisted state and fresh observations.
 *
 * - `Stable`: the ring's primary encrypts; no rotation in progress. On a due rotation with a candidate
 *   key, the key is added as a *secondary* (decrypt-only) key -> NewKeyAdded.
 * - `NewKeyAdded`: the configuration with the new secondary key is being delivered. Promoting it before
 *   every API server has it would let one server write objects another cannot read. When every API
 *   server has loaded it -> NewKeyLoaded.
 * - `NewKeyLoaded`: every server can decrypt with the new key; it is promoted to primary -> Promoted.
 * - `Promoted`: the configuration with the new primary is being delivered. Once every server has loaded
 *   it (so nothing writes with the old key any more), every object of the encrypted resources is
 *   rewritten (read and written back, which re-encrypts it with the primary). When the rewrite is
 *   complete -> Rewritten. The old keys stay in the ring throughout: objects not yet rewritten need them.
 * - `Rewritten`: the rewrite is recorded as done, so a crash does not repeat it; every key except the
 *   primary is removed -> Stable.
 *
 * The first key of a cluster (empty ring) walks the same path: it is added while `primary` is `""`
 * (identity keeps writing plaintext), promoted once every server has it, and the rewrite encrypts the
 * objects stored in plaintext. Identity always stays in the configuration.
 */
export type RotationPhase = "Stable" | "NewKeyAdded" | "NewKeyLoaded" | "Promoted" | "Rewritten";

/** The persisted rotation state. `newKey` names the key being rotated in; absent in Stable. */
export interface RotationState {
  phase: RotationPhase;
  ring: KeyRing;
  newKey?: string;
}

/** What the caller observed since the last step. */
export interface RotationObservations {
  /** A rotation should start (see rotationReason). Only read in Stable. */
  rotationDue: boolean;
  /** A freshly generated key (generateKey) to rotate in. Only read in Stable when rotationDue. */
  candidate?: EncryptionKey | undefined;
  /**
   * Every API server has loaded the configuration rendered from *this state's* ring (compare
   * encryptionConfigHash with each server's reported hash, or check the file each server mounted).
   */
  allServersLoaded: boolean;
  /**
   * Every stored object of the encrypted resources has been rewritten by a rewrite that started after
   * this rotation reached Promoted and every server had loaded it (the caller tracks it per newKey).
   */
  rewriteComplete: boolean;
}

/**
 * What the caller does after a step:
 * - `None`: nothing; Stable and not due.
 * - `GenerateKey`: a rotation is due; generate a key and step again with it as `candidate`.
 * - `Apply`: persist the returned state FIRST (it may hold a new key), then deliver the configuration
 *   rendered from its ring, then step again. Persisting first means a crash never leaves an API server
 *   with a key the operator has forgotten.
 * - `WaitForAPIServers`: keep the configuration delivered; step again once every server has loaded it.
 * - `RewriteObjects`: rewrite (or keep rewriting) every object of the encrypted resources; step again
 *   with `rewriteComplete` when done.
 */
export type RotationAction = "None" | "GenerateKey" | "Apply" | "WaitForAPIServers" | "RewriteObjects";

export interface RotationStep extends RotationState {
  action: RotationAction;
  /** Human-readable, names keys only. */
  message: string;
}

/** The persisted state is inconsistent (never produced by nextRotationStep); needs a person to look. */
export class RotationStateError extends Error {
  override name = "RotationStateError";
}

function checkState(state: RotationState): void {
  try {
    assertValidRing(state.ring);
  } catch (err) {
    throw new RotationStateError((err as Error).message);
  }
  const { phase, ring, newKey } = state;
  if (phase === "Stable") {
    if (newKey !== undefined)
      throw new RotationStateError(`phase Stable must not name a new key (found ${newKey})`);
    return;
  }
  if (newKey === undefined || !ring.keys.some((k) => k.name === newKey)) {
    throw new RotationStateError(
      `phase ${phase} needs its new key in the ring (newKey: ${newKey ?? "none"})`,
    );
  }
  const promoted = phase === "Promoted" || phase === "Rewritten";
  if (promoted !== (ring.primary === newKey)) {
    throw new RotationStateError(
      `phase ${phase} expects key ${newKey} ${promoted ? "to be" : "not to be"} primary (primary: ${ring.primary || "none"})`,
    );
  }
}

function withNewKey(
  phase: RotationPhase,
  ring: KeyRing,
  newKey: string,
  action: RotationAction,
  message: string,
): RotationStep {
  return { phase, ring, newKey, action, message };
}

/**
 * One step of the rotation state machine (see RotationPhase). Pure: the same state and observations
 * always give the same step; it never generates keys or reads the clock. Throws RotationStateError on an
 * inconsistent state and Error on an invalid candidate key.
 */
export function nextRotationStep(state: RotationState, obs: RotationObservations): RotationStep {
  checkState(state);
  const { ring } = state;
  switch (state.phase) {
    case "Stable": {
      if (!obs.rotationDue)
        return { phase: "Stable", ring, action: "None", message: "encryption keys are current" };
      const candidate = obs.candidate;
      if (!candidate) {
        return {
          phase: "Stable",
          ring,
          action: "GenerateKey",
          message: "key rotation due: a new key is needed",
        };
      }
      assertValidKey(candidate);
      if (ring.keys.some((k) => k.name === candidate.name)) {
        throw new Error(`candidate encryption key name ${candidate.name} is already in the key ring`);
      }
      return withNewKey(
        "NewKeyAdded",
        { primary: ring.primary, keys: [...ring.keys, candidate] },
        candidate.name,
        "Apply",
        `added key ${candidate.name} for decryption only; waiting for every API server to load it`,
      );
    }
    case "NewKeyAdded": {
      const newKey = state.newKey!;
      if (!obs.allServersLoaded) {
        return withNewKey(
          "NewKeyAdded",
          ring,
          newKey,
          "WaitForAPIServers",
          `waiting for every API server to load key ${newKey}`,
        );
      }
      return withNewKey(
        "NewKeyLoaded",
        ring,
        newKey,
        "Apply",
        `every API server can decrypt with key ${newKey}`,
      );
    }
    case "NewKeyLoaded": {
      const newKey = state.newKey!;
      const promotedRing: KeyRing = {
        primary: newKey,
        keys: [...ring.keys.filter((k) => k.name === newKey), ...ring.keys.filter((k) => k.name !== newKey)],
      };
      return withNewKey(
        "Promoted",
        promotedRing,
        newKey,
        "Apply",
        `key ${newKey} is now primary; waiting for every API server to load it`,
      );
    }
    case "Promoted": {
      const newKey = state.newKey!;
      if (!obs.allServersLoaded) {
        return withNewKey(
          "Promoted",
          ring,
          newKey,
          "WaitForAPIServers",
          `waiting for every API server to use key ${newKey} as primary`,
        );
      }
      if (!obs.rewriteComplete) {
        return withNewKey(
          "Promoted",
          ring,
          newKey,
          "RewriteObjects",
          `rewriting stored objects with key ${newKey}`,
        );
      }
      return withNewKey(
        "Rewritten",
        ring,
        newKey,
        "Apply",
        `every stored object is encrypted with key ${newKey}`,
      );
    }
    case "Rewritten": {
      const newKey = state.newKey!;
      const removed = ring.keys.filter((k) => k.name !== newKey).map((k) => k.name);
      return {
        phase: "Stable",
        ring: { primary: newKey, keys: ring.keys.filter((k) => k.name === newKey) },
        action: "Apply",
        message:
          removed.length > 0 ? `removed retired keys ${removed.join(", ")}` : `key ${newKey} is the only key`,
      };
    }
  }
}

/** At most this many retired key names are remembered (oldest dropped first). */
const MAX_RETIRED = 100;

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
  /**
   * When the current phase began (RFC 3339, from the reconcile's snapshot time). Persisted so every
   * replica exports the same csp_encryption_rotation_phase_since_timestamp_seconds after a failover; a
   * record written before this field existed gets the time it was first read.
   */
  phaseSince?: string;
  /** When the last rotation completed (Rewritten -> Stable), RFC 3339. */
  rotationCompletedAt?: string;
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

/** The record with its fields in a fixed order and empty optional fields left out (for JSON and comparison). */
export function canonical(record: EncryptionRecord): EncryptionRecord {
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
  if (record.phaseSince !== undefined) out.phaseSince = record.phaseSince;
  if (record.rotationCompletedAt !== undefined) out.rotationCompletedAt = record.rotationCompletedAt;
  return out;
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
 * The record also keeps when its phase began and when the last rotation completed (phaseSince,
 * rotationCompletedAt): a phase change stamps `now`; a record without phaseSince gets it once.
 * Pure apart from `random` (defaulting to the CSPRNG inside generateKey); `now` comes from the snapshot.
 */
export function planEncryption(
  spec: EncryptionSpec,
  record: EncryptionRecord,
  evidence: EncryptionEvidence,
  now: Date,
  random?: (size: number) => Uint8Array,
): EncryptionPlan {
  return withPhaseTimes(record, planStep(spec, record, evidence, now, random), now);
}

/** Stamps phaseSince and rotationCompletedAt on the planned record, persisting it when they change. */
function withPhaseTimes(before: EncryptionRecord, plan: EncryptionPlan, now: Date): EncryptionPlan {
  const at = now.toISOString();
  const after = plan.record;
  const phaseSince = after.phase !== before.phase ? at : (before.phaseSince ?? at);
  const completed =
    before.phase === "Rewritten" && after.phase === "Stable" ? at : before.rotationCompletedAt;
  if (after.phaseSince === phaseSince && after.rotationCompletedAt === completed) return plan;
  const record: EncryptionRecord = { ...after, phaseSince };
  if (completed !== undefined) record.rotationCompletedAt = completed;
  return { ...plan, record, persist: true, action: plan.action === "None" ? "Apply" : plan.action };
}

function planStep(
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
