import { createHash } from "node:crypto";
import type { ClusterSecurityPolicySpec } from "../api/v1alpha1/policy.js";
import type { V1ConfigMap } from "@kubernetes/client-node";
import { MANAGED_BY_LABEL, MANAGED_BY_VALUE, OPERATOR_NAMESPACE } from "../api/vocabulary.js";
import { errorMessage, statusCode } from "../cluster/client.js";
import { IntegrityBaselineStore } from "../cluster/integritybaseline.js";
import {
  contentHash,
  fileReports,
  INTEGRITY_HEARTBEAT_MS,
  INTEGRITY_REPORT_VERSION,
  integrityReports,
  parseIntegrityReport,
  type IntegrityChange,
  type IntegrityEntry,
  type IntegrityReport,
  type NodeIntegrity,
} from "../evidence/agentreports.js";
import type { Finding, Severity } from "../findings/finding.js";
import type { AreaCondition } from "../status/status.js";
import type { AreaFactory, AreaInput, AreaReconciler, AreaReport } from "./areas.js";

/** `spec.controlPlane.fileIntegrity`. */
export type FileIntegritySpec = NonNullable<
  NonNullable<ClusterSecurityPolicySpec["controlPlane"]>["fileIntegrity"]
>;
/** One `spec.controlPlane.fileIntegrity.accept[]` entry. */
export type AcceptedChange = NonNullable<FileIntegritySpec["accept"]>[number];

export const FILE_CHANGED = "FILE-CHANGED";
export const FILE_BASELINE_RETAKEN = "FILE-BASELINE-RETAKEN";
export const FILE_INTEGRITY_UNREADABLE = "FILE-INTEGRITY-UNREADABLE";
export const FILE_INTEGRITY_STALE = "FILE-INTEGRITY-STALE";
export const FILE_BASELINE_CHANGED = "FILE-BASELINE-CHANGED";
export const FILE_NOT_MONITORED = "FILE-NOT-MONITORED";
/** FileChanged events per node and reconcile; more changes are summed up in one event. */
export const EVENTS_PER_NODE = 5;
/** The only directory the agent writes (the operator's rendered files): its own writes move the baseline. */
export const AGENT_WRITE_DIR = "/etc/kubernetes/csp-operator";
/** A report whose scannedAt is older than this is stale: the agent stopped, or cannot write its report. */
export const INTEGRITY_STALE_MS = 3 * INTEGRITY_HEARTBEAT_MS;
export const FILES_UNCHANGED = "FilesUnchanged";
const AREA = "fileIntegrity";

/**
 * High for what runs the control plane or proves identity: a static Pod manifest (a new or edited one runs
 * as a privileged component) and a private key; Medium for the rest (certificates, kubeconfigs, kubelet
 * config and units, the audit policy and EncryptionConfiguration).
 */
export function changeSeverity(path: string): Severity {
  if (path === "/etc/kubernetes/manifests" || path.startsWith("/etc/kubernetes/manifests/")) return "High";
  if (/\.key$/.test(path) || /^\/etc\/kubernetes\/pki\/.*key/.test(path)) return "High";
  return "Medium";
}

/** One line: control characters replaced so a hostile file name cannot forge lines in status or events. */
const oneLine = (s: string) =>
  [...s].map((ch) => (ch.charCodeAt(0) < 0x20 || ch.charCodeAt(0) === 0x7f ? "?" : ch)).join("");
/** A path as messages name it: one line, at most 512 characters (status and events stay bounded). */
const shortPath = (p: string) => oneLine(p.length > 512 ? `${p.slice(0, 509)}...` : p);

const stateText = (e: IntegrityEntry | undefined) =>
  e === undefined
    ? "absent"
    : `${e.type === "file" ? "" : `${e.type} `}${e.sha256 ? `${e.sha256} ` : ""}mode ${e.mode} owner ${e.uid}:${e.gid}${e.nlink !== undefined && e.nlink !== 1 ? ` links ${e.nlink}` : ""}`;

