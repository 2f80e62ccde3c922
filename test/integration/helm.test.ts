/**
 * Needs the local control plane (controlplane/build.sh) and helm (controlplane/build-helm.sh, built from the Go
 * module helm.sh/helm/v4 on first use and cached outside the repository).
 * The Helm chart (charts/csp-operator) as a user meets it: its CRD is the one in crds/ byte for byte; with
 * default values it renders exactly the objects of `kubectl kustomize config/default` apart from Helm's own
 * labels, and with agent / encryptionRewrite on it adds exactly config/agent / config/encryption, with monitoring
 * and credentialsTokenSecrets on exactly config/prometheus (a Component) and config/credentials; every rendered
 * command line parses; values.schema.json refuses a typo, a wrong type, labels that would hand the operator's
 * rights to others, a tagged repository, --help in extraArgs, replicas > 1 without leader election; `helm lint`
 * passes; the full render passes a server-side dry run; and on a real API server install, upgrade with changed
 * values (replicas, extra labels, the agent switched on and off) and uninstall (the CRD, the policies and csp-system
 * stay; the operator's own objects go). No kubelet runs, so the assertions are on objects, not Pods.
 */
import { execFile } from "node:child_process";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { promisify } from "node:util";
import { expect } from "chai";
import { parse, parseAllDocuments, stringify } from "yaml";
import { runCli, type Actions } from "../../src/cli/program.js";
import { useControlPlane } from "../support/controlplane.js";
import { eventually } from "../support/eventually.js";
import { kubectlOk } from "../support/kubectl.js";

const run = promisify(execFile);
const CHART = "charts/csp-operator";
const RELEASE = "csp-operator";

interface Obj {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  spec?: Record<string, unknown>;
  [k: string]: unknown;
}

interface Deployment extends Obj {
  spec: {
    replicas: number;
    strategy: { type: string };
    template: {
      metadata: { labels: Record<string, string> };
      spec: {
        nodeSelector?: Record<string, string>;
        tolerations?: unknown[];
        priorityClassName?: string;
        containers: { image: string; args: string[]; ports?: unknown[] }[];
      };
    };
  };
}

/** Labels and annotations Helm (or the chart, for Helm's sake) adds; everything else must match config/. */
const HELM_LABELS = ["helm.sh/chart", "app.kubernetes.io/instance", "app.kubernetes.io/version"];
const HELM_ANNOTATIONS = [
  "helm.sh/resource-policy",
  "meta.helm.sh/release-name",
  "meta.helm.sh/release-namespace",
];

function parseObjects(text: string): Obj[] {
  return parseAllDocuments(text)
    .map((d) => d.toJSON() as Obj | null)
    .filter((o): o is Obj => o !== null && typeof o === "object");
}

const key = (o: Obj) => `${o.kind}/${o.metadata.namespace ?? ""}/${o.metadata.name}`;

/** The object as config/ would write it: Helm's labels and annotations removed. */
function withoutHelm(o: Obj): Obj {
  const copy = structuredClone(o);
  const labels = copy.metadata.labels ?? {};
  for (const l of HELM_LABELS) delete labels[l];
  if (labels["app.kubernetes.io/managed-by"] === "Helm") delete labels["app.kubernetes.io/managed-by"];
  if (Object.keys(labels).length === 0) delete copy.metadata.labels;
  const annotations = copy.metadata.annotations ?? {};
  for (const a of HELM_ANNOTATIONS) delete annotations[a];
  if (Object.keys(annotations).length === 0) delete copy.metadata.annotations;
  return copy;
}

function byKey(objs: Obj[]): Map<string, Obj> {
  const m = new Map<string, Obj>();
  for (const o of objs) {
    expect(m.has(key(o)), `${key(o)} rendered twice`).to.be.false;
    m.set(key(o), o);
  }
  return m;
}

/** Asserts the two object sets are equal, naming the first object that differs. */
function expectSameObjects(actual: Obj[], expected: Obj[], what: string): void {
  const a = byKey(actual.map(withoutHelm));
  const e = byKey(expected);
  expect([...a.keys()].sort(), `${what}: object set`).to.deep.equal([...e.keys()].sort());
  for (const [k, obj] of e) expect(a.get(k), `${what}: ${k}`).to.deep.equal(obj);
}

