import { parseGoDuration } from "../cis/parse/flags.js";
import type { AuditBreakdown, AuditCount } from "../evidence/agentreports.js";
import { parseMetrics } from "../evidence/apiserver.js";
import type { Finding } from "../findings/finding.js";

export const AREA = "apiServerMonitoring";
export const ACCESS_AUTH_FAILURES = "ACCESS-AUTH-FAILURE-RATE";
export const ACCESS_FORBIDDEN = "ACCESS-FORBIDDEN-RATE";
export const DEFAULT_WINDOW_MS = 10 * 60_000;

/** The counters that matter, summed over their labels, at one moment. */
export interface AccessCounters {
  at: number;
  /** Failed authentications: authentication_attempts{result!="success"} or, when absent, 401 responses. */
  authFailures: number;
  forbidden: number;
}

/**
 * `spec.apiServerMonitoring.window` (`30s`, `10m`, `1h`; the schema admits 1-5 digits and one unit of
 * s, m or h) -> milliseconds; undefined for anything else.
 */
export function parseWindow(text: string | undefined): number | undefined {
  if (text === undefined) return DEFAULT_WINDOW_MS;
  const ns = /^\d{1,5}[smh]$/.test(text) ? parseGoDuration(text) : undefined;
  return ns === undefined ? undefined : ns / 1e6;
}

/** Reads the counters from an API server's /metrics text. */
export function accessCounters(text: string, at: number): AccessCounters {
  let attempts = 0;
  let sawAttempts = false;
  let unauthorized = 0;
  let forbidden = 0;
  const names = new Set([
    "apiserver_request_total",
    "authentication_attempts",
    "apiserver_authentication_attempts",
  ]);
  for (const s of parseMetrics(text, (n) => names.has(n))) {
    if (s.name === "apiserver_request_total") {
      if (s.labels["code"] === "401") unauthorized += s.value;
      else if (s.labels["code"] === "403") forbidden += s.value;
    } else {
      sawAttempts = true;
      if (s.labels["result"] !== "success") attempts += s.value;
    }
  }
  return { at, authFailures: sawAttempts ? Math.max(attempts, unauthorized) : unauthorized, forbidden };
}

/**
 * A sample as kept: the counters made monotonic (a counter that went down, because the API server
 * restarted and started from zero, counts as an increase from 0), and the raw reading they came from.
 */
export interface AccessSample extends AccessCounters {
  raw: { authFailures: number; forbidden: number };
}

/**
 * Appends a reading of one API server to its samples and keeps only what the window needs (plus the
 * sample just before it). A restarted API server's counters start from zero: what they count since is
 * an increase from 0, so a burst right after a restart is still reported and the history is kept.
 */
export function keepSamples(
  samples: readonly AccessSample[],
  next: AccessCounters,
  windowMs: number,
): AccessSample[] {
  const raw = { authFailures: next.authFailures, forbidden: next.forbidden };
  const last = samples[samples.length - 1];
  if (!last || next.at < last.at) return [{ ...next, raw }];
  const increase = (now: number, before: number) => (now >= before ? now - before : now);
  const sample: AccessSample = {
    at: next.at,
    authFailures: last.authFailures + increase(raw.authFailures, last.raw.authFailures),
    forbidden: last.forbidden + increase(raw.forbidden, last.raw.forbidden),
    raw,
  };
  const all = [...samples, sample];
  const start = next.at - windowMs;
  let first = 0;
  while (first + 1 < all.length && all[first + 1]!.at <= start) first++;
  return all.slice(first);
}

export interface AccessRates {
  authFailuresPerMinute: number;
  forbiddenPerMinute: number;
  /** How much time the rates cover (less than the window right after start or a reset). */
  coveredMs: number;
}

/**
 * The rates each policy's reconcile last computed, per API server (host:port), exported as the operator's
 * own gauges at scrape time. Each reconcile replaces the policy's whole set, so an API server that left
 * the `kubernetes` Service or could not be read drops out; series stay bounded by policies x API servers.
 */
export class AccessRateBoard {
  private readonly byPolicy = new Map<string, Map<string, AccessRates>>();

  set(policy: string, rated: readonly { server: string; rates: AccessRates }[]): void {
    this.byPolicy.set(policy, new Map(rated.map((r) => [r.server, r.rates])));
  }

  get(policy: string): ReadonlyMap<string, AccessRates> {
    return this.byPolicy.get(policy) ?? new Map<string, AccessRates>();
  }

  /** Forgets every policy not in `keep` (deleted, or no longer using spec.apiServerMonitoring). */
  retain(keep: ReadonlySet<string>): void {
    for (const policy of [...this.byPolicy.keys()]) if (!keep.has(policy)) this.byPolicy.delete(policy);
  }

  policies(): string[] {
    return [...this.byPolicy.keys()];
  }
}

/** The process's board: the area writes it, OperatorMetrics reads it. */
export const accessRateBoard = new AccessRateBoard();