/** Hard-link counts differ (compared only when both entries record one: older baselines do not). */
const linksDiffer = (a: IntegrityEntry | undefined, b: IntegrityEntry | undefined) =>
  a?.nlink !== undefined && b?.nlink !== undefined && a.nlink !== b.nlink;

/**
 * The sentence a finding and an event say about one change. Events leave out when it was seen (`seen:
 * false`): the same change then makes the same message, which the event recorder aggregates.
 */
export function describeChange(node: string, c: IntegrityChange, seen = true): string {
  return oneLine(
    `${shortPath(c.path)} on node ${node} changed${seen ? ` (seen ${c.seenAt})` : ""}: ${stateText(c.old)} -> ${stateText(c.new)}`,
  );
}

/**
 * Whether an accept entry covers a change: same path (and node, when it names one), and the file's new
 * state is exactly the accepted one — the content hash (`absent`: the file is gone), and the mode and owner
 * given, or else the baseline's. A later change of an accepted file (new content, a chmod) is a change again.
 */
export function accepts(a: AcceptedChange, node: string, c: IntegrityChange): boolean {
  if (a.path !== c.path || (a.node !== undefined && a.node !== node)) return false;
  if (a.sha256 === "absent") return c.new === undefined;
  const n = c.new;
  // An unreadable file's content is unknown: no hash covers it, `absent` least of all.
  if (n === undefined || n.type === "unreadable") return false;
  if (a.sha256 === "directory" ? n.type !== "directory" : n.sha256 !== a.sha256) return false;
  // An entry has no link count: a hard link added to (or removed from) a file is never accepted by one.
  // Remove the extra link (`find / -xdev -samefile <file>`) and the change goes.
  // A missing count is 1 (an added file, a baseline from before counts were recorded): a link added later
  // to an accepted file is not covered either.
  if (n.nlink !== undefined && n.nlink !== (c.old?.nlink ?? 1)) return false;
  const mode = a.mode ?? c.old?.mode;
  const owner = a.owner ?? (c.old ? `${c.old.uid}:${c.old.gid}` : undefined);
  return (mode === undefined || mode === n.mode) && (owner === undefined || owner === `${n.uid}:${n.gid}`);
}

/** What the file integrity area concludes from the agents' reports. */
export interface FileIntegrityJudgement {
  findings: Finding[];
  condition: AreaCondition;
  /** Changes not accepted, by node: each one is a finding and, when first seen, a Warning event. */
  open: { node: string; change: IntegrityChange }[];
  /** Nodes whose baseline was retaken because the stored one could not be read back. */
  retaken: { node: string; note: string; baselineAt: string }[];
}