describe("Helm chart charts/csp-operator", function () {
  this.timeout(120_000);
  const cp = useControlPlane();
  const ok = kubectlOk(cp);
  let helmBin = "";
  let helmHome = "";

  before(async function () {
    this.timeout(600_000); // a cold helm build takes about 3 min on 2 cores; cached it is instant
    const { stdout } = await run("bash", ["controlplane/build-helm.sh"], { maxBuffer: 1 << 20 });
    helmBin = stdout.trim().split("\n").pop() ?? "";
    helmHome = await mkdtemp(join(tmpdir(), "csp-helm-"));
  });

  after(async () => {
    if (helmHome) await rm(helmHome, { recursive: true, force: true });
  });

  /** Runs helm against the test control plane with its own config/cache/data dirs; never throws. */
  async function helm(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    const env = {
      PATH: process.env["PATH"] ?? "",
      HOME: helmHome,
      HELM_CONFIG_HOME: join(helmHome, "config"),
      HELM_CACHE_HOME: join(helmHome, "cache"),
      HELM_DATA_HOME: join(helmHome, "data"),
      KUBECONFIG: cp().kubeconfigPath,
    };
    try {
      const r = await run(helmBin, args, { env, maxBuffer: 64 << 20 });
      return { code: 0, stdout: r.stdout, stderr: r.stderr };
    } catch (err) {
      const e = err as { code?: number; stdout?: string; stderr?: string };
      return {
        code: typeof e.code === "number" ? e.code : 1,
        stdout: e.stdout ?? "",
        stderr: e.stderr ?? "",
      };
    }
  }

  async function helmOk(args: string[]): Promise<string> {
    const r = await helm(args);
    expect(r.code, `helm ${args.join(" ")}: ${r.stderr}`).to.equal(0);
    return r.stdout;
  }

  const template = async (...set: string[]) =>
    parseObjects(
      await helmOk(["template", RELEASE, CHART, "--include-crds", ...set.flatMap((s) => ["--set", s])]),
    );

  const kustomize = async (dir: string) => parseObjects(await ok(["kustomize", dir]));

  it("ships the CRD of crds/ byte for byte in its crds/ directory (one source)", async () => {
    const wanted = (await readdir("crds"))
      .filter((f) => f.endsWith(".yaml") && f !== "kustomization.yaml")
      .sort();
    expect(wanted, "crds/ holds a CRD").to.not.be.empty;
    expect(
      (await readdir(join(CHART, "crds"))).sort(),
      "charts/csp-operator/crds/ holds exactly crds/'s CRDs",
    ).to.deep.equal(wanted);
    for (const f of wanted) {
      const chartCopy = await readFile(join(CHART, "crds", f), "utf8");
      expect(
        chartCopy === (await readFile(join("crds", f), "utf8")),
        `${CHART}/crds/${f} differs from crds/${f}: cp crds/${f} ${CHART}/crds/`,
      ).to.be.true;
    }
  });

  it("ships config/prometheus's alerts and dashboard byte for byte in files/ (one source)", async () => {
    for (const f of ["prometheus_rule.yaml", "dashboard.json"]) {
      const chartCopy = await readFile(join(CHART, "files", f), "utf8");
      expect(
        chartCopy === (await readFile(join("config/prometheus", f), "utf8")),
        `${CHART}/files/${f} differs from config/prometheus/${f}: cp config/prometheus/${f} ${CHART}/files/`,
      ).to.be.true;
    }
  });

  it("passes helm lint --strict, with everything switched on too", async () => {
    await helmOk(["lint", "--strict", CHART]);
    await helmOk([
      "lint",
      "--strict",
      CHART,
      "--set",
      "agent.enabled=true,encryptionRewrite.enabled=true,metrics.serviceMonitor.enabled=true,metrics.prometheusRule.enabled=true,metrics.dashboard.enabled=true,credentialsTokenSecrets.enabled=true",
    ]);
    await helmOk([
      "lint",
      "--strict",
      CHART,
      "--set",
      "replicas=1,leaderElection.enabled=false,metrics.enabled=false,networkPolicy.enabled=false",
    ]);
  });

  it("renders with default values exactly the objects of config/default, apart from Helm's labels", async () => {
    const chart = await template();
    expectSameObjects(chart, await kustomize("config/default"), "default values vs config/default");
    // Helm never templates crds/, so the CRD carries no Helm label; every other object does.
    for (const o of chart.filter((o) => o.kind !== "CustomResourceDefinition")) {
      expect(o.metadata.labels?.["app.kubernetes.io/managed-by"], key(o)).to.equal("Helm");
      expect(o.metadata.labels?.["app.kubernetes.io/instance"], key(o)).to.equal(RELEASE);
    }
  });

  it("adds exactly config/agent and config/encryption when agent / encryptionRewrite are enabled", async () => {
    const base = await kustomize("config/default");
    const both = [...base, ...(await kustomize("config/agent")), ...(await kustomize("config/encryption"))];
    expectSameObjects(
      await template("agent.enabled=true", "encryptionRewrite.enabled=true"),
      both,
      "agent + encryption",
    );
    const agentOnly = [...base, ...(await kustomize("config/agent"))];
    expectSameObjects(await template("agent.enabled=true"), agentOnly, "agent only");
  });

  it("adds exactly the config/prometheus Component and config/credentials with monitoring and credentialsTokenSecrets on", async () => {
    // An overlay as the README tells users to write it: config/default plus the Component (and the opt-in
    // credentials grant). kustomize wants relative paths to other kustomizations.
    const overlay = await mkdtemp(join(tmpdir(), "csp-overlay-"));
    try {
      const up = relative(overlay, process.cwd());
      await writeFile(
        join(overlay, "kustomization.yaml"),
        stringify({
          apiVersion: "kustomize.config.k8s.io/v1beta1",
          kind: "Kustomization",
          resources: [`${up}/config/default`, `${up}/config/credentials`],
          components: [`${up}/config/prometheus`],
        }),
      );
      const expected = await kustomize(overlay);
      expect(expected.map(key)).to.include.members([
        "ServiceMonitor/csp-system/csp-operator",
        "PrometheusRule/csp-system/csp-operator",
        "ConfigMap/csp-system/csp-operator-dashboard",
        "ClusterRoleBinding//csp-operator-metrics-reader",
        "ClusterRole//csp-operator-credentials",
      ]);
      expectSameObjects(
        await template(
          "metrics.serviceMonitor.enabled=true",
          "metrics.prometheusRule.enabled=true",
          "metrics.dashboard.enabled=true",
          "credentialsTokenSecrets.enabled=true",
        ),
        expected,
        "monitoring + credentials vs config/default + config/prometheus + config/credentials",
      );
    } finally {
      await rm(overlay, { recursive: true, force: true });
    }
  });

  it("renders command lines the operator and the agent accept, whatever the values (no crash loop)", async () => {
    const stub: Actions = {
      run: () => Promise.resolve(0),
      agent: () => Promise.resolve(0),
      check: () => Promise.resolve(0),
      validate: () => Promise.resolve(0),
      integrityAccept: () => Promise.resolve(0),
      render: () => Promise.resolve(0),
      diff: () => Promise.resolve(0),
    };
    const combinations = [
      [],
      ["agent.enabled=true"],
      ["replicas=1", "leaderElection.enabled=false", "metrics.enabled=false"],
      ["metrics.port=9443", "healthProbe.port=9444", "resyncSeconds=86400", "workers=8"],
      ["extraArgs[0]=--log-level=debug", "extraArgs[1]=--metrics-secure=false"],
      ["replicas=0", "leaderElection.enabled=false"],
    ];
    const savedNode = process.env["NODE_NAME"];
    process.env["NODE_NAME"] = "cp-1";
    try {
      for (const set of combinations) {
        const objs = await template(...set);
        const pods = objs.filter((o) => o.kind === "Deployment" || o.kind === "DaemonSet") as Deployment[];
        expect(pods.length, set.join(",")).to.be.above(0);
        for (const o of pods)
          for (const c of o.spec.template.spec.containers) {
            let err = "";
            const code = await runCli(c.args, stub, { stdout: () => {}, stderr: (s) => (err += s) });
            expect(
              code,
              `${key(o)} with ${set.join(",") || "defaults"}: ${c.args.join(" ")}: ${err}`,
            ).to.equal(0);
          }
      }
    } finally {
      if (savedNode === undefined) delete process.env["NODE_NAME"];
      else process.env["NODE_NAME"] = savedNode;
    }
  });

  it("without leader election runs one replica with Recreate, and no PodDisruptionBudget", async () => {
    const objs = await template("replicas=1", "leaderElection.enabled=false");
    const dep = objs.find((o) => o.kind === "Deployment") as Deployment;
    expect(dep.spec.replicas).to.equal(1);
    expect(dep.spec.strategy).to.deep.equal({ type: "Recreate" });
    expect(dep.spec.template.spec.containers[0]?.args).to.not.include("--leader-elect");
    expect(objs.map(key)).to.not.include("PodDisruptionBudget/csp-system/csp-operator");
  });

  it("puts image, replicas, resources, placement, leader election, metrics and extra labels where they belong", async () => {
    const digest = `sha256:${"ab".repeat(32)}`;
    const objs = await template(
      "image.repository=registry.example/sec/csp-operator",
      `image.digest=${digest}`,
      "replicas=3",
      "metrics.port=9443",
      "metrics.serviceMonitor.enabled=true",
      "resources.limits.memory=512Mi",
      "nodeSelector.pool=system",
      "tolerations[0].key=dedicated,tolerations[0].operator=Exists,tolerations[0].effect=NoSchedule",
      "priorityClassName=system-cluster-critical",
      "extraLabels.team=security",
    );
    const dep = objs.find((o) => o.kind === "Deployment") as Deployment;
    const pod = dep.spec.template.spec;
    expect(dep.spec.replicas).to.equal(3);
    expect(dep.spec.strategy.type, "leader election lets a rollout overlap").to.equal("RollingUpdate");
    expect(pod.containers[0]?.image).to.equal(`registry.example/sec/csp-operator@${digest}`);
    expect(pod.containers[0]?.args).to.include.members(["--leader-elect", "--metrics-bind-address=:9443"]);
    expect(pod.nodeSelector).to.deep.equal({ pool: "system" });
    expect(pod.tolerations).to.deep.equal([{ key: "dedicated", operator: "Exists", effect: "NoSchedule" }]);
    expect(pod.priorityClassName).to.equal("system-cluster-critical");
    expect(dep.spec.template.metadata.labels).to.deep.equal({
      "app.kubernetes.io/name": "csp-operator",
      team: "security",
    });
    expect(objs.map(key)).to.include.members([
      "Service/csp-system/csp-operator-metrics",
      "ServiceMonitor/csp-system/csp-operator",
    ]);
    for (const o of objs.filter((o) => o.kind !== "CustomResourceDefinition"))
      expect(o.metadata.labels?.["team"], `extra label on ${key(o)}`).to.equal("security");
    expect(JSON.stringify(dep), "resources.limits").to.contain('"memory":"512Mi"');
  });

  it("leaves csp-system to others with namespace.create=false, and the etcd mount out with agent.etcdData=false", async () => {
    const objs = await template("namespace.create=false", "agent.enabled=true", "agent.etcdData=false");
    expect(objs.map(key)).to.not.include("Namespace//csp-system");
    expect(objs.map(key)).to.include("Namespace//csp-agent");
    const ds = objs.find((o) => o.kind === "DaemonSet");
    expect(JSON.stringify(ds)).to.contain("/etc/kubernetes").and.not.contain("etcd-data");
    const withEtcd = (await template("agent.enabled=true")).find((o) => o.kind === "DaemonSet");
    expect(JSON.stringify(withEtcd), "default mounts /var/lib/etcd").to.contain('"path":"/var/lib/etcd"');
  });

  it("refuses a typo, a wrong type and reserved extra labels, naming the value", async () => {
    const cases: [string[], RegExp][] = [
      [["--set", "replica=2"], /additional properties 'replica' not allowed|replica/],
      [["--set", "agent.enable=true"], /enable/],
      [["--set-string", "replicas=two"], /replicas/],
      [["--set", "image.digest=latest"], /digest/],
      [
        ["--set", "extraLabels.security\\.csp-operator\\.io/aggregate-to-grantable=true"],
        /invalid propertyName 'security\.csp-operator\.io\/aggregate-to-grantable'/,
      ],
      [
        ["--set", "extraLabels.pod-security\\.kubernetes\\.io/enforce=privileged"],
        /invalid propertyName 'pod-security\.kubernetes\.io\/enforce'/,
      ],
      [["--set", "tolerations[0].efect=NoSchedule"], /efect/],
      // The built-in `view` role aggregates every ClusterRole with this label: the operator's rights
      // (Secrets list/update with encryptionRewrite) would go to everyone who may view.
      [
        [
          "--set",
          "encryptionRewrite.enabled=true",
          "--set-string",
          "extraLabels.rbac\\.authorization\\.k8s\\.io/aggregate-to-view=true",
        ],
        /invalid propertyName 'rbac\.authorization\.k8s\.io\/aggregate-to-view'/,
      ],
      [["--set-string", "extraLabels.kubernetes\\.io/x=y"], /invalid propertyName 'kubernetes\.io\/x'/],
      [["--set-string", "extraLabels.app\\.kubernetes\\.io/part-of=x"], /app\.kubernetes\.io\/part-of/],
      [["--set", "replicas=2,leaderElection.enabled=false"], /leaderElection\/enabled|leaderElection/],
      [["--set", "resyncSeconds=86401"], /resyncSeconds/],
      [["--set", "image.repository=ghcr.io/a/b:latest"], /repository/],
      [["--set", "agent.image.repository=ghcr.io/a/b:latest"], /repository/],
      [["--set", "extraArgs={--help}"], /extraArgs/],
      [["--set", "extraArgs={--version}"], /extraArgs/],
      [["--set", "resources.requests.cpu=-1"], /cpu/],
      [["--set", "metrics.prometheusRule.enable=true"], /enable/],
    ];
    // A registry with a port is a repository, not a tag.
    await helmOk([
      "template",
      RELEASE,
      CHART,
      "--set",
      "image.repository=registry.local:5000/sec/csp-operator",
    ]);
    for (const [set, message] of cases) {
      const r = await helm(["template", RELEASE, CHART, ...set]);
      expect(r.code, `${set.join(" ")} must fail`).to.not.equal(0);
      expect(r.stderr, set.join(" ")).to.match(/values don't meet the specifications of the schema/);
      expect(r.stderr, set.join(" ")).to.match(message);
    }
  });

  it("installs, upgrades with changed values and uninstalls, keeping the CRD, the policies and csp-system", async () => {
    const install = [
      "upgrade",
      "--install",
      RELEASE,
      CHART,
      "--namespace",
      "csp-system",
      "--create-namespace",
    ];
    await helmOk(install);
    const dep = JSON.parse(
      await ok(["get", "deployment", "-n", "csp-system", "csp-operator", "-o", "json"]),
    ) as Deployment;
    expect(dep.spec.replicas).to.equal(2);
    expect(dep.metadata.labels?.["app.kubernetes.io/managed-by"]).to.equal("Helm");
    const ns = JSON.parse(await ok(["get", "namespace", "csp-system", "-o", "json"])) as Obj;
    expect(
      ns.metadata.labels?.["pod-security.kubernetes.io/enforce"],
      "csp-system enforces restricted",
    ).to.equal("restricted");
    await ok(["get", "crd", "clustersecuritypolicies.security.csp-operator.io"]);
    await ok(["get", "clusterrole", "csp-operator-grantable", "csp-operator"]);
    await ok(["get", "validatingadmissionpolicy", "csp-operator-no-token-secrets"]);
    const noAgent = await cp().kubectl(["get", "namespace", "csp-agent"]);
    expect(noAgent.code, "the agent is off by default").to.not.equal(0);

    await ok(
      ["apply", "-f", "-"],
      "apiVersion: security.csp-operator.io/v1alpha1\nkind: ClusterSecurityPolicy\nmetadata: {name: helm-kept}\nspec: {mode: Audit}\n",
    );

    // The README's CRD upgrade: Helm 4 applied crds/ server-side as the field manager "helm", so a plain
    // `kubectl apply --server-side` of a changed CRD conflicts; with --force-conflicts it takes the fields over.
    const crdDir = await mkdtemp(join(tmpdir(), "csp-crd-"));
    try {
      const [crdFile] = (await readdir("crds")).filter(
        (f) => f.endsWith(".yaml") && f !== "kustomization.yaml",
      );
      const crd = parse(await readFile(join("crds", crdFile!), "utf8")) as {
        spec: { versions: { additionalPrinterColumns?: { name: string; description?: string }[] }[] };
      };
      const column = crd.spec.versions[0]!.additionalPrinterColumns![0]!;
      column.description = "changed by a newer release";
      await writeFile(join(crdDir, crdFile!), stringify(crd));
      const plain = await cp().kubectl(["apply", "--server-side", "-f", crdDir]);
      expect(plain.code, "without --force-conflicts Helm's ownership conflicts").to.not.equal(0);
      expect(plain.stderr).to.match(/conflict/i);
      await ok(["apply", "--server-side", "--force-conflicts", "-f", crdDir]);
      const live = JSON.parse(
        await ok(["get", "crd", "clustersecuritypolicies.security.csp-operator.io", "-o", "json"]),
      ) as typeof crd;
      expect(live.spec.versions[0]!.additionalPrinterColumns![0]!.description).to.equal(
        "changed by a newer release",
      );
      await ok(["apply", "--server-side", "--force-conflicts", "-f", "crds/"]);
    } finally {
      await rm(crdDir, { recursive: true, force: true });
    }

    await helmOk([
      "upgrade",
      RELEASE,
      CHART,
      "--namespace",
      "csp-system",
      "--set",
      "replicas=1,leaderElection.enabled=false,extraLabels.team=security,agent.enabled=true",
    ]);
    const upgraded = JSON.parse(
      await ok(["get", "deployment", "-n", "csp-system", "csp-operator", "-o", "json"]),
    ) as Deployment;
    expect(upgraded.spec.replicas).to.equal(1);
    expect(upgraded.spec.strategy.type).to.equal("Recreate");
    expect(
      (await cp().kubectl(["get", "pdb", "-n", "csp-system", "csp-operator"])).code,
      "no PDB for one replica",
    ).to.not.equal(0);
    expect(upgraded.metadata.labels?.["team"]).to.equal("security");
    expect(upgraded.spec.template.metadata.labels["team"]).to.equal("security");
    const role = JSON.parse(await ok(["get", "clusterrole", "csp-operator", "-o", "json"])) as Obj;
    expect(role.metadata.labels?.["team"]).to.equal("security");
    await ok(["get", "daemonset", "-n", "csp-agent", "csp-operator-agent"]);
    await ok(["get", "validatingadmissionpolicy", "csp-operator-agent-own-report"]);

    // Back to the defaults: the agent's objects go, the label goes.
    await helmOk(["upgrade", RELEASE, CHART, "--namespace", "csp-system", "--reset-values"]);
    const reset = JSON.parse(
      await ok(["get", "deployment", "-n", "csp-system", "csp-operator", "-o", "json"]),
    ) as Deployment;
    expect(reset.spec.replicas).to.equal(2);
    expect(reset.spec.strategy.type).to.equal("RollingUpdate");
    await ok(["get", "pdb", "-n", "csp-system", "csp-operator"]);
    expect(reset.metadata.labels).to.not.have.property("team");
    expect(
      (await cp().kubectl(["get", "validatingadmissionpolicy", "csp-operator-agent-own-report"])).code,
    ).to.not.equal(0);
    await eventually(
      "namespace csp-agent deleted",
      async () => (await cp().kubectl(["get", "namespace", "csp-agent"])).code !== 0,
    );

    await helmOk(["uninstall", RELEASE, "--namespace", "csp-system"]);
    for (const gone of [
      ["deployment", "-n", "csp-system", "csp-operator"],
      ["serviceaccount", "-n", "csp-system", "csp-operator"],
      ["clusterrole", "csp-operator"],
      ["clusterrole", "csp-operator-grantable"],
      ["clusterrolebinding", "csp-operator"],
      ["role", "-n", "kube-system", "csp-operator-apiserver-pods"],
      ["validatingadmissionpolicy", "csp-operator-no-token-secrets"],
    ])
      expect((await cp().kubectl(["get", ...gone])).code, `${gone.join(" ")} removed`).to.not.equal(0);
    await ok(["get", "crd", "clustersecuritypolicies.security.csp-operator.io"]);
    await ok(["get", "clustersecuritypolicy", "helm-kept"]);
    const kept = JSON.parse(await ok(["get", "namespace", "csp-system", "-o", "json"])) as Obj & {
      status?: { phase?: string };
    };
    expect(kept.status?.phase, "csp-system (key ring) stays").to.equal("Active");
    expect(await helmOk(["list", "--all-namespaces", "-q"])).to.not.contain(RELEASE);

    // Reinstalling under another release name: the kept csp-system still names the old release, so Helm
    // refuses to adopt it; the README's way is namespace.create=false (the namespace is then the user's).
    const again = await helm(["install", "csp2", CHART, "--namespace", "csp-system"]);
    expect(again.code, "Helm does not adopt the old release's namespace").to.not.equal(0);
    expect(again.stderr).to.match(/csp-system/);
    await helmOk(["install", "csp2", CHART, "--namespace", "csp-system", "--set", "namespace.create=false"]);
    await ok(["get", "deployment", "-n", "csp-system", "csp-operator"]);
    // namespace.create=false: a csp-system without Pod Security `restricted` fails the release, naming the label.
    await ok(["label", "namespace", "csp-system", "pod-security.kubernetes.io/enforce-"]);
    const unlabelled = await helm(["upgrade", "csp2", CHART, "--namespace", "csp-system", "--reuse-values"]);
    expect(unlabelled.code).to.not.equal(0);
    expect(unlabelled.stderr).to.contain("pod-security.kubernetes.io/enforce=restricted");
    await ok(["label", "namespace", "csp-system", "pod-security.kubernetes.io/enforce=restricted"]);
    await helmOk(["upgrade", "csp2", CHART, "--namespace", "csp-system", "--reset-then-reuse-values"]);
    await helmOk(["uninstall", "csp2", "--namespace", "csp-system"]);
    expect((await cp().kubectl(["get", "deployment", "-n", "csp-system", "csp-operator"])).code).to.not.equal(
      0,
    );
  });
  it("renders a manifest the API server accepts (helm template | kubectl apply --dry-run=server)", async () => {
    const manifest = await helmOk([
      "template",
      RELEASE,
      CHART,
      "--include-crds",
      "--set",
      "agent.enabled=true,encryptionRewrite.enabled=true,metrics.enabled=true,extraLabels.team=security",
    ]);
    // A dry run creates no namespace, so the namespaces the objects live in must exist (csp-system was kept by
    // the uninstall above, csp-agent went with the agent). Runs after the install test: a csp-system that Helm
    // did not create would make `helm install` refuse to adopt it.
    for (const ns of ["csp-system", "csp-agent"])
      await ok(["apply", "-f", "-"], `apiVersion: v1\nkind: Namespace\nmetadata: {name: ${ns}}\n`);
    const out = await ok(["apply", "--dry-run=server", "-f", "-"], manifest);
    expect(out).to.match(/deployment.apps\/csp-operator (created|configured) \(server dry run\)/);
    expect(out).to.match(/daemonset.apps\/csp-operator-agent (created|configured) \(server dry run\)/);
  });
});
