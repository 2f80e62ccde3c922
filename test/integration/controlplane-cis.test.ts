/** In-cluster CIS checks against the real local control plane (built on first use by controlplane/build.sh). */
import { expect } from "chai";
import { execFileSync } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import { networkInterfaces, tmpdir } from "node:os";
import { join } from "node:path";
import { Agent } from "../../src/agent/agent.js";
import { runPolicyChecks } from "../../src/cis/checks/policies.js";
import { runCheckCommand } from "../../src/cis/command.js";
import { loadKubeConfig } from "../../src/cluster/client.js";
import { PolicyObjectReader } from "../../src/cluster/cispolicies.js";
import { ControlPlaneReader } from "../../src/cluster/controlplane.js";
import { RestClient } from "../../src/cluster/rest.js";
import { controlPlaneArea } from "../../src/controller/controlplane.js";
import { fileIntegrityArea } from "../../src/controller/fileintegrity.js";
import { silentLogger } from "../../src/observability/logger.js";
import { Operator } from "../../src/controller/manager.js";
import { useControlPlane } from "../support/controlplane.js";
import { installCrd } from "../support/crd.js";
import { eventually } from "../support/eventually.js";
import { kubectlOk } from "../support/kubectl.js";

interface CheckReport {
  results: { id: string; status: string; evidence: string }[];
}

interface Status {
  conditions?: { type: string; status: string; reason: string; message: string }[];
  findings?: { id: string; resource: string; severity: string; message: string }[];
}

/** An address the API server may proxy to: its node proxy refuses loopback and link-local addresses. */
function proxyableAddress(): string | undefined {
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? [])
      if (a.family === "IPv4" && !a.internal && !a.address.startsWith("169.254.")) return a.address;
  }
  return undefined;
}

function apiServerPod(name: string, flags: string[]) {
  return controlPlanePod("kube-apiserver", name, flags);
}

function controlPlanePod(component: string, name: string, flags: string[]) {
  const image =
    component === "etcd" ? "registry.k8s.io/etcd:3.6.6-0" : `registry.k8s.io/${component}:v1.36.3`;
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace: "kube-system", labels: { component, tier: "control-plane" } },
    spec: {
      automountServiceAccountToken: false,
      containers: [{ name: component, image, command: [component, ...flags] }],
    },
  };
}

