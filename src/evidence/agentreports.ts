/**
 * PURE: the reports the node agent (`csp-operator agent`) publishes about the files it wrote on each
 * control-plane node, and what the operator concludes from them. A report is a ConfigMap per node in
 * csp-system (`csp-agent-<node>`) with one JSON entry per file: which object it came from, where it was
 * written, the sha256 of the bytes written, when and on which node — never the content.
 */
import type { V1ConfigMap } from "@kubernetes/client-node";
import type { CheckResult } from "../cis/checks/check.js";
import { MANAGED_BY_LABEL, MANAGED_BY_VALUE, OPERATOR_NAMESPACE } from "../desired/metadata.js";
import { COMPONENT_LABEL } from "../desired/encryption/secret.js";
import { oneLine, redactTokens } from "./safetext.js";

export const AGENT_REPORT_COMPONENT = "agent-report";
/** The report ConfigMap's data key. */
export const AGENT_REPORT_KEY = "files.json";
/**
 * CIS results the agent computed on its node, by data key: the 1.1.x/4.1.x file permission checks, and
 * the 1.2.x kube-apiserver checks judged from the static Pod manifest on the host together with every file
 * its flags name (which the in-cluster mirror-pod path cannot read).
 */
export const AGENT_CHECK_KEYS = { files: "cis-files.json", apiserver: "cis-apiserver.json" } as const;
export type AgentCheckKind = keyof typeof AGENT_CHECK_KEYS;
/** At most this many results are kept per kind and node, far below the ConfigMap size limit. */
const MAX_CHECK_RESULTS = 200;

/** The report's data key holding the file integrity baseline and changes (src/agent/integrity.ts). */
export const INTEGRITY_KEY = "integrity.json";
export const INTEGRITY_REPORT_VERSION = 1;
/**
 * The agent refreshes an integrity report's scannedAt at least this often even when nothing changed; the
 * operator counts a report older than three of these as stale (the agent stopped or cannot write it).
 */
export const INTEGRITY_HEARTBEAT_MS = 5 * 60_000;

/** One file's state in an integrity baseline: never its content. */
export interface IntegrityEntry {
  /**
   * `symlink`: never followed, its hash is of its target; `directory`: its mode and owner count (who may
   * add a static Pod), not its content; `other`: a FIFO, socket or device (no hash); `unreadable`: a file
   * that exists but could not be opened or read (its mode, owner, size and mtime from lstat, no hash): its
   * content is unknown, so it is never "unchanged" and never accepted.
   */
  type: "file" | "symlink" | "directory" | "other" | "unreadable";
  /** `sha256:<hex>`; "" for `directory` and `other`. */
  sha256: string;
  /** Permission bits in octal, e.g. `0600`. */
  mode: string;
  uid: number;
  gid: number;
  size: number;
  /** RFC 3339; informative only (a touch is no change). */
  mtime: string;
  /**
   * Hard links to a regular file (`file` entries; absent in baselines taken before it was recorded). A new
   * link is a change: the content (a private key) is reachable, and editable without an inotify event on
   * the monitored directory, from a path nobody watches.
   */
  nlink?: number;
}

/** A critical file whose state differs from the baseline: `old` absent = added, `new` absent = removed. */
export interface IntegrityChange {
  path: string;
  old?: IntegrityEntry;
  new?: IntegrityEntry;
  /** RFC 3339 time the agent first saw the file in this state. */
  seenAt: string;
}

/** What a node's agent publishes under {@link INTEGRITY_KEY}. */
export interface IntegrityReport {
  version: number;
  baselineAt: string;
  /** Why the baseline was retaken (a stored one that could not be read back). */
  note?: string;
  /** More critical files than the agent records: the rest are not monitored. */
  truncated?: boolean;
  /** Changes beyond the report's limit (MAX_REPORTED_CHANGES), counted but not listed. */
  omittedChanges?: number;
  /** Host path -> state, sorted by path. */
  baseline: Record<string, IntegrityEntry>;
  changes: IntegrityChange[];
  /**
   * RFC 3339 time of the scan this report was taken from; the agent refreshes it at least every few minutes,
   * so a report the agent can no longer write (or an agent that stopped) is seen as stale.
   */
  scannedAt?: string;
  /**
   * Files the kube-apiserver's flags name outside the monitored paths (the agent does not see them): listed
   * so that what is not watched is said, never implied.
   */
  unmonitored?: string[];
  /**
   * The restarts the agent made because a single-file mount showed a file the host replaced (time and
   * paths, the last {@link MAX_REMOUNT_RECORDS}): kept across the restart, so a replaced mount leaves a
   * trace, and counted so that renames in a loop cannot restart the agent more than a few times an hour.
   */
  remounts?: { at: string; paths: string[] }[];
}

