/**
 * File integrity monitoring end to end on the real local control plane: the node agent (in this process,
 * with --host-root on a temp directory) baselines the critical files and reports changes in its report
 * ConfigMap; the operator's fileIntegrity area turns them into FILE-CHANGED findings, the FilesUnchanged
 * condition and a Warning event; accepting the change in the policy's spec clears it.
 */
import { expect } from "chai";
import {
  chmodSync,
  existsSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse } from "yaml";
import { integrityAccept } from "../../src/agent/accept.js";
import { Agent } from "../../src/agent/agent.js";
import { loadKubeConfig } from "../../src/cluster/client.js";
import { auditPolicyConfigMap } from "../../src/desired/auditpolicy.js";
import { fileIntegrityArea } from "../../src/controller/fileintegrity.js";
import { silentLogger } from "../../src/observability/logger.js";
import { Operator } from "../../src/controller/manager.js";
import { useControlPlane } from "../support/controlplane.js";
import { installCrd } from "../support/crd.js";
import { eventually } from "../support/eventually.js";
import { kubectlOk } from "../support/kubectl.js";

interface Status {
  conditions?: { type: string; status: string; reason: string; message: string }[];
  findings?: { id: string; resource: string; severity: string; message: string }[];
}

const NODE = "fim-node";
const MANIFEST = "/etc/kubernetes/manifests/kube-apiserver.yaml";
const KEY = "/etc/kubernetes/pki/sa.key";
const AUDIT = "/etc/kubernetes/csp-operator/audit-policy.yaml";
/** Well under the agent's 60 s rescan: a change seen this fast was seen through the watch. */
const WITHIN_SECONDS = 15_000;