/** PURE: findings and the FilesUnchanged condition from the agents' integrity reports and the accepted changes. */
export function judgeFileIntegrity(
  nodes: readonly NodeIntegrity[],
  accepted: readonly AcceptedChange[],
  now: Date = new Date(),
): FileIntegrityJudgement {
  const findings: Finding[] = [];
  const open: FileIntegrityJudgement["open"] = [];
  const retaken: FileIntegrityJudgement["retaken"] = [];
  let files = 0;
  let acceptedCount = 0;
  const unreadable: string[] = [];
  const truncated: string[] = [];
  const stale: string[] = [];
  for (const n of nodes) {
    if (!n.report) {
      unreadable.push(n.node);
      findings.push({
        id: FILE_INTEGRITY_UNREADABLE,
        severity: "Medium",
        resource: `Node/${n.node}`,
        message: `the node agent's file integrity report cannot be read (${n.problem ?? "malformed"}): changes on this node are not seen`,
        area: AREA,
      });
      continue;
    }
    const scannedAt = n.report.scannedAt === undefined ? undefined : Date.parse(n.report.scannedAt);
    if (scannedAt !== undefined && now.getTime() - scannedAt > INTEGRITY_STALE_MS) {
      stale.push(n.node);
      findings.push({
        id: FILE_INTEGRITY_STALE,
        severity: "Medium",
        resource: `Node/${n.node}`,
        message: `the node agent's file integrity report was last refreshed at ${n.report.scannedAt ?? ""} (more than ${INTEGRITY_STALE_MS / 60_000} minutes ago): the agent stopped or cannot write its report, and changes since then are not seen`,
        area: AREA,
      });
    }
    if (n.report.unmonitored?.length)
      findings.push({
        id: FILE_NOT_MONITORED,
        severity: "Info",
        resource: `Node/${n.node}`,
        message: oneLine(
          `kube-apiserver's flags name ${n.report.unmonitored.length} file(s) outside the monitored paths on node ${n.node}, whose changes are not seen: ${n.report.unmonitored.slice(0, 10).map(shortPath).join(", ")}${n.report.unmonitored.length > 10 ? ", ..." : ""}`,
        ),
        area: AREA,
      });
    files += Object.keys(n.report.baseline).length;
    if (n.report.truncated) truncated.push(n.node);
    if (n.report.note !== undefined) {
      retaken.push({ node: n.node, note: n.report.note, baselineAt: n.report.baselineAt });
      findings.push({
        id: FILE_BASELINE_RETAKEN,
        severity: "Info",
        resource: `Node/${n.node}`,
        message: oneLine(n.report.note),
        area: AREA,
      });
    }
    if (n.report.omittedChanges)
      findings.push({
        id: FILE_CHANGED,
        severity: "High",
        resource: `Node/${n.node}`,
        message: `${n.report.omittedChanges} more critical file change(s) on node ${n.node} than the report lists (see the agent's log)`,
        area: AREA,
      });
    for (const c of n.report.changes) {
      if (accepted.some((a) => accepts(a, n.node, c))) {
        acceptedCount++;
        continue;
      }
      open.push({ node: n.node, change: c });
      findings.push({
        id: FILE_CHANGED,
        severity: changeSeverity(c.path),
        resource: `Node/${n.node}`,
        message: `${describeChange(n.node, c)}; if expected, accept it in spec.controlPlane.fileIntegrity.accept (csp-operator integrity accept prints the entry)`,
        area: AREA,
      });
    }
  }
  const notes = [
    ...(acceptedCount ? [`${acceptedCount} accepted change(s)`] : []),
    ...(truncated.length ? [`more files than monitored on ${truncated.join(", ")}`] : []),
  ];
  const suffix = notes.length ? ` (${notes.join("; ")})` : "";
  let condition: AreaCondition;
  const omitted = nodes.reduce((sum, n) => sum + (n.report?.omittedChanges ?? 0), 0);
  if (open.length > 0 || omitted > 0) {
    const shown = open.slice(0, 5).map((o) => `${o.node}:${shortPath(o.change.path)}`);
    condition = {
      type: FILES_UNCHANGED,
      status: "False",
      reason: "FilesChanged",
      message: `${open.length + omitted} critical file change(s) not accepted: ${shown.join(", ")}${open.length > 5 ? ", ..." : ""}${suffix}`,
    };
  } else if (unreadable.length > 0) {
    condition = {
      type: FILES_UNCHANGED,
      status: "Unknown",
      reason: "ReportUnreadable",
      message: `file integrity report unreadable on ${unreadable.join(", ")}`,
    };
  } else if (stale.length > 0) {
    condition = {
      type: FILES_UNCHANGED,
      status: "Unknown",
      reason: "ReportStale",
      message: `file integrity report not refreshed for more than ${INTEGRITY_STALE_MS / 60_000} minutes on ${stale.join(", ")}`,
    };
  } else if (nodes.length === 0) {
    condition = {
      type: FILES_UNCHANGED,
      status: "Unknown",
      reason: "NoAgentReport",
      message: "no node agent reports file integrity (the agent runs it with --host-root; see config/agent)",
    };
  } else {
    condition = {
      type: FILES_UNCHANGED,
      status: "True",
      reason: "Unchanged",
      message: `${files} monitored path(s) on ${nodes.length} node(s) match their baseline${suffix}`,
    };
  }
  return { findings, condition, open, retaken };
}