/** How many remount records a report keeps. */
export const MAX_REMOUNT_RECORDS = 10;

/** The well-formed remount records of a report (a malformed one is dropped: it only paces restarts). */
function remountRecords(v: unknown): { at: string; paths: string[] }[] {
  if (!Array.isArray(v)) return [];
  return v
    .filter(
      (x): x is { at: string; paths: string[] } =>
        typeof x === "object" &&
        x !== null &&
        typeof (x as { at?: unknown }).at === "string" &&
        !Number.isNaN(Date.parse((x as { at: string }).at)) &&
        Array.isArray((x as { paths?: unknown }).paths) &&
        (x as { paths: unknown[] }).paths.length <= 10 &&
        (x as { paths: unknown[] }).paths.every(isHostPath),
    )
    .slice(-MAX_REMOUNT_RECORDS)
    .map((x) => ({ at: x.at, paths: [...x.paths] }));
}

const ENTRY_TYPES: ReadonlySet<string> = new Set(["file", "symlink", "directory", "other", "unreadable"]);
const isCount = (n: unknown): n is number => typeof n === "number" && Number.isSafeInteger(n) && n >= 0;

function integrityEntry(v: unknown): IntegrityEntry | undefined {
  if (typeof v !== "object" || v === null || Array.isArray(v)) return undefined;
  const e = v as Record<string, unknown>;
  if (
    typeof e["type"] !== "string" ||
    !ENTRY_TYPES.has(e["type"]) ||
    typeof e["sha256"] !== "string" ||
    !/^(sha256:[0-9a-f]{64})?$/.test(e["sha256"]) ||
    typeof e["mode"] !== "string" ||
    !/^0[0-7]{3,4}$/.test(e["mode"]) ||
    !isCount(e["uid"]) ||
    !isCount(e["gid"]) ||
    !isCount(e["size"]) ||
    typeof e["mtime"] !== "string" ||
    Number.isNaN(Date.parse(e["mtime"])) ||
    (e["nlink"] !== undefined && !isCount(e["nlink"]))
  )
    return undefined;
  return {
    type: e["type"] as IntegrityEntry["type"],
    sha256: e["sha256"],
    mode: e["mode"],
    uid: e["uid"],
    gid: e["gid"],
    size: e["size"],
    mtime: e["mtime"],
    ...(e["nlink"] !== undefined ? { nlink: e["nlink"] } : {}),
  };
}

const isHostPath = (p: unknown): p is string =>
  typeof p === "string" && p.startsWith("/") && p.length <= 4096 && !p.includes("\0");

/**
 * Parses an {@link IntegrityReport}, all or nothing: one malformed entry makes the whole report untrusted
 * (the agent then takes a new baseline and says so; the operator reports the node's integrity as unknown).
 */
