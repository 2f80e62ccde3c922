import type { Finding } from "../findings/finding.js";
import { DAY_MS, daysUntil, relativeDays } from "./common.js";
import type { MinorRelease, ReleaseTable } from "./kubernetes-releases.js";

export const AREA = "clusterVersion";
export const VERSION_EOL = "VERSION-EOL";
export const VERSION_EOL_SOON = "VERSION-EOL-SOON";
export const VERSION_KUBELET_SKEW = "VERSION-KUBELET-SKEW";
export const VERSION_PATCH_BEHIND = "VERSION-PATCH-BEHIND";
export const VERSION_MIXED_KUBELETS = "VERSION-MIXED-KUBELETS";
export const VERSION_UNKNOWN_MINOR = "VERSION-UNKNOWN-MINOR";
export const VERSION_TABLE_STALE = "VERSION-TABLE-STALE";
export const VERSION_UNPARSEABLE = "VERSION-UNPARSEABLE";

/** The API server as a finding's resource: it is not an object, and exemptions name it by this. */
export const API_SERVER_RESOURCE = "APIServer/kube-apiserver";
/** kubelets may be up to three minors older than the API server (version skew policy since 1.28). */
export const KUBELET_MAX_OLDER_MINORS = 3;
export const DEFAULT_WARN_DAYS = 60;
export const TABLE_STALE_DAYS = 180;

export interface Version {
  major: number;
  minor: number;
  patch: number;
  /** As reported, e.g. `v1.36.3+k3s1`. */
  text: string;
}

/** The longest pre-release/build suffix a version may carry (`-eks-1234`, `+k3s1`); longer is unparseable. */
export const MAX_VERSION_SUFFIX = 64;
const VERSION = new RegExp(
  `^v?(\\d{1,4})\\.(\\d{1,4})\\.(\\d{1,6})(?:[-+][0-9A-Za-z.+-]{0,${MAX_VERSION_SUFFIX}})?$`,
);

/**
 * `v1.36.3`, `1.36.3-eks-1234`, `v1.36.3+k3s1` -> 1.36.3; anything else (a suffix beyond 64 characters
 * too: a Node's status is anyone's with nodes/status) -> undefined. Bounded before it is matched.
 */
export function parseVersion(text: string): Version | undefined {
  if (text.length > 100) return undefined;
  const m = VERSION.exec(text.trim());
  if (!m) return undefined;
  return { major: Number(m[1]), minor: Number(m[2]), patch: Number(m[3]), text: text.trim() };
}

/** A reported version as a message may quote it: JSON-quoted, at most 80 characters. */
export function quoteVersion(text: string): string {
  return JSON.stringify(text.length > 80 ? `${text.slice(0, 80)}…` : text);
}

/** Finding ids that mean "a version was seen but not judged": the condition cannot be True with them. */
export const NOT_JUDGED_IDS: ReadonlySet<string> = new Set([VERSION_UNKNOWN_MINOR, VERSION_UNPARSEABLE]);

/** At most this many versions are listed in the mixed-kubelets finding ("and N more"). */
export const MAX_LISTED_VERSIONS = 10;

const ISO_DAY = /^\d{4}-\d{2}-\d{2}$/;
const MINOR = /^\d{1,4}\.\d{1,4}$/;

/**
 * Validates a release table (the shipped one or a ConfigMap's `releases.json`): an error names the field,
 * so a bad override is reported, never half-used.
 */
