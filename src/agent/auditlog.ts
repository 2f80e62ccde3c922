import { constants } from "node:fs";
import { open } from "node:fs/promises";
import { isIP } from "node:net";
import { join } from "node:path";
import { stringFlag, parseFlags } from "../cis/parse/flags.js";
import { APISERVER_GRAMMAR } from "../cis/parse/grammars.js";
import { containerPathOnHost, parseApiServerManifest } from "../cis/parse/manifest.js";
import { hostRootReader, resolveInRoot } from "../cis/gather/safefs.js";
import {
  AUDIT_BREAKDOWN_VERSION,
  AUDIT_TOP_N,
  redactKeyMaterial,
  type AuditBreakdown,
  type AuditCount,
  type AuditTop,
} from "../evidence/agentreports.js";
import { oneLine, redactTokens } from "../evidence/safetext.js";
import { APISERVER_MANIFEST } from "./hostchecks.js";

/** At most this much of the log is read in one scan (the tail of it, on the first scan or after a burst). */
export const AUDIT_TAIL_BYTES = 8 * 1024 * 1024;
/** The window the breakdown covers (the operator's default apiServerMonitoring window). */
export const AUDIT_WINDOW_MS = 10 * 60_000;
/** Refused requests remembered at most (the oldest go first): memory stays bounded under a flood. */
export const MAX_AUDIT_EVENTS = 50_000;

const sizeText = (n: number) => (n % 1048576 === 0 ? `${n / 1048576} MiB` : `${Math.round(n / 1024)} KiB`);

/** One refused request as remembered: who, from where, on what. Nothing else of the event is kept. */
export interface RefusedRequest {
  /** The event's auditID: a request audited at two stages is counted once. */
  id: string;
  at: number;
  code: 401 | 403;
  user: string;
  sourceIP: string;
  resource: string;
}

/**
 * A name as reported: one line, bounded, and anything that looks like a credential (a JWT, a bootstrap
 * token, a GitHub or cloud key, a long hex or base64 run) replaced: a client that sends its token as a user
 * name must not have it published.
 */
export function safeName(s: string, max = 128): string {
  return oneLine(redactTokens(redactKeyMaterial(s)), max);
}

/**
 * The refused request an audit event line records, or undefined: response code 401 or 403, at the stage
 * the request is audited last (ResponseComplete, Panic; ResponseStarted for a failed authentication). Reads the user name, the first
 * source IP and the resource (or the URI's path, never its query); every other field (headers are not in
 * audit events, but request and response bodies may be) is ignored.
 */
export function refusedRequest(line: string): RefusedRequest | undefined {
  // Any length: the scan's byte budget bounds a line (a long query string must not hide a refusal).
  if (!line.includes('"responseStatus"')) return undefined;
  let e: Record<string, unknown>;
  try {
    const v: unknown = JSON.parse(line);
    if (typeof v !== "object" || v === null || Array.isArray(v)) return undefined;
    e = v as Record<string, unknown>;
  } catch {
    return undefined;
  }
  const code = (e["responseStatus"] as { code?: unknown } | undefined)?.code;
  if (code !== 401 && code !== 403) return undefined;
  // A failed authentication is audited once, at ResponseStarted (the API server's failed-authentication
  // handler); every other request at ResponseComplete (or Panic). Both for one auditID count once.
  const final = e["stage"] === "ResponseComplete" || e["stage"] === "Panic";
  if (!final && !(code === 401 && e["stage"] === "ResponseStarted")) return undefined;
  const when = e["stageTimestamp"] ?? e["requestReceivedTimestamp"];
  const at = typeof when === "string" ? Date.parse(when) : NaN;
  if (Number.isNaN(at)) return undefined;
  const username = (e["user"] as { username?: unknown } | undefined)?.username;
  const ips = e["sourceIPs"];
  const ip = Array.isArray(ips) && typeof ips[0] === "string" ? ips[0] : "";
  const ref = (e["objectRef"] ?? {}) as Record<string, unknown>;
  const verb = typeof e["verb"] === "string" ? `${oneLine(e["verb"], 20)} ` : "";
  let resource: string;
  if (typeof ref["resource"] === "string") {
    const group = typeof ref["apiGroup"] === "string" && ref["apiGroup"] ? `.${ref["apiGroup"]}` : "";
    const sub = typeof ref["subresource"] === "string" ? `/${ref["subresource"]}` : "";
    const ns = typeof ref["namespace"] === "string" ? ` in ${ref["namespace"]}` : "";
    resource = `${verb}${ref["resource"]}${group}${sub}${ns}`;
  } else {
    const uri = typeof e["requestURI"] === "string" ? e["requestURI"].split("?")[0]! : "";
    resource = `${verb}${uri || "(no resource)"}`;
  }
  return {
    id: typeof e["auditID"] === "string" ? e["auditID"].slice(0, 64) : "",
    at,
    code,
    user: typeof username === "string" && username ? safeName(username) : "(unauthenticated)",
    sourceIP: isIP(ip) ? ip : "(unknown)",
    resource: safeName(resource, 160),
  };
}

