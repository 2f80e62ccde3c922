/**
 * TLS cipher judgement shared by the API server (1.2.29) and kubelet (4.2.12) checks. Both components use
 * Go's crypto/tls, so "not set" means Go's default suites — which still include CBC-SHA1 suites outside
 * the benchmark's strong list — and a minimum version of TLS 1.3 makes the suite list irrelevant.
 */
import type { CheckOutcome } from "./check.js";
import { fail, pass, unknown } from "./check.js";
import type { Effective } from "../parse/flags.js";

/**
 * Go 1.26's default TLS 1.2 suites (crypto/tls defaultCipherSuites: RC4, 3DES, CBC-SHA256 and RSA key
 * exchange are already excluded), in effect when no cipher list is configured.
 */
export const GO_DEFAULT_CIPHERS: readonly string[] = [
  "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
  "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
  "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
  "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
  "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
  "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
  "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
  "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
  "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
  "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
];

/** Go's two spellings of the ECDHE ChaCha20 suites (crypto/tls aliases) compared as one. */
function canonicalCipher(name: string): string {
  return name.endsWith("_CHACHA20_POLY1305") ? `${name}_SHA256` : name;
}

/**
 * Pass when every suite the component can negotiate is in `allowed`: TLS 1.3 minimum, or a configured
 * list that is a subset. An empty/absent list fails because Go's defaults include weak suites.
 */
export function judgeCiphers(
  allowed: ReadonlySet<string>,
  component: string,
  configured: Effective<readonly string[]>,
  minVersion: Effective<string>,
): CheckOutcome {
  if (!minVersion.ok) return unknown(minVersion.reason);
  if (minVersion.value === "VersionTLS13") {
    return pass(`${minVersion.source}: only TLS 1.3 suites can be negotiated, and all of them are strong`);
  }
  if (!configured.ok) return unknown(configured.reason);
  const strong = new Set([...allowed].map(canonicalCipher));
  const isStrong = (c: string) => strong.has(canonicalCipher(c));
  if (configured.value.length === 0) {
    const weak = GO_DEFAULT_CIPHERS.filter((c) => !isStrong(c));
    return fail(
      `${configured.source}, so ${component} uses Go's default suites, which include ${weak.join(", ")}`,
    );
  }
  const weak = configured.value.filter((c) => !isStrong(c));
  return weak.length > 0
    ? fail(`${configured.source}: not in the CIS strong list: ${weak.join(", ")}`)
    : pass(configured.source);
}
