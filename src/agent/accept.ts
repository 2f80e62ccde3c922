/**
 * `csp-operator integrity accept --node N --path P --reason R`: prints the
 * `spec.controlPlane.fileIntegrity.accept[]` entry that accepts the current state of one changed file, from
 * the node agent's report, ready to commit to the policy. It reads; it never changes the policy.
 */
import type { KubeConfig, V1ConfigMap } from "@kubernetes/client-node";
import { stringify } from "yaml";
import { OPERATOR_NAMESPACE } from "../api/vocabulary.js";
import { LiveReader } from "../cluster/livereader.js";
import { agentReportName, INTEGRITY_KEY, parseIntegrityReport } from "../evidence/agentreports.js";
import type { AcceptedChange } from "../controller/fileintegrity.js";

export interface AcceptRequest {
  node: string;
  path: string;
  reason: string;
}

/** Why no entry can be printed; the message names the node, path or report. */
export class AcceptError extends Error {
  override name = "AcceptError";
}

/**
 * PURE: the accept entry for `path` on `node` from that node's report ConfigMap: the file's new hash, mode
 * and owner (or `absent` for a removed file). Throws {@link AcceptError} when the report has no change for
 * that path (nothing to accept) or cannot be read.
 */
export function acceptEntry(report: V1ConfigMap | undefined, req: AcceptRequest): AcceptedChange {
  if (!req.reason.trim()) throw new AcceptError("--reason is required: say why the change is expected");
  const name = agentReportName(req.node);
  const raw = report?.data?.[INTEGRITY_KEY];
  if (raw === undefined)
    throw new AcceptError(
      `ConfigMap ${OPERATOR_NAMESPACE}/${name} holds no file integrity report (${INTEGRITY_KEY})`,
    );
  const parsed = parseIntegrityReport(raw);
  if (!parsed.ok)
    throw new AcceptError(
      `the file integrity report in ${OPERATOR_NAMESPACE}/${name} cannot be read: ${parsed.reason}`,
    );
  const change = parsed.value.changes.find((c) => c.path === req.path);
  if (!change) {
    const known = parsed.value.baseline[req.path] !== undefined;
    throw new AcceptError(
      known
        ? `${req.path} on node ${req.node} matches its baseline: nothing to accept`
        : `${req.path} is not a monitored file on node ${req.node}`,
    );
  }
  const n = change.new;
  if (!n) return { node: req.node, path: req.path, sha256: "absent", reason: req.reason };
  if (n.type === "directory")
    return {
      node: req.node,
      path: req.path,
      sha256: "directory",
      mode: n.mode,
      owner: `${n.uid}:${n.gid}`,
      reason: req.reason,
    };
  if (n.type === "unreadable")
    throw new AcceptError(
      `${req.path} on node ${req.node} cannot be read by the agent (mode ${n.mode} owner ${n.uid}:${n.gid}): its content is unknown and cannot be accepted; make it readable (or remove it)`,
    );
  if (n.type === "other")
    throw new AcceptError(
      `${req.path} on node ${req.node} is not a regular file, symlink or directory: it cannot be accepted (remove it, or exempt the finding)`,
    );
  return {
    node: req.node,
    path: req.path,
    sha256: n.sha256,
    mode: n.mode,
    owner: `${n.uid}:${n.gid}`,
    reason: req.reason,
  };
}

/** The entry as a YAML list item with a comment saying what it accepts, for `spec.controlPlane.fileIntegrity.accept`. */
export function acceptEntryYaml(entry: AcceptedChange): string {
  return `# spec.controlPlane.fileIntegrity.accept entry\n${stringify([entry])}`;
}

/** Reads the node's report from the cluster (cluster/livereader.ts) and returns the YAML entry (the CLI prints it). */
export async function integrityAccept(kc: KubeConfig, req: AcceptRequest): Promise<string> {
  const cm = await new LiveReader(kc).operatorConfigMap(agentReportName(req.node));
  if (!cm)
    throw new AcceptError(
      `node ${req.node} has no agent report (ConfigMap ${OPERATOR_NAMESPACE}/${agentReportName(req.node)})`,
    );
  return acceptEntryYaml(acceptEntry(cm, req));
}
