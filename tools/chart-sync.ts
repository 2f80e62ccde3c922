/**
 * `npm run chart-sync`: writes the Helm chart's copies of config/ from config/ itself, so they cannot drift:
 * - the templates that hold the same objects as one config/ file (RBAC, admission policies): the file's
 *   documents with the chart's labels added to each object's metadata.labels, wrapped in the value that
 *   switches them on (agent, encryptionRewrite); comments kept, the file's leading comment block left out;
 * - charts/csp-operator/files/: config/prometheus's alerts and dashboard, byte for byte.
 * The CRD copy is written by `npm run crds`. Templates with values in them (Deployment, DaemonSet,
 * namespaces, Services, the NetworkPolicy, monitoring) stay hand-written; test/integration/helm.test.ts
 * compares every rendered object with `kubectl kustomize config/...`.
 *
 * `--check` writes nothing and exits 1 naming each stale copy (the tests call it).
 */
import { readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const CHART = "charts/csp-operator";
const LABELS_INCLUDE = '{{- include "csp-operator.labels" . | nindent 4 }}';

/** A generated template: its config/ source and the value that switches it on, if any. */
interface Synced {
  template: string;
  source: string;
  enabledBy?: string;
}

export const SYNCED: readonly Synced[] = [
  { template: "clusterrole.yaml", source: "config/rbac/cluster_role.yaml" },
  { template: "clusterrolebinding.yaml", source: "config/rbac/cluster_role_binding.yaml" },
  { template: "grantable-clusterrole.yaml", source: "config/rbac/grantable_cluster_role.yaml" },
  { template: "apiserver-endpoints-role.yaml", source: "config/rbac/apiserver_endpoints_role.yaml" },
  { template: "apiserver-identity-role.yaml", source: "config/rbac/apiserver_identity_role.yaml" },
  { template: "apiserver-pods-role.yaml", source: "config/rbac/apiserver_pods_role.yaml" },
  { template: "operator-namespace-role.yaml", source: "config/rbac/operator_namespace_role.yaml" },
  {
    template: "leader-lease-admission-policy.yaml",
    source: "config/rbac/leader_lease_admission_policy.yaml",
  },
  {
    template: "token-secret-admission-policy.yaml",
    source: "config/rbac/token_secret_admission_policy.yaml",
  },
  { template: "agent/role.yaml", source: "config/agent/role.yaml", enabledBy: "agent.enabled" },
  {
    template: "agent/rolebinding.yaml",
    source: "config/agent/role_binding.yaml",
    enabledBy: "agent.enabled",
  },
  { template: "agent/node-reader.yaml", source: "config/agent/node_reader.yaml", enabledBy: "agent.enabled" },
  {
    template: "agent/report-admission-policy.yaml",
    source: "config/agent/report_admission_policy.yaml",
    enabledBy: "agent.enabled",
  },
  {
    template: "encryption/rewrite-clusterrole.yaml",
    source: "config/encryption/rewrite_cluster_role.yaml",
    enabledBy: "encryptionRewrite.enabled",
  },
  {
    template: "encryption/rewrite-admission-policy.yaml",
    source: "config/encryption/rewrite_admission_policy.yaml",
    enabledBy: "encryptionRewrite.enabled",
  },
];

/** Files copied byte for byte into the chart. */
export const COPIED: readonly { to: string; from: string }[] = [
  { to: `${CHART}/files/prometheus_rule.yaml`, from: "config/prometheus/prometheus_rule.yaml" },
  { to: `${CHART}/files/dashboard.json`, from: "config/prometheus/dashboard.json" },
];

/**
 * PURE: the template for one config/ file. Each top-level `metadata:` gets the chart's labels: a flow map
 * `labels: { ... }` becomes a block, and the include line ends the block; an object without labels gets
 * them. Anything else in the file is kept as it is.
 */
export function templateOf(source: string, text: string, enabledBy?: string): string {
  const lines = text.replace(/\r\n/g, "\n").split("\n");
  while (lines.length > 0 && (lines[0]!.startsWith("#") || lines[0]!.trim() === "" || lines[0] === "---"))
    lines.shift();
  while (lines.length > 0 && lines[lines.length - 1]!.trim() === "") lines.pop();
  const out: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    out.push(line);
    if (line !== "metadata:") continue;
    // The metadata block: its lines are indented (comments included).
    let j = i + 1;
    const block: string[] = [];
    while (j < lines.length && (lines[j]!.startsWith("  ") || lines[j]!.trim() === ""))
      block.push(lines[j++]!);
    const at = block.findIndex((l) => /^ {2}labels:/.test(l));
    if (at === -1) {
      block.push("  labels:", `    ${LABELS_INCLUDE}`);
    } else {
      const flow = /^ {2}labels:\s*\{\s*(.*?)\s*\}\s*$/.exec(block[at]!);
      if (flow) {
        const entries = flow[1] ? flow[1].split(/\s*,\s*/).map((e) => `    ${e}`) : [];
        block.splice(at, 1, "  labels:", ...entries, `    ${LABELS_INCLUDE}`);
      } else if (/^ {2}labels:\s*$/.test(block[at]!)) {
        let end = at + 1;
        while (end < block.length && block[end]!.startsWith("    ")) end++;
        block.splice(end, 0, `    ${LABELS_INCLUDE}`);
      } else throw new Error(`${source}: metadata.labels is neither a block nor a one-line flow map`);
    }
    out.push(...block);
    i = j - 1;
  }
  const header = `{{- /* Generated from ${source} by \`npm run chart-sync\` (the comments there say why); edit that file. */}}`;
  return [
    header,
    ...(enabledBy ? [`{{- if .Values.${enabledBy} }}`] : []),
    ...out,
    ...(enabledBy ? ["{{- end }}"] : []),
    "",
  ].join("\n");
}

/** Every chart copy and what it must hold. */
export function wanted(root = ROOT): { path: string; content: string }[] {
  const read = (p: string) => readFileSync(`${root}/${p}`, "utf8");
  return [
    ...SYNCED.map((s) => ({
      path: `${CHART}/templates/${s.template}`,
      content: templateOf(s.source, read(s.source), s.enabledBy),
    })),
    ...COPIED.map((c) => ({ path: c.to, content: read(c.from) })),
  ];
}

/** The chart copies that differ from what config/ makes of them. */
export function stale(root = ROOT): string[] {
  return wanted(root)
    .filter((w) => {
      try {
        return readFileSync(`${root}/${w.path}`, "utf8") !== w.content;
      } catch {
        return true;
      }
    })
    .map((w) => w.path);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  if (process.argv.includes("--check")) {
    const bad = stale();
    for (const p of bad) console.error(`${p} is stale: run npm run chart-sync`);
    process.exitCode = bad.length > 0 ? 1 : 0;
  } else
    for (const w of wanted()) {
      writeFileSync(`${ROOT}/${w.path}`, w.content);
      console.log(`wrote ${w.path}`);
    }
}
