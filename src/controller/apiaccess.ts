import { KubeConfig } from "@kubernetes/client-node";
import { isIP } from "node:net";
import { HygieneReader } from "../cluster/hygiene.js";
import { RestClient } from "../cluster/rest.js";
import type { Finding } from "../findings/finding.js";
import { bound, hygieneCondition } from "../hygiene/common.js";
import type { AccessRateBoard } from "../hygiene/apiaccess.js";
import {
  accessCounters,
  accessRateBoard,
  accessFindings,
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
 * A KubeConfig that talks to one API server endpoint (host:port from the `kubernetes` Service's
 * EndpointSlices) with the same credentials and CA. The certificate is checked against the configured
 * server's host name when it is a name (the endpoint is then only where to connect), else the endpoint IP.
 */
export function endpointKubeConfig(kc: KubeConfig, host: string, port: number): KubeConfig {
  const cluster = kc.getCurrentCluster();
  const user = kc.getCurrentUser();
  if (!cluster || !user) throw new Error("kubeconfig has no current cluster or user");
  const configured = new URL(cluster.server).hostname.replace(/^\[|\]$/g, "");
  const tlsServerName = cluster.tlsServerName ?? (isIP(configured) ? undefined : configured);
  const out = new KubeConfig();
  out.loadFromOptions({
    clusters: [
      {
        ...cluster,
        name: "endpoint",
        server: `https://${isIP(host) === 6 ? `[${host}]` : host}:${port}`,
        ...(tlsServerName ? { tlsServerName } : {}),
      },
    ],
    users: [user],
    contexts: [{ name: "endpoint", cluster: "endpoint", user: user.name }],
    currentContext: "endpoint",
  });
  return out;
}

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
    const reader = new HygieneReader(kc, 10_000);
    const configured = new RestClient(kc, { defaultTimeoutMs: 10_000 });
    const configuredName = (() => {
      const own = reader.configuredServer();
      return own ? `${own.host}:${own.port}` : "kube-apiserver";
    })();
    /** Per API server endpoint, shared by every policy (the counters are the cluster's, not a policy's). */
    const series = new Map<string, { rest: RestClient; samples: AccessSample[] }>();

    const endpoints = async (): Promise<{ name: string; rest: RestClient }[]> => {
      const found = await reader.apiServerEndpoints().catch(() => [] as { host: string; port: number }[]);
      if (found.length === 0) return [{ name: configuredName, rest: configured }];
      return found.map(({ host, port }) => {
        const name = `${host}:${port}`;
        const have = series.get(name);
        return {
          name,
          rest:
            have?.rest ?? new RestClient(endpointKubeConfig(kc, host, port), { defaultTimeoutMs: 10_000 }),
        };
      });
    };

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
        const servers = await endpoints();
        const keep = Math.max(windowMs, 3_600_000);
        const problems: { reason: string; message: string }[] = [];
        const collecting: string[] = [];
        const rated: { name: string; rates: AccessRates }[] = [];
        for (const ep of servers) {
          const s = series.get(ep.name) ?? { rest: ep.rest, samples: [] };
          series.set(ep.name, s);
          const last = s.samples[s.samples.length - 1];
          // Another policy's reconcile may have sampled just now: one reading per sample period.
          if (!last || now - last.at >= sampleMs || now < last.at) {
            try {
              s.samples = keepSamples(s.samples, accessCounters(await ep.rest.text("/metrics"), now), keep);
            } catch (err) {
              problems.push({
                reason: readFailureReason(err),
                message: `the /metrics of API server ${ep.name} could not be read: ${errorText(err)}`,
              });
              continue;
            }
          }
          const rates = accessRates(s.samples, windowMs);
          if (rates) rated.push({ name: ep.name, rates });
          else collecting.push(ep.name);
        }
        for (const name of [...series.keys()]) if (!servers.some((e) => e.name === name)) series.delete(name);
        board.set(
          policy.metadata.name,
          rated.map((r) => ({ server: r.name, rates: r.rates })),
        );

        const thresholds = {
          authFailuresPerMinute: m.authFailuresPerMinute ?? 30,
          forbiddenPerMinute: m.forbiddenPerMinute ?? m.authFailuresPerMinute ?? 30,
        };
        const findings = rated.flatMap((r) => accessFindings(r.name, r.rates, windowMs, thresholds));
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
