/**
 * The encryption key ring: keys the operator generates for the local providers (aescbc, aesgcm,
 * secretbox), their validation, and how they are named and identified without revealing them. Pure apart
 * from the CSPRNG `generateKey` defaults to. Key material never appears in an error message: errors name
 * keys only; status, logs and findings use `keyFingerprint` / `describeKeyRing`.
 */
import { createHash, randomBytes } from "node:crypto";
import type { ClusterSecurityPolicySpec } from "../../api/v1alpha1/policy.js";

/** `spec.encryption` of a ClusterSecurityPolicy. */
export type EncryptionSpec = NonNullable<ClusterSecurityPolicySpec["encryption"]>;
export type EncryptionProvider = NonNullable<EncryptionSpec["provider"]>;
/** Providers whose keys the operator generates and holds (kms keys live in the KMS). */
export type KeyProvider = Exclude<EncryptionProvider, "kms">;

/** Key length for every local provider: AES-256 for aescbc/aesgcm, the only size secretbox accepts. */
export const KEY_BYTES = 32;

/**
 * A data-encryption key. `provider` is part of the key: stored objects are prefixed
 * `k8s:enc:<provider>:v1:<name>:`, so a key stays readable only under the provider it was written with —
 * a provider change is a rotation to a key of the new provider, never a relabelling of old keys.
 */
export interface EncryptionKey {
  name: string;
  /** Base64 of KEY_BYTES random bytes. Never log it; use keyFingerprint. */
  secret: string;
  /** RFC 3339 creation time, used to decide when the key is due for rotation. */
  createdAt: string;
  provider: KeyProvider;
}

/**
 * The keys the API servers must know. `primary` names the key new writes use; `""` means none yet (writes
 * stay plaintext — the first step of enabling encryption on a cluster with several API servers). Every
 * other key is kept for decryption only.
 */
export interface KeyRing {
  primary: string;
  keys: EncryptionKey[];
}

const KEY_NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;

function validKeyLength(provider: KeyProvider, length: number): boolean {
  // The API server accepts AES-128/192/256; the operator only generates 256-bit keys but reads any valid one.
  return provider === "secretbox" ? length === 32 : [16, 24, 32].includes(length);
}

/** Throws when a key could not be loaded by the API server. The message never contains the secret. */
export function assertValidKey(key: EncryptionKey): void {
  if (!KEY_NAME.test(key.name) || key.name.length > 63) {
    throw new Error(`encryption key name "${key.name}" must be 1-63 letters, digits, '-', '_' or '.'`);
  }
  const bytes = Buffer.from(key.secret, "base64");
  if (bytes.toString("base64") !== key.secret || !validKeyLength(key.provider, bytes.length)) {
    throw new Error(
      `encryption key ${key.name} is not valid base64 of a ${key.provider} key of the right length`,
    );
  }
}

/** A key made from given bytes; the deterministic core of generateKey, used by tests with fixed bytes. */
export function keyFromBytes(
  provider: KeyProvider,
  name: string,
  createdAt: string,
  bytes: Uint8Array,
): EncryptionKey {
  const key: EncryptionKey = { name, secret: Buffer.from(bytes).toString("base64"), createdAt, provider };
  assertValidKey(key);
  return key;
}

/**
 * A new random key for a local provider. Name and time are the caller's (see keyName) so that nothing
 * here reads the clock; `random` exists for tests and defaults to node:crypto's CSPRNG.
 */
export function generateKey(
  provider: KeyProvider,
  name: string,
  createdAt: string,
  random: (size: number) => Uint8Array = randomBytes,
): EncryptionKey {
  return keyFromBytes(provider, name, createdAt, random(KEY_BYTES));
}

/** `key-<yyyymmddhhmmss>` in UTC: sortable, unique at one rotation per second, and free of ':'. */
export function keyName(at: Date): string {
  return `key-${at.toISOString().replace(/\D/g, "").slice(0, 14)}`;
}

/**
 * First 16 hex characters of the SHA-256 of the key bytes: identifies a key in status and logs (which key
 * is primary, whether two servers agree) without revealing anything usable.
 */
export function keyFingerprint(key: Pick<EncryptionKey, "secret">): string {
  return createHash("sha256").update(Buffer.from(key.secret, "base64")).digest("hex").slice(0, 16);
}

/** The ring without key material, safe for status, events and logs. */
export function describeKeyRing(ring: KeyRing): {
  primary: string;
  keys: { name: string; provider: KeyProvider; createdAt: string; fingerprint: string }[];
} {
  return {
    primary: ring.primary,
    keys: ring.keys.map((k) => ({
      name: k.name,
      provider: k.provider,
      createdAt: k.createdAt,
      fingerprint: keyFingerprint(k),
    })),
  };
}

/** Throws when the ring could not be rendered: an invalid key, a duplicate name, a primary not in the ring. */
export function assertValidRing(ring: KeyRing): void {
  const names = new Set<string>();
  for (const key of ring.keys) {
    assertValidKey(key);
    if (names.has(key.name)) throw new Error(`encryption key name ${key.name} appears twice in the key ring`);
    names.add(key.name);
  }
  if (ring.primary !== "" && !names.has(ring.primary)) {
    throw new Error(`primary encryption key ${ring.primary} is not in the key ring`);
  }
}
