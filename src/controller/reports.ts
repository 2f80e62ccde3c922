import { describeKind, REPORT_APIS } from "../reports/kinds.js";
import { REPORTS_RECHECK_MS, type ReportsPublisher } from "../reports/publisher.js";
import type { AreaCondition } from "../status/status.js";
import type { AreaInput, AreaReconciler, AreaReport } from "./areas.js";

export const CONDITION = "ReportsPublished";

const ALL_KINDS = REPORT_APIS.map(
  (a) => `${a.namespaced.kind}/${a.cluster.kind} (${a.group}/${a.version})`,
).join(" or ");

/**
 * `ReportsPublished` from what the reports publisher (src/reports/publisher.ts) last did for this policy.
 * The publisher runs after the status is written (it publishes that status) and never writes the policy;
 * when its state for a policy changes it enqueues the policy, and this area folds the state into the next
 * status write. One writer of status, so no race with the reconcile's status patch (a merge patch that
 * replaces the whole conditions list). The condition is informational: it never affects `Compliant`.
 * True means the reports exist in every kind installed now (as discovery last saw them): a publish to other
 * kinds (a report CRD installed or removed since) leaves it Pending until the publish over them has landed.
 */
export function reportsCondition(
  publisher: Pick<ReportsPublisher, "kinds" | "detectionError" | "stateOf">,
  policy: string,
): AreaCondition {
  const kinds = publisher.kinds;
  if (kinds === undefined)
    return {
      type: CONDITION,
      status: "Unknown",
      reason: "DiscoveryFailed",
      message: `which report CRDs are installed is not known yet: ${publisher.detectionError ?? "discovery pending"}`,
    };
  if (kinds.length === 0)
    return {
      type: CONDITION,
      status: "False",
      reason: "NoReportCRDs",
      message:
        `reports are off: no report CRD is installed (${ALL_KINDS}); ` +
        `installed later, they are picked up within ${Math.round(REPORTS_RECHECK_MS / 1000)} s`,
    };
  const state = publisher.stateOf(policy);
  if (!state)
    return {
      type: CONDITION,
      status: "Unknown",
      reason: "Pending",
      message: `not yet published to ${kinds.map(describeKind).join(", ")}`,
    };
  if (state.state === "Failed")
    return { type: CONDITION, status: "False", reason: state.reason, message: state.message };
  // Published to other kinds than those installed now (a report CRD installed or removed since): not True
  // until the publish over the kinds of now has landed, so True always means every report exists.
  const now = kinds.map(describeKind);
  if (now.length !== state.kinds.length || now.some((k) => !state.kinds.includes(k)))
    return {
      type: CONDITION,
      status: "Unknown",
      reason: "Pending",
      message:
        `not yet published to ${now.join(", ")} (the installed report kinds changed; ` +
        `${state.reports} report(s) in ${state.kinds.join(", ")} until then)`,
    };
  return {
    type: CONDITION,
    status: "True",
    reason: "Published",
    message: `${state.reports} report(s) in ${state.kinds.join(", ")}`,
  };
}

/** The area that carries the condition; built by the operator around its publisher (see manager.ts). */
export function reportsArea(publisher: ReportsPublisher): AreaReconciler {
  return {
    name: "reports",
    inUse: () => true,
    reconcile({ policy }: AreaInput): Promise<AreaReport> {
      return Promise.resolve({ conditions: [reportsCondition(publisher, policy.metadata.name)] });
    },
    start: () => publisher.startDetection(),
    stop: () => publisher.stop(),
  };
}
