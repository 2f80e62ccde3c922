/**
 * A real, local Kubernetes control plane for tests and the demo: etcd + kube-apiserver (+ optionally
 * kube-controller-manager for garbage collection, namespace deletion and default ServiceAccounts), all
 * on loopback ports, each with its own temporary state directory so several can run at once.
 * Processes never outlive their parent: a watchdog kills them if the Node process dies, even by SIGKILL.
 */
import { KubeConfig } from "@kubernetes/client-node";
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Agent, request } from "node:https";

export interface LocalPlaneOptions {
  /** An audit.k8s.io/v1 Policy; default logs every request at Metadata level. */
  auditPolicy?: object;
  /** EncryptionConfiguration YAML; enables --encryption-provider-config with automatic reload. */
  encryptionConfig?: string;
  /** Start kube-controller-manager (default true). */
  controllerManager?: boolean;
  name?: string;
}

const live = new Set<LocalPlane>();
let handlersInstalled = false;

function installExitHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.on("exit", () => {
    for (const cp of live) cp.killNow();
  });
}

/** The bin directory of the cached control plane, building it (with progress on stderr) when missing. */
export function controlPlaneBinDir(): string {
  const script = fileURLToPath(new URL("./build.sh", import.meta.url));
  const out = execFileSync("bash", [script], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] });
  return out.trim().split("\n").pop()!;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

function openssl(dir: string, args: string[]): void {
  execFileSync("openssl", args, { cwd: dir, stdio: ["ignore", "ignore", "pipe"] });
}

/** A self-made CA, a serving cert for 127.0.0.1, an admin client cert (system:masters), SA keys. */
function makePki(dir: string): void {
  openssl(dir, [
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-keyout",
    "ca.key",
    "-out",
    "ca.crt",
    "-days",
    "2",
    "-subj",
    "/CN=csp-local-ca",
  ]);
  writeFileSync(
    join(dir, "san.cnf"),
    "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes.default.svc\n",
  );
  openssl(dir, [
    "req",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-keyout",
    "server.key",
    "-out",
    "server.csr",
    "-subj",
    "/CN=kube-apiserver",
  ]);
  openssl(dir, [
    "x509",
    "-req",
    "-in",
    "server.csr",
    "-CA",
    "ca.crt",
    "-CAkey",
    "ca.key",
    "-CAcreateserial",
    "-out",
    "server.crt",
    "-days",
    "2",
    "-extfile",
    "san.cnf",
  ]);
  openssl(dir, [
    "req",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-keyout",
    "admin.key",
    "-out",
    "admin.csr",
    "-subj",
    "/O=system:masters/CN=csp-admin",
  ]);
  openssl(dir, [
    "x509",
    "-req",
    "-in",
    "admin.csr",
    "-CA",
    "ca.crt",
    "-CAkey",
    "ca.key",
    "-CAcreateserial",
    "-out",
    "admin.crt",
    "-days",
    "2",
  ]);
  openssl(dir, ["genrsa", "-out", "sa.key", "2048"]);
  openssl(dir, ["rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub"]);
}

function kubeconfigYaml(server: string, dir: string, user: Record<string, string>): string {
  const b64 = (f: string) => readFileSync(join(dir, f)).toString("base64");
  const userLines = Object.entries(user)
    .map(([k, v]) => `    ${k}: ${v}`)
    .join("\n");
  return `apiVersion: v1
kind: Config
clusters:
- name: local
  cluster:
    server: ${server}
    certificate-authority-data: ${b64("ca.crt")}
users:
- name: user
  user:
${userLines}
contexts:
- name: local
  context: { cluster: local, user: user }
current-context: local
`;
}

export class LocalPlane {
  readonly processes: { name: string; proc: ChildProcess; log: string }[] = [];
  private watchdog: ChildProcess | undefined;
  private stopped = false;
  readonly kubeconfigPath: string;
  readonly auditLogPath: string;
  readonly kubectlPath: string;
  server = "";
  etcdUrl = "";
  encryptionConfigPath: string | undefined;

  private constructor(
    readonly dir: string,
    readonly binDir: string,
  ) {
    this.kubeconfigPath = join(dir, "admin.kubeconfig");
    this.auditLogPath = join(dir, "audit.log");
    this.kubectlPath = join(binDir, "kubectl");
  }

  static async start(opts: LocalPlaneOptions = {}): Promise<LocalPlane> {
    const binDir = controlPlaneBinDir();
    const dir = mkdtempSync(join(tmpdir(), `csp-${opts.name ?? "cp"}-`));
    const cp = new LocalPlane(dir, binDir);
    live.add(cp);
    installExitHandlers();
    try {
      await cp.boot(opts);
    } catch (err) {
      await cp.stop(true);
      throw err;
    }
    return cp;
  }

