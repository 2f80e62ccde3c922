import { ApiServerMetricsReader } from "../cluster/hygiene.js";
import { agentEvidence, AUDIT_BREAKDOWN_KEY, parseAuditBreakdown } from "../evidence/agentreports.js";
import type { Finding } from "../findings/finding.js";
import { bound, hygieneCondition } from "../hygiene/common.js";
import type { AccessRateBoard } from "../hygiene/apiaccess.js";
import {
  accessCounters,
  accessRateBoard,
  accessFindings,
  accessWho,
  accessRates,
  FORBIDDEN_SCOPE,
  keepSamples,
  parseWindow,
  windowText,
  type AccessRates,
  type AccessSample,
} from "../hygiene/apiaccess.js";
import type { AreaFactory, AreaInput, AreaReconciler, AreaReport } from "./areas.js";
import { errorText, readFailureReason } from "./clusterversion.js";

export const CONDITION = "APIAccessNormal";
/** Rates need samples: /metrics is read this often while a policy uses the area (and the policy requeued). */
export const API_ACCESS_SAMPLE_MS = 30_000;
/** The shortest window (the CRD says the same): shorter would mean a reconcile every few seconds. */
export const MIN_WINDOW_MS = 60_000;

/**
 * `spec.apiServerMonitoring`: failed authentications and 403s per minute over a window, from the /metrics
 * of EVERY API server endpoint (the `kubernetes` Service's EndpointSlices; a load balancer in front of
 * several servers would mix their counters), each with its own samples. Without /metrics the condition is
 * Unknown with the reason, never True.
 */
export function apiAccessArea(
  sampleMs = API_ACCESS_SAMPLE_MS,
  board: AccessRateBoard = accessRateBoard,
): AreaFactory {
  return ({ kc }) => {
    const apiServers = new ApiServerMetricsReader(kc, 10_000);
    /** Per API server endpoint, shared by every policy (the counters are the cluster's, not a policy's). */
    const series = new Map<string, { samples: AccessSample[] }>();

    const area: AreaReconciler = {
      name: "apiServerMonitoring",
      inUse: (spec) => spec.apiServerMonitoring !== undefined,
      async reconcile({ policy, spec, snapshot }: AreaInput): Promise<AreaReport> {
        const m = spec.apiServerMonitoring ?? {};
        const unknown = (reason: string, message: string, findings: Finding[] = []): AreaReport => ({
          findings,
          conditions: [{ type: CONDITION, status: "Unknown", reason, message: bound(message) }],
          requeueAfterMs: sampleMs,
        });
        const windowMs = parseWindow(m.window);
        if (windowMs === undefined || windowMs < MIN_WINDOW_MS) {
          board.set(policy.metadata.name, []);
          return unknown(
            "InvalidSpec",
            `spec.apiServerMonitoring.window: ${JSON.stringify(m.window)} is not a duration of at least 1m, like 10m`,
          );
        }
        const now = snapshot.now.getTime();
        const servers = await apiServers.servers();
        const keep = Math.max(windowMs, 3_600_000);
        const problems: { reason: string; message: string }[] = [];
        const collecting: string[] = [];
        const rated: { name: string; rates: AccessRates }[] = [];
        for (const name of servers) {
          const s = series.get(name) ?? { samples: [] };
          series.set(name, s);
          const last = s.samples[s.samples.length - 1];
          // Another policy's reconcile may have sampled just now: one reading per sample period.
          if (!last || now - last.at >= sampleMs || now < last.at) {
            try {
              s.samples = keepSamples(s.samples, accessCounters(await apiServers.metrics(name), now), keep);
            } catch (err) {
              problems.push({
                reason: readFailureReason(err),
                message: `the /metrics of API server ${name} could not be read: ${errorText(err)}`,
              });
              continue;
            }
          }
          const rates = accessRates(s.samples, windowMs);
          if (rates) rated.push({ name, rates });
          else collecting.push(name);
        }
        for (const name of [...series.keys()]) if (!servers.includes(name)) series.delete(name);
        board.set(
          policy.metadata.name,
          rated.map((r) => ({ server: r.name, rates: r.rates })),
        );

        const thresholds = {
          authFailuresPerMinute: m.authFailuresPerMinute ?? 30,
          forbiddenPerMinute: m.forbiddenPerMinute ?? m.authFailuresPerMinute ?? 30,
        };
        // Who is behind them, where a node agent reads the API server's audit log.
        const who = accessWho(
          agentEvidence(snapshot.configMaps ?? [], AUDIT_BREAKDOWN_KEY, parseAuditBreakdown),
          snapshot.now,
        );
        const findings = rated.flatMap((r) => accessFindings(r.name, r.rates, windowMs, thresholds, who));
        const summary = rated
          .map(({ name, rates }) => {
            const covered =
              rates.coveredMs < windowMs
                ? ` (samples cover ${windowText(Math.round(rates.coveredMs / 1000) * 1000)} so far)`
                : "";
            return `API server ${name}: ${rates.authFailuresPerMinute.toFixed(1)} failed authentication(s) and ${rates.forbiddenPerMinute.toFixed(1)} 403(s) per minute${covered}`;
          })
          .join("; ");
        const condition = hygieneCondition(CONDITION, findings, spec.exemptions, snapshot.now, {
          failReason: "AccessFailuresHigh",
          okReason: "Normal",
          okMessage: `${summary}, over ${windowText(windowMs)}, under the thresholds (${FORBIDDEN_SCOPE})`,
        });
        if (condition.status === "True" && problems.length > 0)
          return unknown(problems[0]!.reason, problems.map((p) => p.message).join("; "), findings);
        if (condition.status === "True" && collecting.length > 0)
          return unknown(
            "CollectingSamples",
            `first /metrics sample of API server(s) ${collecting.join(", ")} taken; rates need a second one`,
            findings,
          );
        return { findings, conditions: [condition], requeueAfterMs: sampleMs };
      },
    };
    return area;
  };
}