export function parseReleaseTable(
  raw: unknown,
  now: Date = new Date(),
): { table: ReleaseTable } | { error: string } {
  if (!raw || typeof raw !== "object" || Array.isArray(raw))
    return { error: "the table is not a JSON object" };
  const t = raw as Record<string, unknown>;
  if (typeof t.lastUpdated !== "string" || !ISO_DAY.test(t.lastUpdated) || isNaN(Date.parse(t.lastUpdated)))
    return { error: "lastUpdated: want a date YYYY-MM-DD" };
  // A table from the future would never be reported stale: more than a day ahead (time zones) is refused.
  if (Date.parse(t.lastUpdated) > now.getTime() + DAY_MS)
    return { error: `lastUpdated: ${t.lastUpdated} is in the future` };
  if (!Array.isArray(t.releases) || t.releases.length === 0)
    return { error: "releases: want a non-empty list" };
  if (t.releases.length > 1000) return { error: "releases: more than 1000 entries" };
  const releases: MinorRelease[] = [];
  const seen = new Set<string>();
  for (const [i, r] of (t.releases as unknown[]).entries()) {
    if (!r || typeof r !== "object") return { error: `releases[${i}]: want an object` };
    const e = r as Record<string, unknown>;
    if (typeof e.minor !== "string" || !MINOR.test(e.minor))
      return { error: `releases[${i}].minor: want "MAJOR.MINOR", e.g. "1.36"` };
    if (seen.has(e.minor)) return { error: `releases[${i}].minor: ${e.minor} is listed twice` };
    seen.add(e.minor);
    for (const k of ["released", "endOfLife"] as const) {
      const v = e[k];
      if (typeof v !== "string" || !ISO_DAY.test(v) || isNaN(Date.parse(v)))
        return { error: `releases[${i}].${k}: want a date YYYY-MM-DD` };
    }
    if (Date.parse(e.endOfLife as string) < Date.parse(e.released as string))
      return {
        error: `releases[${i}].endOfLife: ${String(e.endOfLife)} is before released ${String(e.released)}`,
      };
    const patch = typeof e.latestPatch === "string" ? parseVersion(e.latestPatch) : undefined;
    if (!patch || `${patch.major}.${patch.minor}` !== e.minor)
      return { error: `releases[${i}].latestPatch: want "${e.minor}.N"` };
    releases.push({
      minor: e.minor,
      released: e.released as string,
      endOfLife: e.endOfLife as string,
      latestPatch: e.latestPatch as string,
    });
  }
  return {
    table: {
      lastUpdated: t.lastUpdated,
      source: typeof t.source === "string" ? t.source.slice(0, 500) : "",
      releases,
    },
  };
}

export interface VersionObservation {
  /** `/version` gitVersion of the API server. */
  apiServer: string;
  /** Every Node's `status.nodeInfo.kubeletVersion`. */
  kubelets: readonly { node: string; version: string }[];
}

const minorKey = (v: Version) => `${v.major}.${v.minor}`;
const minorOrder = (m: string) => {
  const [a, b] = m.split(".").map(Number);
  return a! * 10_000 + b!;
};

/**
 * The version findings: end of life (High) or near it (Medium), kubelet skew (High), patches behind (Low),
 * mixed kubelets and a stale table (Info). Pure: the table, the versions and `now` decide everything.
 */
