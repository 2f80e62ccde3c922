import {
  expiringExemptionEvents,
  expiringExemptionFindings,
  expiringExemptions,
} from "../hygiene/exemptions.js";
import type { AreaFactory, AreaInput, AreaReconciler, AreaReport } from "./areas.js";

/** How many (policy, exemption, day) keys are remembered; old days are dropped first. */
const MAX_REMEMBERED = 10_000;

/**
 * Exemptions about to expire (within 7 days): an Info finding each, and a Warning event
 * `ExemptionExpiringSoon` once per exemption per UTC day (remembered in memory: a restart may send
 * one more that day). The expired case is reported where exemptions are applied (findings/exemptions.ts).
 */
export const exemptionExpiryArea: AreaFactory = () => {
  const sent = new Set<string>();
  const area: AreaReconciler = {
    name: "exemptions",
    inUse: (spec) => (spec.exemptions ?? []).some((e) => e.expires !== undefined),
    reconcile({ policy, spec, snapshot }: AreaInput): Promise<AreaReport> {
      const list = expiringExemptions(spec.exemptions, snapshot.now);
      const uid = policy.metadata.uid ?? policy.metadata.name;
      const events = expiringExemptionEvents(list, uid, snapshot.now, sent);
      for (const e of events) sent.add(e.key);
      while (sent.size > MAX_REMEMBERED) sent.delete(sent.values().next().value!);
      return Promise.resolve({
        findings: expiringExemptionFindings(list, policy.metadata.name),
        events: events.map((e) => ({
          type: "Warning" as const,
          reason: "ExemptionExpiringSoon",
          message: e.message,
        })),
        // Come back the next UTC day while one is pending, so the daily event is sent without a spec change.
        ...(list.length > 0
          ? {
              requeueAfterMs: Math.min(
                86_400_000 - (snapshot.now.getTime() % 86_400_000) + 1000,
                6 * 3_600_000,
              ),
            }
          : {}),
      });
    },
  };
  return area;
};