export function parseIntegrityReport(
  raw: string,
): { ok: true; value: IntegrityReport } | { ok: false; reason: string } {
  let v: unknown;
  try {
    v = JSON.parse(raw);
  } catch {
    return { ok: false, reason: "not JSON" };
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) return { ok: false, reason: "not an object" };
  const r = v as Record<string, unknown>;
  if (r["version"] !== INTEGRITY_REPORT_VERSION)
    return { ok: false, reason: `version is not ${INTEGRITY_REPORT_VERSION}` };
  if (typeof r["baselineAt"] !== "string" || Number.isNaN(Date.parse(r["baselineAt"])))
    return { ok: false, reason: "baselineAt is not a time" };
  if (r["note"] !== undefined && typeof r["note"] !== "string")
    return { ok: false, reason: "note is not text" };
  if (
    r["scannedAt"] !== undefined &&
    (typeof r["scannedAt"] !== "string" || Number.isNaN(Date.parse(r["scannedAt"])))
  )
    return { ok: false, reason: "scannedAt is not a time" };
  const b = r["baseline"];
  if (typeof b !== "object" || b === null || Array.isArray(b)) return { ok: false, reason: "no baseline" };
  const baseline: Record<string, IntegrityEntry> = {};
  for (const [path, e] of Object.entries(b)) {
    const entry = integrityEntry(e);
    if (!isHostPath(path) || !entry) return { ok: false, reason: "a malformed baseline entry" };
    baseline[path] = entry;
  }
  if (!Array.isArray(r["changes"])) return { ok: false, reason: "no changes list" };
  const changes: IntegrityChange[] = [];
  for (const c of r["changes"] as unknown[]) {
    const o = (typeof c === "object" && c !== null ? c : {}) as Record<string, unknown>;
    const old = o["old"] === undefined ? undefined : integrityEntry(o["old"]);
    const cur = o["new"] === undefined ? undefined : integrityEntry(o["new"]);
    if (
      !isHostPath(o["path"]) ||
      typeof o["seenAt"] !== "string" ||
      Number.isNaN(Date.parse(o["seenAt"])) ||
      (o["old"] !== undefined && !old) ||
      (o["new"] !== undefined && !cur) ||
      (!old && !cur)
    )
      return { ok: false, reason: "a malformed change entry" };
    changes.push({
      path: o["path"],
      ...(old ? { old } : {}),
      ...(cur ? { new: cur } : {}),
      seenAt: o["seenAt"],
    });
  }
  return {
    ok: true,
    value: {
      version: INTEGRITY_REPORT_VERSION,
      baselineAt: r["baselineAt"],
      ...(typeof r["note"] === "string" ? { note: r["note"] } : {}),
      ...(r["truncated"] === true ? { truncated: true } : {}),
      ...(isCount(r["omittedChanges"]) && r["omittedChanges"] > 0
        ? { omittedChanges: r["omittedChanges"] }
        : {}),
      baseline,
      changes,
      ...(typeof r["scannedAt"] === "string" ? { scannedAt: r["scannedAt"] } : {}),
      ...(Array.isArray(r["unmonitored"]) && r["unmonitored"].every(isHostPath)
        ? { unmonitored: r["unmonitored"] }
        : {}),
      ...(remountRecords(r["remounts"]).length > 0 ? { remounts: remountRecords(r["remounts"]) } : {}),
    },
  };
}

/** A node's integrity report as the operator reads it: the node is the report's name, never its content. */
export interface NodeIntegrity {
  node: string;
  report?: IntegrityReport;
  /** Set when the node's report holds an integrity entry that cannot be read. */
  problem?: string;
}

/** The integrity reports of every node whose agent publishes one, sorted by node. */
export function integrityReports(configMaps: readonly V1ConfigMap[]): NodeIntegrity[] {
  return agentEvidence(configMaps, INTEGRITY_KEY, parseIntegrityReport).map(({ node, value, problem }) => ({
    node,
    ...(value ? { report: value } : {}),
    ...(problem !== undefined ? { problem } : {}),
  }));
}

/** The report's data key holding the control-plane certificates the agent read (src/agent/pki.ts). */
export const PKI_KEY = "pki.json";
export const PKI_REPORT_VERSION = 1;
/** At most this many certificates per node are reported (a kubeadm node has about 25). */
export const MAX_PKI_CERTIFICATES = 200;

/** One certificate on a node: where it is, whose it is, when it expires. Never the key, never the PEM. */
export interface PkiCertificate {
  /** Host path; `<kubeconfig>#users[<name>]` for an embedded client certificate; `[i]` for the i-th of a bundle. */
  path: string;
  subject: string;
  /** RFC 3339. */
  notAfter: string;
}

/** What the agent read of the node's control-plane PKI. */
export interface PkiReport {
  version: typeof PKI_REPORT_VERSION;
  scannedAt: string;
  /** The MAX_PKI_CERTIFICATES that expire first, soonest first. */
  certificates: PkiCertificate[];
  /** More certificates than listed: `omitted` of them, each expiring no sooner than the last listed. */
  truncated?: boolean;
  omitted?: number;
  /** Certificates found but not decoded (over the agent's decoding budget): their expiry is unknown. */
  undecoded?: number;
  /** Files that exist but could not be read or parsed, with the reason (never their content). */
  errors?: { path: string; error: string }[];
  /** Such files beyond the 50 listed. */
  omittedErrors?: number;
}