  private spawnLogged(name: string, args: string[]): ChildProcess {
    const log = join(this.dir, `${name}.log`);
    const fd = openSync(log, "a");
    const proc = spawn(join(this.binDir, name), args, { stdio: ["ignore", fd, fd] });
    this.processes.push({ name, proc, log });
    return proc;
  }

  private async boot(opts: LocalPlaneOptions): Promise<void> {
    makePki(this.dir);
    const [etcdPort, peerPort, apiPort, kcmPort] = await Promise.all([
      freePort(),
      freePort(),
      freePort(),
      freePort(),
    ]);
    this.etcdUrl = `http://127.0.0.1:${etcdPort}`;
    this.server = `https://127.0.0.1:${apiPort}`;
    this.spawnLogged("etcd", [
      "--data-dir",
      join(this.dir, "etcd"),
      "--listen-client-urls",
      this.etcdUrl,
      "--advertise-client-urls",
      this.etcdUrl,
      "--listen-peer-urls",
      `http://127.0.0.1:${peerPort}`,
      "--initial-advertise-peer-urls",
      `http://127.0.0.1:${peerPort}`,
      "--initial-cluster",
      `default=http://127.0.0.1:${peerPort}`,
      "--unsafe-no-fsync",
    ]);
    const policy = opts.auditPolicy ?? {
      apiVersion: "audit.k8s.io/v1",
      kind: "Policy",
      rules: [{ level: "Metadata" }],
    };
    writeFileSync(join(this.dir, "audit-policy.yaml"), JSON.stringify(policy));
    const args = [
      `--etcd-servers=${this.etcdUrl}`,
      `--secure-port=${apiPort}`,
      "--bind-address=127.0.0.1",
      "--advertise-address=127.0.0.1",
      `--tls-cert-file=${join(this.dir, "server.crt")}`,
      `--tls-private-key-file=${join(this.dir, "server.key")}`,
      `--client-ca-file=${join(this.dir, "ca.crt")}`,
      "--authorization-mode=RBAC",
      `--service-account-key-file=${join(this.dir, "sa.pub")}`,
      `--service-account-signing-key-file=${join(this.dir, "sa.key")}`,
      "--service-account-issuer=https://kubernetes.default.svc",
      "--service-cluster-ip-range=10.0.0.0/24",
      `--audit-log-path=${this.auditLogPath}`,
      `--audit-policy-file=${join(this.dir, "audit-policy.yaml")}`,
      "--audit-log-format=json",
      "--audit-log-mode=blocking",
    ];
    if (opts.encryptionConfig) {
      this.encryptionConfigPath = join(this.dir, "encryption-config.yaml");
      writeFileSync(this.encryptionConfigPath, opts.encryptionConfig, { mode: 0o600 });
      args.push(
        `--encryption-provider-config=${this.encryptionConfigPath}`,
        "--encryption-provider-config-automatic-reload=true",
      );
    }
    this.spawnLogged("kube-apiserver", args);
    writeFileSync(
      this.kubeconfigPath,
      kubeconfigYaml(this.server, this.dir, {
        "client-certificate-data": readFileSync(join(this.dir, "admin.crt")).toString("base64"),
        "client-key-data": readFileSync(join(this.dir, "admin.key")).toString("base64"),
      }),
      { mode: 0o600 },
    );
    this.startWatchdog();
    await this.waitReady();
    if (opts.controllerManager !== false) {
      this.spawnLogged("kube-controller-manager", [
        `--kubeconfig=${this.kubeconfigPath}`,
        "--controllers=garbage-collector-controller,namespace-controller,serviceaccount-controller,serviceaccount-token-controller,root-ca-certificate-publisher-controller",
        `--service-account-private-key-file=${join(this.dir, "sa.key")}`,
        `--root-ca-file=${join(this.dir, "ca.crt")}`,
        "--leader-elect=false",
        "--bind-address=127.0.0.1",
        `--secure-port=${kcmPort}`,
        "--use-service-account-credentials=false",
      ]);
      this.startWatchdog();
      await this.waitFor(
        async () => (await this.kubectl(["get", "serviceaccount", "default", "-n", "default"])).code === 0,
        60_000,
        "default ServiceAccount",
      );
    }
  }

  /** Kills every component within ~1 s if this Node process dies, however it dies. */
  private startWatchdog(): void {
    this.watchdog?.kill("SIGKILL");
    const pids = this.processes
      .map((p) => p.proc.pid)
      .filter(Boolean)
      .join(" ");
    this.watchdog = spawn(
      "sh",
      ["-c", `while kill -0 ${process.pid} 2>/dev/null; do sleep 1; done; kill -9 ${pids} 2>/dev/null`],
      {
        detached: true,
        stdio: "ignore",
      },
    );
    this.watchdog.unref();
  }

