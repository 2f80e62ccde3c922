import { RestClient } from "../cluster/rest.js";
import { bound, hygieneCondition } from "../hygiene/common.js";
import {
  accessCounters,
  accessFindings,
  accessRates,
  keepSamples,
  parseWindow,
  windowText,
  type AccessCounters,
} from "../hygiene/apiaccess.js";
import type { AreaFactory, AreaInput, AreaReconciler, AreaReport } from "./areas.js";
import { errorText, readFailureReason } from "./clusterversion.js";

export const CONDITION = "APIAccessNormal";
/** Rates need samples: /metrics is read at least this often while a policy uses the area. */
export const API_ACCESS_SAMPLE_MS = 30_000;

/**
 * `spec.apiServerMonitoring`: failed authentications and 403s per minute over a window, from the API
 * server's /metrics (counters sampled every reconcile; the rate is the increase over the window). Without
 * /metrics the condition is Unknown with the reason, never True.
 */
export function apiAccessArea(sampleMs = API_ACCESS_SAMPLE_MS): AreaFactory {
  return ({ kc }) => {
    const rest = new RestClient(kc, { defaultTimeoutMs: 10_000 });
    const server = (() => {
      try {
        return new URL(kc.getCurrentCluster()?.server ?? "").host || "kube-apiserver";
      } catch {
        return "kube-apiserver";
      }
    })();
    /** One series per API server, shared by every policy (the counters are the cluster's, not a policy's). */
    let samples: AccessCounters[] = [];
    const area: AreaReconciler = {
      name: "apiServerMonitoring",
      inUse: (spec) => spec.apiServerMonitoring !== undefined,
      async reconcile({ spec, snapshot }: AreaInput): Promise<AreaReport> {
        const m = spec.apiServerMonitoring ?? {};
        const unknown = (reason: string, message: string): AreaReport => ({
          conditions: [{ type: CONDITION, status: "Unknown", reason, message: bound(message) }],
          requeueAfterMs: sampleMs,
        });
        const windowMs = parseWindow(m.window);
        if (windowMs === undefined || windowMs < 1000)
          return unknown(
            "InvalidSpec",
            `spec.apiServerMonitoring.window: ${JSON.stringify(m.window)} is not a duration like 10m`,
          );
        let text: string;
        try {
          text = await rest.text("/metrics");
        } catch (err) {
          return unknown(
            readFailureReason(err),
            `the API server's /metrics could not be read: ${errorText(err)}`,
          );
        }
        const now = snapshot.now.getTime();
        const last = samples[samples.length - 1];
        if (!last || now - last.at >= Math.min(sampleMs, windowMs / 4) || now < last.at)
          samples = keepSamples(samples, accessCounters(text, now), Math.max(windowMs, 3_600_000));
        const rates = accessRates(samples, windowMs);
        if (!rates)
          return unknown(
            "CollectingSamples",
            `first /metrics sample of ${server} taken; rates need a second one`,
          );
        const thresholds = {
          authFailuresPerMinute: m.authFailuresPerMinute ?? 30,
          forbiddenPerMinute: m.forbiddenPerMinute ?? m.authFailuresPerMinute ?? 30,
        };
        const findings = accessFindings(server, rates, windowMs, thresholds);
        const covered =
          rates.coveredMs < windowMs
            ? ` (samples cover ${windowText(Math.round(rates.coveredMs / 1000) * 1000)} so far)`
            : "";
        const condition = hygieneCondition(CONDITION, findings, spec.exemptions, snapshot.now, {
          failReason: "AccessFailuresHigh",
          okReason: "Normal",
          okMessage: `API server ${server}: ${rates.authFailuresPerMinute.toFixed(1)} failed authentication(s) and ${rates.forbiddenPerMinute.toFixed(1)} 403(s) per minute over ${windowText(windowMs)}${covered}, under the thresholds`,
        });
        return { findings, conditions: [condition], requeueAfterMs: Math.min(sampleMs, windowMs / 4) };
      },
    };
    return area;
  };
}