const isText = (v: unknown, max: number): v is string => typeof v === "string" && v.length <= max;
const isTime = (v: unknown): v is string => typeof v === "string" && !Number.isNaN(Date.parse(v));

/** Parses a {@link PkiReport}, all or nothing (a report anyone could patch is checked, never trusted). */
export function parsePkiReport(raw: string): { ok: true; value: PkiReport } | { ok: false; reason: string } {
  let v: unknown;
  try {
    v = JSON.parse(raw);
  } catch {
    return { ok: false, reason: "not JSON" };
  }
  const r = (typeof v === "object" && v !== null && !Array.isArray(v) ? v : {}) as Record<string, unknown>;
  if (r["version"] !== PKI_REPORT_VERSION)
    return { ok: false, reason: `version is not ${PKI_REPORT_VERSION}` };
  if (!isTime(r["scannedAt"])) return { ok: false, reason: "scannedAt is not a time" };
  const list = r["certificates"];
  if (!Array.isArray(list) || list.length > MAX_PKI_CERTIFICATES)
    return { ok: false, reason: "certificates is not a bounded list" };
  const certificates: PkiCertificate[] = [];
  for (const c of list as unknown[]) {
    const o = (typeof c === "object" && c !== null ? c : {}) as Record<string, unknown>;
    if (!isHostPath(o["path"]) || !isText(o["subject"], 512) || !isTime(o["notAfter"]))
      return { ok: false, reason: "a malformed certificate entry" };
    // Cleaned again here: the report is anyone's text who can write it, and these reach status and events.
    certificates.push({
      path: oneLine(o["path"], 1024),
      subject: oneLine(o["subject"], 256),
      notAfter: o["notAfter"],
    });
  }
  const errors: { path: string; error: string }[] = [];
  if (Array.isArray(r["errors"]))
    for (const e of (r["errors"] as unknown[]).slice(0, 50)) {
      const o = (typeof e === "object" && e !== null ? e : {}) as Record<string, unknown>;
      if (isHostPath(o["path"]) && isText(o["error"], 512))
        errors.push({ path: oneLine(o["path"], 1024), error: oneLine(o["error"], 256) });
    }
  return {
    ok: true,
    value: {
      version: PKI_REPORT_VERSION,
      scannedAt: r["scannedAt"],
      certificates,
      ...(r["truncated"] === true ? { truncated: true } : {}),
      ...(isCount(r["omitted"]) && r["omitted"] > 0 ? { omitted: r["omitted"] } : {}),
      ...(isCount(r["undecoded"]) && r["undecoded"] > 0 ? { undecoded: r["undecoded"] } : {}),
      ...(errors.length ? { errors } : {}),
      ...(isCount(r["omittedErrors"]) && r["omittedErrors"] > 0 ? { omittedErrors: r["omittedErrors"] } : {}),
    },
  };
}

/** The data key of the audit-log breakdown (src/agent/auditlog.ts). */
export const AUDIT_BREAKDOWN_KEY = "audit-breakdown.json";
export const AUDIT_BREAKDOWN_VERSION = 1;
/** How many users, source IPs and resources each breakdown names. */
export const AUDIT_TOP_N = 5;

export interface AuditCount {
  name: string;
  count: number;
}

/** Who is behind the refused requests of one kind (401 or 403) in the window. */
export interface AuditTop {
  total: number;
  users: AuditCount[];
  sourceIPs: AuditCount[];
  resources: AuditCount[];
}

/**
 * The agent's reading of the API server's audit log (`--audit-log-path` of the kube-apiserver manifest):
 * the requests refused with 401 and 403 over the last `windowMs`, and who made them. Names, addresses and
 * resources only: no header, token, request or response body is ever copied out of an event.
 */
export interface AuditBreakdown {
  version: typeof AUDIT_BREAKDOWN_VERSION;
  scannedAt: string;
  /** Host path of the log read. */
  path: string;
  windowMs: number;
  unauthorized: AuditTop;
  forbidden: AuditTop;
  /** Set when the log is named but cannot be read (yet), or only part of it was. */
  problem?: string;
}