describe("controlPlane area: in-cluster CIS checks (real API server)", function () {
  this.timeout(120_000);
  const cp = useControlPlane({ name: "cis-incluster" });
  let operator: Operator | undefined;

  const ok = kubectlOk(cp);
  const status = async (name: string): Promise<Status> =>
    (JSON.parse(await ok(["get", "csp", name, "-o", "json"])) as { status?: Status }).status ?? {};
  const condition = (s: Status) => s.conditions?.find((c) => c.type === "ControlPlaneHardened");
  /** A merge patch of the `cis` policy; `patch` is JSON text. */
  const patchCis = (patch: string) => ok(["patch", "csp", "cis", "--type=merge", "-p", patch]);

  before(async function () {
    await installCrd(cp());
    const kc = loadKubeConfig(cp().kubeconfigPath);
    const area = controlPlaneArea({ maxNodes: 5, timeoutMs: 5_000, concurrency: 2, reuseMs: 0 }, 1_000);
    operator = new Operator(kc, { workers: 1, resyncMs: 600_000, areas: [area] }, silentLogger());
    await operator.start();
    await ok(
      ["apply", "-f", "-"],
      JSON.stringify({
        apiVersion: "security.csp-operator.io/v1alpha1",
        kind: "ClusterSecurityPolicy",
        metadata: { name: "cis" },
        spec: { mode: "Audit", controlPlane: {} },
      }),
    );
  });

  after(async () => {
    await operator?.stop();
  });

  it("reports ControlPlaneHardened Unknown/NoMirrorPod when the API server is not a static pod", async () => {
    const c = await eventually("the ControlPlaneHardened condition", async () =>
      condition(await status("cis")),
    );
    expect(c.status).to.equal("Unknown");
    expect(c.reason).to.equal("NoMirrorPod");
    expect(c.message).to.include("component=kube-apiserver");
    expect(c.message).to.include("no Node objects");
  });

  it("reports unsafe kube-apiserver flags of a labelled pod in kube-system, and clears them once fixed", async () => {
    const flags = [
      "--anonymous-auth=true",
      "--profiling=false",
      "--profiling=true",
      "--authorization-mode=Node,RBAC",
    ];
    await ok(["apply", "-f", "-"], JSON.stringify(apiServerPod("kube-apiserver-cp1", flags)));
    const bad = await eventually("findings of the unsafe pod", async () => {
      const s = await status("cis");
      const ids = (s.findings ?? [])
        .filter((f) => f.resource === "Pod/kube-system/kube-apiserver-cp1")
        .map((f) => f.id);
      return ids.includes("CIS-1.2.1") && ids.includes("CIS-1.2.15") ? s : undefined;
    });
    expect(condition(bad)).to.include({ status: "False", reason: "ChecksFailed" });
    const profiling = bad.findings!.find((f) => f.id === "CIS-1.2.15")!;
    expect(profiling.message).to.match(/true/);

    await ok(["delete", "pod", "-n", "kube-system", "kube-apiserver-cp1", "--wait=true"]);
    await ok(
      ["apply", "-f", "-"],
      JSON.stringify(apiServerPod("kube-apiserver-cp1", ["--anonymous-auth=false", "--profiling=false"])),
    );
    await eventually("the fixed findings to disappear", async () => {
      const ids = (await status("cis")).findings?.map((f) => f.id) ?? [];
      return !ids.includes("CIS-1.2.1") && !ids.includes("CIS-1.2.15");
    });
    await ok(["delete", "pod", "-n", "kube-system", "kube-apiserver-cp1", "--wait=true"]);
  });

  it("reports unsafe controller manager, scheduler and etcd flags of their mirror pods, and clears them once fixed", async () => {
    const unsafe: [string, string, string[]][] = [
      [
        "kube-controller-manager",
        "kube-controller-manager-cp1",
        ["--profiling=false", "--profiling", "--bind-address=0.0.0.0"],
      ],
      ["kube-scheduler", "kube-scheduler-cp1", ["--bind-address", "10.0.0.1"]],
      [
        "etcd",
        "etcd-cp1",
        [
          "--cert-file=/pki/server.crt",
          "--key-file=/pki/server.key",
          "--client-cert-auth=false",
          "--auto-tls",
        ],
      ],
    ];
    const safe: Record<string, string[]> = {
      "kube-controller-manager": [
        "--profiling=false",
        "--bind-address=127.0.0.1",
        "--use-service-account-credentials",
      ],
      "kube-scheduler": ["--profiling=false", "--bind-address=127.0.0.1"],
      etcd: [
        "--cert-file=/pki/server.crt",
        "--key-file=/pki/server.key",
        "--listen-client-urls=https://127.0.0.1:2379",
        "--client-cert-auth",
        "--trusted-ca-file=/pki/etcd-ca.crt",
      ],
    };
    const expected: [string, string][] = [
      ["CIS-1.3.2", "Pod/kube-system/kube-controller-manager-cp1"],
      ["CIS-1.3.7", "Pod/kube-system/kube-controller-manager-cp1"],
      ["CIS-1.4.2", "Pod/kube-system/kube-scheduler-cp1"],
      ["CIS-2.2", "Pod/kube-system/etcd-cp1"],
      ["CIS-2.3", "Pod/kube-system/etcd-cp1"],
    ];
    for (const [component, name, flags] of unsafe)
      await ok(["apply", "-f", "-"], JSON.stringify(controlPlanePod(component, name, flags)));
    const has = (s: Status, [id, resource]: [string, string]) =>
      (s.findings ?? []).some((f) => f.id === id && f.resource === resource);
    const bad = await eventually("findings of the unsafe mirror pods", async () => {
      const s = await status("cis");
      return expected.every((e) => has(s, e)) ? s : undefined;
    });
    expect(condition(bad)).to.include({ status: "False", reason: "ChecksFailed" });
    const etcdAuth = bad.findings!.find((f) => f.id === "CIS-2.2")!;
    expect(etcdAuth.severity).to.equal("Critical");
    expect(etcdAuth.message).to.contain("--client-cert-auth=false");

    for (const [component, name] of unsafe) {
      await ok(["delete", "pod", "-n", "kube-system", name, "--wait=true"]);
      await ok(["apply", "-f", "-"], JSON.stringify(controlPlanePod(component, name, safe[component]!)));
    }
    // Judged on the fixed pods (not in the moment they are deleted and not yet back: no etcd pod at all).
    const fixed = await eventually("the fixed findings to disappear", async () => {
      const s = await status("cis");
      const etcdSeen = has(s, ["CIS-2.7", "Pod/kube-system/etcd-cp1"]);
      return expected.some((e) => has(s, e)) || !etcdSeen ? undefined : s;
    });
    // What the API cannot show stays Unknown with the reason, never Pass: etcd's CA files for 2.7.
    const ca = fixed.findings?.find((f) => f.id === "CIS-2.7" && f.resource === "Pod/kube-system/etcd-cp1");
    expect(ca?.severity).to.equal("Info");
    for (const [, name] of unsafe) await ok(["delete", "pod", "-n", "kube-system", name, "--wait=true"]);
  });

  it("reads what 5.3.2 and 5.7.4 need from the API: NetworkPolicies of any owner, objects in default", async () => {
    const reader = new ControlPlaneReader(
      loadKubeConfig(cp().kubeconfigPath),
      silentLogger(),
      () => undefined,
    );
    const np = (ns: string) =>
      JSON.stringify({
        apiVersion: "networking.k8s.io/v1",
        kind: "NetworkPolicy",
        metadata: { name: "deny", namespace: ns },
        spec: { podSelector: {}, policyTypes: ["Ingress"] },
      });
    for (const ns of ["cis-np-a", "cis-np-b"]) await ok(["create", "namespace", ns]);
    await ok(["apply", "-f", "-"], np("cis-np-a"));
    await ok(
      ["apply", "-f", "-"],
      JSON.stringify(controlPlanePod("kube-scheduler", "stray-in-default", [])).replace(
        '"kube-system"',
        '"default"',
      ),
    );
    const judge = async () => {
      const extra = await reader.policyObjects();
      const namespaces = ["cis-np-a", "cis-np-b"].map((name) => ({ name, labels: {} }));
      return Object.fromEntries(runPolicyChecks({ namespaces, ...extra }).map((r) => [r.id, r]));
    };
    const before = await judge();
    expect(before["5.3.2"]).to.deep.include({ status: "Fail" });
    expect(before["5.3.2"]!.evidence).to.contain(": cis-np-b").and.not.contain("cis-np-a");
    expect(before["5.7.4"]!.evidence).to.contain("Pod/stray-in-default");
    await ok(["apply", "-f", "-"], np("cis-np-b"));
    await ok(["delete", "pod", "-n", "default", "stray-in-default", "--wait=true"]);
    const after = await judge();
    expect(after["5.3.2"]!.status).to.equal("Pass");
    expect(after["5.7.4"]!.status).to.equal("Pass");
    expect(after["5.1.1"]!.status).to.equal("Unknown"); // RBAC findings were not given
  });

  it("spec.controlPlane.policies.enabled reports the CIS 5.x results with their ids; off by default", async () => {
    const cis5 = async () =>
      ((await status("cis")).findings ?? []).filter((f) => f.id.startsWith("CIS-5.")).map((f) => f.id);
    expect(await cis5(), "no 5.x results unless asked for").to.deep.equal([]);
    await ok(
      ["apply", "-f", "-"],
      JSON.stringify(controlPlanePod("kube-scheduler", "stray-5x", [])).replace('"kube-system"', '"default"'),
    );
    await patchCis('{"spec":{"controlPlane":{"policies":{"enabled":true}}}}');
    const on = await eventually("the 5.7.4 finding", async () => {
      const f = ((await status("cis")).findings ?? []).find((x) => x.id === "CIS-5.7.4");
      return f;
    });
    expect(on.resource).to.equal("Cluster/kubernetes");
    expect(on.message).to.contain("Pod/stray-5x");
    await patchCis('{"spec":{"controlPlane":{"policies":{"enabled":false}}}}');
    await eventually("the 5.x results to go", async () => (await cis5()).length === 0);
    await ok(["delete", "pod", "-n", "default", "stray-5x", "--wait=true"]);
  });

  it("5.4.1 on request: a Pod taking a Secret into env is a finding naming the variable, never its value; gone with the Pod", async () => {
    const rejected = await cp().kubectl([
      "patch",
      "csp",
      "cis",
      "--type=merge",
      "-p",
      '{"spec":{"controlPlane":{"policies":{"secretEnvironmentVariables":true}}}}',
    ]);
    expect(rejected.code, "secretEnvironmentVariables without enabled is refused").to.not.equal(0);
    expect(rejected.stderr).to.contain(
      "secretEnvironmentVariables needs spec.controlPlane.policies.enabled: true",
    );
    await ok(["create", "namespace", "cis-env"]);
    const pod = {
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "web", namespace: "cis-env" },
      spec: {
        containers: [
          {
            name: "app",
            image: "registry.k8s.io/pause:3.10",
            env: [
              { name: "DB_PASSWORD", valueFrom: { secretKeyRef: { name: "db", key: "password" } } },
              { name: "PLAIN", value: "not-a-secret-literal" },
            ],
          },
        ],
      },
    };
    await ok(["apply", "-f", "-"], JSON.stringify(pod));
    const cis541 = async () => ((await status("cis")).findings ?? []).filter((f) => f.id === "CIS-5.4.1");
    await patchCis('{"spec":{"controlPlane":{"policies":{"enabled":true}}}}');
    // Asked for the 5.x checks, not for the Pod scan: no 5.4.1 at all.
    await eventually("the 5.x results", async () =>
      ((await status("cis")).findings ?? []).some((f) => f.id.startsWith("CIS-5.")),
    );
    expect(await cis541()).to.deep.equal([]);
    await patchCis('{"spec":{"controlPlane":{"policies":{"secretEnvironmentVariables":true}}}}');
    const found = await eventually("the 5.4.1 finding on the Pod", async () =>
      (await cis541()).find((f) => f.resource === "Pod/cis-env/web"),
    );
    expect(found.severity).to.equal("Low");
    expect(found.message).to.contain("container app: env DB_PASSWORD from Secret db key password");
    // Pages: a scan one Pod a page follows every continue token and misses no workload.
    for (const name of ["web-2", "web-3"])
      await ok(["apply", "-f", "-"], JSON.stringify({ ...pod, metadata: { ...pod.metadata, name } }));
    const paged = await new PolicyObjectReader(
      new RestClient(loadKubeConfig(cp().kubeconfigPath)),
      0,
      1,
    ).secretEnvironment();
    expect(paged.workloads.map((w) => w.resource).filter((r) => r.startsWith("Pod/cis-env/"))).to.deep.equal([
      "Pod/cis-env/web",
      "Pod/cis-env/web-2",
      "Pod/cis-env/web-3",
    ]);
    // Pages over a byte cap are asked for again from the same continue token with fewer pods: the real
    // API server takes the smaller limit with the token, and no Pod is skipped or counted twice.
    const all = await new PolicyObjectReader(
      new RestClient(loadKubeConfig(cp().kubeconfigPath)),
    ).secretEnvironment();
    const capped = await new PolicyObjectReader(
      new RestClient(loadKubeConfig(cp().kubeconfigPath)),
      0,
      50,
      1024,
    ).secretEnvironment();
    expect(capped).to.deep.equal(all);
    expect(capped.podsScanned).to.be.at.least(3);
    for (const name of ["web-2", "web-3"]) await ok(["delete", "pod", "-n", "cis-env", name, "--wait=true"]);
    const everything = await ok(["get", "csp", "cis", "-o", "json"]);
    expect(everything).to.not.contain("not-a-secret-literal");
    expect(everything).to.not.contain("PLAIN");

    // The same checks offline: `csp-operator check --kubeconfig` reads the API (LISTs only).
    const check = async (argv: string[]) => {
      let stdout = "";
      let stderr = "";
      const code = await runCheckCommand(argv, {
        stdout: (x) => (stdout += x),
        stderr: (x) => (stderr += x),
      });
      return { code, stderr, results: code === 2 ? [] : (JSON.parse(stdout) as CheckReport).results };
    };
    const admin = await check([
      "--kubeconfig",
      cp().kubeconfigPath,
      "--secret-environment-variables",
      "-o",
      "json",
    ]);
    expect(admin.stderr).to.equal("");
    expect(admin.code).to.equal(1);
    const byId = Object.fromEntries(admin.results.map((r) => [r.id, r]));
    expect(byId["5.4.1"]).to.include({ status: "Fail" });
    expect(byId["5.4.1"]!.evidence).to.contain("Pod/cis-env/web");
    expect(byId["5.3.2"]!.evidence).to.contain("cis-env");
    expect(byId["5.1.1"]!.status).to.not.equal("Unknown");
    expect(admin.results.map((r) => r.id).filter((id) => !id.startsWith("5."))).to.deep.equal([]);
    // The operator's own RBAC (config/rbac) is enough for every 5.x read, 5.4.1's Pod LIST included.
    if ((await cp().kubectl(["get", "namespace", "csp-system"])).code !== 0)
      await ok(["create", "namespace", "csp-system"]);
    await ok(["apply", "-k", "config/rbac"]);
    const asOperator = await check([
      "--kubeconfig",
      await cp().serviceAccountKubeconfig("csp-system", "csp-operator"),
      "--secret-environment-variables",
      "-o",
      "json",
    ]);
    expect(
      asOperator.results.filter((r) => r.status === "Unknown").map((r) => `${r.id}: ${r.evidence}`),
    ).to.deep.equal([]);
    expect(asOperator.results.find((r) => r.id === "5.4.1")!.evidence).to.contain("Pod/cis-env/web");
    // Without rights to read anything: every input Unknown with the reason, exit 3, never a pass.
    await ok(["create", "serviceaccount", "nobody", "-n", "cis-env"]);
    const nobody = await check([
      "--kubeconfig",
      await cp().serviceAccountKubeconfig("cis-env", "nobody"),
      "--secret-environment-variables",
      "-o",
      "json",
    ]);
    expect(nobody.code).to.equal(3);
    const denied = Object.fromEntries(nobody.results.map((r) => [r.id, r]));
    expect(denied["5.4.1"]).to.deep.include({ status: "Unknown" });
    expect(denied["5.4.1"]!.evidence).to.contain("listing pods in every namespace: forbidden");
    expect(denied["5.1.1"]!.evidence).to.contain("forbidden");
    expect(nobody.results.filter((r) => r.status === "Pass")).to.deep.equal([]);

    await ok(["delete", "pod", "-n", "cis-env", "web", "--wait=true"]);
    await eventually("the 5.4.1 finding to go", async () => (await cis541()).length === 0);
    await patchCis(
      '{"spec":{"controlPlane":{"policies":{"enabled":false,"secretEnvironmentVariables":false}}}}',
    );
  });

  describe("kubelet configz through the API server's nodes/proxy", () => {
    let server: Server | undefined;
    let dir: string | undefined;
    const address = proxyableAddress();

    before(async function () {
      if (address === undefined) this.skip();
      dir = mkdtempSync(join(tmpdir(), "csp-configz-"));
      execFileSync(
        "openssl",
        [
          "req",
          "-x509",
          "-newkey",
          "ec",
          "-pkeyopt",
          "ec_paramgen_curve:prime256v1",
          "-nodes",
          "-keyout",
          join(dir, "tls.key"),
          "-out",
          join(dir, "tls.crt"),
          "-days",
          "1",
          "-subj",
          "/CN=fake-kubelet",
        ],
        { stdio: "ignore" },
      );
      const configz = {
        kubeletconfig: {
          authentication: {
            anonymous: { enabled: true },
            webhook: { enabled: true },
            x509: { clientCAFile: "/etc/kubernetes/pki/ca.crt" },
          },
          authorization: { mode: "AlwaysAllow" },
          readOnlyPort: 10255,
          streamingConnectionIdleTimeout: "4h0m0s",
          makeIPTablesUtilChains: true,
          rotateCertificates: true,
          serverTLSBootstrap: true,
          podPidsLimit: 4096,
          seccompDefault: true,
          tlsMinVersion: "VersionTLS13",
          eventRecordQPS: 50,
        },
      };
      server = createServer(
        { key: readFileSync(join(dir, "tls.key")), cert: readFileSync(join(dir, "tls.crt")) },
        (req, res) => {
          if (req.url === "/configz") {
            res.writeHead(200, { "Content-Type": "application/json" });
            res.end(JSON.stringify(configz));
          } else {
            res.writeHead(404);
            res.end();
          }
        },
      );
      await new Promise<void>((resolve) => server!.listen(0, address, resolve));
      const port = (server.address() as AddressInfo).port;
      await ok(
        ["apply", "-f", "-"],
        JSON.stringify({ apiVersion: "v1", kind: "Node", metadata: { name: "cis-node-1" } }),
      );
      await ok([
        "patch",
        "node",
        "cis-node-1",
        "--subresource=status",
        "--type=merge",
        "-p",
        JSON.stringify({
          status: {
            addresses: [{ type: "InternalIP", address }],
            daemonEndpoints: { kubeletEndpoint: { Port: port } },
          },
        }),
      ]);
    });

    after(async () => {
      await new Promise((r) => (server ? server.close(r) : r(undefined)));
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    it("reaches the fake kubelet through nodes/proxy", async () => {
      const out = await ok(["get", "--raw", "/api/v1/nodes/cis-node-1/proxy/configz"]);
      expect(JSON.parse(out)).to.have.nested.property("kubeletconfig.authorization.mode", "AlwaysAllow");
    });

    it("turns the kubelet's unsafe configz into 4.2.x findings on the node", async () => {
      const s = await eventually("4.2.x findings", async () => {
        const st = await status("cis");
        const ids = (st.findings ?? []).filter((f) => f.resource === "Node/cis-node-1").map((f) => f.id);
        return ids.includes("CIS-4.2.1") && ids.includes("CIS-4.2.2") && ids.includes("CIS-4.2.4")
          ? st
          : undefined;
      });
      const node = s.findings!.filter((f) => f.resource === "Node/cis-node-1");
      expect(node.find((f) => f.id === "CIS-4.2.2")!.severity).to.equal("Critical");
      // Command-line-only flags are not in configz: Unknown with the reason, never a pass.
      expect(node.find((f) => f.id === "CIS-4.2.7")).to.include({ severity: "Info" });
      expect(node.map((f) => f.id)).to.not.include("CIS-4.2.5");
      expect(condition(s)).to.include({ status: "False", reason: "ChecksFailed" });
    });

    it("works under the operator's own RBAC (config/rbac), and degrades to Unknown/Forbidden without nodes/proxy", async () => {
      await operator?.stop();
      operator = undefined;
      if ((await cp().kubectl(["get", "namespace", "csp-system"])).code !== 0)
        await ok(["create", "namespace", "csp-system"]);
      // Exactly what the operator is installed with: every cache must be able to list, or it starts nothing.
      await ok(["apply", "-k", "config/rbac"]);
      await patchCis(JSON.stringify({ spec: { controlPlane: { apiServer: { enabled: false } } } }));
      const kc = loadKubeConfig(await cp().serviceAccountKubeconfig("csp-system", "csp-operator"));
      const area = controlPlaneArea({ maxNodes: 5, timeoutMs: 5_000, concurrency: 2, reuseMs: 0 }, 1_000);
      operator = new Operator(kc, { workers: 1, resyncMs: 600_000, areas: [area] }, silentLogger());
      await operator.start();
      await eventually("4.2.x findings read with the operator's ServiceAccount", async () => {
        const st = await status("cis");
        return (
          condition(st)?.reason === "ChecksFailed" && (st.findings ?? []).some((f) => f.id === "CIS-4.2.2")
        );
      });

      const role = JSON.parse(await ok(["get", "clusterrole", "csp-operator", "-o", "json"])) as {
        rules: { resources?: string[] }[];
      };
      const index = role.rules.findIndex((r) => r.resources?.includes("nodes/proxy"));
      expect(index).to.be.greaterThan(-1);
      await ok([
        "patch",
        "clusterrole",
        "csp-operator",
        "--type=json",
        "-p",
        JSON.stringify([{ op: "remove", path: `/rules/${index}` }]),
      ]);
      const c = await eventually("ControlPlaneHardened Unknown/Forbidden", async () => {
        const found = condition(await status("cis"));
        return found?.status === "Unknown" ? found : undefined;
      });
      expect(c.reason).to.equal("Forbidden");
      expect(c.message).to.include("nodes/proxy");
      const ids = ((await status("cis")).findings ?? []).map((f) => f.id);
      expect(ids.filter((id) => id.startsWith("CIS-4.2."))).to.deep.equal([]);
    });
  });

  it("folds the node agent's host checks into the policy; the agent's report goes with its Node", async () => {
    if ((await cp().kubectl(["get", "namespace", "csp-system"])).code !== 0)
      await ok(["create", "namespace", "csp-system"]);
    await ok(["apply", "-f", "-"], "apiVersion: v1\nkind: Node\nmetadata: { name: agent-node }\n");
    const hostRoot = mkdtempSync(join(tmpdir(), "csp-agent-host-"));
    const manifest = join(hostRoot, "etc/kubernetes/manifests/kube-apiserver.yaml");
    mkdirSync(join(hostRoot, "etc/kubernetes/manifests"), { recursive: true });
    writeFileSync(
      manifest,
      "apiVersion: v1\nkind: Pod\nmetadata: {name: kube-apiserver}\nspec:\n  containers:\n  - name: kube-apiserver\n    command: [kube-apiserver, --anonymous-auth=true]\n",
    );
    chmodSync(manifest, 0o644);
    const agent = new Agent(
      loadKubeConfig(cp().kubeconfigPath),
      { node: "agent-node", hostRoot },
      silentLogger(),
    );
    await agent.start();
    try {
      const owner = await eventually("the agent's report, owned by its Node", async () => {
        const r = await cp().kubectl(["get", "cm", "csp-agent-agent-node", "-n", "csp-system", "-o", "json"]);
        if (r.code !== 0) return undefined;
        return (JSON.parse(r.stdout) as { metadata: { ownerReferences?: { kind: string; name: string }[] } })
          .metadata.ownerReferences?.[0];
      });
      expect(owner).to.include({ kind: "Node", name: "agent-node" });
      const findings = await eventually("the host checks as findings", async () => {
        const f = (await status("cis")).findings ?? [];
        const mine = f.filter((x) => x.resource.includes("agent-node")).map((x) => `${x.id} ${x.resource}`);
        if (
          !mine.includes("CIS-1.1.1 Node/agent-node") ||
          !mine.includes("CIS-1.2.28 Pod/kube-system/kube-apiserver-agent-node")
        )
          throw new Error(`agent-node findings so far (${f.length} in all): ${mine.join(", ")}`);
        return f;
      });
      expect(findings.length).to.be.greaterThan(1);
    } finally {
      await agent.stop();
      rmSync(hostRoot, { recursive: true, force: true });
    }
    await ok(["delete", "node", "agent-node"]);
    await eventually(
      "the report garbage-collected with its Node",
      async () => (await cp().kubectl(["get", "cm", "csp-agent-agent-node", "-n", "csp-system"])).code !== 0,
      90_000,
    );
  });

  // Last (mocha runs nested suites after the plain tests): it stops the shared operator for good.
  describe("file integrity baseline", () => {
    it("file integrity: the trusted baseline survives an operator restart, so a baseline rewritten meanwhile is still a finding", async () => {
      await operator?.stop();
      operator = undefined;
      if ((await cp().kubectl(["get", "namespace", "csp-system"])).code !== 0)
        await ok(["create", "namespace", "csp-system"]);
      const key = "/etc/kubernetes/pki/apiserver.key";
      const entry = (hex: string) => ({
        type: "file",
        sha256: `sha256:${hex.repeat(64)}`,
        mode: "0600",
        uid: 0,
        gid: 0,
        size: 1675,
        mtime: "2026-01-01T00:00:00Z",
      });
      const report = (hex: string) =>
        JSON.stringify({
          apiVersion: "v1",
          kind: "ConfigMap",
          metadata: {
            name: "csp-agent-fim-node",
            namespace: "csp-system",
            labels: {
              "app.kubernetes.io/managed-by": "csp-operator",
              "app.kubernetes.io/component": "agent-report",
            },
          },
          data: {
            "files.json": "[]",
            "integrity.json": JSON.stringify({
              version: 1,
              baselineAt: "2026-01-01T00:00:00Z",
              baseline: { [key]: entry(hex) },
              changes: [],
              scannedAt: new Date().toISOString(),
            }),
          },
        });
      await ok(["apply", "-f", "-"], report("a"));
      await ok(
        ["apply", "-f", "-"],
        JSON.stringify({
          apiVersion: "security.csp-operator.io/v1alpha1",
          kind: "ClusterSecurityPolicy",
          metadata: { name: "fim" },
          spec: { mode: "Audit", controlPlane: { fileIntegrity: {} } },
        }),
      );
      const fim = async () => {
        const s = await status("fim");
        return {
          condition: s.conditions?.find((c) => c.type === "FilesUnchanged"),
          ids: (s.findings ?? []).map((f) => `${f.id} ${f.resource}`),
        };
      };
      const start = async () => {
        const op = new Operator(
          loadKubeConfig(cp().kubeconfigPath),
          { workers: 1, resyncMs: 600_000, areas: [fileIntegrityArea] },
          silentLogger(),
        );
        await op.start();
        return op;
      };
      let op = await start();
      try {
        await eventually("FilesUnchanged True", async () => (await fim()).condition?.status === "True");
        const stored = await eventually("the stored baseline", async () => {
          const r = await cp().kubectl([
            "get",
            "cm",
            "csp-integrity-baseline-fim-node",
            "-n",
            "csp-system",
            "-o",
            "json",
          ]);
          return r.code === 0 ? (JSON.parse(r.stdout) as { data: Record<string, string> }).data : undefined;
        });
        expect(stored.node).to.equal("fim-node");
        expect(stored["baseline.json"]).to.contain(`sha256:${"a".repeat(64)}`);
        await op.stop();
        // While the operator is down, whoever can patch the node's report rewrites the baseline to hide a
        // change of the key (no change listed, same baselineAt, no note).
        await ok(["apply", "-f", "-"], report("b"));
        op = await start();
        const after = await eventually("FILE-BASELINE-CHANGED after the restart", async () => {
          const r = await fim();
          return r.ids.includes("FILE-BASELINE-CHANGED Node/fim-node") ? r : undefined;
        });
        expect(after.condition).to.include({ status: "False", reason: "BaselineChanged" });
        // The stored baseline stays the trusted one, not the rewritten report's.
        const kept = JSON.parse(
          await ok(["get", "cm", "csp-integrity-baseline-fim-node", "-n", "csp-system", "-o", "json"]),
        ) as { data: Record<string, string> };
        expect(kept.data["baseline.json"]).to.contain(`sha256:${"a".repeat(64)}`);
        // Back to the trusted baseline: the finding goes.
        await ok(["apply", "-f", "-"], report("a"));
        await eventually("the finding to go", async () => (await fim()).condition?.status === "True");
      } finally {
        await op.stop();
      }
    });
  });
});
