import type { AuditBreakdown, PkiReport } from "../evidence/agentreports.js";
import { INTEGRITY_HEARTBEAT_MS } from "../evidence/agentreports.js";
import { AuditLogTail } from "./auditlog.js";
import { scanPki } from "./pki.js";

/**
 * The cluster-hygiene evidence the agent reads on its host for the operator's credentials and
 * apiServerMonitoring areas: the control-plane PKI's expiry (src/agent/pki.ts) and who is behind the API
 * server's 401s and 403s (src/agent/auditlog.ts). Each part keeps its previous scannedAt while its content
 * is unchanged and younger than the integrity heartbeat, so an unchanged node does not rewrite its report
 * on every sync.
 */
export class NodeHygiene {
  private readonly audit: AuditLogTail;
  private pki: PkiReport | undefined;
  private breakdown: AuditBreakdown | undefined;

  constructor(private readonly hostRoot: string) {
    this.audit = new AuditLogTail(hostRoot);
  }

  async collect(now: Date = new Date()): Promise<{ pki?: PkiReport; audit?: AuditBreakdown }> {
    this.pki = keepIfSame(this.pki, await scanPki(this.hostRoot, now), now);
    this.breakdown = keepIfSame(this.breakdown, await this.audit.scan(now), now);
    return {
      ...(this.pki && this.pki.certificates.length + (this.pki.errors?.length ?? 0) > 0
        ? { pki: this.pki }
        : {}),
      ...(this.breakdown ? { audit: this.breakdown } : {}),
    };
  }
}

function keepIfSame<T extends { scannedAt: string }>(
  prev: T | undefined,
  next: T | undefined,
  now: Date,
): T | undefined {
  if (!prev || !next) return next;
  const same = JSON.stringify({ ...prev, scannedAt: "" }) === JSON.stringify({ ...next, scannedAt: "" });
  return same && now.getTime() - Date.parse(prev.scannedAt) < INTEGRITY_HEARTBEAT_MS ? prev : next;
}
