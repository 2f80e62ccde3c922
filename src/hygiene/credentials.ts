import { X509Certificate } from "node:crypto";
import { INTEGRITY_HEARTBEAT_MS, type PkiReport } from "../evidence/agentreports.js";
import type { Finding } from "../findings/finding.js";
import { daysUntil, isoDay, relativeDays } from "./common.js";

export const AREA = "credentials";
export const CRED_LEGACY_TOKEN = "CRED-LEGACY-TOKEN-SECRET";
export const CRED_SERVING_CERT_EXPIRY = "CRED-SERVING-CERT-EXPIRY";
export const CRED_CLUSTER_CA_EXPIRY = "CRED-CLUSTER-CA-EXPIRY";
export const CRED_CERT_UNREADABLE = "CRED-CERT-UNREADABLE";
export const CRED_PKI_EXPIRY = "CRED-PKI-CERT-EXPIRY";
export const DEFAULT_EXPIRY_WARNING_DAYS = 30;
/** Within this many days (or already expired) a certificate is High, not Medium. */
export const URGENT_DAYS = 7;

export const SA_NAME_ANNOTATION = "kubernetes.io/service-account.name";
export const LAST_USED_LABEL = "kubernetes.io/legacy-token-last-used";
export const INVALID_SINCE_LABEL = "kubernetes.io/legacy-token-invalid-since";