function auditCounts(v: unknown): AuditCount[] | undefined {
  if (!Array.isArray(v) || v.length > AUDIT_TOP_N) return undefined;
  const out: AuditCount[] = [];
  for (const e of v as unknown[]) {
    const o = (typeof e === "object" && e !== null ? e : {}) as Record<string, unknown>;
    if (!isText(o["name"], 300) || !isCount(o["count"])) return undefined;
    // Cleaned again on this side: the agent's cleaning is not trusted for what reaches status and events.
    out.push({ name: oneLine(redactTokens(o["name"]), 300), count: o["count"] });
  }
  return out;
}

function auditTop(v: unknown): AuditTop | undefined {
  const o = (typeof v === "object" && v !== null ? v : {}) as Record<string, unknown>;
  const users = auditCounts(o["users"]);
  const sourceIPs = auditCounts(o["sourceIPs"]);
  const resources = auditCounts(o["resources"]);
  if (!isCount(o["total"]) || !users || !sourceIPs || !resources) return undefined;
  return { total: o["total"], users, sourceIPs, resources };
}

/** Parses an {@link AuditBreakdown}, all or nothing. */
export function parseAuditBreakdown(
  raw: string,
): { ok: true; value: AuditBreakdown } | { ok: false; reason: string } {
  let v: unknown;
  try {
    v = JSON.parse(raw);
  } catch {
    return { ok: false, reason: "not JSON" };
  }
  const r = (typeof v === "object" && v !== null && !Array.isArray(v) ? v : {}) as Record<string, unknown>;
  if (r["version"] !== AUDIT_BREAKDOWN_VERSION)
    return { ok: false, reason: `version is not ${AUDIT_BREAKDOWN_VERSION}` };
  const unauthorized = auditTop(r["unauthorized"]);
  const forbidden = auditTop(r["forbidden"]);
  if (
    !isTime(r["scannedAt"]) ||
    !isHostPath(r["path"]) ||
    !isCount(r["windowMs"]) ||
    !unauthorized ||
    !forbidden
  )
    return { ok: false, reason: "a malformed breakdown" };
  return {
    ok: true,
    value: {
      version: AUDIT_BREAKDOWN_VERSION,
      scannedAt: r["scannedAt"],
      path: r["path"],
      windowMs: r["windowMs"],
      unauthorized,
      forbidden,
      ...(isText(r["problem"], 1024) ? { problem: oneLine(r["problem"], 1024) } : {}),
    },
  };
}

/**
 * One kind of node-agent evidence of every node that publishes it, sorted by node: the node is the
 * report's name, never its content; an entry that does not parse is the node's `problem`.
 */
export function agentEvidence<T>(
  configMaps: readonly V1ConfigMap[],
  key: string,
  parseEntry: (raw: string) => { ok: true; value: T } | { ok: false; reason: string },
): { node: string; value?: T; problem?: string }[] {
  const out: { node: string; value?: T; problem?: string }[] = [];
  for (const cm of configMaps) {
    const raw = cm.data?.[key];
    const name = cm.metadata?.name ?? "";
    if (!isAgentReport(cm) || raw === undefined || !name.startsWith("csp-agent-")) continue;
    const node = name.slice("csp-agent-".length);
    const parsed = parseEntry(raw);
    out.push(parsed.ok ? { node, value: parsed.value } : { node, problem: parsed.reason });
  }
  return out.sort((a, b) => a.node.localeCompare(b.node));
}

/** Which file of the control plane an entry is about. */
export type AgentFile = "audit-policy" | "encryption-config";

/** One file written (or not) by the agent on one node. */
export interface FileReport {
  file: AgentFile;
  /** `Kind/namespace/name` of the object the content came from. */
  source: string;
  path: string;
  /** `sha256:<hex>` of the bytes on disk after the write. */
  sha256: string;
  /** RFC 3339 time of the write (of the last write that changed the file). */
  writtenAt: string;
  node: string;
  /** Set when the file could not be written; sha256 then describes what is on disk ("" if nothing). */
  error?: string;
  /**
   * EncryptionConfiguration only: `<provider>/<name>` of every key the file on disk can decrypt with (names,
   * never key material). Evidence that keys exist even when the key-ring Secret is gone.
   */
  keys?: string[];
}

/**
 * `sha256:<hex>` of a file's bytes: the form kube-apiserver reports for its loaded encryption config, used
 * for every file the agent writes so reports compare directly with what the operator rendered.
 */
export { encryptionConfigHash as contentHash } from "../desired/encryption/render.js";

