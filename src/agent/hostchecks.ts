import type { CheckResult } from "../cis/checks/check.js";
import { fileChecks } from "../cis/checks/files.js";
import { gatherInputs } from "../cis/gather/inputs.js";
import { parseApiServerManifest } from "../cis/parse/manifest.js";
import { runCisChecks } from "../cis/checks/run.js";
import { hostRootReader, InputFileError } from "../cis/gather/safefs.js";
import { MAX_MESSAGE_CHARS, safeText } from "../cis/output/text.js";
import type { AgentCheckKind } from "../evidence/agentreports.js";

/** Where kubeadm (and most self-managed control planes) keep the kube-apiserver static Pod. */
export const APISERVER_MANIFEST = "/etc/kubernetes/manifests/kube-apiserver.yaml";

/**
 * The CIS checks the agent can run on its node, through the same code as `csp-operator check --host-root`:
 * permissions and ownership of the node's files (1.1.x/4.1.x), and — where a kube-apiserver static Pod
 * manifest exists — the 1.2.x checks judged from that manifest and every file its flags name (encryption
 * config, audit policy, authorization config...), which the in-cluster mirror-pod path cannot read. A
 * manifest that cannot be read (a FIFO, over 1 MiB, not UTF-8, a symlink resolving to nothing inside the
 * host root) or parsed yields no apiserver results (and `problem` says why, in one line), never a guess.
 * Every file is read inside `hostRoot`, as if it were `/`.
 */
export async function hostChecks(
  hostRoot: string,
  manifestPath = APISERVER_MANIFEST,
): Promise<{
  checks: Partial<Record<AgentCheckKind, CheckResult[]>>;
  problem?: string;
  /** Host paths of the files the kube-apiserver's flags name (read or not), for the integrity monitor. */
  namedFiles?: string[];
}> {
  const reader = hostRootReader(hostRoot);
  const checks: Partial<Record<AgentCheckKind, CheckResult[]>> = { files: await fileChecks(reader) };
  let text: string;
  const problem = (why: string) => ({
    checks,
    problem: safeText(`${manifestPath}: ${why}`, MAX_MESSAGE_CHARS),
  });
  try {
    text = await reader.readFile(manifestPath);
  } catch (e) {
    // No manifest: not a node with a kube-apiserver static Pod.
    if (e instanceof InputFileError && e.code === "ENOENT") return { checks };
    return problem(`cannot read it: ${(e as Error).message}`);
  }
  const manifest = parseApiServerManifest(text);
  if (!manifest.ok) return problem(manifest.reason);
  const inputs = await gatherInputs(
    { apiserver: { manifest: manifest.value, source: manifestPath } },
    reader,
  );
  checks.apiserver = runCisChecks(inputs);
  const namedFiles = Object.values(inputs.apiserver?.files ?? {})
    .map((f) => f.hostPath)
    .filter((p) => p.startsWith("/"));
  return { checks, namedFiles: [...new Set(namedFiles)].sort() };
}