describe("file integrity monitoring (real API server, agent on a temp host root)", function () {
  this.timeout(120_000);
  const cp = useControlPlane({ name: "fileintegrity" });
  const ok = kubectlOk(cp);
  let operator: Operator | undefined;
  let agent: Agent | undefined;
  let hostRoot = "";

  const status = async (): Promise<Status> =>
    (JSON.parse(await ok(["get", "csp", "fim", "-o", "json"])) as { status?: Status }).status ?? {};
  const filesUnchanged = (s: Status) => s.conditions?.find((c) => c.type === "FilesUnchanged");
  const changed = (s: Status) => (s.findings ?? []).filter((f) => f.id === "FILE-CHANGED");
  const startAgent = async () => {
    agent = new Agent(
      loadKubeConfig(cp().kubeconfigPath),
      { node: NODE, hostRoot, auditPolicyPath: join(hostRoot, AUDIT) },
      silentLogger(),
    );
    await agent.start();
  };

  before(async () => {
    await installCrd(cp());
    await ok(["create", "namespace", "csp-system"]);
    hostRoot = mkdtempSync(join(tmpdir(), "csp-fim-host-"));
    mkdirSync(join(hostRoot, "etc/kubernetes/manifests"), { recursive: true });
    mkdirSync(join(hostRoot, "etc/kubernetes/pki"), { recursive: true });
    writeFileSync(join(hostRoot, MANIFEST), "apiVersion: v1\nkind: Pod\n", { mode: 0o600 });
    writeFileSync(join(hostRoot, KEY), "key\n", { mode: 0o600 });
    const kc = loadKubeConfig(cp().kubeconfigPath);
    operator = new Operator(
      kc,
      { workers: 1, resyncMs: 600_000, areas: [fileIntegrityArea] },
      silentLogger(),
    );
    await operator.start();
    await startAgent();
    await ok(
      ["apply", "-f", "-"],
      JSON.stringify({
        apiVersion: "security.csp-operator.io/v1alpha1",
        kind: "ClusterSecurityPolicy",
        metadata: { name: "fim" },
        spec: { mode: "Audit", controlPlane: { fileIntegrity: {} } },
      }),
    );
  });

  after(async () => {
    await agent?.stop();
    await operator?.stop();
    if (hostRoot) rmSync(hostRoot, { recursive: true, force: true });
  });

  it("baselines the node's files: FilesUnchanged True", async () => {
    const c = await eventually("FilesUnchanged True", async () => {
      const c = filesUnchanged(await status());
      return c?.status === "True" ? c : undefined;
    });
    expect(c.reason).to.equal("Unchanged");
    expect(c.message).to.match(/^5 monitored path\(s\) on 1 node\(s\) match their baseline/);
  });

  it("an edited manifest is FILE-CHANGED (High) on the Node within seconds, with a Warning event; accepting it clears it", async () => {
    const t0 = Date.now();
    writeFileSync(join(hostRoot, MANIFEST), "apiVersion: v1\nkind: Pod\nspec: {hostPID: true}\n");
    const s = await eventually(
      "FILE-CHANGED on the policy",
      async () => {
        const s = await status();
        return changed(s).length > 0 ? s : undefined;
      },
      WITHIN_SECONDS,
    );
    const seconds = (Date.now() - t0) / 1000;
    expect(changed(s)).to.have.length(1);
    const f = changed(s)[0]!;
    expect(f).to.include({ severity: "High", resource: `Node/${NODE}` });
    expect(f.message)
      .to.include(MANIFEST)
      .and.match(/sha256:[0-9a-f]{64} mode 0600 .* -> sha256:[0-9a-f]{64} mode 0600/);
    expect(filesUnchanged(s)).to.include({ status: "False", reason: "FilesChanged" });
    console.log(`      (detected and in status ${seconds.toFixed(1)} s after the edit)`);

    const events = await eventually("a FileChanged Warning event", async () => {
      const list = JSON.parse(
        await ok(["get", "events", "-A", "--field-selector", "reason=FileChanged", "-o", "json"]),
      ) as { items: { type: string; message: string; involvedObject: { name: string } }[] };
      return list.items.length > 0 ? list.items : undefined;
    });
    expect(events[0]).to.deep.include({ type: "Warning" });
    expect(events[0]!.involvedObject.name).to.equal("fim");
    expect(events[0]!.message).to.include(MANIFEST).and.include(NODE);

    // The CLI helper prints the entry from the node's report; committing it to the policy accepts it.
    const yaml = await integrityAccept(loadKubeConfig(cp().kubeconfigPath), {
      node: NODE,
      path: MANIFEST,
      reason: "hostPID for the debugging session (ticket 42)",
    });
    const entries = parse(yaml) as Record<string, string>[];
    expect(entries).to.have.length(1);
    expect(entries[0]).to.include({ node: NODE, path: MANIFEST, mode: "0600" });
    await ok([
      "patch",
      "csp",
      "fim",
      "--type=merge",
      "-p",
      JSON.stringify({ spec: { controlPlane: { fileIntegrity: { accept: entries } } } }),
    ]);
    const c = await eventually("the accepted change cleared", async () => {
      const s = await status();
      const c = filesUnchanged(s);
      return changed(s).length === 0 && c?.status === "True" ? c : undefined;
    });
    expect(c.message).to.include("1 accepted change(s)");
  });

  it("rejects an accept entry without a reason or with a malformed hash at admission", async () => {
    const r = await cp().kubectl([
      "patch",
      "csp",
      "fim",
      "--type=merge",
      "-p",
      JSON.stringify({
        spec: { controlPlane: { fileIntegrity: { accept: [{ path: MANIFEST, sha256: "deadbeef" }] } } },
      }),
    ]);
    expect(r.code).to.not.equal(0);
    expect(r.stderr)
      .to.match(/accept\[0\]\.sha256/)
      .and.match(/accept\[0\]\.reason/);
  });

  it("a file the agent delivers from the operator's rendered object is no change", async () => {
    const policy = "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n  - level: Metadata\n";
    await ok(["apply", "-f", "-"], JSON.stringify(auditPolicyConfigMap("delivery", policy)));
    await eventually("the audit policy delivered", () =>
      Promise.resolve(
        existsSync(join(hostRoot, AUDIT)) && readFileSync(join(hostRoot, AUDIT), "utf8") === policy,
      ),
    );
    const report = await eventually("the delivered file in the agent's baseline", async () => {
      const raw = await ok([
        "get",
        "cm",
        `csp-agent-${NODE}`,
        "-n",
        "csp-system",
        "-o",
        "jsonpath={.data.integrity\\.json}",
      ]);
      const r = JSON.parse(raw) as { baseline: Record<string, unknown> };
      return r.baseline[AUDIT] ? r : undefined;
    });
    expect(report.baseline[AUDIT]).to.include({ type: "file", mode: "0600" });
    // The status reflects the report that holds the delivered file and the directory the agent made for it.
    const s = await eventually("the status counting the delivered file", async () => {
      const s = await status();
      return /^7 monitored path\(s\)/.test(filesUnchanged(s)?.message ?? "") || changed(s).length > 0
        ? s
        : undefined;
    });
    expect(changed(s)).to.deep.equal([]);
    expect(filesUnchanged(s)?.status).to.equal("True");
  });

  it("keeps its baseline across an agent restart: a key's mode changed while it was down is seen", async () => {
    await agent!.stop();
    chmodSync(join(hostRoot, KEY), 0o644);
    await startAgent();
    const s = await eventually("FILE-CHANGED for the key", async () => {
      const s = await status();
      return changed(s).some((f) => f.message.includes(KEY)) ? s : undefined;
    });
    const f = changed(s).find((x) => x.message.includes(KEY))!;
    expect(f.severity).to.equal("High");
    expect(f.message).to.match(/mode 0600 .* -> .* mode 0644/);
    // The accepted manifest stays accepted after the restart.
    expect(changed(s).map((x) => x.message.split(" ")[0])).to.deep.equal([KEY]);
  });

  it("a hard link to the accepted manifest from outside the monitored paths is a change again; unlinked, it goes", async () => {
    // A new link raises no inotify event on the monitored directory: the rescan (here the restart's) sees it.
    const link = join(hostRoot, "var-tmp-manifest");
    await agent!.stop();
    linkSync(join(hostRoot, MANIFEST), link);
    await startAgent();
    const s = await eventually("FILE-CHANGED for the linked manifest", async () => {
      const s = await status();
      return changed(s).some((f) => f.message.includes(MANIFEST)) ? s : undefined;
    });
    const f = changed(s).find((x) => x.message.includes(MANIFEST))!;
    expect(f.severity).to.equal("High");
    expect(f.message).to.include("links 2");
    await agent!.stop();
    unlinkSync(link);
    await startAgent();
    await eventually("the manifest's finding to go", async () =>
      changed(await status()).every((x) => !x.message.includes(MANIFEST)),
    );
  });

  it("a report whose baseline someone patched to hide the change is FILE-BASELINE-CHANGED, not clean", async () => {
    const raw = await ok([
      "get",
      "cm",
      `csp-agent-${NODE}`,
      "-n",
      "csp-system",
      "-o",
      "jsonpath={.data.integrity\\.json}",
    ]);
    const r = JSON.parse(raw) as {
      baseline: Record<string, unknown>;
      changes: { path: string; new?: unknown }[];
    };
    const keyChange = r.changes.find((c) => c.path === KEY)!;
    // What someone who can patch csp-agent-<node> would do: move the baseline to the new state, drop the change.
    const forged = {
      ...r,
      baseline: { ...r.baseline, [KEY]: keyChange.new },
      changes: r.changes.filter((c) => c.path !== KEY),
    };
    await ok([
      "patch",
      "cm",
      `csp-agent-${NODE}`,
      "-n",
      "csp-system",
      "--type=merge",
      "-p",
      JSON.stringify({ data: { "integrity.json": JSON.stringify(forged) } }),
    ]);
    const s = await eventually("FILE-BASELINE-CHANGED", async () => {
      const s = await status();
      return (s.findings ?? []).some((f) => f.id === "FILE-BASELINE-CHANGED") ? s : undefined;
    });
    const f = (s.findings ?? []).find((x) => x.id === "FILE-BASELINE-CHANGED")!;
    expect(f).to.include({ severity: "High", resource: `Node/${NODE}` });
    expect(f.message).to.include(KEY);
    expect(filesUnchanged(s)).to.include({ status: "False" });
  });

  it("a report deleted by hand comes back; a Node re-created with a new uid owns it again, and the GC leaves it", async () => {
    const node = "fim-reown";
    const report = `csp-agent-${node}`;
    const nodeJson = JSON.stringify({ apiVersion: "v1", kind: "Node", metadata: { name: node } });
    const uidOf = (kind: string, name: string, ns: string[] = []) =>
      ok(["get", kind, name, ...ns, "-o", "jsonpath={.metadata.uid}"]);
    const owner = () =>
      ok([
        "get",
        "cm",
        report,
        "-n",
        "csp-system",
        "-o",
        "jsonpath={.metadata.ownerReferences[0].uid}",
      ]).catch(() => undefined);
    await ok(["create", "-f", "-"], nodeJson);
    const uid1 = await uidOf("node", node);
    const dir = mkdtempSync(join(tmpdir(), "csp-fim-reown-"));
    mkdirSync(join(dir, "etc/kubernetes"), { recursive: true });
    const a = new Agent(
      loadKubeConfig(cp().kubeconfigPath),
      { node, hostRoot: dir, resyncMs: 1000 },
      silentLogger(),
    );
    try {
      expect(await a.start()).to.equal(true);
      await eventually("the report owned by the Node", async () => (await owner()) === uid1);
      const first = await uidOf("cm", report, ["-n", "csp-system"]);
      // Deleted by hand: written again (a new object), still owned by the Node.
      await ok(["delete", "cm", report, "-n", "csp-system"]);
      await eventually("the report written again", async () => {
        const u = await uidOf("cm", report, ["-n", "csp-system"]).catch(() => first);
        return u !== first && (await owner()) === uid1;
      });
      // The Node re-registers under a new uid: the garbage collector deletes what the old one owned, and the
      // agent writes its report again, owned by the new Node.
      await ok(["delete", "node", node]);
      await ok(["create", "-f", "-"], nodeJson);
      const uid2 = await uidOf("node", node);
      expect(uid2).to.not.equal(uid1);
      await eventually("the report owned by the new Node", async () => (await owner()) === uid2, 60_000);
      const reowned = await uidOf("cm", report, ["-n", "csp-system"]);
      // A canary owned by the old Node: once the garbage collector removed it, it has judged the old owner;
      // the report (owned by the new one) is still the same object.
      await ok(
        ["create", "-f", "-"],
        JSON.stringify({
          apiVersion: "v1",
          kind: "ConfigMap",
          metadata: {
            name: "fim-reown-canary",
            namespace: "csp-system",
            ownerReferences: [{ apiVersion: "v1", kind: "Node", name: node, uid: uid1 }],
          },
        }),
      );
      await eventually(
        "the garbage collector to remove what the old Node owned",
        async () => !(await ok(["get", "cm", "-n", "csp-system", "-o", "name"])).includes("fim-reown-canary"),
        60_000,
      );
      expect(await uidOf("cm", report, ["-n", "csp-system"])).to.equal(reowned);
      expect(await owner()).to.equal(uid2);
    } finally {
      await a.stop();
      await ok(["delete", "cm", report, "-n", "csp-system", "--ignore-not-found"]);
      await ok(["delete", "node", node, "--ignore-not-found"]);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
