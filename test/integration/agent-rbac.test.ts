/**
 * Needs the local control plane (built on first use by controlplane/build.sh).
 * What the node agent (config/agent) may do, proven on a real API server: with a token bound to a Pod on a
 * node, as the kubelet mounts it, the agent writes its own node's report `csp-agent-<node>` and nothing else
 * in csp-system (not another node's report, not the audit-policy ConfigMap), and that report carries only a
 * report's labels, data keys and its own Node as owner (no audit Policy for other nodes to pick up); the
 * real agent delivers the audit Policy only from the operator's rendered ConfigMap; a token not bound to a
 * Pod (bound to nothing, or to a Node only) writes nothing. No ServiceAccount token Secret can be created in
 * csp-system. With config/encryption, the operator may write a Secret outside csp-system back only
 * unchanged. The DaemonSet mounts only the host paths the agent checks, read-only, plus the one directory it
 * writes, and its Pod passes Pod Security admission in its namespace. Every kustomization in config/
 * renders and is accepted by a server-side dry run.
 */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "chai";
import { parse, parseAllDocuments, stringify } from "yaml";
import { Agent } from "../../src/agent/agent.js";
import { APISERVER_MANIFEST } from "../../src/agent/hostchecks.js";
import { DEFAULT_FILE_PATHS } from "../../src/cis/checks/files.js";
import { loadKubeConfig } from "../../src/cluster/client.js";
import { EncryptionClient } from "../../src/cluster/encryption.js";
import { AUDIT_POLICY_KEY, auditPolicyConfigMap } from "../../src/desired/auditpolicy.js";
import { COMPONENT_LABEL } from "../../src/desired/encryption/secret.js";
import { MANAGED_BY_LABEL, MANAGED_BY_VALUE, POLICY_LABEL } from "../../src/desired/metadata.js";
import {
  AGENT_CHECK_KEYS,
  AGENT_REPORT_COMPONENT,
  AGENT_REPORT_KEY,
  agentReportConfigMap,
  fileReports,
  INTEGRITY_KEY,
  type IntegrityReport,
} from "../../src/evidence/agentreports.js";
import { silentLogger } from "../../src/observability/logger.js";
import { useControlPlane } from "../support/controlplane.js";
import { eventually } from "../support/eventually.js";
import { kubectlOk } from "../support/kubectl.js";

interface Obj {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  [k: string]: unknown;
}

interface Container {
  name: string;
  args?: string[];
  securityContext?: {
    runAsUser?: number;
    runAsGroup?: number;
    privileged?: boolean;
    allowPrivilegeEscalation?: boolean;
    readOnlyRootFilesystem?: boolean;
    capabilities?: { drop?: string[]; add?: string[] };
  };
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean; subPath?: string }[];
}

interface PodSpec {
  hostPID?: boolean;
  hostIPC?: boolean;
  hostNetwork?: boolean;
  securityContext?: { seccompProfile?: { type?: string } };
  containers: Container[];
  volumes?: { name: string; hostPath?: { path: string; type?: string } }[];
}

const KUSTOMIZATIONS = [
  "config/crd",
  "config/rbac",
  "config/manager",
  "config/default",
  "config/agent",
  "config/encryption",
];
const REPORTS_NS = "csp-system";
/** The host directory the agent writes the rendered files into (the only writable host mount). */
const WRITE_DIR = "/etc/kubernetes/csp-operator";

/** The labels a genuine agent report carries (src/evidence/agentreports.ts agentReportConfigMap). */
const REPORT_LABELS = { [MANAGED_BY_LABEL]: MANAGED_BY_VALUE, [COMPONENT_LABEL]: AGENT_REPORT_COMPONENT };

/** A genuine-looking agent report, as the agent server-side applies it. */
function report(name: string, data: string): string {
  return stringify({
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: { name, namespace: REPORTS_NS, labels: REPORT_LABELS },
    data: { [AGENT_REPORT_KEY]: data },
  });
}

/** A Pod on `node` running as the agent's ServiceAccount; never started (no kubelet), only bound to. */
function agentPod(name: string, namespace: string, sa: string, node: string): string {
  return stringify({
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace },
    spec: {
      nodeName: node,
      serviceAccountName: sa,
      securityContext: { runAsNonRoot: true, runAsUser: 65532, seccompProfile: { type: "RuntimeDefault" } },
      containers: [
        {
          name: "agent",
          image: "registry.invalid/none:0",
          securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"] } },
        },
      ],
    },
  });
}

