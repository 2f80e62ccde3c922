import { exempts, isActive } from "../api/exemptions.js";
import type { Exemption } from "../api/v1alpha1/policy.js";
import { objectKey } from "../cluster/snapshot.js";
import type { Finding } from "./finding.js";

export const EXEMPTION_EXPIRED = "EXEMPTION-EXPIRED";

// The matching itself is shared vocabulary (desired/ and drift/ use it too): it lives in src/api.
export { areaExemptInNamespace, exempts, isActive } from "../api/exemptions.js";

/** Splits findings into those that count and those exempted; expired exemptions become findings. */
export function applyExemptions(
  findings: readonly Finding[],
  exemptions: readonly Exemption[] | undefined,
  now: Date,
  policyName: string,
): { counted: Finding[]; exempted: Finding[] } {
  const active = (exemptions ?? []).filter((e) => isActive(e, now));
  const counted: Finding[] = [];
  const exempted: Finding[] = [];
  for (const f of findings) (active.some((e) => exempts(e, f)) ? exempted : counted).push(f);
  (exemptions ?? []).forEach((e, i) => {
    if (isActive(e, now)) return;
    counted.push({
      id: EXEMPTION_EXPIRED,
      severity: "Medium",
      area: e.area ?? "exemptions",
      resource: objectKey("ClusterSecurityPolicy", undefined, policyName),
      message: `spec.exemptions[${i}] (${e.findingId ?? e.area}) expired at ${e.expires}: the exempted checks apply again; renew it or fix the cause (reason was: ${e.reason})`,
    });
  });
  return { counted, exempted };
}
