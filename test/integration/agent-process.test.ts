/**
 * The node agent as the DaemonSet runs it (`csp-operator agent`, a process on the real local control plane,
 * its host root a temp directory): its probes (/healthz alive while the API server cannot be reached, /readyz
 * failing until the watches synced and a sync completed), and its answer to a single-file mount the host
 * replaced by a rename — the kubelet's config.yaml mounted alone, as config/agent mounts it: the report says
 * ESTALE, the process exits with code 75 so the kubelet would start a new container, and the new mount's
 * content is compared with the baseline read back from the report (a FILE-CHANGED-worthy change, not a new
 * baseline).
 */
import { expect } from "chai";
import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Agent } from "../../src/agent/agent.js";
import { loadKubeConfig } from "../../src/cluster/client.js";
import { MANAGED_BY_LABEL, MANAGED_BY_VALUE, POLICY_LABEL } from "../../src/api/vocabulary.js";
import { auditPolicyConfigMap } from "../../src/desired/auditpolicy.js";
import {
  COMPONENT_LABEL,
  ENCRYPTION_COMPONENT,
  ENCRYPTION_CONFIG_KEY,
} from "../../src/desired/encryption/secret.js";
import { contentHash, parseIntegrityReport, type IntegrityReport } from "../../src/evidence/agentreports.js";
import { silentLogger } from "../../src/observability/logger.js";
import { useControlPlane } from "../support/controlplane.js";
import { eventually } from "../support/eventually.js";
import { kubectlOk } from "../support/kubectl.js";

const KUBELET = "/var/lib/kubelet/config.yaml";
const OLD = "kind: KubeletConfiguration\n";
const NEW = "kind: KubeletConfiguration\nauthentication: {anonymous: {enabled: true}}\n";

interface AgentProcess {
  child: ChildProcess;
  log: string;
  exit: Promise<number | null>;
}

function spawnAgent(kubeconfig: string, node: string, hostRoot: string): AgentProcess {
  const child = spawn(
    process.execPath,
    [
      "--import",
      "tsx",
      "src/main.ts",
      "agent",
      `--kubeconfig=${kubeconfig}`,
      `--node-name=${node}`,
      `--host-root=${hostRoot}`,
      "--health-probe-bind-address=127.0.0.1:0",
      "--resync=3600",
    ],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  const p: AgentProcess = {
    child,
    log: "",
    exit: new Promise((resolve) => child.once("exit", (code) => resolve(code))),
  };
  child.stdout?.on("data", (d: Buffer) => (p.log += d.toString()));
  child.stderr?.on("data", (d: Buffer) => (p.log += d.toString()));
  return p;
}

/** The probe port the agent logged ("serving health probes"). */
async function probePort(p: AgentProcess): Promise<number> {
  return eventually("the agent to serve its probes", () => {
    const line = p.log.split("\n").find((l) => l.includes("serving health probes"));
    return Promise.resolve(line ? (JSON.parse(line) as { port: number }).port : undefined);
  });
}

async function probe(port: number, path: string): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: res.status, body: await res.text() };
}

