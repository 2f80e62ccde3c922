// A real, local Kubernetes control plane (etcd + kube-apiserver + kube-controller-manager, all the versions
// built by controlplane/build.sh) for integration tests, `npm run cluster` and the demo. No kubelet, no
// container runtime: the operator only ever talks to the API, so this is the part of a cluster that matters,
// with real RBAC, admission, CEL validation, garbage collection, audit logging and encryption at rest.
//
// Every control plane lives in its own temp dir on its own loopback ports, so several can run at once. No
// process may outlive the Node process that started it: components are tracked in a module-level set and
// killed on exit/SIGINT/SIGTERM, and a tiny detached shell watchdog per control plane kills them (and removes
// the state dir) within ~2 s if Node itself dies without running any handler (SIGKILL, OOM killer).
import { execFile, execFileSync, spawn, type ChildProcess } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import {
  appendFileSync,
  closeSync,
  existsSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { readFile, rm, writeFile } from "node:fs/promises";
import { request as httpsRequest } from "node:https";
import { createServer, type AddressInfo, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { CoreV1Api, KubeConfig } from "@kubernetes/client-node";
import { stringify } from "yaml";

/** How to shape a control plane; every field is optional so the common case is `startControlPlane()`. */
export interface ControlPlaneOptions {
  /** An audit.k8s.io/v1 Policy object; default: every request at Metadata level (RequestReceived omitted). */
  auditPolicy?: object;
  /**
   * EncryptionConfiguration YAML text. When set the apiserver gets --encryption-provider-config=<file> and
   * --encryption-provider-config-automatic-reload=true, so a test can rotate keys by rewriting the file.
   */
  encryptionConfig?: string;
  /** Run kube-controller-manager (GC, namespace deletion, service accounts); default true. */
  controllerManager?: boolean;
  /** Appended last to the kube-apiserver command line, so they override the harness defaults. */
  extraApiServerFlags?: string[];
  /** Used in the temp dir name and in log lines, to tell concurrent control planes apart. */
  name?: string;
  /** Validity of kube-apiserver's serving certificate in days (default 365): a few days tests expiry findings. */
  servingCertDays?: number;
}

/** A running control plane and the handles a test needs to prove things against it. */
export interface ControlPlane {
  /** State dir: certs, etcd data, logs, kubeconfigs. Removed by stop() unless CSP_KEEP_STATE=1. */
  readonly dir: string;
  /** Admin kubeconfig (client cert CN=csp-admin, O=system:masters) with every cert embedded. */
  readonly kubeconfigPath: string;
  /** https://127.0.0.1:<port> */
  readonly server: string;
  /** http://127.0.0.1:<port>: etcd's client URL, plain HTTP on loopback. */
  readonly etcdUrl: string;
  /** The JSON-lines audit log the apiserver writes. */
  readonly auditLogPath: string;
  /** The EncryptionConfiguration the apiserver reads (rewrite it to rotate; auto-reload picks it up). */
  readonly encryptionConfigPath: string | undefined;
  /** Where etcd, kube-apiserver, kube-controller-manager and kubectl live. */
  readonly binDir: string;
  /** The kubectl built with the control plane (not whatever older kubectl is on PATH). */
  readonly kubectlPath: string;
  /** A fresh @kubernetes/client-node KubeConfig loaded from kubeconfigPath. */
  kubeConfig(): KubeConfig;
  /** Runs kubectl against this control plane (admin unless opts.kubeconfig); never throws on a non-zero exit. */
  kubectl(
    args: string[],
    opts?: { input?: string; kubeconfig?: string },
  ): Promise<{ code: number; stdout: string; stderr: string }>;
  /** The raw bytes etcd holds under key (e.g. /registry/secrets/ns/name), or undefined when absent. */
  etcdGet(key: string): Promise<Buffer | undefined>;
  /** Every complete JSON line of the audit log so far, parsed. */
  auditEvents(): Promise<Array<Record<string, unknown>>>;
  /** Mints a TokenRequest token for the ServiceAccount and writes a kubeconfig using it; returns its path. */
  serviceAccountKubeconfig(namespace: string, name: string): Promise<string>;
  /** Paths of each component's log file, for diagnosing a failure. */
  logs(): string;
  /**
   * Stops one component of the running control plane (SIGTERM, or SIGKILL when `kill`), e.g. to simulate an
   * API server or etcd outage; resolves once the process is gone. startComponent brings it back.
   */
  stopComponent(name: ComponentName, opts?: { kill?: boolean }): Promise<void>;
  /**
   * Starts a component stopped by stopComponent again, with its original flags, ports and data dir; resolves
   * once it is healthy (etcd /health, kube-apiserver /readyz, kube-controller-manager: its process is up).
   */
  startComponent(name: ComponentName): Promise<void>;
  /** Idempotent: kills every process, waits for them to exit, removes dir unless CSP_KEEP_STATE=1. */
  stop(): Promise<void>;
}

/** The components a control plane runs. */
export type ComponentName = "etcd" | "kube-apiserver" | "kube-controller-manager";

const START_TIMEOUT_MS = 60_000;
const STOP_GRACE_MS = 3_000;
const CONTROLLERS = [
  "garbage-collector-controller",
  "namespace-controller",
  "serviceaccount-controller",
  "serviceaccount-token-controller",
  "root-ca-certificate-publisher-controller",
  "clusterrole-aggregation-controller",
];
const DEFAULT_AUDIT_POLICY = {
  apiVersion: "audit.k8s.io/v1",
  kind: "Policy",
  omitStages: ["RequestReceived"],
  rules: [{ level: "Metadata" }],
};

let cachedBinDir: string | undefined;

/**
 * Runs `bash controlplane/build.sh` (which builds only what is missing and prints progress on stderr, inherited
 * here so a cold multi-minute build is never silent) and returns the bin dir it prints on its last line.
 * Memoized: the script is cheap on a warm cache but still forks several version checks.
 */
export function controlPlaneBinDir(): string {
  if (cachedBinDir !== undefined) return cachedBinDir;
  const script = fileURLToPath(new URL("./build.sh", import.meta.url));
  const out = execFileSync("bash", [script], { stdio: ["ignore", "pipe", "inherit"], encoding: "utf8" });
  const dir = out.trim().split("\n").at(-1)?.trim();
  if (!dir || !existsSync(join(dir, "kube-apiserver"))) {
    throw new Error(
      `controlplane/build.sh did not print a bin dir holding kube-apiserver (got ${JSON.stringify(dir)})`,
    );
  }
  cachedBinDir = dir;
  return dir;
}

/**
 * Starts etcd, kube-apiserver and (by default) kube-controller-manager with fresh certificates in a new temp
 * dir and resolves once /readyz answers 200 and, with the controller manager, the `default` ServiceAccount
 * exists. Retries on a loopback port race with another process. Throws with the apiserver log tail on failure.
 */
export async function startControlPlane(opts: ControlPlaneOptions = {}): Promise<ControlPlane> {
  const binDir = controlPlaneBinDir();
  for (let attempt = 1; ; attempt++) {
    const cp = new LocalControlPlane(binDir, opts);
    try {
      await cp.start();
      return cp;
    } catch (err) {
      const portRace = cp.lostPortRace();
      await cp.stop();
      if (portRace && attempt < 3) {
        log(cp.name, `a port was taken by another process, retrying (attempt ${attempt + 1})`);
        continue;
      }
      throw err;
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// Process bookkeeping: nothing may outlive this Node process.

const live = new Set<LocalControlPlane>();
const reservedPorts = new Set<number>();
let processHooksInstalled = false;

function installProcessHooks(): void {
  if (processHooksInstalled) return;
  processHooksInstalled = true;
  // 'exit' handlers must be synchronous: SIGKILL everything, remove state.
  process.on("exit", () => {
    for (const cp of live) cp.killSync();
  });
  // A listener replaces Node's default "die on signal", so we exit ourselves — unless someone else (mocha's
  // watch mode, cluster.ts) also listens, in which case we only stop our processes and leave exiting to them.
  const signals = [
    ["SIGINT", 130],
    ["SIGTERM", 143],
    ["SIGHUP", 129],
  ] as const;
  let stopping: Promise<void> | undefined;
  for (const [signal, code] of signals) {
    process.on(signal, () => {
      const othersHandleIt = process.listenerCount(signal) > 1;
      if (stopping && !othersHandleIt) process.exit(code); // second signal: don't wait (the exit hook kills)
      stopping ??= stopAll();
      if (!othersHandleIt) void stopping.finally(() => process.exit(code));
    });
  }
}

async function stopAll(): Promise<void> {
  await Promise.allSettled([...live].map((cp) => cp.stop()));
}

// Polls until the parent is gone (or a zombie nobody reaps), then SIGKILLs every pid listed in $d/pids and
// removes the state dir. Pids are appended to that file as components start, so late starters are covered.
const WATCHDOG_SCRIPT = `p=$1; d=$2; keep=$3
while kill -0 "$p" 2>/dev/null; do
  s=; read -r s < "/proc/$p/stat" 2>/dev/null; s=\${s##*) }; [ "\${s%% *}" = Z ] && break
  sleep 1
done
[ -s "$d/pids" ] && kill -9 $(cat "$d/pids") 2>/dev/null
if [ "$keep" != 1 ]; then sleep 1; rm -rf "$d"; fi`;

interface Component {
  readonly name: string;
  readonly args: string[];
  readonly child: ChildProcess;
  readonly logPath: string;
  /** Resolves with a description ("exit code 1", "signal SIGKILL", spawn error) when the process is gone. */
  readonly exited: Promise<string>;
  exit?: string;
}

class LocalControlPlane implements ControlPlane {
  readonly name: string;
  readonly dir: string;
  readonly kubeconfigPath: string;
  readonly auditLogPath: string;
  readonly encryptionConfigPath: string | undefined;
  readonly kubectlPath: string;
  server = "";
  etcdUrl = "";
  private readonly keepState = process.env.CSP_KEEP_STATE === "1";
  private readonly components: Component[] = [];
  private readonly ports: number[] = [];
  private watchdog: ChildProcess | undefined;
  private stopping: Promise<void> | undefined;
  private tls: { ca: string; cert: string; key: string } | undefined;

  constructor(
    readonly binDir: string,
    private readonly opts: ControlPlaneOptions,
  ) {
    this.name = (opts.name ?? "test").replace(/[^A-Za-z0-9_.-]/g, "-");
    this.dir = mkdtempSync(join(tmpdir(), `csp-cp-${this.name}-`));
    this.kubeconfigPath = join(this.dir, "admin.kubeconfig");
    this.auditLogPath = join(this.dir, "audit.log");
    this.encryptionConfigPath =
      opts.encryptionConfig === undefined ? undefined : join(this.dir, "encryption-config.yaml");
    this.kubectlPath = join(binDir, "kubectl");
    writeFileSync(join(this.dir, "pids"), "");
    installProcessHooks();
    live.add(this);
    this.watchdog = spawn(
      "sh",
      [
        "-c",
        WATCHDOG_SCRIPT,
        "csp-controlplane-watchdog",
        String(process.pid),
        this.dir,
        this.keepState ? "1" : "0",
      ],
      { detached: true, stdio: "ignore" },
    );
    this.watchdog.on("error", () => {}); // no sh is fatal elsewhere long before this matters
    this.watchdog.unref();
  }

  async start(): Promise<void> {
    const t0 = performance.now();
    log(this.name, `starting in ${this.dir}`);
    const [etcdClient, etcdPeer, apiserver, kcm] = await this.allocatePorts(4);
    this.server = `https://127.0.0.1:${apiserver}`;
    this.etcdUrl = `http://127.0.0.1:${etcdClient}`;
    await this.writeCertsAndConfigs();

    const etcdPeerUrl = `http://127.0.0.1:${etcdPeer}`;
    this.spawnComponent("etcd", [
      "--name=csp",
      `--data-dir=${join(this.dir, "etcd")}`,
      `--listen-client-urls=${this.etcdUrl}`,
      `--advertise-client-urls=${this.etcdUrl}`,
      `--listen-peer-urls=${etcdPeerUrl}`,
      `--initial-advertise-peer-urls=${etcdPeerUrl}`,
      `--initial-cluster=csp=${etcdPeerUrl}`,
      "--initial-cluster-state=new",
      "--unsafe-no-fsync=true",
      "--log-level=warn",
    ]);
    await this.waitFor("etcd /health", async () => {
      const res = await fetch(`${this.etcdUrl}/health`, { signal: AbortSignal.timeout(2_000) });
      return res.ok && ((await res.json()) as { health?: string }).health === "true";
    });

    const f = (file: string): string => join(this.dir, file);
    this.spawnComponent("kube-apiserver", [
      `--etcd-servers=${this.etcdUrl}`,
      "--bind-address=127.0.0.1",
      "--advertise-address=127.0.0.1",
      `--secure-port=${apiserver}`,
      `--tls-cert-file=${f("apiserver.crt")}`,
      `--tls-private-key-file=${f("apiserver.key")}`,
      `--client-ca-file=${f("ca.crt")}`,
      "--authorization-mode=RBAC",
      "--allow-privileged=true",
      "--service-account-issuer=https://kubernetes.default.svc",
      `--service-account-key-file=${f("sa.pub")}`,
      `--service-account-signing-key-file=${f("sa.key")}`,
      "--service-cluster-ip-range=10.0.0.0/24",
      `--audit-log-path=${this.auditLogPath}`,
      `--audit-policy-file=${f("audit-policy.yaml")}`,
      "--audit-log-format=json",
      "--profiling=false",
      ...(this.encryptionConfigPath === undefined
        ? []
        : [
            `--encryption-provider-config=${this.encryptionConfigPath}`,
            "--encryption-provider-config-automatic-reload=true",
          ]),
      ...(this.opts.extraApiServerFlags ?? []),
    ]);
    await this.waitFor("kube-apiserver /readyz", async () => (await this.httpsGet("/readyz")).status === 200);
    const withKcm = this.opts.controllerManager ?? true;
    if (withKcm) {
      // Only after /readyz: it exits when its delegated authn cannot read kube-system config yet (RBAC bootstrap).
      this.spawnComponent("kube-controller-manager", [
        `--kubeconfig=${f("controller-manager.kubeconfig")}`,
        `--authentication-kubeconfig=${f("controller-manager.kubeconfig")}`,
        `--authorization-kubeconfig=${f("controller-manager.kubeconfig")}`,
        "--use-service-account-credentials=true",
        `--controllers=${CONTROLLERS.join(",")}`,
        `--service-account-private-key-file=${f("sa.key")}`,
        `--root-ca-file=${f("ca.crt")}`,
        "--leader-elect=false",
        "--bind-address=127.0.0.1",
        `--secure-port=${kcm}`,
      ]);
      const core = this.kubeConfig().makeApiClient(CoreV1Api);
      await this.waitFor("the default ServiceAccount in namespace default", async () => {
        await core.readNamespacedServiceAccount({ name: "default", namespace: "default" });
        return true;
      });
    }
    log(this.name, `ready in ${((performance.now() - t0) / 1000).toFixed(1)} s at ${this.server}`);
  }

  /** True when a component died because its port was taken between allocation and bind. */
  lostPortRace(): boolean {
    return this.components.some((c) => {
      if (c.exit === undefined) return false;
      try {
        return /address already in use/i.test(readFileSync(c.logPath, "utf8"));
      } catch {
        return false;
      }
    });
  }

  kubeConfig(): KubeConfig {
    const kc = new KubeConfig();
    kc.loadFromFile(this.kubeconfigPath);
    return kc;
  }

  kubectl(
    args: string[],
    opts: { input?: string; kubeconfig?: string } = {},
  ): Promise<{ code: number; stdout: string; stderr: string }> {
    return new Promise((resolve, reject) => {
      const child = spawn(
        this.kubectlPath,
        [
          `--kubeconfig=${opts.kubeconfig ?? this.kubeconfigPath}`,
          `--cache-dir=${join(this.dir, "kubectl-cache")}`,
          ...args,
        ],
        { stdio: ["pipe", "pipe", "pipe"] },
      );
      let stdout = "";
      let stderr = "";
      child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
      child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
      child.on("error", reject);
      child.on("close", (code, signal) => resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr }));
      child.stdin.on("error", () => {}); // kubectl may exit before reading its input
      child.stdin.end(opts.input ?? "");
    });
  }

  async etcdGet(key: string): Promise<Buffer | undefined> {
    const res = await fetch(`${this.etcdUrl}/v3/kv/range`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ key: Buffer.from(key).toString("base64") }),
    });
    if (!res.ok) throw new Error(`etcd range ${key}: HTTP ${res.status} ${await res.text()}`);
    const body = (await res.json()) as { kvs?: Array<{ value?: string }> };
    const kv = body.kvs?.[0];
    if (kv === undefined) return undefined;
    return Buffer.from(kv.value ?? "", "base64");
  }

  async auditEvents(): Promise<Array<Record<string, unknown>>> {
    let text: string;
    try {
      text = await readFile(this.auditLogPath, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
      throw err;
    }
    const events: Array<Record<string, unknown>> = [];
    for (const line of text.split("\n")) {
      if (!line.trim()) continue;
      try {
        events.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        // the apiserver may be mid-write on the last line
      }
    }
    return events;
  }

  async serviceAccountKubeconfig(namespace: string, name: string): Promise<string> {
    const core = this.kubeConfig().makeApiClient(CoreV1Api);
    const tr = await core.createNamespacedServiceAccountToken({
      name,
      namespace,
      body: { spec: { audiences: [], expirationSeconds: 24 * 3600 } },
    });
    const token = tr.status?.token;
    if (!token) throw new Error(`TokenRequest for ${namespace}/${name} returned no token`);
    const user = `system:serviceaccount:${namespace}:${name}`;
    const path = join(this.dir, `sa-${namespace}-${name}.kubeconfig`);
    await writeFile(path, this.kubeconfigYaml(user, { token }), { mode: 0o600 });
    return path;
  }

  logs(): string {
    const lines = [`control plane "${this.name}" (${this.server}), state dir ${this.dir}:`];
    for (const c of this.components) lines.push(`  ${c.name}: ${c.logPath}${c.exit ? ` (${c.exit})` : ""}`);
    lines.push(`  audit log: ${this.auditLogPath}`);
    if (!this.keepState)
      lines.push("  (removed when the control plane stops; set CSP_KEEP_STATE=1 to keep it)");
    return lines.join("\n");
  }

  stop(): Promise<void> {
    return (this.stopping ??= this.doStop());
  }

  /** For the 'exit' hook: no awaiting possible, so SIGKILL and remove state synchronously. */
  killSync(): void {
    for (const c of this.components) if (c.exit === undefined) kill(c.child, "SIGKILL");
    if (!this.keepState) rmSync(this.dir, { recursive: true, force: true, maxRetries: 3 });
    if (this.watchdog) kill(this.watchdog, "SIGKILL");
    live.delete(this);
  }

  private async doStop(): Promise<void> {
    // One by one in reverse start order: an apiserver whose etcd is already gone waits out the whole grace
    // period (~3 s), while with etcd still up it shuts down in ~1 s.
    for (const c of [...this.components].reverse()) await terminate(c);
    if (this.watchdog) kill(this.watchdog, "SIGKILL");
    if (!this.keepState) await rm(this.dir, { recursive: true, force: true, maxRetries: 3 });
    else log(this.name, `state kept in ${this.dir}`);
    for (const p of this.ports) reservedPorts.delete(p);
    live.delete(this);
  }

  private async allocatePorts(n: number): Promise<number[]> {
    // Listening on port 0 lets the kernel pick free ports; all are held open together so they differ, and ports
    // of other control planes in this process are skipped. A race with another process is retried by the caller.
    while (this.ports.length < n) {
      const servers = await Promise.all(
        Array.from({ length: n - this.ports.length }, () => listenOnFreePort()),
      );
      for (const s of servers) {
        const port = (s.address() as AddressInfo).port;
        if (!reservedPorts.has(port)) {
          reservedPorts.add(port);
          this.ports.push(port);
        }
      }
      await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
    }
    return this.ports;
  }

  private async writeCertsAndConfigs(): Promise<void> {
    const f = (file: string): string => join(this.dir, file);
    const keys = ["ca", "apiserver", "admin", "controller-manager", "sa"];
    for (const k of keys) {
      // EC P-256: generation is instant, unlike RSA, and every component accepts it (SA tokens become ES256).
      const { privateKey, publicKey } = generateKeyPairSync("ec", {
        namedCurve: "P-256",
        privateKeyEncoding: { type: "pkcs8", format: "pem" },
        publicKeyEncoding: { type: "spki", format: "pem" },
      });
      writeFileSync(f(`${k}.key`), privateKey, { mode: 0o600 });
      if (k === "sa") writeFileSync(f("sa.pub"), publicKey);
    }
    // Our own config so the machine's openssl.cnf defaults cannot add or clash with extensions.
    writeFileSync(
      f("openssl.cnf"),
      [
        "[req]",
        "distinguished_name = dn",
        "[dn]",
        "[ca]",
        "basicConstraints = critical,CA:TRUE",
        "keyUsage = critical,keyCertSign,cRLSign,digitalSignature",
        "subjectKeyIdentifier = hash",
        "[server]",
        "basicConstraints = critical,CA:FALSE",
        "keyUsage = critical,digitalSignature",
        "extendedKeyUsage = serverAuth",
        "authorityKeyIdentifier = keyid",
        "subjectAltName = IP:127.0.0.1,DNS:localhost,IP:10.0.0.1,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc",
        "[client]",
        "basicConstraints = critical,CA:FALSE",
        "keyUsage = critical,digitalSignature",
        "extendedKeyUsage = clientAuth",
        "authorityKeyIdentifier = keyid",
        "",
      ].join("\n"),
    );
    const req = ["req", "-config", f("openssl.cnf"), "-new", "-days", "365"];
    await openssl(
      [...req, "-x509", "-key", f("ca.key"), "-subj", "/CN=csp-operator-test-ca"].concat([
        "-extensions",
        "ca",
        "-out",
        f("ca.crt"),
      ]),
    );
    const leaf = (name: string, subject: string, ext: string, days?: number): Promise<void> =>
      openssl(
        [
          ...(days === undefined ? req : [...req.slice(0, -1), String(days)]),
          "-key",
          f(`${name}.key`),
          "-subj",
          subject,
          "-CA",
          f("ca.crt"),
          "-CAkey",
          f("ca.key"),
        ].concat(["-extensions", ext, "-out", f(`${name}.crt`)]),
      );
    await Promise.all([
      leaf("apiserver", "/CN=kube-apiserver", "server", this.opts.servingCertDays),
      leaf("admin", "/O=system:masters/CN=csp-admin", "client"),
      leaf("controller-manager", "/CN=system:kube-controller-manager", "client"),
    ]);

    const read = (file: string): string => readFileSync(f(file), "utf8");
    this.tls = { ca: read("ca.crt"), cert: read("admin.crt"), key: read("admin.key") };
    const clientCert = (name: string): Record<string, string> => ({
      "client-certificate-data": b64(read(`${name}.crt`)),
      "client-key-data": b64(read(`${name}.key`)),
    });
    writeFileSync(this.kubeconfigPath, this.kubeconfigYaml("csp-admin", clientCert("admin")), {
      mode: 0o600,
    });
    writeFileSync(
      f("controller-manager.kubeconfig"),
      this.kubeconfigYaml("system:kube-controller-manager", clientCert("controller-manager")),
      { mode: 0o600 },
    );
    writeFileSync(f("audit-policy.yaml"), stringify(this.opts.auditPolicy ?? DEFAULT_AUDIT_POLICY));
    if (this.encryptionConfigPath !== undefined && this.opts.encryptionConfig !== undefined) {
      writeFileSync(this.encryptionConfigPath, this.opts.encryptionConfig, { mode: 0o600 });
    }
  }

  private kubeconfigYaml(user: string, credentials: Record<string, string>): string {
    const cluster = `csp-${this.name}`;
    return stringify({
      apiVersion: "v1",
      kind: "Config",
      clusters: [
        {
          name: cluster,
          cluster: { server: this.server, "certificate-authority-data": b64(this.tlsOrThrow().ca) },
        },
      ],
      users: [{ name: user, user: credentials }],
      contexts: [{ name: `${user}@${cluster}`, context: { cluster, user } }],
      "current-context": `${user}@${cluster}`,
    });
  }

  private tlsOrThrow(): { ca: string; cert: string; key: string } {
    if (!this.tls) throw new Error("control plane certificates are not written yet");
    return this.tls;
  }

  private spawnComponent(name: string, args: string[]): void {
    if (this.stopping) throw new Error(`control plane "${this.name}" was stopped while starting`);
    const logPath = join(this.dir, `${name}.log`);
    const fd = openSync(logPath, "a");
    let child: ChildProcess;
    try {
      // detached: own process group, so a terminal's Ctrl-C reaches only Node, which then stops us in order.
      child = spawn(join(this.binDir, name), args, {
        cwd: this.dir,
        stdio: ["ignore", fd, fd],
        detached: true,
      });
    } finally {
      closeSync(fd);
    }
    if (child.pid !== undefined) appendFileSync(join(this.dir, "pids"), `${child.pid}\n`);
    const component: Component = {
      name,
      args,
      child,
      logPath,
      exited: new Promise<string>((resolve) => {
        child.once("error", (err) => resolve((component.exit = `failed to start: ${err.message}`)));
        child.once("exit", (code, signal) =>
          resolve((component.exit = signal ? `killed by ${signal}` : `exited with code ${code}`)),
        );
      }),
    };
    const previous = this.components.findIndex((c) => c.name === name);
    if (previous >= 0) this.components[previous] = component;
    else this.components.push(component);
  }

  async stopComponent(name: ComponentName, opts: { kill?: boolean } = {}): Promise<void> {
    const c = this.components.find((x) => x.name === name);
    if (!c) throw new Error(`control plane "${this.name}" runs no ${name}`);
    if (c.exit !== undefined) return;
    if (opts.kill) {
      kill(c.child, "SIGKILL");
      await c.exited;
    } else await terminate(c);
    log(this.name, `${name} stopped (${c.exit})`);
  }

  async startComponent(name: ComponentName): Promise<void> {
    const c = this.components.find((x) => x.name === name);
    if (!c) throw new Error(`control plane "${this.name}" runs no ${name}`);
    if (c.exit === undefined) throw new Error(`${name} is still running`);
    const t0 = performance.now();
    this.spawnComponent(name, c.args);
    const restarted = this.components.find((x) => x.name === name)!;
    const deadline = performance.now() + START_TIMEOUT_MS;
    const healthy = async (): Promise<boolean> => {
      if (name === "etcd") {
        const res = await fetch(`${this.etcdUrl}/health`, { signal: AbortSignal.timeout(2_000) });
        return res.ok && ((await res.json()) as { health?: string }).health === "true";
      }
      if (name === "kube-apiserver") return (await this.httpsGet("/readyz")).status === 200;
      return true;
    };
    for (;;) {
      if (restarted.exit !== undefined)
        throw new Error(`${name} ${restarted.exit} while restarting\n${this.tail(restarted.logPath)}`);
      try {
        if (await healthy()) break;
      } catch {
        // not up yet
      }
      if (performance.now() > deadline)
        throw new Error(
          `${name} not healthy ${START_TIMEOUT_MS / 1000} s after a restart\n${this.tail(restarted.logPath)}`,
        );
      await sleep(100);
    }
    log(this.name, `${name} restarted in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  }

  /** Polls check until it returns true; fails fast when a component dies or stop() is called. */
  private async waitFor(what: string, check: () => Promise<boolean>): Promise<void> {
    const deadline = performance.now() + START_TIMEOUT_MS;
    let lastError = "";
    for (;;) {
      if (this.stopping)
        throw new Error(`control plane "${this.name}" was stopped while waiting for ${what}`);
      const dead = this.components.find((c) => c.exit !== undefined);
      if (dead)
        throw new Error(`${dead.name} ${dead.exit} while waiting for ${what}\n${this.tail(dead.logPath)}`);
      try {
        if (await check()) return;
      } catch (err) {
        lastError = err instanceof Error ? err.message.split("\n")[0]! : String(err);
      }
      if (performance.now() > deadline) {
        const apiserverLog = join(this.dir, "kube-apiserver.log");
        throw new Error(
          `timed out after ${START_TIMEOUT_MS / 1000} s waiting for ${what}` +
            (lastError ? ` (last error: ${lastError})` : "") +
            `\n${this.tail(existsSync(apiserverLog) ? apiserverLog : join(this.dir, "etcd.log"))}`,
        );
      }
      await sleep(100);
    }
  }

  private tail(path: string, lines = 40): string {
    try {
      return `--- last lines of ${path} ---\n${readFileSync(path, "utf8").trimEnd().split("\n").slice(-lines).join("\n")}`;
    } catch {
      return `(no log at ${path})`;
    }
  }

  private httpsGet(path: string): Promise<{ status: number; body: string }> {
    const { ca, cert, key } = this.tlsOrThrow();
    const url = new URL(path, this.server);
    return new Promise((resolve, reject) => {
      const req = httpsRequest(
        {
          hostname: url.hostname,
          port: url.port,
          path: url.pathname,
          ca,
          cert,
          key,
          agent: false,
          timeout: 5_000,
        },
        (res) => {
          let body = "";
          res.setEncoding("utf8");
          res.on("data", (chunk: string) => (body += chunk));
          res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
          res.on("error", reject);
        },
      );
      req.on("timeout", () => req.destroy(new Error(`GET ${path}: timed out`)));
      req.on("error", reject);
      req.end();
    });
  }
}

function listenOnFreePort(): Promise<Server> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => resolve(s));
  });
}

/** SIGTERM, then SIGKILL after a grace period; resolves once the process is gone. */
async function terminate(c: Component): Promise<void> {
  if (c.exit !== undefined || c.child.pid === undefined) return;
  kill(c.child, "SIGTERM");
  const timer = setTimeout(() => kill(c.child, "SIGKILL"), STOP_GRACE_MS);
  await c.exited;
  clearTimeout(timer);
}

function kill(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    child.kill(signal);
  } catch {
    // already gone
  }
}

function openssl(args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile("openssl", args, (err, _stdout, stderr) =>
      err ? reject(new Error(`openssl ${args.join(" ")} failed: ${stderr || err.message}`)) : resolve(),
    );
  });
}

function b64(text: string): string {
  return Buffer.from(text).toString("base64");
}

function log(name: string, message: string): void {
  process.stderr.write(`[controlplane ${name}] ${message}\n`);
}