export function versionFindings(
  obs: VersionObservation,
  table: ReleaseTable,
  now: Date,
  warnDays: number = DEFAULT_WARN_DAYS,
): Finding[] {
  const findings: Finding[] = [];
  const byMinor = new Map(table.releases.map((r) => [r.minor, r]));
  const known = [...byMinor.keys()].sort((a, b) => minorOrder(a) - minorOrder(b));
  const oldest = known[0];
  const newest = known[known.length - 1];
  const finding = (id: string, severity: Finding["severity"], resource: string, message: string) =>
    findings.push({ id, severity, resource, message, area: AREA });

  const tableAge = Math.floor((now.getTime() - Date.parse(table.lastUpdated)) / DAY_MS);
  if (tableAge > TABLE_STALE_DAYS)
    finding(
      VERSION_TABLE_STALE,
      "Info",
      API_SERVER_RESOURCE,
      `the Kubernetes release table was last updated ${table.lastUpdated} (${tableAge} days ago, more than ${TABLE_STALE_DAYS}): end-of-life judgements may be out of date; update the operator or spec.clusterVersion.tableConfigMap`,
    );

  /** End of life, near end of life, patches behind, unknown minor: the same for the API server and kubelets. */
  const judge = (what: string, resource: string, v: Version) => {
    const rel = byMinor.get(minorKey(v));
    if (!rel) {
      if (oldest !== undefined && minorOrder(minorKey(v)) < minorOrder(oldest))
        finding(
          VERSION_EOL,
          "High",
          resource,
          `${what} ${v.text}: minor ${minorKey(v)} is older than every release in the table (oldest ${oldest}), so past end of life`,
        );
      else
        finding(
          VERSION_UNKNOWN_MINOR,
          "Info",
          resource,
          `${what} ${v.text}: minor ${minorKey(v)} is not in the release table (newest known ${newest ?? "none"}, table of ${table.lastUpdated}); its end of life is not known`,
        );
      return;
    }
    const eol = new Date(`${rel.endOfLife}T00:00:00Z`);
    const left = daysUntil(eol, now);
    if (eol.getTime() <= now.getTime())
      finding(
        VERSION_EOL,
        "High",
        resource,
        `${what} ${v.text}: Kubernetes ${rel.minor} reached end of life on ${rel.endOfLife} (${-left} day(s) ago) and gets no security fixes; upgrade to a supported minor (newest known ${newest})`,
      );
    else if (left <= warnDays)
      finding(
        VERSION_EOL_SOON,
        "Medium",
        resource,
        `${what} ${v.text}: Kubernetes ${rel.minor} reaches end of life on ${rel.endOfLife} (${relativeDays(left)}, within ${warnDays}); plan the upgrade`,
      );
    const latest = parseVersion(rel.latestPatch);
    if (latest && latest.patch > v.patch)
      finding(
        VERSION_PATCH_BEHIND,
        "Low",
        resource,
        `${what} ${v.text} is ${latest.patch - v.patch} patch release(s) behind ${rel.latestPatch}, the newest ${rel.minor} patch the table knows`,
      );
  };

  const api = parseVersion(obs.apiServer);
  if (!api)
    finding(
      VERSION_UNPARSEABLE,
      "Info",
      API_SERVER_RESOURCE,
      `the API server reports version ${quoteVersion(obs.apiServer)}, which is not MAJOR.MINOR.PATCH; it was not judged`,
    );
  else judge("the API server runs", API_SERVER_RESOURCE, api);

  const versions = new Set<string>();
  for (const k of [...obs.kubelets].sort((a, b) => a.node.localeCompare(b.node))) {
    const resource = `Node/${k.node}`;
    const v = parseVersion(k.version);
    if (!v) {
      finding(
        VERSION_UNPARSEABLE,
        "Info",
        resource,
        `the kubelet reports version ${quoteVersion(k.version)}, which is not MAJOR.MINOR.PATCH; it was not judged`,
      );
      continue;
    }
    versions.add(v.text);
    judge("the kubelet runs", resource, v);
    if (!api) continue;
    const behind = (api.major - v.major) * 1000 + (api.minor - v.minor);
    if (behind < 0)
      finding(
        VERSION_KUBELET_SKEW,
        "High",
        resource,
        `the kubelet runs ${v.text}, newer than the API server ${api.text}: kubelets must not be newer than the API server; upgrade the control plane first`,
      );
    else if (behind > KUBELET_MAX_OLDER_MINORS)
      finding(
        VERSION_KUBELET_SKEW,
        "High",
        resource,
        `the kubelet runs ${v.text}, ${behind} minor(s) older than the API server ${api.text}: the supported skew is at most ${KUBELET_MAX_OLDER_MINORS}; upgrade the node`,
      );
  }
  if (versions.size > 1) {
    const sorted = [...versions].sort();
    const listed = sorted.slice(0, MAX_LISTED_VERSIONS).join(", ");
    const more =
      sorted.length > MAX_LISTED_VERSIONS ? ` and ${sorted.length - MAX_LISTED_VERSIONS} more` : "";
    finding(
      VERSION_MIXED_KUBELETS,
      "Info",
      API_SERVER_RESOURCE,
      `kubelets run ${versions.size} different versions (${listed}${more}): an upgrade in progress, or nodes left behind`,
    );
  }
  return findings;
}