/** The N most frequent values, most first, ties by name: deterministic. */
export function topCounts(values: readonly string[], n = AUDIT_TOP_N): AuditCount[] {
  const counts = new Map<string, number>();
  for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1);
  return [...counts.entries()]
    .map(([name, count]) => ({ name, count }))
    .sort((a, b) => b.count - a.count || a.name.localeCompare(b.name))
    .slice(0, n);
}

/** The breakdown of one kind of refusal. */
export function topOf(requests: readonly RefusedRequest[]): AuditTop {
  return {
    total: requests.length,
    users: topCounts(requests.map((r) => r.user)),
    sourceIPs: topCounts(requests.map((r) => r.sourceIP)),
    resources: topCounts(requests.map((r) => r.resource)),
  };
}

/**
 * Where the kube-apiserver writes its audit log, on the host: `--audit-log-path` of its static Pod
 * manifest mapped through the Pod's hostPath mounts. Undefined when there is no manifest or no audit log;
 * `problem` when the flag names something the agent cannot read (stdout, a non-hostPath volume).
 */
export async function auditLogPath(
  hostRoot: string,
  manifestPath = APISERVER_MANIFEST,
): Promise<{ path?: string; problem?: string } | undefined> {
  let text: string;
  try {
    text = await hostRootReader(hostRoot).readFile(manifestPath);
  } catch {
    return undefined;
  }
  const manifest = parseApiServerManifest(text);
  if (!manifest.ok) return undefined;
  const flag = stringFlag(parseFlags(manifest.value.argv, APISERVER_GRAMMAR), "audit-log-path");
  if (!flag.ok || flag.value === "") return undefined;
  if (flag.value === "-")
    return { problem: "--audit-log-path is - (the API server's stdout): the agent cannot read it" };
  const mapped = containerPathOnHost(flag.value, manifest.value);
  if (!mapped.ok) return { problem: oneLine(mapped.reason, 300) };
  return { path: mapped.value.hostPath };
}

/**
 * Follows the API server's audit log: each scan reads what was appended since the last one (at most
 * AUDIT_TAIL_BYTES, the tail of it when more; the whole tail on the first scan or after a rotation), up to
 * the last complete line, and remembers the 401 and 403 refusals of the last `windowMs`. The file is
 * opened inside the host root only (symlinks resolved there), read-only, never followed past it.
 */
export class AuditLogTail {
  private offset = -1;
  private inode = -1;
  private refused: RefusedRequest[] = [];
  /** What the last incomplete read missed: said until those events would have left the window. */
  private gap: { note: string; until: number } | undefined;

  constructor(
    private readonly hostRoot: string,
    private readonly windowMs = AUDIT_WINDOW_MS,
    private readonly maxBytes = AUDIT_TAIL_BYTES,
  ) {}

