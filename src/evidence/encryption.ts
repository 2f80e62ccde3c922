/**
 * PURE: the `EncryptionAtRest` condition, decided from evidence only (API server metrics), never from
 * what the operator merely wrote. Messages name keys and hashes, never key material.
 */
import { describeKeyRing } from "../desired/encryption/keys.js";
import type { EncryptionRecord } from "../desired/encryption/rotation.js";
import type { AreaCondition } from "../status/status.js";
import type { FileReport } from "./agentreports.js";
import type { EncryptionMetrics, LoadJudgement } from "./apiserver.js";

export const ENCRYPTION_AT_REST = "EncryptionAtRest";

/** The metrics could be read (with what they say) or not (and why). */
export type MetricsView = { ok: true; metrics: EncryptionMetrics } | { ok: false; why: string };

function unknown(reason: string, message: string): AreaCondition {
  return { type: ENCRYPTION_AT_REST, status: "Unknown", reason, message };
}

/** Resources whose writes since the API server started went through a prefix other than `k8s:enc:`. */
function plaintextWrites(metrics: EncryptionMetrics, resources: readonly string[]): string[] {
  return [
    ...new Set(
      metrics.transformations
        .filter(
          (t) =>
            t.type === "to_storage" &&
            t.count > 0 &&
            resources.includes(t.resource) &&
            !t.prefix.startsWith("k8s:enc:"),
        )
        .map((t) => t.resource),
    ),
  ].sort();
}

/**
 * Enforce mode: the operator holds the ring. True when the current configuration is loaded by every API
 * server and has a primary key (and, right after a first key, once the rewrite encrypted what was stored
 * in plaintext); during a rotation from an existing key, objects stay encrypted with the old primary, so
 * it stays True with reason RotationInProgress.
 */
export function enforcedEncryptionCondition(
  record: EncryptionRecord,
  view: MetricsView,
  loaded: LoadJudgement | undefined,
  stepMessage: string,
): AreaCondition {
  if (!view.ok || !loaded)
    return unknown(
      "MetricsUnavailable",
      `cannot verify: ${view.ok ? "no load evidence" : view.why}; the configuration is in the policy's encryption Secret`,
    );
  const primary = record.ring.primary;
  if (primary === "")
    return { type: ENCRYPTION_AT_REST, status: "False", reason: "NotEncrypted", message: stepMessage };
  const others = record.ring.keys.filter((k) => k.name !== primary).length;
  const fp = describeKeyRing(record.ring).keys.find((k) => k.name === primary)?.fingerprint ?? "";
  if (record.phase !== "Stable") {
    const firstKey = (record.phase === "Promoted" || record.phase === "Rewritten") && others === 0;
    return {
      type: ENCRYPTION_AT_REST,
      status: firstKey ? "False" : "True",
      reason: firstKey ? "EncryptionInProgress" : "RotationInProgress",
      message: stepMessage,
    };
  }
  if (!loaded.allLoaded)
    return {
      type: ENCRYPTION_AT_REST,
      status: "False",
      reason: "ConfigNotLoaded",
      message: `${loaded.message}; waiting for the API servers to load it (deploy the agent overlay config/agent, or copy it to the file given to --encryption-provider-config)`,
    };
  return {
    type: ENCRYPTION_AT_REST,
    status: "True",
    reason: "Encrypted",
    message: `${loaded.message}; primary key ${primary} (fingerprint ${fp}); every stored object was rewritten with it`,
  };
}

/**
 * Audit mode: the operator holds no keys; it reports what the API servers show: a loaded configuration,
 * and whether writes of the policy's resources went through an encrypting transformer.
 */
export function auditedEncryptionCondition(resources: readonly string[], view: MetricsView): AreaCondition {
  if (!view.ok) return unknown("MetricsUnavailable", `cannot verify: ${view.why}`);
  if (view.metrics.loaded.length === 0)
    return {
      type: ENCRYPTION_AT_REST,
      status: "False",
      reason: "NotConfigured",
      message:
        "no API server reports an encryption configuration (needs --encryption-provider-config with automatic reload); Audit mode: nothing written",
    };
  // Counters are cumulative since the API server started: plaintext writes only count against the
  // cluster while no encrypted write of that resource has been seen.
  const encryptedSeen = new Set(
    view.metrics.transformations
      .filter((t) => t.type === "to_storage" && t.count > 0 && t.prefix.startsWith("k8s:enc:"))
      .map((t) => t.resource),
  );
  const plain = plaintextWrites(view.metrics, resources).filter((r) => !encryptedSeen.has(r));
  if (plain.length > 0)
    return {
      type: ENCRYPTION_AT_REST,
      status: "False",
      reason: "PlaintextWrites",
      message: `the API server wrote ${plain.join(", ")} without an encrypting provider; Audit mode: nothing written`,
    };
  const encrypted = view.metrics.transformations.some(
    (t) => t.type === "to_storage" && t.count > 0 && resources.includes(t.resource),
  );
  if (!encrypted)
    return unknown(
      "NoWritesObserved",
      `an encryption configuration is loaded, but no write of ${resources.join(", ")} was seen since the API server started`,
    );
  return {
    type: ENCRYPTION_AT_REST,
    status: "True",
    reason: "EncryptedWrites",
    message: `writes of ${resources.join(", ")} go through an encrypting provider; Audit mode: keys not managed`,
  };
}

/**
 * Evidence that a key ring existed although its Secret is gone: an agent reports having delivered that
 * Secret's configuration (with the keys it holds on disk), or an API server reports reading or writing
 * the policy's resources through an encrypting transformer (`k8s:enc:` prefix). Starting a fresh ring then
 * would replace the only copy of keys stored objects need: the caller refuses instead.
 */
export function keyRingEvidence(
  source: string,
  reports: readonly FileReport[],
  metrics: EncryptionMetrics | undefined,
  resources: readonly string[],
): string[] {
  const out: string[] = [];
  for (const r of reports) {
    if (r.file !== "encryption-config" || r.source !== source) continue;
    const keys = r.keys?.length ? ` holding keys ${r.keys.join(", ")}` : "";
    out.push(`node ${r.node} has ${r.path} from ${source}${keys}`);
  }
  const prefixes = new Set(
    (metrics?.transformations ?? [])
      .filter((t) => t.count > 0 && t.prefix.startsWith("k8s:enc:") && resources.includes(t.resource))
      .map((t) => `${t.resource} via ${t.prefix}`),
  );
  if (prefixes.size > 0) out.push(`the API server reads or writes ${[...prefixes].sort().join(", ")}`);
  return out.sort();
}

/** EncryptionAtRest while the key-ring Secret is missing although keys existed: how to restore it. */
export function keyRingMissingCondition(where: string, evidence: readonly string[]): AreaCondition {
  return {
    type: ENCRYPTION_AT_REST,
    status: "False",
    reason: "KeyRingMissing",
    message:
      `${where} is missing but keys existed (${evidence.join("; ")}); the operator will not start a new key ` +
      `ring, which would lose the keys stored objects need. Restore the Secret from a backup ` +
      `(kubectl apply -f <backup of ${where}>); the node agents keep the configuration file on disk unchanged meanwhile`,
  };
}