/**
 * Removes what could be key material from a message about a key-bearing file before it is published (the
 * agent's report, logs, findings): a YAML parser's code frame (the source lines it quotes after "at line L,
 * column C:"), the value of any `secret:` field, and any long run of the base64 alphabet mixing upper and
 * lower case letters and digits (as key material does; paths and hex digests do not). Positions, file
 * names, key names and hashes stay.
 */
export function redactKeyMaterial(text: string): string {
  return text
    .replace(/(at line \d+, column \d+):\n[\s\S]*?\^+[ \t]*(\n|$)/g, "$1")
    .replace(/(at line \d+, column \d+):\n[\s\S]*$/g, "$1")
    .replace(/\b(secret["']?\s*[:=]\s*["']?)[^\s"',}]+/gi, "$1<redacted>")
    .replace(/[A-Za-z0-9+/]{24,}={0,2}/g, (run) =>
      /[A-Z]/.test(run) && /[a-z]/.test(run) && /[0-9]/.test(run) ? "<redacted>" : run,
    );
}

export function agentReportName(node: string): string {
  return `csp-agent-${node}`
    .toLowerCase()
    .replace(/[^a-z0-9.-]/g, "-")
    .slice(0, 253);
}

/** The report ConfigMap a node's agent applies. Entries are sorted so an unchanged report is identical. */
export function agentReportConfigMap(
  node: string,
  files: readonly FileReport[],
  checks: Partial<Record<AgentCheckKind, readonly CheckResult[]>> = {},
  nodeUid?: string,
  integrity?: IntegrityReport,
  hygiene: { pki?: PkiReport; audit?: AuditBreakdown } = {},
): V1ConfigMap {
  const sorted = [...files]
    .sort((a, b) => a.file.localeCompare(b.file) || a.path.localeCompare(b.path))
    .map((f) => (f.error === undefined ? f : { ...f, error: redactKeyMaterial(f.error) }));
  const checkData: Record<string, string> = {};
  for (const [kind, results] of Object.entries(checks) as [AgentCheckKind, readonly CheckResult[]][]) {
    checkData[AGENT_CHECK_KEYS[kind]] = JSON.stringify(
      results.slice(0, MAX_CHECK_RESULTS).map((r) => ({
        id: r.id,
        title: r.title,
        status: r.status,
        evidence: redactKeyMaterial(r.evidence).slice(0, 500),
      })),
      null,
      1,
    );
  }
  return {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: {
      name: agentReportName(node),
      namespace: OPERATOR_NAMESPACE,
      labels: { [MANAGED_BY_LABEL]: MANAGED_BY_VALUE, [COMPONENT_LABEL]: AGENT_REPORT_COMPONENT },
      // Owned by its Node: when the node leaves the cluster, the garbage collector removes its report, so
      // a stale report never holds delivery back ("not current on a node that no longer exists").
      ...(nodeUid ? { ownerReferences: [{ apiVersion: "v1", kind: "Node", name: node, uid: nodeUid }] } : {}),
    },
    data: {
      [AGENT_REPORT_KEY]: JSON.stringify(sorted, null, 1),
      ...checkData,
      ...(integrity ? { [INTEGRITY_KEY]: JSON.stringify(integrity) } : {}),
      ...(hygiene.pki ? { [PKI_KEY]: JSON.stringify(hygiene.pki) } : {}),
      ...(hygiene.audit ? { [AUDIT_BREAKDOWN_KEY]: JSON.stringify(hygiene.audit) } : {}),
    },
  };
}

/** True for a ConfigMap that is an agent report. */
export function isAgentReport(cm: V1ConfigMap): boolean {
  return cm.metadata?.labels?.[COMPONENT_LABEL] === AGENT_REPORT_COMPONENT;
}

const CHECK_STATUSES: ReadonlySet<string> = new Set(["Pass", "Fail", "Manual", "NotApplicable", "Unknown"]);

/**
 * The CIS results of one kind each node's agent computed on its host, for the controlPlane area. Malformed
 * entries are skipped; a node whose agent did not run that kind has none.
 */