  /** The breakdown at `now`; undefined when the API server writes no audit log the agent could read. */
  async scan(now: Date = new Date()): Promise<AuditBreakdown | undefined> {
    const where = await auditLogPath(this.hostRoot);
    if (!where) return undefined;
    const empty = { total: 0, users: [], sourceIPs: [], resources: [] };
    const base = {
      version: AUDIT_BREAKDOWN_VERSION,
      scannedAt: now.toISOString(),
      windowMs: this.windowMs,
    } as const;
    if (!where.path)
      return {
        ...base,
        path: APISERVER_MANIFEST,
        unauthorized: empty,
        forbidden: empty,
        problem: where.problem!,
      };
    let problem: string | undefined;
    try {
      const note = await this.read(where.path);
      if (note) this.gap = { note, until: now.getTime() + this.windowMs };
      else if (this.gap && this.gap.until <= now.getTime()) this.gap = undefined;
      problem = this.gap?.note;
    } catch (e) {
      problem = `${where.path} not read: ${(e as { code?: string }).code ?? "cannot be read"}`;
    }
    const start = now.getTime() - this.windowMs;
    this.refused = this.refused.filter((r) => r.at > start && r.at <= now.getTime() + 60_000);
    return {
      ...base,
      path: where.path,
      unauthorized: topOf(this.refused.filter((r) => r.code === 401)),
      forbidden: topOf(this.refused.filter((r) => r.code === 403)),
      ...(problem ? { problem } : {}),
    };
  }

  /** Reads what was appended; returns a note when part of the log was skipped. */
  private async read(path: string): Promise<string | undefined> {
    const resolved = await resolveInRoot(this.hostRoot, path);
    if (!resolved.exists) {
      this.offset = -1;
      return `${path} does not exist (yet)`;
    }
    const fh = await open(
      join(this.hostRoot, resolved.path),
      constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK,
    );
    try {
      const st = await fh.stat();
      if (!st.isFile()) return `${path} is not a regular file`;
      let note: string | undefined;
      // A new file (rotated) or a shorter one (truncated): start again from its tail.
      if (st.ino !== this.inode || st.size < this.offset) {
        if (this.offset >= 0)
          note = `${path} was rotated or truncated since the last scan: events written to it after that scan and before the rotation may have been lost`;
        this.inode = st.ino;
        this.offset = -1;
      }
      const first = this.offset < 0;
      let from = first ? Math.max(0, st.size - this.maxBytes) : this.offset;
      if (first && from > 0) {
        const more = `only the last ${sizeText(this.maxBytes)} of ${path} read; older events in the window not counted`;
        note = note ? `${note}; ${more}` : more;
      }
      if (st.size - from > this.maxBytes) {
        note = `${Math.round((st.size - this.maxBytes - from) / 1024)} KiB of the audit log appended since the last scan were skipped (more than ${this.maxBytes / 1048576} MiB); the breakdown may undercount`;
        from = st.size - this.maxBytes;
      }
      const mid = from > 0 && from !== this.offset; // started inside a line: skip to the next one
      const length = st.size - from;
      if (length <= 0) return note;
      const buf = Buffer.alloc(length);
      const { bytesRead } = await fh.read(buf, 0, length, from);
      let text = buf.subarray(0, bytesRead);
      let consumed = 0;
      if (mid) {
        const nl = text.indexOf(10);
        if (nl < 0) return note;
        consumed = nl + 1;
        text = text.subarray(nl + 1);
      }
      const last = text.lastIndexOf(10);
      if (last < 0) {
        this.offset = from + consumed;
        return note;
      }
      const seen = new Set(this.refused.map((r) => r.id));
      for (const line of text.subarray(0, last).toString("utf8").split("\n")) {
        const r = refusedRequest(line);
        if (!r || (r.id && seen.has(r.id))) continue;
        if (r.id) seen.add(r.id);
        this.refused.push(r);
      }
      if (this.refused.length > MAX_AUDIT_EVENTS) this.refused = this.refused.slice(-MAX_AUDIT_EVENTS);
      this.offset = from + consumed + last + 1;
      return note;
    } finally {
      await fh.close();
    }
  }
}