describe("node agent RBAC and admission (real API server, tokens bound to Pods on nodes)", function () {
  this.timeout(180_000);
  const cp = useControlPlane({ name: "agent-rbac" });
  const ok = kubectlOk(cp);
  let rendered: Obj[] = [];
  let agentNs = "";
  let agentSa = "";
  let boundToA = "";
  let unbound = "";

  /** A kubeconfig for this control plane that authenticates with `token` only. */
  const tokenKubeconfig = async (file: string, token: string): Promise<string> => {
    const admin = parse(await ok(["config", "view", "--raw", "--minify"])) as {
      clusters: unknown[];
      contexts: { name: string; context: { cluster: string; user: string } }[];
    };
    const path = join(cp().dir, file);
    const ctx = admin.contexts[0]!;
    await writeFile(
      path,
      stringify({
        apiVersion: "v1",
        kind: "Config",
        clusters: admin.clusters,
        users: [{ name: "token", user: { token } }],
        contexts: [{ name: "token", context: { cluster: ctx.context.cluster, user: "token" } }],
        "current-context": "token",
      }),
      { mode: 0o600 },
    );
    return path;
  };
  const as = (kubeconfig: string) => (args: string[], input?: string) =>
    cp().kubectl(args, { kubeconfig, ...(input === undefined ? {} : { input }) });
  const applyAsAgent = (kubeconfig: string, yaml: string) =>
    as(kubeconfig)(
      ["apply", "--server-side", "--force-conflicts", "--field-manager=csp-operator-agent", "-f", "-"],
      yaml,
    );
  /** The agent on cp-a was refused by the admission policy for the right reason (not an evaluation error). */
  const refusedAsNotItsReport = (r: { code: number; stderr: string }, name: string) => {
    expect(r.code, `${name} written`).to.not.equal(0);
    expect(r.stderr).to.contain(`may write only ConfigMap csp-system/csp-agent-cp-a, not ${name}`);
  };
  const dataOf = async (name: string) =>
    (await cp().kubectl(["get", "cm", name, "-n", REPORTS_NS, "-o", "jsonpath={.data.files\\.json}"])).stdout;
  const canI = async (verb: string, resource: string, namespace?: string) =>
    (
      await cp().kubectl([
        "auth",
        "can-i",
        verb,
        resource,
        ...(namespace ? ["-n", namespace] : []),
        `--as=system:serviceaccount:${agentNs}:${agentSa}`,
      ])
    ).stdout.trim();

  before(async function () {
    this.timeout(180_000);
    rendered = parseAllDocuments(await ok(["kustomize", "config/agent"])).map((d) => d.toJSON() as Obj);
    const sa = rendered.find((o) => o.kind === "ServiceAccount");
    agentNs = sa!.metadata.namespace!;
    agentSa = sa!.metadata.name;
    await ok(["apply", "-k", "config/default"]);
    await ok(["apply", "-k", "config/agent"]);
    for (const node of ["cp-a", "cp-b"])
      await ok(["apply", "-f", "-"], `apiVersion: v1\nkind: Node\nmetadata: { name: ${node} }\n`);
    await ok(["apply", "-f", "-"], agentPod("agent-on-cp-a", agentNs, agentSa, "cp-a"));
    const token = async (...extra: string[]) =>
      (await ok(["create", "token", agentSa, "-n", agentNs, "--duration=1h", ...extra])).trim();
    boundToA = await tokenKubeconfig(
      "agent-cp-a.kubeconfig",
      await token("--bound-object-kind=Pod", "--bound-object-name=agent-on-cp-a"),
    );
    unbound = await tokenKubeconfig("agent-unbound.kubeconfig", await token());
    // A ValidatingAdmissionPolicy takes effect once the API server has loaded it: wait until a server-side
    // dry run (which runs admission and stores nothing) is refused.
    if (rendered.some((o) => o.kind === "ValidatingAdmissionPolicyBinding"))
      await eventually("the agent's admission policy to be in force", async () => {
        const r = await as(unbound)([
          "create",
          "cm",
          "csp-agent-probe",
          "-n",
          REPORTS_NS,
          "--dry-run=server",
        ]);
        return r.code !== 0 && /ValidatingAdmissionPolicy/.test(r.stderr);
      });
  });

  it("a token bound to a Pod carries the Pod's name and node (authentication.kubernetes.io/pod-name, node-name)", async () => {
    const who = async (kubeconfig: string) =>
      (
        JSON.parse((await as(kubeconfig)(["auth", "whoami", "-o", "json"])).stdout) as {
          status: { userInfo: { username: string; extra?: Record<string, string[]> } };
        }
      ).status.userInfo;
    const a = await who(boundToA);
    expect(a.username).to.equal(`system:serviceaccount:${agentNs}:${agentSa}`);
    expect(a.extra?.["authentication.kubernetes.io/node-name"]).to.deep.equal(["cp-a"]);
    expect(a.extra?.["authentication.kubernetes.io/pod-name"]).to.deep.equal(["agent-on-cp-a"]);
    expect((await who(unbound)).extra?.["authentication.kubernetes.io/node-name"]).to.equal(undefined);
  });

  it("writes its own node's report, and changes it again", async () => {
    const first = await applyAsAgent(boundToA, report("csp-agent-cp-a", "[]"));
    expect(first.code, first.stderr).to.equal(0);
    const second = await applyAsAgent(boundToA, report("csp-agent-cp-a", '[{"node":"cp-a"}]'));
    expect(second.code, second.stderr).to.equal(0);
    expect(await dataOf("csp-agent-cp-a")).to.equal('[{"node":"cp-a"}]');
  });

  it("cannot create or change another node's report", async () => {
    const forged = await applyAsAgent(boundToA, report("csp-agent-cp-b", '[{"node":"cp-b","forged":true}]'));
    refusedAsNotItsReport(forged, "csp-agent-cp-b");
    expect((await cp().kubectl(["get", "cm", "csp-agent-cp-b", "-n", REPORTS_NS])).code).to.not.equal(0);
    // Node cp-b's genuine report exists: the agent on cp-a can neither patch nor overwrite it.
    await ok(
      ["apply", "--server-side", "--field-manager=csp-operator-agent", "-f", "-"],
      report("csp-agent-cp-b", "[]"),
    );
    expect((await applyAsAgent(boundToA, report("csp-agent-cp-b", '[{"forged":true}]'))).code).to.not.equal(
      0,
    );
    const patched = await as(boundToA)([
      "patch",
      "cm",
      "csp-agent-cp-b",
      "-n",
      REPORTS_NS,
      "-p",
      '{"data":{"files.json":"[{\\"forged\\":true}]"}}',
    ]);
    refusedAsNotItsReport(patched, "csp-agent-cp-b");
    expect(await dataOf("csp-agent-cp-b")).to.equal("[]");
  });

  it("cannot touch the audit-policy ConfigMap or create any other ConfigMap in csp-system", async () => {
    await ok(
      ["apply", "-f", "-"],
      stringify({
        apiVersion: "v1",
        kind: "ConfigMap",
        metadata: {
          name: "csp-baseline-audit-policy",
          namespace: REPORTS_NS,
          labels: { "app.kubernetes.io/managed-by": "csp-operator" },
        },
        data: { "policy.yaml": "rules: [{level: Metadata}]" },
      }),
    );
    const tampered = await as(boundToA)([
      "patch",
      "cm",
      "csp-baseline-audit-policy",
      "-n",
      REPORTS_NS,
      "-p",
      '{"data":{"policy.yaml":"rules: [{level: None}]"}}',
    ]);
    refusedAsNotItsReport(tampered, "csp-baseline-audit-policy");
    expect(
      (
        await cp().kubectl([
          "get",
          "cm",
          "csp-baseline-audit-policy",
          "-n",
          REPORTS_NS,
          "-o",
          "jsonpath={.data.policy\\.yaml}",
        ])
      ).stdout,
    ).to.equal("rules: [{level: Metadata}]");
    // A name that merely starts with its own report's name is another ConfigMap.
    for (const name of ["csp-agent-cp-a-extra", "csp-other"]) {
      const r = await as(boundToA)(["create", "cm", name, "-n", REPORTS_NS]);
      refusedAsNotItsReport(r, name);
    }
  });

  it("with a token not bound to a Pod on a node, writes nothing", async () => {
    const r = await applyAsAgent(unbound, report("csp-agent-cp-a", '[{"unbound":true}]'));
    expect(r.code).to.not.equal(0);
    expect(r.stderr).to.contain("token is not bound to a Pod on a node");
    expect(await dataOf("csp-agent-cp-a")).to.equal('[{"node":"cp-a"}]');
  });

  it("reads what it copies to disk in csp-system, and nothing elsewhere", async () => {
    expect(await canI("list", "configmaps", REPORTS_NS)).to.equal("yes");
    expect(await canI("watch", "secrets", REPORTS_NS)).to.equal("yes");
    expect(await canI("get", "nodes")).to.equal("yes");
    expect(await canI("delete", "configmaps", REPORTS_NS)).to.equal("no");
    expect(await canI("update", "secrets", REPORTS_NS)).to.equal("no");
    expect(await canI("get", "secrets", "kube-system")).to.equal("no");
    expect(await canI("get", "configmaps", "kube-system")).to.equal("no");
    expect(await canI("create", "configmaps", agentNs === REPORTS_NS ? "default" : agentNs)).to.equal("no");
    expect(await canI("list", "nodes")).to.equal("no");
  });

  it("the DaemonSet mounts only what the agent checks, read-only, and writes only its own directory", () => {
    const ds = rendered.find((o) => o.kind === "DaemonSet") as Obj & {
      spec: { template: { spec: PodSpec } };
    };
    const pod = ds.spec.template.spec;
    expect(pod.hostPID ?? false).to.equal(false);
    expect(pod.hostIPC ?? false).to.equal(false);
    expect(pod.hostNetwork ?? false).to.equal(false);
    expect(pod.securityContext?.seccompProfile?.type).to.equal("RuntimeDefault");
    expect(pod.containers).to.have.length(1);
    const c = pod.containers[0]!;
    expect(c.args).to.include("--host-root=/host");
    expect(c.securityContext).to.deep.include({
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      runAsUser: 0,
      runAsGroup: 0,
    });
    expect(c.securityContext?.privileged ?? false).to.equal(false);
    expect(c.securityContext?.capabilities?.drop).to.deep.equal(["ALL"]);
    expect(c.securityContext?.capabilities?.add ?? []).to.deep.equal([]);

    const hostPaths = new Map<string, string>();
    for (const v of pod.volumes ?? []) if (v.hostPath) hostPaths.set(v.name, v.hostPath.path);
    expect([...hostPaths.values()]).to.not.include("/");
    const mounts = (c.volumeMounts ?? []).filter((m) => hostPaths.has(m.name));
    expect(mounts).to.have.length(hostPaths.size);
    for (const m of mounts) {
      const host = hostPaths.get(m.name)!;
      expect(m.subPath, m.name).to.equal(undefined);
      // Each host path appears at the same path under /host, so --host-root=/host reads the host's layout.
      expect(m.mountPath, m.name).to.equal(`/host${host}`);
      expect(m.readOnly ?? false, `${host} read-only`).to.equal(host !== WRITE_DIR);
    }
    expect([...hostPaths.values()]).to.include(WRITE_DIR);
    // Every host path the agent's checks read is under some mount (or the check would see "missing").
    const checked: string[] = [
      APISERVER_MANIFEST,
      ...Object.values(DEFAULT_FILE_PATHS as unknown as Record<string, string | string[]>).flat(),
      "/etc/passwd",
      "/etc/group",
    ];
    const covered = (p: string) => [...hostPaths.values()].some((h) => p === h || p.startsWith(`${h}/`));
    expect(
      checked.filter((p) => !covered(p)),
      "host paths the agent checks but cannot see",
    ).to.deep.equal([]);
    // The write flags point into the writable directory.
    for (const a of (c.args ?? []).filter((x) => x.endsWith("-path=") || /-path=/.test(x)))
      expect(a.split("=")[1]!.startsWith(`/host${WRITE_DIR}/`), a).to.equal(true);
  });

  it("the DaemonSet's Pod passes Pod Security admission in its namespace", async () => {
    const ds = rendered.find((o) => o.kind === "DaemonSet") as Obj & {
      spec: { template: { metadata: object; spec: PodSpec } };
    };
    // No kubelet and no DaemonSet controller run here: create the Pod the controller would create, dry-run.
    const pod = {
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "agent-dry-run", namespace: ds.metadata.namespace, ...ds.spec.template.metadata },
      spec: { ...ds.spec.template.spec, nodeName: "cp-a" },
    };
    const r = await cp().kubectl(["create", "--dry-run=server", "-f", "-"], { input: JSON.stringify(pod) });
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stderr).to.not.match(/violate PodSecurity/);
  });

  it("every kustomization in config/ renders and passes a server-side dry run", async () => {
    for (const dir of KUSTOMIZATIONS) {
      expect(await ok(["kustomize", dir]), dir).to.match(/kind: /);
      await ok(["apply", "--dry-run=server", "-k", dir]);
    }
  });

  it("the opt-in Secret rewrite grants exactly list and update, nothing more", async () => {
    await ok(["apply", "-k", "config/encryption"]);
    const op = "--as=system:serviceaccount:csp-system:csp-operator";
    const can = async (verb: string, ns: string) =>
      (await cp().kubectl(["auth", "can-i", verb, "secrets", "-n", ns, op])).stdout.trim();
    expect(await can("list", "default")).to.equal("yes");
    expect(await can("update", "default")).to.equal("yes");
    for (const verb of ["get", "watch", "create", "patch", "delete"])
      expect(await can(verb, "default"), verb).to.equal("no");
  });

  it("its own report may carry only a report's labels, data keys and owner: no audit Policy (W1)", async () => {
    const NONE = "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules: [{level: None}]\n";
    const own = (metadata: Record<string, unknown>, rest: Record<string, unknown>) =>
      stringify({
        apiVersion: "v1",
        kind: "ConfigMap",
        metadata: { name: "csp-agent-cp-a", namespace: REPORTS_NS, ...metadata },
        ...rest,
      });
    const cpB = JSON.parse(await ok(["get", "node", "cp-b", "-o", "json"])) as { metadata: { uid: string } };
    const forgeries: [string, string, RegExp][] = [
      [
        "an audit Policy under a policy label (the attack on every other node's audit log)",
        own(
          { labels: { ...REPORT_LABELS, [POLICY_LABEL]: "baseline" } },
          { data: { [AGENT_REPORT_KEY]: "[]", [AUDIT_POLICY_KEY]: NONE } },
        ),
        /metadata\.labels/,
      ],
      [
        "an audit Policy key under the report's labels",
        own({ labels: REPORT_LABELS }, { data: { [AGENT_REPORT_KEY]: "[]", [AUDIT_POLICY_KEY]: NONE } }),
        /data .*audit-policy\.yaml/,
      ],
      [
        "no component label",
        own({ labels: { [MANAGED_BY_LABEL]: MANAGED_BY_VALUE } }, {}),
        /metadata\.labels/,
      ],
      [
        "binaryData",
        own(
          { labels: REPORT_LABELS },
          { binaryData: { [AUDIT_POLICY_KEY]: Buffer.from(NONE).toString("base64") } },
        ),
        /binaryData/,
      ],
      [
        "another node as owner",
        own(
          {
            labels: REPORT_LABELS,
            ownerReferences: [{ apiVersion: "v1", kind: "Node", name: "cp-b", uid: cpB.metadata.uid }],
          },
          { data: { [AGENT_REPORT_KEY]: "[]" } },
        ),
        /metadata\.ownerReferences/,
      ],
      [
        "a finalizer",
        own(
          { labels: REPORT_LABELS, finalizers: ["example.com/keep"] },
          { data: { [AGENT_REPORT_KEY]: "[]" } },
        ),
        /metadata\.finalizers/,
      ],
    ];
    for (const [what, yaml, field] of forgeries) {
      const r = await applyAsAgent(boundToA, yaml);
      expect(r.code, `${what}: written`).to.not.equal(0);
      expect(r.stderr, what).to.match(field);
    }
    const stored = JSON.parse(await ok(["get", "cm", "csp-agent-cp-a", "-n", REPORTS_NS, "-o", "json"])) as {
      metadata: { labels?: Record<string, string>; finalizers?: string[] };
      data?: Record<string, string>;
      binaryData?: Record<string, string>;
    };
    expect(stored.metadata.labels).to.deep.equal(REPORT_LABELS);
    expect(stored.metadata.finalizers).to.equal(undefined);
    expect(Object.keys(stored.data ?? {})).to.deep.equal([AGENT_REPORT_KEY]);
    expect(stored.binaryData).to.equal(undefined);

    // A genuine report, built by the agent's own code with every key and its Node as owner, still passes.
    const cpA = JSON.parse(await ok(["get", "node", "cp-a", "-o", "json"])) as { metadata: { uid: string } };
    const result = { id: "1.1.1", title: "t", status: "Pass" as const, evidence: "e" };
    const entry = { type: "file" as const, sha256: `sha256:${"0".repeat(64)}`, mode: "0600", uid: 0, gid: 0 };
    const integrity = (files: number): IntegrityReport => ({
      version: 1,
      baselineAt: new Date(0).toISOString(),
      baseline: Object.fromEntries(
        Array.from({ length: files }, (_, i) => [
          `/etc/kubernetes/pki/${String(i).padStart(5, "0")}.crt`,
          { ...entry, size: 1, mtime: new Date(0).toISOString() },
        ]),
      ),
      changes: [],
    });
    const genuine = agentReportConfigMap(
      "cp-a",
      [
        {
          file: "audit-policy",
          source: "ConfigMap/csp-system/csp-baseline-audit-policy",
          path: "/etc/kubernetes/csp-operator/audit-policy.yaml",
          sha256: "sha256:00",
          writtenAt: new Date(0).toISOString(),
          node: "cp-a",
        },
      ],
      { files: [result], apiserver: [result] },
      cpA.metadata.uid,
      integrity(1000), // the most files the agent records
    );
    // A file integrity report larger than the agent ever writes is refused.
    const huge = agentReportConfigMap("cp-a", [], {}, cpA.metadata.uid, integrity(4000));
    const big = await applyAsAgent(boundToA, stringify(huge));
    expect(big.code, "a 4000-file integrity report written").to.not.equal(0);
    expect(big.stderr).to.match(/integrity\.json of an agent report is at most 512 KiB/);
    const r = await applyAsAgent(boundToA, stringify(genuine));
    expect(r.code, r.stderr).to.equal(0);
    const keys = JSON.parse(
      await ok(["get", "cm", "csp-agent-cp-a", "-n", REPORTS_NS, "-o", "jsonpath={.data}"]),
    ) as Record<string, string>;
    expect(Object.keys(keys).sort()).to.deep.equal(
      [AGENT_REPORT_KEY, AGENT_CHECK_KEYS.files, AGENT_CHECK_KEYS.apiserver, INTEGRITY_KEY].sort(),
    );
  });

  it("the agent delivers the audit Policy only from the operator's rendered ConfigMap, never from a report (W1)", async () => {
    const NONE = "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules: [{level: None}]\n";
    const GENUINE = "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n  - level: Metadata\n";
    // Written by an admin (admission does not stop one): a report carrying an audit Policy under a policy
    // label, as a report forged before its content was checked, and a stray labelled ConfigMap.
    const cm = (name: string, labels: Record<string, string>) =>
      stringify({
        apiVersion: "v1",
        kind: "ConfigMap",
        metadata: { name, namespace: REPORTS_NS, labels },
        data: { [AGENT_REPORT_KEY]: "[]", [AUDIT_POLICY_KEY]: NONE },
      });
    await ok(["apply", "-f", "-"], cm("csp-agent-cp-x", { ...REPORT_LABELS, [POLICY_LABEL]: "forged" }));
    await ok(
      ["apply", "-f", "-"],
      cm("csp-forged-extra", { [MANAGED_BY_LABEL]: MANAGED_BY_VALUE, [POLICY_LABEL]: "x" }),
    );
    await ok(["apply", "-f", "-"], stringify(auditPolicyConfigMap("prod", GENUINE)));
    // The agent on node cp-c, with the token the kubelet would mount into its Pod.
    await ok(["apply", "-f", "-"], "apiVersion: v1\nkind: Node\nmetadata: { name: cp-c }\n");
    await ok(["apply", "-f", "-"], agentPod("agent-on-cp-c", agentNs, agentSa, "cp-c"));
    const kubeconfig = await tokenKubeconfig(
      "agent-cp-c.kubeconfig",
      (
        await ok([
          "create",
          "token",
          agentSa,
          "-n",
          agentNs,
          "--duration=1h",
          "--bound-object-kind=Pod",
          "--bound-object-name=agent-on-cp-c",
        ])
      ).trim(),
    );
    const dir = await mkdtemp(join(tmpdir(), "csp-agent-cp-c-"));
    const path = join(dir, "audit-policy.yaml");
    const agent = new Agent(
      loadKubeConfig(kubeconfig),
      { node: "cp-c", auditPolicyPath: path },
      silentLogger(),
    );
    try {
      await agent.start();
      await agent.idle();
      const r = await cp().kubectl(["get", "cm", "csp-agent-cp-c", "-n", REPORTS_NS, "-o", "json"]);
      expect(r.code, `the agent's report: ${r.stderr}`).to.equal(0);
      const entries = fileReports([JSON.parse(r.stdout) as never]);
      expect(entries).to.have.length(1);
      expect(entries[0]!.error).to.equal(undefined);
      expect(entries[0]).to.include({
        file: "audit-policy",
        source: `ConfigMap/${REPORTS_NS}/csp-prod-audit-policy`,
        node: "cp-c",
      });
      expect(await readFile(path, "utf8")).to.equal(GENUINE);
    } finally {
      await agent.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("a token bound to a Node but to no Pod writes nothing, not even that node's report (W2)", async () => {
    // A namespace user with `edit` in the agent's namespace may mint the agent's tokens: that is being any
    // node's agent, which is why the token must also be bound to a Pod.
    await ok([
      "create",
      "rolebinding",
      "mallory-edit",
      "--clusterrole=edit",
      "--user=mallory",
      "-n",
      agentNs,
    ]);
    const minted = await cp().kubectl([
      "create",
      "token",
      agentSa,
      "-n",
      agentNs,
      "--duration=1h",
      "--bound-object-kind=Node",
      "--bound-object-name=cp-b",
      "--as=mallory",
    ]);
    expect(minted.code, minted.stderr).to.equal(0);
    const nodeBound = await tokenKubeconfig("agent-node-cp-b.kubeconfig", minted.stdout.trim());
    const who = JSON.parse((await as(nodeBound)(["auth", "whoami", "-o", "json"])).stdout) as {
      status: { userInfo: { extra?: Record<string, string[]> } };
    };
    expect(who.status.userInfo.extra?.["authentication.kubernetes.io/node-name"]).to.deep.equal(["cp-b"]);
    expect(who.status.userInfo.extra?.["authentication.kubernetes.io/pod-name"]).to.equal(undefined);
    const r = await applyAsAgent(nodeBound, report("csp-agent-cp-b", '[{"node":"cp-b","forged":true}]'));
    expect(r.code, "node-bound token wrote cp-b's report").to.not.equal(0);
    expect(r.stderr).to.contain("token is not bound to a Pod on a node");
    expect(await dataOf("csp-agent-cp-b")).to.equal("[]");
  });

  it("no ServiceAccount token Secret can be created in csp-system; the agent cannot get Secrets by name (W5)", async () => {
    const tokenSecret = (name: string) =>
      stringify({
        apiVersion: "v1",
        kind: "Secret",
        type: "kubernetes.io/service-account-token",
        metadata: {
          name,
          namespace: REPORTS_NS,
          annotations: { "kubernetes.io/service-account.name": "csp-operator" },
        },
      });
    await eventually(
      "the token Secret admission policy to be in force",
      async () => {
        const r = await cp().kubectl(["create", "--dry-run=server", "-f", "-"], {
          input: tokenSecret("probe"),
        });
        return r.code !== 0 && /ValidatingAdmissionPolicy/.test(r.stderr);
      },
      20_000,
    );
    for (const who of [["--as=system:serviceaccount:csp-system:csp-operator"], []]) {
      const r = await cp().kubectl(["create", ...who, "-f", "-"], {
        input: tokenSecret("csp-operator-forever"),
      });
      expect(r.code, `created ${who.join(" ")}`).to.not.equal(0);
      expect(r.stderr).to.contain("kubernetes.io/service-account-token");
    }
    expect(
      (await cp().kubectl(["get", "secret", "csp-operator-forever", "-n", REPORTS_NS])).code,
    ).to.not.equal(0);
    // The operator still creates its ordinary Secrets there (the encryption key ring).
    const opaque = stringify({
      apiVersion: "v1",
      kind: "Secret",
      type: "Opaque",
      metadata: { name: "csp-x-encryption", namespace: REPORTS_NS },
      stringData: { k: "v" },
    });
    const r = await cp().kubectl(
      ["create", "--dry-run=server", "--as=system:serviceaccount:csp-system:csp-operator", "-f", "-"],
      { input: opaque },
    );
    expect(r.code, r.stderr).to.equal(0);
    expect(await canI("get", "secrets", REPORTS_NS)).to.equal("no");
    expect(await canI("list", "secrets", REPORTS_NS)).to.equal("yes");
  });

  it("the operator's Secret rewrite writes Secrets back unchanged and can change nothing in them (W4)", async () => {
    await ok(["apply", "-k", "config/encryption"]);
    await ok(["create", "namespace", "app"]);
    // `create`, not `apply`: kubectl replace would rewrite apply's last-applied annotation.
    await ok(
      ["create", "-f", "-"],
      stringify({
        apiVersion: "v1",
        kind: "Secret",
        type: "Opaque",
        metadata: { name: "db", namespace: "app", labels: { app: "db" }, annotations: { team: "a" } },
        stringData: { pw: "original" },
      }),
    );
    type Stored = {
      type?: string;
      immutable?: boolean;
      data?: Record<string, string>;
      stringData?: Record<string, string>;
      metadata: {
        labels?: Record<string, string>;
        annotations?: Record<string, string>;
        ownerReferences?: unknown[];
        finalizers?: string[];
        resourceVersion?: string;
      };
    };
    const stored = async () =>
      JSON.parse(await ok(["get", "secret", "db", "-n", "app", "-o", "json"])) as Stored;
    const operator = await cp().serviceAccountKubeconfig(REPORTS_NS, "csp-operator");
    const putAsOperator = async (change: (s: Stored) => void, dryRun = false) => {
      const s = await stored();
      change(s);
      return cp().kubectl(["replace", ...(dryRun ? ["--dry-run=server"] : []), "-f", "-"], {
        kubeconfig: operator,
        input: JSON.stringify(s),
      });
    };
    const pw = Buffer.from("changed").toString("base64");
    await eventually(
      "the Secret rewrite admission policy to be in force",
      async () => {
        const r = await putAsOperator((s) => (s.data = { pw }), true);
        return r.code !== 0 && /ValidatingAdmissionPolicy/.test(r.stderr);
      },
      20_000,
    );
    const changes: [string, (s: Stored) => void, RegExp][] = [
      ["data", (s) => (s.data = { pw }), /data/],
      ["stringData", (s) => (s.stringData = { pw: "changed" }), /data/],
      ["a new data key", (s) => (s.data = { ...s.data, extra: pw }), /data/],
      ["labels", (s) => (s.metadata.labels = { app: "other" }), /metadata\.labels/],
      ["annotations", (s) => (s.metadata.annotations = {}), /metadata\.annotations/],
      [
        "an owner",
        (s) =>
          (s.metadata.ownerReferences = [
            {
              apiVersion: "v1",
              kind: "ConfigMap",
              name: "gone",
              uid: "00000000-0000-0000-0000-000000000000",
            },
          ]),
        /metadata\.ownerReferences/,
      ],
      ["a finalizer", (s) => (s.metadata.finalizers = ["example.com/keep"]), /metadata\.finalizers/],
      ["immutable", (s) => (s.immutable = true), /immutable/],
    ];
    for (const [what, change, field] of changes) {
      const r = await putAsOperator(change);
      expect(r.code, `${what} changed by the operator`).to.not.equal(0);
      expect(r.stderr, what).to.match(field);
    }
    const after = await stored();
    expect(Buffer.from(after.data!.pw!, "base64").toString()).to.equal("original");
    expect(after.metadata.labels).to.deep.equal({ app: "db" });
    expect(after.metadata.annotations).to.deep.equal({ team: "a" });
    // An unchanged PUT, and the operator's real rewrite, pass.
    const unchanged = await putAsOperator(() => undefined);
    expect(unchanged.code, unchanged.stderr).to.equal(0);
    const rewritten = await new EncryptionClient(loadKubeConfig(operator)).rewrite(
      ["secrets"],
      { target: "agent-rbac", done: [] },
      () => Promise.resolve(),
    );
    expect(rewritten.failed, JSON.stringify(rewritten.failures)).to.equal(0);
    expect(rewritten.written).to.be.greaterThan(0);
    expect(Buffer.from((await stored()).data!.pw!, "base64").toString()).to.equal("original");
  });
});