/** A node's baseline as the operator last trusted it. */
export interface KnownBaseline {
  baselineAt: string;
  baseline: Readonly<Record<string, IntegrityEntry>>;
}

const sameEntry = (a: IntegrityEntry | undefined, b: IntegrityEntry | undefined) =>
  a === undefined || b === undefined
    ? a === b
    : a.type === b.type &&
      a.sha256 === b.sha256 &&
      a.mode === b.mode &&
      a.uid === b.uid &&
      a.gid === b.gid &&
      !linksDiffer(a, b);

/** Per path under {@link AGENT_WRITE_DIR}: the hashes the node's agent may have written there itself. */
export type OwnWrites = ReadonlyMap<string, ReadonlySet<string>>;

/**
 * PURE: whether a node's reported baseline moved other than the agent moves it. The agent changes a
 * baseline only for its own writes (a file under {@link AGENT_WRITE_DIR} at a hash it reports having
 * written to that path, see {@link ownWritesOf}, and that directory) and when it retakes one with a note
 * (FILE-BASELINE-RETAKEN). Anything else — an entry edited, added or removed, a new baselineAt without a
 * note — is someone who can patch the node's report hiding a change: FILE-BASELINE-CHANGED names the
 * paths, and `known` stays the last trusted baseline (own writes moved forward) so the finding stays until
 * the baseline is back.
 *
 * A retake is compared with the trusted baseline too: the note is the agent's word, and whoever can patch
 * the report can write a note. Entries that differ are FILE-BASELINE-CHANGED until each is back or its new
 * state is accepted (`accept`, as for a FILE-CHANGED); then the retaken baseline is trusted. An accepted
 * state is taken into the trusted baseline whatever moved it.
 */
export function judgeBaseline(
  node: string,
  known: KnownBaseline | undefined,
  report: IntegrityReport,
  ownWrites: OwnWrites,
  accepted: readonly AcceptedChange[] = [],
): { known: KnownBaseline; finding?: Finding } {
  if (known === undefined) return { known: { baselineAt: report.baselineAt, baseline: report.baseline } };
  const retake = report.note !== undefined && report.baselineAt !== known.baselineAt;
  const own = (path: string, e: IntegrityEntry | undefined) =>
    e !== undefined &&
    (path === AGENT_WRITE_DIR
      ? e.type === "directory"
      : path.startsWith(`${AGENT_WRITE_DIR}/`) &&
        e.type === "file" &&
        ownWrites.get(path)?.has(e.sha256) === true);
  const next: Record<string, IntegrityEntry> = { ...known.baseline };
  const moved: string[] = [];
  for (const path of new Set([...Object.keys(known.baseline), ...Object.keys(report.baseline)])) {
    const was = known.baseline[path];
    const now = report.baseline[path];
    if (sameEntry(was, now)) continue;
    const change: IntegrityChange = {
      path,
      ...(was ? { old: was } : {}),
      ...(now ? { new: now } : {}),
      seenAt: report.baselineAt,
    };
    if (own(path, now) || accepted.some((a) => accepts(a, node, change))) {
      if (now === undefined) delete next[path];
      else next[path] = now;
    } else moved.push(path);
  }
  if (moved.length === 0 && (retake || report.baselineAt === known.baselineAt))
    return { known: { baselineAt: retake ? report.baselineAt : known.baselineAt, baseline: next } };
  const trusted = { baselineAt: known.baselineAt, baseline: next };
  const listed = `${moved.length} entr${moved.length === 1 ? "y" : "ies"}`;
  const shown = (paths: string[]) =>
    `${paths
      .slice(0, 5)
      .map((p) => `${shortPath(p)} (${stateText(known.baseline[p])} -> ${stateText(report.baseline[p])})`)
      .join(", ")}${paths.length > 5 ? ", ..." : ""}`;
  const message = retake
    ? `node ${node}'s agent retook its file integrity baseline, and ${listed} differ from the baseline the operator trusts: ${shown(moved)}; if expected, accept each new state in spec.controlPlane.fileIntegrity.accept (the retaken baseline is trusted once none differs)`
    : `the file integrity baseline in node ${node}'s report changed other than by the agent (${
        moved.length > 0
          ? `${listed} changed: ${moved.slice(0, 5).map(shortPath).join(", ")}${moved.length > 5 ? ", ..." : ""}`
          : `baselineAt moved from ${known.baselineAt} to ${report.baselineAt} without a note`
      }): whoever can patch ConfigMap csp-system/csp-agent-${node} may be hiding a file change`;
  return {
    known: trusted,
    finding: {
      id: FILE_BASELINE_CHANGED,
      severity: "High",
      resource: `Node/${node}`,
      message: oneLine(message),
      area: AREA,
    },
  };
}