describe("node agent process: probes, and a single-file mount replaced on the host", function () {
  this.timeout(120_000);
  const cp = useControlPlane({ name: "agent-process", controllerManager: false });
  const ok = kubectlOk(cp);
  const procs: AgentProcess[] = [];
  const mounts: string[] = [];
  const dirs: string[] = [];

  before(async () => {
    await ok(["create", "namespace", "csp-system"]);
  });

  after(async () => {
    for (const p of procs)
      if (p.child.exitCode === null && p.child.signalCode === null) {
        p.child.kill("SIGKILL");
        await p.exit;
      }
    for (const m of mounts.splice(0).reverse()) execFileSync("umount", [m]);
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it("/healthz answers while the API server cannot be reached; /readyz fails until the first sync", async () => {
    const dir = mkdtempSync(join(tmpdir(), "csp-agent-probes-"));
    dirs.push(dir);
    // The control plane's kubeconfig pointed at a port nobody listens on.
    const kubeconfig = join(dir, "kubeconfig");
    const text = readFileSync(cp().kubeconfigPath, "utf8").replace(
      /server: https:\/\/127\.0\.0\.1:\d+/,
      "server: https://127.0.0.1:1",
    );
    expect(text).to.include("127.0.0.1:1\n");
    writeFileSync(kubeconfig, text, { mode: 0o600 });
    mkdirSync(join(dir, "host/etc/kubernetes"), { recursive: true });
    const p = spawnAgent(kubeconfig, "probe-node", join(dir, "host"));
    procs.push(p);
    const port = await probePort(p);
    expect(await probe(port, "/healthz")).to.deep.equal({ status: 200, body: "ok\n" });
    const r = await probe(port, "/readyz");
    expect(r.status).to.equal(503);
    expect(r.body).to.include("sync: the watches of csp-system have not synced yet");
    // SIGTERM while still waiting for the API server: exits 0, at once.
    p.child.kill("SIGTERM");
    expect(await p.exit).to.equal(0);
  });

  it("/readyz passes once a sync completed; not when none completed for max(3 resyncs, 3 min)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "csp-agent-ready-"));
    dirs.push(dir);
    mkdirSync(join(dir, "etc/kubernetes"), { recursive: true });
    const p = spawnAgent(cp().kubeconfigPath, "ready-node", dir);
    procs.push(p);
    const port = await probePort(p);
    await eventually("/readyz 200", async () => (await probe(port, "/readyz")).status === 200, 60_000);
    p.child.kill("SIGTERM");
    expect(await p.exit).to.equal(0);
    // The staleness rule, on an agent in this process (its clock moved forward by the argument).
    const a = new Agent(
      loadKubeConfig(cp().kubeconfigPath),
      { node: "ready-node", hostRoot: dir },
      silentLogger(),
    );
    try {
      expect(await a.start()).to.equal(true);
      await a.idle();
      expect(a.notReadyReason()).to.equal(undefined);
      expect(a.notReadyReason(Date.now() + 181_000)).to.match(
        /^no sync has completed for 18\d s \(limit 180 s\)$/,
      );
    } finally {
      await a.stop();
    }
  });

  it("a kubelet config replaced by rename on the host: reported ESTALE, exit 75, the new mount's content is a change", async function () {
    const dir = mkdtempSync(join(tmpdir(), "csp-agent-stale-"));
    dirs.push(dir);
    const host = join(dir, "hostside");
    const root = join(dir, "root");
    mkdirSync(host);
    mkdirSync(join(root, "etc/kubernetes"), { recursive: true });
    mkdirSync(join(root, "var/lib/kubelet"), { recursive: true });
    writeFileSync(join(host, "config.yaml"), OLD, { mode: 0o644 });
    writeFileSync(join(root, KUBELET), "");
    /** What the kubelet does when it starts the agent's container: bind the host's file as it is now. */
    const mountKubelet = () => {
      execFileSync("mount", ["--bind", join(host, "config.yaml"), join(root, KUBELET)], { stdio: "ignore" });
      mounts.push(join(root, KUBELET));
    };
    try {
      mountKubelet();
    } catch {
      this.skip(); // no bind mounts here (not root, or no CAP_SYS_ADMIN)
    }
    const integrity = async (): Promise<IntegrityReport | undefined> => {
      const raw = await ok([
        "get",
        "cm",
        "csp-agent-stale-node",
        "-n",
        "csp-system",
        "-o",
        "jsonpath={.data.integrity\\.json}",
      ]).catch(() => "");
      const r = raw ? parseIntegrityReport(raw) : undefined;
      return r?.ok ? r.value : undefined;
    };
    const first = spawnAgent(cp().kubeconfigPath, "stale-node", root);
    procs.push(first);
    const baseline = await eventually(
      "the baseline",
      async () => (await integrity())?.baseline[KUBELET],
      60_000,
    );
    expect(baseline.sha256).to.equal(contentHash(OLD));
    // The host edits the file as sed -i or an editor does: a new file renamed over the old one.
    writeFileSync(join(host, "config.new"), NEW, { mode: 0o644 });
    renameSync(join(host, "config.new"), join(host, "config.yaml"));
    // Seen at the next scan; the report names the stale file before the process exits with 75.
    const t0 = Date.now();
    expect(await first.exit).to.equal(75);
    const exitedIn = Date.now() - t0;
    const stale = await integrity();
    expect(stale?.changes.map((c) => [c.path, c.new?.type])).to.deep.equal([[KUBELET, "unreadable"]]);
    expect(first.log).to.include("must restart");
    // The kubelet starts the container again: a new mount of the host's current file.
    execFileSync("umount", [mounts.pop()!]);
    mountKubelet();
    const second = spawnAgent(cp().kubeconfigPath, "stale-node", root);
    procs.push(second);
    const change = await eventually(
      "the new content compared with the baseline",
      async () => (await integrity())?.changes.find((c) => c.path === KUBELET && c.new?.type === "file"),
      60_000,
    );
    expect(change.old?.sha256).to.equal(contentHash(OLD));
    expect(change.new?.sha256).to.equal(contentHash(NEW));
    // The restart it made is still recorded in the report after it (and paces restarts in a rename loop).
    const after = await integrity();
    expect(after?.remounts?.map((r) => r.paths)).to.deep.equal([[KUBELET]]);
    second.child.kill("SIGTERM");
    expect(await second.exit).to.equal(0);
    console.log(
      `      [agent] stale kubelet config mount: exit 75 ${(exitedIn / 1000).toFixed(1)} s after the rename`,
    );
  });

  it("a FIFO at a delivered path never hangs the sync: the audit policy replaces it, the EncryptionConfiguration is refused; a killed write's temp files go at start", async () => {
    const dir = mkdtempSync(join(tmpdir(), "csp-agent-fifo-"));
    dirs.push(dir);
    const out = join(dir, "etc/kubernetes/csp-operator");
    mkdirSync(out, { recursive: true });
    const audit = join(out, "audit-policy.yaml");
    const enc = join(out, "encryption-config.yaml");
    execFileSync("mkfifo", [audit]);
    execFileSync("mkfifo", [enc]);
    // What a SIGKILL between creating the temp file and renaming it leaves.
    const temp = join(out, ".encryption-config.yaml.0123456789ab.tmp");
    writeFileSync(temp, "partial", { mode: 0o600 });
    const policy = "apiVersion: audit.k8s.io/v1\nkind: Policy\n";
    await ok(["apply", "-f", "-"], JSON.stringify(auditPolicyConfigMap("fifo", policy)));
    const encYaml =
      "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n" +
      "  - resources: [secrets]\n    providers:\n      - identity: {}\n";
    await ok(
      ["apply", "-f", "-"],
      JSON.stringify({
        apiVersion: "v1",
        kind: "Secret",
        metadata: {
          name: "csp-fifo-encryption",
          namespace: "csp-system",
          labels: {
            [MANAGED_BY_LABEL]: MANAGED_BY_VALUE,
            [COMPONENT_LABEL]: ENCRYPTION_COMPONENT,
            [POLICY_LABEL]: "fifo",
          },
        },
        data: { [ENCRYPTION_CONFIG_KEY]: Buffer.from(encYaml).toString("base64") },
      }),
    );
    const a = new Agent(
      loadKubeConfig(cp().kubeconfigPath),
      { node: "fifo-node", auditPolicyPath: audit, encryptionConfigPath: enc, resyncMs: 1000 },
      silentLogger(),
    );
    try {
      expect(await a.start()).to.equal(true);
      expect(existsSync(temp)).to.equal(false);
      const files = await eventually("the report naming both files", async () => {
        const raw = await ok([
          "get",
          "cm",
          "csp-agent-fifo-node",
          "-n",
          "csp-system",
          "-o",
          "jsonpath={.data.files\\.json}",
        ]).catch(() => "");
        const f = raw ? (JSON.parse(raw) as { path: string; sha256: string; error?: string }[]) : [];
        return f.length === 2 ? f : undefined;
      });
      expect(files.find((f) => f.path === audit)).to.include({ sha256: contentHash(policy) });
      expect(files.find((f) => f.path === audit)?.error).to.equal(undefined);
      expect(readFileSync(audit, "utf8")).to.equal(policy);
      // (The report's redaction may mask a random-looking temp directory name in the path.)
      expect(files.find((f) => f.path === enc)?.error).to.match(
        /^not overwriting \/.*encryption-config\.yaml: it is a FIFO, not a regular file \(ENOTREG\), so the keys it holds cannot be checked;/,
      );
      await a.idle();
      expect(a.notReadyReason()).to.equal(undefined);
      expect(a.syncRunningFor()).to.equal(undefined);
    } finally {
      const t0 = Date.now();
      await a.stop();
      expect(Date.now() - t0).to.be.below(10_000);
      await ok(["delete", "cm", "-n", "csp-system", "csp-fifo-audit-policy", "--ignore-not-found"]);
      await ok(["delete", "secret", "-n", "csp-system", "csp-fifo-encryption", "--ignore-not-found"]);
    }
  });
});
