import type { Exemption } from "../api/v1alpha1/policy.js";
import type { Finding } from "../findings/finding.js";
import { objectKey } from "../cluster/snapshot.js";
import { DAY_MS, isoDay } from "./common.js";

export const EXEMPTION_EXPIRING_SOON = "EXEMPTION-EXPIRING-SOON";
export const EXPIRING_SOON_DAYS = 7;

export interface ExpiringExemption {
  index: number;
  exemption: Exemption;
  expires: Date;
  /** Hours left, rounded down. */
  hoursLeft: number;
}

/** Active exemptions whose `expires` falls within the next `days` days. */
export function expiringExemptions(
  exemptions: readonly Exemption[] | undefined,
  now: Date,
  days = EXPIRING_SOON_DAYS,
): ExpiringExemption[] {
  const out: ExpiringExemption[] = [];
  (exemptions ?? []).forEach((exemption, index) => {
    if (!exemption.expires) return;
    const expires = new Date(exemption.expires);
    const left = expires.getTime() - now.getTime();
    if (isNaN(left) || left <= 0 || left > days * DAY_MS) return;
    out.push({ index, exemption, expires, hoursLeft: Math.floor(left / 3_600_000) });
  });
  return out;
}

function describe(e: ExpiringExemption): string {
  const x = e.exemption;
  const left = e.hoursLeft >= 48 ? `${Math.floor(e.hoursLeft / 24)} day(s)` : `${e.hoursLeft} hour(s)`;
  return `spec.exemptions[${e.index}] (${x.findingId ?? x.area}) expires at ${e.expires.toISOString()}, in ${left}: renew it or fix the cause before then (reason: ${x.reason}${x.ticket ? `, ticket ${x.ticket}` : ""})`;
}

/** An Info finding per exemption expiring within 7 days. */
export function expiringExemptionFindings(list: readonly ExpiringExemption[], policyName: string): Finding[] {
  return list.map((e) => ({
    id: EXEMPTION_EXPIRING_SOON,
    severity: "Info",
    area: "exemptions",
    resource: objectKey("ClusterSecurityPolicy", undefined, policyName),
    message: describe(e),
  }));
}

/**
 * The Warning events to send now: one per expiring exemption per UTC day. `sent` holds the keys already
 * sent (policy uid, exemption, day); the caller keeps it between reconciles.
 */
export function expiringExemptionEvents(
  list: readonly ExpiringExemption[],
  policyUid: string,
  now: Date,
  sent: ReadonlySet<string>,
): { key: string; message: string }[] {
  const day = isoDay(now);
  return list
    .map((e) => ({
      key: `${policyUid}/${e.index}/${e.exemption.findingId ?? e.exemption.area ?? ""}/${e.exemption.expires ?? ""}/${day}`,
      message: describe(e),
    }))
    .filter((e) => !sent.has(e.key));
}