/** What the operator knows of a token Secret: its metadata only, never its data. */
export interface TokenSecretMetadata {
  namespace: string;
  name: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

/** One legacy long-lived token Secret, one Medium finding (Low once the API server invalidated it). */
export function legacyTokenFindings(secrets: readonly TokenSecretMetadata[]): Finding[] {
  return [...secrets]
    .sort((a, b) => a.namespace.localeCompare(b.namespace) || a.name.localeCompare(b.name))
    .map((s) => {
      const sa = s.annotations?.[SA_NAME_ANNOTATION];
      const lastUsed = s.labels?.[LAST_USED_LABEL];
      const invalid = s.labels?.[INVALID_SINCE_LABEL];
      const parts = [
        `legacy long-lived token Secret for ServiceAccount ${sa ? JSON.stringify(sa.slice(0, 253)) : "(none named)"}`,
        lastUsed ? `last used ${lastUsed.slice(0, 20)}` : "no recorded use",
        ...(invalid ? [`invalid since ${invalid.slice(0, 20)}`] : []),
      ];
      return {
        id: CRED_LEGACY_TOKEN,
        severity: invalid ? "Low" : "Medium",
        area: AREA,
        resource: `Secret/${s.namespace}/${s.name}`,
        message: `${parts.join(", ")}: it never expires; use TokenRequest (projected) tokens and delete the Secret`,
      } satisfies Finding;
    });
}

export interface CertificateInfo {
  subject: string;
  notAfter: Date;
}

/** Every certificate of a PEM bundle (the cluster CA may hold several during a rotation). */
export function parsePemBundle(pem: string): { certs: CertificateInfo[]; errors: string[] } {
  const certs: CertificateInfo[] = [];
  const errors: string[] = [];
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) errors.push("no PEM certificate found");
  for (const [i, b] of blocks.entries()) {
    try {
      certs.push(fromX509(new X509Certificate(b)));
    } catch (err) {
      errors.push(`certificate ${i}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  return { certs, errors };
}

export function fromX509(c: X509Certificate): CertificateInfo {
  return { subject: c.subject.replace(/\n/g, ", "), notAfter: new Date(c.validTo) };
}

/**
 * A certificate expiring within `warnDays`: Medium, High within URGENT_DAYS or once expired. The message
 * says the exact date, so whoever rotates it knows the deadline.
 */
export function certificateFinding(
  id: string,
  what: string,
  resource: string,
  cert: CertificateInfo,
  now: Date,
  warnDays: number,
): Finding | undefined {
  const left = daysUntil(cert.notAfter, now);
  const expired = cert.notAfter.getTime() <= now.getTime();
  if (!expired && left > warnDays) return undefined;
  const when = `${cert.notAfter.toISOString()} (${isoDay(cert.notAfter)})`;
  return {
    id,
    severity: expired || left <= URGENT_DAYS ? "High" : "Medium",
    area: AREA,
    resource,
    message: expired
      ? `${what} (${cert.subject.slice(0, 200)}) expired at ${when}, ${relativeDays(left)}; rotate it now`
      : `${what} (${cert.subject.slice(0, 200)}) expires at ${when}, ${relativeDays(left)} (within ${warnDays}); rotate it before then`,
  };
}

/** A PKI report older than this is not current: the agent refreshes it at least every heartbeat. */
export const PKI_REPORT_STALE_MS = 3 * INTEGRITY_HEARTBEAT_MS;

/**
 * Why a node's PKI report cannot say that every certificate of the node is fine, or undefined: the report
 * is stale (the agent stopped or cannot write it), some certificate file was not read or decoded, or the
 * report leaves out certificates that may expire within `warnDays`. A node with such a report never
 * counts as rotated: the condition is Unknown naming it.
 */
export function pkiIncomplete(
  node: string,
  r: PkiReport,
  now: Date,
  warnDays: number,
): { reason: string; message: string } | undefined {
  const age = now.getTime() - Date.parse(r.scannedAt);
  if (age > PKI_REPORT_STALE_MS)
    return {
      reason: "PkiReportStale",
      message: `the PKI report of node ${node} was last refreshed at ${r.scannedAt} (more than ${PKI_REPORT_STALE_MS / 60_000} minutes ago): the agent stopped or cannot write its report`,
    };
  const errors = (r.errors?.length ?? 0) + (r.omittedErrors ?? 0);
  const parts: string[] = [];
  if (errors > 0) parts.push(`${errors} certificate file(s) not read`);
  if ((r.undecoded ?? 0) > 0)
    parts.push(`${r.undecoded} certificate(s) not decoded (over the agent's budget)`);
  if (r.truncated) {
    // The agent lists the soonest expiries first: what it leaves out expires no sooner than the last one
    // listed. A report without that count (an older agent) or whose last listed one is within the window
    // says nothing of the rest.
    const last = r.certificates.at(-1);
    const lastOk =
      r.omitted !== undefined && last !== undefined && daysUntil(new Date(last.notAfter), now) > warnDays;
    if (!lastOk)
      parts.push("more certificates than the report holds, some of which may expire within the window");
  }
  if (parts.length === 0) return undefined;
  return {
    reason: "CertificateUnreadable",
    message: `node ${node}: ${parts.join(", ")}; its certificates are not all checked`,
  };
}

/**
 * The control-plane PKI each node's agent read (src/agent/pki.ts): a finding per certificate expiring
 * within `warnDays` (High within URGENT_DAYS or expired) naming the node, the path and the date; one Info
 * finding per node whose agent could not read some certificate, whose report is stale or does not parse
 * (the caller makes those Unknown with {@link pkiIncomplete}, never Rotated).
 */
export function pkiFindings(
  nodes: readonly { node: string; value?: PkiReport; problem?: string }[],
  now: Date,
  warnDays: number,
): Finding[] {
  const out: Finding[] = [];
  for (const n of nodes) {
    if (!n.value) {
      out.push({
        id: CRED_CERT_UNREADABLE,
        severity: "Info",
        area: AREA,
        resource: `Node/${n.node}`,
        message: `the agent's PKI report of node ${n.node} is not usable (${n.problem ?? "absent"}): its certificates are not checked`,
      });
      continue;
    }
    for (const c of n.value.certificates) {
      const f = certificateFinding(
        CRED_PKI_EXPIRY,
        `the certificate ${c.path} on node ${n.node}`,
        `Node/${n.node}${c.path}`,
        { subject: c.subject, notAfter: new Date(c.notAfter) },
        now,
        warnDays,
      );
      if (f) out.push(f);
    }
    const errors = n.value.errors ?? [];
    const incomplete = pkiIncomplete(n.node, n.value, now, warnDays);
    if (incomplete)
      out.push({
        id: CRED_CERT_UNREADABLE,
        severity: "Info",
        area: AREA,
        resource: `Node/${n.node}`,
        message: `${incomplete.message}${
          errors.length > 0
            ? `: ${errors
                .slice(0, 5)
                .map((e) => `${e.path} (${e.error})`)
                .join(", ")}${errors.length > 5 || n.value.omittedErrors ? ", ..." : ""}`
            : ""
        }`,
      });
  }
  return out;
}
