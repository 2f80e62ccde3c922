import { MAX_REMEMBERED_CHILDREN, type ClusterSecurityPolicyStatus } from "../api/v1alpha1/policy.js";
import { uidMark } from "../drift/ownership.js";
import { applyExemptions } from "../findings/exemptions.js";
import type { Finding } from "../findings/finding.js";
import type { Drift } from "../drift/checks.js";
import { computeStatus, statusChanged, type AreaCondition } from "../status/status.js";
import type { AreaReport } from "./areas.js";
import type { Applied } from "./apply.js";
import { worstFailure, type WriteFailure } from "./failures.js";
import type { Plan } from "./plan.js";
import { codeUnitOrder, drain, drainYielding, SLICE, sortedSteps, type Steps } from "../desired/slices.js";

/** An Event to record on the policy. */
export interface PlannedEvent {
  type: "Normal" | "Warning";
  reason: string;
  message: string;
}

/** What to tell the user after the writes: at most one status write and the Events, decided purely. */
export interface Report {
  /** The status to write; absent when it did not change (status is written only when it changed). */
  status?: ClusterSecurityPolicyStatus;
  events: PlannedEvent[];
  failure?: WriteFailure;
  failures: WriteFailure[];
  requeueAfterMs?: number;
}

/**
 * The one `DriftCorrected` Event for the corrections of one reconcile (or one repair), however many
 * objects they touched; undefined when nothing was corrected.
 */
export function driftCorrectedEvent(corrected: readonly Drift[]): PlannedEvent | undefined {
  if (corrected.length === 0) return undefined;
  // One entry per object and reason: six Pod Security labels restored on one namespace read as one.
  const counts = new Map<string, number>();
  for (const d of corrected) {
    const key = `${d.kind} ${d.namespace ? `${d.namespace}/` : ""}${d.name} (${d.reason}${d.manager ? ` by ${d.manager}` : ""})`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  const list = [...counts].map(([key, n]) => (n > 1 ? `${key} x${n}` : key));
  const more = list.length > 10 ? `, and ${list.length - 10} more` : "";
  return {
    type: "Normal",
    reason: "DriftCorrected",
    message: `Corrected ${list.length} object(s): ${list.slice(0, 10).join(", ")}${more}`,
  };
}

/**
 * Folds a plan, what applying it achieved and the areas' reports into the status and Events. Pure. The
 * corrections of one reconcile are one `DriftCorrected` Event, however many objects they touched.
 */
export function report(p: Plan, applied: Applied, areas: readonly AreaReport[], now: Date): Report {
  return drain(reportSteps(p, applied, areas, now));
}

/**
 * The same report, computed with the event loop let run whenever it has held it for a few milliseconds
 * (desired/slices.ts): at thousands of children, the list of UIDs status remembers is merged and
 * compared item by item.
 */
export async function reportYielding(
  p: Plan,
  applied: Applied,
  areas: readonly AreaReport[],
  now: Date,
  budgetMs?: number,
): Promise<Report> {
  return drainYielding(reportSteps(p, applied, areas, now), budgetMs);
}

/** report()'s body, in steps (see desired/slices.ts). */
export function* reportSteps(
  p: Plan,
  applied: Applied,
  areas: readonly AreaReport[],
  now: Date,
): Steps<Report> {
  const { policy, spec } = p;
  const failures = [...applied.failures];
  if (!policy || !spec) return { events: [], failures, ...(failures[0] ? { failure: failures[0] } : {}) };
  const raw: Finding[] = [...p.findings];
  const areaConditions: AreaCondition[] = [];
  const areaEvents: PlannedEvent[] = [];
  let requeueAfterMs = p.requeueAfterMs;
  for (const r of areas) {
    raw.push(...(r.findings ?? []));
    areaEvents.push(...(r.events ?? []));
    areaConditions.push(...(r.conditions ?? []));
    if (r.failure) failures.push({ ...r.failure, terminal: !r.failure.retryable });
    if (r.requeueAfterMs !== undefined)
      requeueAfterMs = Math.min(requeueAfterMs ?? Infinity, r.requeueAfterMs);
  }
  const { counted } = applyExemptions(raw, spec.exemptions, now, policy.metadata.name);
  const failure = worstFailure(failures);
  const computed = computeStatus(
    {
      policy,
      spec,
      namespaces: p.namespaces,
      managedObjects: p.managedObjects,
      drift: applied.remaining,
      corrected: applied.corrected,
      findings: counted,
      areaConditions,
      ...(failure
        ? {
            error: {
              reason: failure.reason,
              message: failures
                .map((f) => f.message)
                .join("; ")
                .slice(0, 2000),
            },
          }
        : {}),
      now,
    },
    policy.status,
  );
  // Always written (possibly empty): a merge patch keeps a field it does not mention.
  const remembered = new Set<string>();
  let n = 0;
  for (const list of [p.childUIDs ?? [], p.rememberedKept ?? [], applied.written.map(uidMark)])
    for (const m of list) {
      remembered.add(m);
      if (++n % SLICE === 0) yield;
    }
  const sorted = yield* sortedSteps([...remembered], codeUnitOrder);
  const status = { ...computed, childUIDs: sorted.slice(0, MAX_REMEMBERED_CHILDREN) };
  // The list of UIDs (up to 10,000) compared item by item in steps, the rest of status as statusChanged does.
  const previous = policy.status?.childUIDs;
  let sameUIDs = previous !== undefined && previous.length === status.childUIDs.length;
  for (let i = 0; sameUIDs && i < status.childUIDs.length; i++) {
    if (previous![i] !== status.childUIDs[i]) sameUIDs = false;
    if (i % (SLICE * 8) === 0) yield;
  }
  const changed =
    !sameUIDs || statusChanged(policy.status && withoutUIDs(policy.status), withoutUIDs(status));

  const events: PlannedEvent[] = [];
  const correctedEvent = driftCorrectedEvent(applied.corrected);
  if (correctedEvent) events.push(correctedEvent);
  const contested = applied.remaining.filter((d) => d.reason === "Contested");
  if (contested.length > 0) {
    const list = contested.map(
      (d) =>
        `${d.kind} ${d.namespace ? `${d.namespace}/` : ""}${d.name}${d.manager ? ` (by ${d.manager})` : ""}`,
    );
    events.push({
      type: "Warning",
      reason: "DriftContested",
      message:
        `Another writer keeps reverting ${list.length} object(s); corrections now wait: ` +
        `${list.slice(0, 10).join(", ")}${list.length > 10 ? `, and ${list.length - 10} more` : ""}`,
    });
  }
  events.push(...areaEvents);
  if (failure) events.push({ type: "Warning", reason: failure.reason, message: failure.message });
  return {
    ...(changed ? { status } : {}),
    events,
    failures,
    ...(failure ? { failure } : {}),
    ...(requeueAfterMs !== undefined ? { requeueAfterMs } : {}),
  };
}

/** A copy of `status` without its list of UIDs. */
function withoutUIDs(status: ClusterSecurityPolicyStatus): ClusterSecurityPolicyStatus {
  const copy = { ...status };
  delete copy.childUIDs;
  return copy;
}