/**
 * The files the node's agent reports having written under {@link AGENT_WRITE_DIR}, host path -> sha256, for
 * {@link judgeBaseline}. An entry with an error is left out (its hash is whatever is on disk, not a write),
 * and so is one whose source is an object in `configMaps` (the audit policy) whose rendered content has
 * another hash: what the operator rendered is preferred over what the agent says it wrote.
 */
export function ownWritesOf(configMaps: readonly V1ConfigMap[], node: string): Map<string, Set<string>> {
  const rendered = new Map<string, Set<string>>();
  for (const cm of configMaps)
    rendered.set(
      `ConfigMap/${cm.metadata?.namespace ?? ""}/${cm.metadata?.name ?? ""}`,
      new Set(Object.values(cm.data ?? {}).map((v) => contentHash(v))),
    );
  const out = new Map<string, Set<string>>();
  for (const r of fileReports(configMaps)) {
    if (r.node !== node || r.error !== undefined || !r.sha256) continue;
    const source = rendered.get(r.source);
    if (source !== undefined && !source.has(r.sha256)) continue;
    // files.json names the path the agent wrote, under its --host-root (`/host/etc/kubernetes/...`); the
    // baseline names it on the host. Every host path it can be is taken (the agent's root is not known here).
    for (
      let at = r.path.indexOf(`${AGENT_WRITE_DIR}/`);
      at >= 0;
      at = r.path.indexOf(`${AGENT_WRITE_DIR}/`, at + 1)
    ) {
      const path = r.path.slice(at);
      let hashes = out.get(path);
      if (hashes === undefined) out.set(path, (hashes = new Set()));
      hashes.add(r.sha256);
    }
  }
  return out;
}

/** The `app.kubernetes.io/component` of the ConfigMaps holding the trusted baselines. */
export const BASELINE_COMPONENT = "integrity-baseline";
const COMPONENT_LABEL = "app.kubernetes.io/component";
/** The ConfigMap key naming the node (the ConfigMap's name may be shortened, the node never). */
const BASELINE_NODE_KEY = "node";
/** The ConfigMap key holding the baseline, in the agent's integrity report format (no changes). */
const BASELINE_KEY = "baseline.json";
const BASELINE_PREFIX = "csp-integrity-baseline-";

/**
 * The name of the ConfigMap holding a node's trusted baseline: the node's name, or `-` and its hash when
 * the name would not fit. A plain name starts with a letter or digit, so the hashed form (`...--<hex>`) is
 * never the plain form of another node.
 */
export function baselineConfigMapName(node: string): string {
  const plain = `${BASELINE_PREFIX}${node}`;
  return plain.length <= 253 && /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(node)
    ? plain
    : `${BASELINE_PREFIX}-${createHash("sha256").update(node).digest("hex").slice(0, 40)}`;
}