  private async waitFor(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      for (const p of this.processes) {
        if (p.proc.exitCode !== null)
          throw new Error(
            `${p.name} exited (${p.proc.exitCode}) while waiting for ${what}; log: ${p.log}\n${tail(p.log)}`,
          );
      }
      if (await check().catch(() => false)) return;
      await new Promise((r) => setTimeout(r, 250));
    }
    throw new Error(
      `timed out after ${timeoutMs} ms waiting for ${what}; logs in ${this.dir}\n${tail(join(this.dir, "kube-apiserver.log"))}`,
    );
  }

  private async waitReady(): Promise<void> {
    const agent = new Agent({
      ca: readFileSync(join(this.dir, "ca.crt")),
      cert: readFileSync(join(this.dir, "admin.crt")),
      key: readFileSync(join(this.dir, "admin.key")),
    });
    await this.waitFor(
      () =>
        new Promise<boolean>((resolve) => {
          const req = request(`${this.server}/readyz`, { agent }, (res) => {
            res.resume();
            resolve(res.statusCode === 200);
          });
          req.on("error", () => resolve(false));
          req.end();
        }),
      60_000,
      "kube-apiserver /readyz",
    );
    agent.destroy();
  }

  kubeConfig(): KubeConfig {
    const kc = new KubeConfig();
    kc.loadFromFile(this.kubeconfigPath);
    return kc;
  }

  /** Runs the kubectl built with this control plane, as a user would. */
  kubectl(
    args: string[],
    opts: { input?: string; kubeconfig?: string } = {},
  ): Promise<{ code: number; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
      const p = spawn(this.kubectlPath, args, {
        env: { ...process.env, KUBECONFIG: opts.kubeconfig ?? this.kubeconfigPath },
      });
      let stdout = "";
      let stderr = "";
      p.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
      p.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
      p.on("close", (code) => resolve({ code: code ?? -1, stdout, stderr }));
      p.stdin.end(opts.input ?? "");
    });
  }

  /** A raw value from etcd (not through the API server), via etcd's JSON gateway. */
  async etcdGet(key: string): Promise<Buffer | undefined> {
    const res = await fetch(`${this.etcdUrl}/v3/kv/range`, {
      method: "POST",
      body: JSON.stringify({ key: Buffer.from(key).toString("base64") }),
    });
    const body = (await res.json()) as { kvs?: { value: string }[] };
    const v = body.kvs?.[0]?.value;
    return v === undefined ? undefined : Buffer.from(v, "base64");
  }

  /** The audit log, parsed. */
  auditEvents(): Record<string, unknown>[] {
    let text: string;
    try {
      text = readFileSync(this.auditLogPath, "utf8");
    } catch {
      return [];
    }
    return text
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  }

  /** Writes a kubeconfig that authenticates as a ServiceAccount (TokenRequest), for least-privilege tests. */
  async serviceAccountKubeconfig(namespace: string, name: string): Promise<string> {
    const r = await this.kubectl(["create", "token", name, "-n", namespace, "--duration=1h"]);
    if (r.code !== 0) throw new Error(`kubectl create token failed: ${r.stderr}`);
    const path = join(this.dir, `sa-${namespace}-${name}.kubeconfig`);
    writeFileSync(path, kubeconfigYaml(this.server, this.dir, { token: r.stdout.trim() }), { mode: 0o600 });
    return path;
  }

  logs(): string {
    return this.processes.map((p) => `${p.name}: ${p.log}`).join("\n");
  }

  /** Synchronous last resort, for process exit. */
  killNow(): void {
    for (const p of this.processes) if (p.proc.exitCode === null) p.proc.kill("SIGKILL");
  }

  /** Stops every component (TERM, then KILL after 5 s) and removes the state unless CSP_KEEP_STATE=1. */
  async stop(keepOnError = false): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    live.delete(this);
    for (const p of [...this.processes].reverse()) {
      if (p.proc.exitCode !== null || p.proc.signalCode !== null) continue;
      const exited = new Promise<void>((r) => p.proc.once("exit", () => r()));
      p.proc.kill("SIGTERM");
      const timer = setTimeout(() => p.proc.kill("SIGKILL"), 5000);
      await exited;
      clearTimeout(timer);
    }
    this.watchdog?.kill("SIGKILL");
    if (process.env["CSP_KEEP_STATE"] !== "1" && !keepOnError)
      rmSync(this.dir, { recursive: true, force: true });
  }
}

function tail(file: string, lines = 15): string {
  try {
    return readFileSync(file, "utf8").split("\n").slice(-lines).join("\n");
  } catch {
    return "";
  }
}