/**
 * Per-minute rates over the window: the increase since the last sample at or before the window's start
 * (or the oldest there is), divided by the full window, so a burst counts until it leaves the window.
 */
export function accessRates(samples: readonly AccessCounters[], windowMs: number): AccessRates | undefined {
  if (samples.length < 2) return undefined;
  const last = samples[samples.length - 1]!;
  const start = last.at - windowMs;
  let base = samples[0]!;
  for (const s of samples) if (s.at <= start) base = s;
  const minutes = windowMs / 60_000;
  return {
    authFailuresPerMinute: (last.authFailures - base.authFailures) / minutes,
    forbiddenPerMinute: (last.forbidden - base.forbidden) / minutes,
    coveredMs: last.at - base.at,
  };
}

/**
 * What the 403 figure counts: apiserver_request_total sees requests refused after authorization (by
 * admission, e.g. Pod Security); requests RBAC denies are refused before it and are not in /metrics.
 */
export const FORBIDDEN_SCOPE =
  "403s counted by the API server's request metrics: admission refusals; RBAC denials are not in /metrics";

const round = (n: number) => Math.round(n * 10) / 10;

export function windowText(ms: number): string {
  return ms % 3_600_000 === 0
    ? `${ms / 3_600_000}h`
    : ms % 60_000 === 0
      ? `${ms / 60_000}m`
      : `${ms / 1000}s`;
}

/** An audit breakdown older than this is not quoted: the agent stopped, or cannot write its report. */
export const AUDIT_BREAKDOWN_STALE_MS = 15 * 60_000;

/** Who is behind the refusals of one kind, in one sentence per node, from the agents' audit breakdowns. */
export interface AccessWho {
  authFailures?: string;
  forbidden?: string;
}

const counted = (label: string, list: readonly AuditCount[]) =>
  list.length ? `${label} ${list.map((c) => `${c.name} (${c.count})`).join(", ")}` : "";

/**
 * From the node agents' audit-log breakdowns (src/agent/auditlog.ts), who made the 401s and the 403s: the
 * top users, source IPs and resources per node whose breakdown is fresh. A breakdown with a problem says
 * so; a stale or unreadable one is left out, never quoted as current.
 */
export function accessWho(
  nodes: readonly { node: string; value?: AuditBreakdown; problem?: string }[],
  now: Date,
): AccessWho {
  const parts: { authFailures: string[]; forbidden: string[] } = { authFailures: [], forbidden: [] };
  for (const n of nodes) {
    const b = n.value;
    if (!b || now.getTime() - Date.parse(b.scannedAt) > AUDIT_BREAKDOWN_STALE_MS) continue;
    const w = windowText(b.windowMs);
    for (const [kind, top, what] of [
      ["authFailures", b.unauthorized, "401"],
      ["forbidden", b.forbidden, "403"],
    ] as const) {
      if (top.total === 0 && !b.problem) continue;
      const who = [
        counted("users", top.users),
        counted("source IPs", top.sourceIPs),
        counted("resources", top.resources),
      ].filter(Boolean);
      parts[kind].push(
        `audit log on node ${n.node} (${b.path}): ${top.total} ${what}(s) in the last ${w}${who.length ? `; ${who.join("; ")}` : ""}${b.problem ? ` (${b.problem})` : ""}`,
      );
    }
  }
  return {
    ...(parts.authFailures.length ? { authFailures: parts.authFailures.join(" | ") } : {}),
    ...(parts.forbidden.length ? { forbidden: parts.forbidden.join(" | ") } : {}),
  };
}

/**
 * Findings when a rate passes its threshold, naming the window, the rate and the API server, and, when a
 * node agent reads the audit log, who is behind it.
 */
export function accessFindings(
  server: string,
  rates: AccessRates,
  windowMs: number,
  thresholds: { authFailuresPerMinute: number; forbiddenPerMinute: number },
  who: AccessWho = {},
): Finding[] {
  const out: Finding[] = [];
  const w = windowText(windowMs);
  if (rates.authFailuresPerMinute > thresholds.authFailuresPerMinute)
    out.push({
      id: ACCESS_AUTH_FAILURES,
      severity: "High",
      area: AREA,
      resource: `APIServer/${server}`,
      message: `${round(rates.authFailuresPerMinute)} failed authentication(s) per minute over the last ${w} on API server ${server} (threshold ${thresholds.authFailuresPerMinute}): someone is trying credentials that do not work; ${who.authFailures ?? "see the audit log for the source"}`,
    });
  if (rates.forbiddenPerMinute > thresholds.forbiddenPerMinute)
    out.push({
      id: ACCESS_FORBIDDEN,
      severity: "Medium",
      area: AREA,
      resource: `APIServer/${server}`,
      message: `${round(rates.forbiddenPerMinute)} forbidden (403) response(s) per minute over the last ${w} on API server ${server} (threshold ${thresholds.forbiddenPerMinute}; ${FORBIDDEN_SCOPE}): an identity is probing for rights it lacks; ${who.forbidden ?? "see the audit log for who"}`,
    });
  return out;
}