/** The baseline text as stored: entries sorted by path, so an unchanged baseline is an unchanged object. */
function baselineText(known: KnownBaseline): string {
  const baseline = Object.fromEntries(Object.entries(known.baseline).sort(([a], [b]) => a.localeCompare(b)));
  return JSON.stringify({
    version: INTEGRITY_REPORT_VERSION,
    baselineAt: known.baselineAt,
    baseline,
    changes: [],
  });
}

/**
 * PURE: the ConfigMap in csp-system that keeps the baseline the operator trusts for a node, so a restart
 * (or a new leader) goes on judging the agent's report against it instead of trusting whatever the report
 * says then. Hashes, modes and owners only, never contents. No ownerReference: a Node's UID would come from
 * the agent's report, and an owner that does not exist would have the garbage collector delete the baseline.
 */
export function baselineConfigMap(node: string, known: KnownBaseline): V1ConfigMap {
  return {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: {
      name: baselineConfigMapName(node),
      namespace: OPERATOR_NAMESPACE,
      labels: { [MANAGED_BY_LABEL]: MANAGED_BY_VALUE, [COMPONENT_LABEL]: BASELINE_COMPONENT },
    },
    data: { [BASELINE_NODE_KEY]: node, [BASELINE_KEY]: baselineText(known) },
  };
}

/** A node's stored baseline as read back: the baseline and its exact text, or why it cannot be used. */
export type StoredBaseline = { known: KnownBaseline; text: string } | { problem: string };

/**
 * PURE: the stored baselines by node, from the operator's ConfigMaps in csp-system. One that cannot be
 * parsed, or whose name does not match its node, is reported with the reason and not used.
 */
export function storedBaselines(configMaps: readonly V1ConfigMap[]): Map<string, StoredBaseline> {
  const out = new Map<string, StoredBaseline>();
  for (const cm of configMaps) {
    if (cm.metadata?.labels?.[COMPONENT_LABEL] !== BASELINE_COMPONENT) continue;
    if (cm.metadata.namespace !== undefined && cm.metadata.namespace !== OPERATOR_NAMESPACE) continue;
    const node = cm.data?.[BASELINE_NODE_KEY];
    if (node === undefined || cm.metadata.name !== baselineConfigMapName(node)) continue;
    const text = cm.data?.[BASELINE_KEY] ?? "";
    const parsed = parseIntegrityReport(text);
    out.set(
      node,
      parsed.ok
        ? { known: { baselineAt: parsed.value.baselineAt, baseline: parsed.value.baseline }, text }
        : { problem: `ConfigMap ${OPERATOR_NAMESPACE}/${cm.metadata.name}: ${parsed.reason}` },
    );
  }
  return out;
}

/** Writes a node's trusted baseline; see {@link IntegrityBaselineStore}. */
export interface BaselineWriter {
  apply(cm: V1ConfigMap): Promise<void>;
}

/**
 * `spec.controlPlane.fileIntegrity`: the node agents' file integrity reports (src/agent/integrity.ts) as
 * FILE-CHANGED findings on the Node, the FilesUnchanged condition, and a Warning event the first time this
 * operator process sees a change (after a restart, open changes are announced once more). It never changes
 * a file: accepting a change is an edit of the policy, reviewed like any other.
 *
 * The baseline it trusts per node (see {@link judgeBaseline}) is kept in memory and persisted in a
 * ConfigMap per node in csp-system ({@link baselineConfigMap}) whenever it moves; after a restart the
 * stored one is trusted, so a baseline rewritten while the operator was down is still FILE-BASELINE-CHANGED.
 */
export const fileIntegrityArea: AreaFactory = (ctx) =>
  fileIntegrityAreaWith(
    (ctx as Partial<typeof ctx>).kc === undefined ? undefined : new IntegrityBaselineStore(ctx.kc),
  )(ctx);