export function agentCheckResults(
  configMaps: readonly V1ConfigMap[],
  kind: AgentCheckKind,
): { node: string; results: CheckResult[] }[] {
  const out: { node: string; results: CheckResult[] }[] = [];
  for (const cm of configMaps) {
    const raw = cm.data?.[AGENT_CHECK_KEYS[kind]];
    if (!isAgentReport(cm) || raw === undefined) continue;
    let parsed: unknown;
    try {
      parsed = JSON.parse(raw);
    } catch {
      continue;
    }
    if (!Array.isArray(parsed)) continue;
    const results = (parsed as (Partial<CheckResult> | null)[])
      .filter(
        (r): r is CheckResult =>
          typeof r === "object" &&
          r !== null &&
          typeof r.id === "string" &&
          typeof r.title === "string" &&
          typeof r.status === "string" &&
          CHECK_STATUSES.has(r.status) &&
          typeof r.evidence === "string",
      )
      .map((r) => ({ ...r, evidence: redactKeyMaterial(r.evidence) }));
    const node = cm.metadata?.name?.replace(/^csp-agent-/, "") ?? "";
    if (node && results.length > 0) out.push({ node, results });
  }
  return out.sort((a, b) => a.node.localeCompare(b.node));
}

/** Every well-formed entry of every report; malformed entries are skipped (a report is advisory). */
export function fileReports(configMaps: readonly V1ConfigMap[]): FileReport[] {
  const out: FileReport[] = [];
  for (const cm of configMaps) {
    if (!isAgentReport(cm)) continue;
    let parsed: unknown;
    try {
      parsed = JSON.parse(cm.data?.[AGENT_REPORT_KEY] ?? "[]");
    } catch {
      continue;
    }
    if (!Array.isArray(parsed)) continue;
    for (const e of parsed as (Partial<FileReport> | null)[]) {
      if (
        typeof e === "object" &&
        e !== null &&
        typeof e.file === "string" &&
        typeof e.source === "string" &&
        typeof e.path === "string" &&
        typeof e.sha256 === "string" &&
        typeof e.writtenAt === "string" &&
        typeof e.node === "string" &&
        // An agent may write only its own node's report (admission policy): an entry speaking for another
        // node is forged, and must not count as that node's delivery.
        agentReportName(e.node) === cm.metadata?.name
      ) {
        const entry = { ...(e as FileReport) };
        if (entry.error !== undefined) entry.error = redactKeyMaterial(String(entry.error));
        if (
          entry.keys !== undefined &&
          !(Array.isArray(entry.keys) && entry.keys.every((k) => typeof k === "string"))
        )
          delete entry.keys;
        out.push(entry);
      }
    }
  }
  return out;
}

/** What the agents say about one rendered file. */
export interface DeliveryJudgement {
  /** At least one agent wrote it, and every agent that wrote this source wrote exactly this content. */
  delivered: boolean;
  /** Reports about this source. */
  reports: FileReport[];
  message: string;
}

/**
 * Whether the agents wrote `expectedHash` for `source`; names nodes that lag, failed or never reported.
 * With `expectedNodes` (the control-plane nodes, where an API server reads the file) every one of them
 * must report the content: an agent that never reported is a node not proven, never one ignored.
 */
export function judgeDelivery(
  source: string,
  expectedHash: string,
  reports: readonly FileReport[],
  expectedNodes?: readonly string[],
): DeliveryJudgement {
  const mine = reports.filter((r) => r.source === source);
  const current = mine.filter((r) => r.sha256 === expectedHash && !r.error);
  const lagging = mine.filter((r) => r.sha256 !== expectedHash || r.error);
  const silent = (expectedNodes ?? []).filter((n) => !mine.some((r) => r.node === n)).sort();
  const unknownSet = expectedNodes !== undefined && expectedNodes.length === 0;
  const delivered = current.length > 0 && lagging.length === 0 && silent.length === 0 && !unknownSet;
  const nodes = (rs: FileReport[]) => [...new Set(rs.map((r) => `${r.node}:${r.path}`))].sort().join(", ");
  const problems = [
    ...lagging.map((r) => `${r.node}:${r.path}${r.error ? ` (${r.error})` : ""}`).sort(),
    ...silent.map((n) => `${n} (no agent report)`),
  ];
  const message = unknownSet
    ? "no control-plane node found (label node-role.kubernetes.io/control-plane): cannot tell where the file must be"
    : mine.length === 0 && silent.length === 0
      ? "no agent reported writing it"
      : delivered
        ? `written with hash ${expectedHash.slice(0, 19)} on ${nodes(current)}`
        : `${problems.length} node file(s) not current: ${problems.join(", ")}`;
  return { delivered, reports: mine, message };
}
