import type { CheckResult } from "../cis/check.js";
import { hostRootReader } from "../cis/command.js";
import { fileChecks } from "../cis/files.js";
import { gatherInputs, parseApiServerManifest } from "../cis/inputs.js";
import { runCisChecks } from "../cis/run.js";
import type { AgentCheckKind } from "../evidence/agentreports.js";

/** Where kubeadm (and most self-managed control planes) keep the kube-apiserver static Pod. */
export const APISERVER_MANIFEST = "/etc/kubernetes/manifests/kube-apiserver.yaml";

/**
 * The CIS checks the agent can run on its node, through the same code as `csp-operator check --host-root`:
 * permissions and ownership of the node's files (1.1.x/4.1.x), and — where a kube-apiserver static Pod
 * manifest exists — the 1.2.x checks judged from that manifest and every file its flags name (encryption
 * config, audit policy, authorization config...), which the in-cluster mirror-pod path cannot read. A
 * manifest that cannot be parsed yields no apiserver results (and `problem` says why), never a guess.
 */
export async function hostChecks(
  hostRoot: string,
  manifestPath = APISERVER_MANIFEST,
): Promise<{ checks: Partial<Record<AgentCheckKind, CheckResult[]>>; problem?: string }> {
  const reader = hostRootReader(hostRoot);
  const checks: Partial<Record<AgentCheckKind, CheckResult[]>> = { files: await fileChecks(reader) };
  let text: string;
  try {
    text = await reader.readFile(manifestPath);
  } catch {
    return { checks }; // not a node with a kube-apiserver static Pod
  }
  const manifest = parseApiServerManifest(text);
  if (!manifest.ok) return { checks, problem: `${manifestPath}: ${manifest.reason}` };
  const inputs = await gatherInputs(
    { apiserver: { manifest: manifest.value, source: manifestPath } },
    reader,
  );
  checks.apiserver = runCisChecks(inputs);
  return { checks };
}