/** {@link fileIntegrityArea} with the baseline writer given (none: the baseline lives in memory only). */
export function fileIntegrityAreaWith(store: BaselineWriter | undefined): AreaFactory {
  return () => {
    /** Per policy: the changes already announced by an event. */
    const announced = new Map<string, Set<string>>();
    /** Per node: the baseline last trusted, and the text last persisted (or read back). */
    const baselines = new Map<string, KnownBaseline>();
    const persisted = new Map<string, string>();
    /** Unreadable stored baselines already announced (node and reason). */
    const unreadableAnnounced = new Set<string>();
    const area: AreaReconciler = {
      name: AREA,
      inUse: (spec) => spec.controlPlane?.fileIntegrity !== undefined,
      async reconcile({ policy, spec, snapshot }: AreaInput): Promise<AreaReport> {
        const cms = snapshot.configMaps ?? [];
        const reports = integrityReports(cms);
        const stored = store ? storedBaselines(cms) : new Map<string, StoredBaseline>();
        const fi = spec.controlPlane?.fileIntegrity;
        const events: NonNullable<AreaReport["events"]> = [];
        // A node the operator holds a trusted baseline for (stored, or remembered) but whose report is gone
        // (deleted, garbage-collected with a re-created Node, the agent removed) is not a node without
        // changes: it is a node whose changes are not seen.
        const reported = new Set(reports.map((n) => n.node));
        const judged = [...reports];
        for (const node of [...new Set([...stored.keys(), ...baselines.keys()])].sort()) {
          if (reported.has(node)) continue;
          if (store && !stored.has(node)) {
            // Report and stored baseline both deleted: the way to retire a node that left the cluster.
            baselines.delete(node);
            persisted.delete(node);
            events.push({
              type: "Warning",
              reason: "FileBaselineForgotten",
              message: oneLine(
                `node ${node}: its file integrity report and its stored baseline were both deleted; the operator no longer expects a report from it`,
              ),
            });
            continue;
          }
          judged.push({
            node,
            problem: `no report: ConfigMap ${OPERATOR_NAMESPACE}/csp-agent-${node} is missing; if the node left the cluster, delete ConfigMap ${OPERATOR_NAMESPACE}/${baselineConfigMapName(node)}`,
          });
        }
        judged.sort((a, b) => (a.node < b.node ? -1 : a.node > b.node ? 1 : 0));
        const j = judgeFileIntegrity(judged, fi?.accept ?? []);
        const writes: V1ConfigMap[] = [];
        for (const n of reports) {
          if (!n.report) continue;
          const saved = stored.get(n.node);
          if (saved && "text" in saved && !persisted.has(n.node)) persisted.set(n.node, saved.text);
          if (saved && "problem" in saved && !unreadableAnnounced.has(`${n.node}\n${saved.problem}`)) {
            unreadableAnnounced.add(`${n.node}\n${saved.problem}`);
            events.push({
              type: "Warning",
              reason: "FileBaselineUnreadable",
              message: oneLine(
                `node ${n.node}: the stored file integrity baseline cannot be read (${saved.problem}); the agent's current baseline is trusted and stored anew`,
              ),
            });
          }
          let known = baselines.get(n.node) ?? (saved && "known" in saved ? saved.known : undefined);
          const trust = (fi?.trustBaseline ?? []).find(
            (t) => t.node === n.node && t.baselineAt === n.report!.baselineAt,
          );
          if (trust && known && known.baselineAt !== trust.baselineAt) {
            known = undefined;
            events.push({
              type: "Normal",
              reason: "FileBaselineTrusted",
              message: oneLine(
                `node ${n.node}: the baseline its agent reports (baselineAt ${trust.baselineAt}) is trusted as spec.controlPlane.fileIntegrity.trustBaseline says (${trust.reason})`,
              ),
            });
          }
          const b = judgeBaseline(n.node, known, n.report, ownWritesOf(cms, n.node), fi?.accept ?? []);
          baselines.set(n.node, b.known);
          if (b.finding) j.findings.push(b.finding);
          if (!store) continue;
          // Compared with the ConfigMap in the snapshot, not with what this process last wrote: a stored
          // baseline deleted or edited while the operator runs is written back at once.
          const text = baselineText(b.known);
          const storedText = saved && "text" in saved ? saved.text : undefined;
          if (storedText === text) continue;
          writes.push(baselineConfigMap(n.node, b.known));
          const mine = persisted.get(n.node);
          if (mine !== undefined && storedText !== mine && !(saved && "problem" in saved))
            events.push({
              type: "Warning",
              reason: "FileBaselineRestored",
              message: oneLine(
                `node ${n.node}: ConfigMap ${OPERATOR_NAMESPACE}/${baselineConfigMapName(n.node)} ${storedText === undefined ? "was deleted" : "was changed by someone else"}; the baseline the operator trusts is written back (to trust another one, see spec.controlPlane.fileIntegrity.trustBaseline)`,
              ),
            });
        }
        const failures: string[] = [];
        let forbidden = false;
        for (const cm of writes) {
          try {
            await store!.apply(cm);
            persisted.set(cm.data![BASELINE_NODE_KEY]!, cm.data![BASELINE_KEY]!);
          } catch (err) {
            forbidden ||= statusCode(err) === 403;
            failures.push(`ConfigMap ${OPERATOR_NAMESPACE}/${cm.metadata!.name!}: ${errorMessage(err)}`);
          }
        }
        const tampered = j.findings.filter((f) => f.id === FILE_BASELINE_CHANGED).map((f) => f.resource);
        if (tampered.length > 0 && j.condition.status !== "False")
          j.condition = {
            type: FILES_UNCHANGED,
            status: "False",
            reason: "BaselineChanged",
            message: `the file integrity baseline changed other than by the agent on ${tampered.join(", ")}`,
          };
        const before = announced.get(policy.metadata.name) ?? new Set<string>();
        const now = new Set<string>();
        // At most EVENTS_PER_NODE events per node and reconcile, the rest in one summary event: a burst of
        // chmod flips on many files cannot flood the Event store (each change is still a finding).
        const perNode = new Map<string, number>();
        for (const { node, change } of j.open) {
          const n = change.new;
          const key = [node, change.path, n?.type, n?.sha256, n?.mode, n?.uid, n?.gid].join("\n");
          now.add(key);
          if (before.has(key)) continue;
          const count = (perNode.get(node) ?? 0) + 1;
          perNode.set(node, count);
          if (count <= EVENTS_PER_NODE)
            events.push({
              type: "Warning",
              reason: "FileChanged",
              message: describeChange(node, change, false),
            });
        }
        for (const [node, count] of perNode)
          if (count > EVENTS_PER_NODE)
            events.push({
              type: "Warning",
              reason: "FileChanged",
              message: oneLine(
                `${count - EVENTS_PER_NODE} more critical file change(s) on node ${node} (see the policy's FILE-CHANGED findings)`,
              ),
            });
        for (const r of j.retaken) {
          const key = `retaken\n${r.node}\n${r.baselineAt}`;
          now.add(key);
          if (!before.has(key))
            events.push({
              type: "Warning",
              reason: "FileBaselineRetaken",
              message: oneLine(`node ${r.node}: ${r.note}`),
            });
        }
        announced.set(policy.metadata.name, now);
        // Judged again at least every heartbeat, so a report that stops being refreshed is seen as stale.
        return {
          findings: j.findings,
          conditions: [j.condition],
          events,
          requeueAfterMs: INTEGRITY_HEARTBEAT_MS,
          ...(failures.length > 0
            ? {
                failure: {
                  reason: "BaselineNotPersisted",
                  message: `the trusted file integrity baseline could not be stored (an operator restart would trust the agent's report as it is then): ${failures.join("; ")}`,
                  retryable: !forbidden,
                },
              }
            : {}),
        };
      },
    };
    return area;
  };
}
