/**
 * PURE: the reports the node agent (`csp-operator agent`) publishes about the files it wrote on each
 * control-plane node, and what the operator concludes from them. A report is a ConfigMap per node in
 * csp-system (`csp-agent-<node>`) with one JSON entry per file: which object it came from, where it was
 * written, the sha256 of the bytes written, when and on which node — never the content.
 */
import { createHash } from "node:crypto";
import type { V1ConfigMap } from "@kubernetes/client-node";
import { MANAGED_BY_LABEL, MANAGED_BY_VALUE, OPERATOR_NAMESPACE } from "../desired/metadata.js";
import { COMPONENT_LABEL } from "../desired/encryptionstate.js";

export const AGENT_REPORT_COMPONENT = "agent-report";
/** The report ConfigMap's data key. */
export const AGENT_REPORT_KEY = "files.json";

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
}

/** `sha256:<hex>` of a file's text: the same form as the API server's config hash. */
export function contentHash(text: string | Buffer): string {
  return `sha256:${createHash("sha256").update(text).digest("hex")}`;
}

export function agentReportName(node: string): string {
  return `csp-agent-${node}`
    .toLowerCase()
    .replace(/[^a-z0-9.-]/g, "-")
    .slice(0, 253);
}

/** The report ConfigMap a node's agent applies. Entries are sorted so an unchanged report is identical. */
export function agentReportConfigMap(node: string, files: readonly FileReport[]): V1ConfigMap {
  const sorted = [...files].sort((a, b) => a.file.localeCompare(b.file) || a.path.localeCompare(b.path));
  return {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: {
      name: agentReportName(node),
      namespace: OPERATOR_NAMESPACE,
      labels: { [MANAGED_BY_LABEL]: MANAGED_BY_VALUE, [COMPONENT_LABEL]: AGENT_REPORT_COMPONENT },
    },
    data: { [AGENT_REPORT_KEY]: JSON.stringify(sorted, null, 1) },
  };
}

/** True for a ConfigMap that is an agent report. */
export function isAgentReport(cm: V1ConfigMap): boolean {
  return cm.metadata?.labels?.[COMPONENT_LABEL] === AGENT_REPORT_COMPONENT;
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
    for (const e of parsed as Partial<FileReport>[]) {
      if (
        typeof e.file === "string" &&
        typeof e.source === "string" &&
        typeof e.path === "string" &&
        typeof e.sha256 === "string" &&
        typeof e.writtenAt === "string" &&
        typeof e.node === "string"
      )
        out.push(e as FileReport);
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

/** Whether the agents wrote `expectedHash` for `source`; names nodes that lag or failed. */
export function judgeDelivery(
  source: string,
  expectedHash: string,
  reports: readonly FileReport[],
): DeliveryJudgement {
  const mine = reports.filter((r) => r.source === source);
  const current = mine.filter((r) => r.sha256 === expectedHash && !r.error);
  const lagging = mine.filter((r) => r.sha256 !== expectedHash || r.error);
  const delivered = current.length > 0 && lagging.length === 0;
  const nodes = (rs: FileReport[]) => [...new Set(rs.map((r) => `${r.node}:${r.path}`))].sort().join(", ");
  const message =
    mine.length === 0
      ? "no agent reported writing it"
      : delivered
        ? `written with hash ${expectedHash.slice(0, 19)} on ${nodes(current)}`
        : `${lagging.length} of ${mine.length} node file(s) not current: ${lagging
            .map((r) => `${r.node}:${r.path}${r.error ? ` (${r.error})` : ""}`)
            .sort()
            .join(", ")}`;
  return { delivered, reports: mine, message };
}
