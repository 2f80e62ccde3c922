/**
 * `render` and `diff` against the real API server:
 * - render (offline, from `kubectl get ns -o yaml`) equals what the operator really applied, for
 *   samples/baseline.yaml and a policy using every child kind (Roles, extra NetworkPolicies, audit Policy);
 * - diff exit codes and output: changes before the operator ran (with the traffic preview for a namespace
 *   whose pod a Service selects), no change once converged, a change, a prune; and never a write.
 */
import { expect } from "chai";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { KubernetesObject, V1ManagedFieldsEntry } from "@kubernetes/client-node";
import { parse, parseAllDocuments, stringify } from "yaml";
import { startControlPlane, type ControlPlane } from "../../controlplane/harness.js";
import { FIELD_MANAGER, MANAGED_BY_LABEL, POLICY_LABEL } from "../../src/api/vocabulary.js";
import { loadKubeConfig } from "../../src/cluster/client.js";
import { LiveReader } from "../../src/cluster/livereader.js";
import type { Child } from "../../src/desired/children.js";
import { ownedFieldDiff } from "../../src/drift/checks.js";
import { fieldPaths } from "../../src/drift/managedfields.js";
import type { CommandIO } from "../../src/gitops/command.js";
import { UID_PLACEHOLDER } from "../../src/gitops/render.js";
import { runDiff, runRender } from "../../src/gitops/rendercommand.js";
import { silentLogger } from "../../src/observability/logger.js";
import { Operator } from "../../src/controller/manager.js";
import { installCrd } from "../support/crd.js";
import { eventually } from "../support/eventually.js";
import { installGrantableRole } from "../support/grantable.js";
import { kubectlOk } from "../support/kubectl.js";
import { prng } from "../unit/gitops/variants.js";

/** A policy with every kind of child: a Role (ServiceAccount, Role, RoleBinding), an extra NetworkPolicy, the audit Policy. */
const TEAM = `apiVersion: security.csp-operator.io/v1alpha1
kind: ClusterSecurityPolicy
metadata:
  name: team
spec:
  namespaces:
    selector:
      matchLabels: { csp.example.com/tier: db }
  networkPolicies:
    defaultDenyIngress: true
    extra:
      - name: allow-web
        spec:
          podSelector: { matchLabels: { app: db } }
          ingress:
            - from: [{ namespaceSelector: { matchLabels: { csp.example.com/tier: web } } }]
              ports: [{ port: 5432 }]
  podSecurity: { enforce: baseline, version: latest }
  rbac:
    roles:
      - name: db-reader
        rules: [{ apiGroups: [""], resources: ["pods", "services"], verbs: ["get", "list"] }]
  auditPolicy:
    rules:
      - { level: RequestResponse, resources: [{ group: "", resources: ["pods"] }] }
`;

/** Seeded valid policies over every spec area the namespaced plan covers; they overlap on gen-a and gen-b. */
function generatedPolicy(seed: number) {
  const rnd = prng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const bool = () => rnd() < 0.5;
  const spec: Record<string, unknown> = {
    namespaces: { selector: { matchLabels: { "csp.example.com/gen": pick(["a", "b"]) } } },
    networkPolicies: {
      defaultDenyIngress: bool(),
      defaultDenyEgress: bool(),
      allowDNS: bool(),
      allowSameNamespace: bool(),
      ...(bool()
        ? {
            extra: [
              {
                name: "allow-metrics",
                spec: {
                  podSelector: { matchLabels: { app: pick(["web", "metrics"]) } },
                  ingress: [{ ports: [{ port: pick([9090, 8443]), protocol: "TCP" }] }],
                },
              },
            ],
          }
        : {}),
    },
    podSecurity: {
      enforce: pick(["privileged", "baseline", "restricted"]),
      warn: pick(["baseline", "restricted"]),
    },
    serviceAccounts: { automountDefaultToken: bool() },
  };
  const roles = Math.floor(rnd() * 3);
  if (roles > 0)
    spec["rbac"] = {
      roles: Array.from({ length: roles }, (_, i) => ({
        name: `role-${seed}-${i}`,
        rules: [
          {
            apiGroups: [""],
            resources: [pick(["pods", "services"])],
            verbs: pick([["get"], ["get", "list"], ["list", "watch"]]),
          },
        ],
      })),
    };
  return {
    apiVersion: "security.csp-operator.io/v1alpha1",
    kind: "ClusterSecurityPolicy",
    metadata: { name: `gen-${seed}` },
    spec,
  };
}
const GENERATED = [1, 2, 3, 4, 5].map(generatedPolicy);

function io(stdin = "") {
  const out: string[] = [];
  const err: string[] = [];
  const cio: CommandIO = {
    stdout: (s) => out.push(s),
    stderr: (s) => err.push(s),
    readStdin: () => Promise.resolve(stdin),
    setExitCode: () => undefined,
  };
  return { cio, out: () => out.join(""), err: () => err.join("") };
}

describe("render and diff against the API server", function () {
  this.timeout(120_000);
  let cp: ControlPlane;
  let dir: string;
  let reader: LiveReader;
  let operator: Operator | undefined;
  const ok = kubectlOk(() => cp);
  const rendered: Record<"baseline" | "team" | "all", KubernetesObject[]> = {
    baseline: [],
    team: [],
    all: [],
  };
  const file = (name: string) => join(dir, name);

  /** resourceVersion of every object diff could touch: proof that it wrote nothing. */
  const versions = async () =>
    (
      await ok([
        "get",
        "namespaces,serviceaccounts,networkpolicies,roles,rolebindings,configmaps,services,pods,clustersecuritypolicies",
        "-A",
        "-o",
        'jsonpath={range .items[*]}{.kind}/{.metadata.namespace}/{.metadata.name}={.metadata.resourceVersion}{"\\n"}{end}',
      ])
    )
      .split("\n")
      .sort();

  const diff = async (policyFile: string, ...more: string[]) => {
    const d = io();
    const code = await runDiff(["-f", policyFile, "--kubeconfig", cp.kubeconfigPath, ...more], d.cio);
    return { code, out: d.out(), err: d.err() };
  };

  before(async function () {
    this.timeout(180_000);
    dir = mkdtempSync(join(tmpdir(), "render-it-"));
    cp = await startControlPlane({ name: "render" });
    await installCrd(cp);
    await installGrantableRole(cp);
    reader = new LiveReader(loadKubeConfig(cp.kubeconfigPath));
    await ok(["create", "namespace", "csp-system"]);
    for (const [ns, tier] of [
      ["web-a", "web"],
      ["db-a", "db"],
      ["plain", ""],
    ] as const) {
      await ok(["create", "namespace", ns]);
      if (tier) await ok(["label", "namespace", ns, `csp.example.com/tier=${tier}`]);
    }
    // A pod that a Service selects, in a namespace the baseline will isolate.
    await eventually("default ServiceAccount in web-a", () => ok(["get", "sa", "default", "-n", "web-a"]));
    await ok(
      ["apply", "-f", "-"],
      stringify({
        apiVersion: "v1",
        kind: "Pod",
        metadata: { name: "web-1", namespace: "web-a", labels: { app: "web" } },
        spec: {
          automountServiceAccountToken: false,
          containers: [
            {
              name: "web",
              image: "registry.k8s.io/pause:3.10",
              ports: [{ containerPort: 8080, name: "http" }],
            },
          ],
        },
      }) +
        "---\n" +
        stringify({
          apiVersion: "v1",
          kind: "Service",
          metadata: { name: "web", namespace: "web-a" },
          spec: { selector: { app: "web" }, ports: [{ port: 80, targetPort: "http" }] },
        }),
    );
    writeFileSync(file("team.yaml"), TEAM);
    for (const ns of ["gen-a", "gen-b"]) {
      await ok(["create", "namespace", ns]);
      await ok(["label", "namespace", ns, `csp.example.com/gen=${ns.slice(4)}`]);
    }
    writeFileSync(file("gen.yaml"), GENERATED.map((p) => stringify(p)).join("---\n"));
    writeFileSync(
      file("all.yaml"),
      [readFileSync("samples/baseline.yaml", "utf8"), TEAM, readFileSync(file("gen.yaml"), "utf8")].join(
        "---\n",
      ),
    );
    writeFileSync(file("namespaces.yaml"), await ok(["get", "namespaces", "-o", "yaml"]));
  });

  after(async () => {
    await operator?.stop();
    await cp?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("renders offline from the cluster's Namespace objects", async () => {
    for (const [name, path] of [
      ["baseline", "samples/baseline.yaml"],
      ["team", file("team.yaml")],
      // baseline and team both select db-a, generated ones overlap: rendered together, a shared write is
      // the union the controller applies.
      ["all", file("all.yaml")],
    ] as const) {
      const r = io();
      expect(await runRender(["-f", path, "--namespaces", file("namespaces.yaml")], r.cio), r.err()).to.equal(
        0,
      );
      const docs = parseAllDocuments(r.out());
      rendered[name] = (Array.isArray(docs) ? docs : [docs]).map((d) => d.toJS() as KubernetesObject);
    }
    expect(
      rendered.baseline.map((o) => `${o.kind}/${o.metadata?.namespace ?? ""}/${o.metadata?.name}`),
    ).to.deep.equal([
      "Namespace//db-a",
      "Namespace//web-a",
      "ServiceAccount/db-a/default",
      "ServiceAccount/web-a/default",
      "NetworkPolicy/db-a/csp-baseline-allow-dns",
      "NetworkPolicy/db-a/csp-baseline-allow-same-namespace",
      "NetworkPolicy/db-a/csp-baseline-default-deny",
      "NetworkPolicy/web-a/csp-baseline-allow-dns",
      "NetworkPolicy/web-a/csp-baseline-allow-same-namespace",
      "NetworkPolicy/web-a/csp-baseline-default-deny",
    ]);
    expect(rendered.team.map((o) => o.kind)).to.deep.equal([
      "Namespace",
      "ServiceAccount",
      "ServiceAccount",
      "Role",
      "RoleBinding",
      "NetworkPolicy",
      "NetworkPolicy",
      "NetworkPolicy",
      "ConfigMap",
      "Policy",
    ]);
  });

  it("diff before the operator ran: exit 1, creations, the traffic the baseline cuts, and no write", async () => {
    const before = await versions();
    const d = await diff("samples/baseline.yaml");
    expect(d.code, d.err).to.equal(1);
    expect(d.out).to.include(
      "diff -u -N live/networking.k8s.io.v1.NetworkPolicy.web-a.csp-baseline-default-deny merged/networking.k8s.io.v1.NetworkPolicy.web-a.csp-baseline-default-deny",
    );
    expect(d.out).to.include("+    pod-security.kubernetes.io/enforce: restricted");
    expect(d.out).to.include("+automountServiceAccountToken: false\n");
    expect(d.out).to.include(
      "web-a/web-1 port 8080/TCP (Service web, containerPort): ingress only from pods {} in the same namespace",
    );
    // defaultDenyEgress: egress restricted to the baseline's allowances, DNS among them (so not called out).
    const egress = d.out.split("\n").find((l) => l.includes("web-a/web-1 egress: "));
    expect(egress, d.out).to.match(/web-a\/web-1 egress: only to .*53\/UDP/);
    expect(egress).not.to.include("DNS 53/UDP not allowed");
    const j = await diff("samples/baseline.yaml", "-o", "json");
    const parsed = JSON.parse(j.out) as {
      policies: { changes: { key: string; action: string }[]; impact: unknown[] }[];
    };
    expect(parsed.policies[0]!.changes.map((c) => `${c.action} ${c.key}`)).to.deep.equal([
      "update Namespace/db-a",
      "update Namespace/web-a",
      "create NetworkPolicy/db-a/csp-baseline-allow-dns",
      "create NetworkPolicy/db-a/csp-baseline-allow-same-namespace",
      "create NetworkPolicy/db-a/csp-baseline-default-deny",
      "create NetworkPolicy/web-a/csp-baseline-allow-dns",
      "create NetworkPolicy/web-a/csp-baseline-allow-same-namespace",
      "create NetworkPolicy/web-a/csp-baseline-default-deny",
      "update ServiceAccount/db-a/default",
      "update ServiceAccount/web-a/default",
    ]);
    expect(await versions()).to.deep.equal(before);
  });

  it("render equals what the operator applied: every field csp-operator owns, and nothing more", async () => {
    await ok(["apply", "-f", "samples/baseline.yaml", "-f", file("team.yaml"), "-f", file("gen.yaml")]);
    operator = new Operator(
      loadKubeConfig(cp.kubeconfigPath),
      { workers: 2, resyncMs: 600_000 },
      silentLogger(),
    );
    await operator.start();
    for (const name of ["baseline", "team", ...GENERATED.map((p) => p.metadata.name)]) {
      const uid = await ok(["get", "csp", name, "-o", "jsonpath={.metadata.uid}"]);
      const children = rendered.all.filter((o) => o.metadata?.labels?.[POLICY_LABEL] === name);
      if (name === "team" || name === "baseline") expect(children).to.have.length.above(2);
      await eventually(`${name}'s children applied as rendered`, async () => {
        for (const o of children) {
          const want = JSON.parse(JSON.stringify(o).replaceAll(UID_PLACEHOLDER, uid)) as Child;
          const live = await reader.read(o.apiVersion!, o.kind!, o.metadata?.namespace, o.metadata!.name!);
          if (!live) throw new Error(`${o.kind} ${o.metadata?.namespace}/${o.metadata?.name} not applied`);
          expect(ownedFieldDiff(want, live), `${o.kind} ${o.metadata?.name}`).to.deep.equal([]);
          // The fields csp-operator owns are exactly the rendered ones (a child is created by POST, an Update
          // entry, so that an object someone put at its name is never taken over; repairs are applies).
          const top = (paths: Set<string>) =>
            [...new Set([...paths].map((p) => p.split(".")[0]!))].filter((p) => p !== "metadata").sort();
          expect(top(operatorPaths(live))).to.deep.equal(
            Object.keys(o)
              .filter((k) => !["apiVersion", "kind", "metadata"].includes(k))
              .sort(),
          );
        }
        return true;
      });
      // Nothing applied that render did not show.
      const labelled = (
        await ok([
          "get",
          "networkpolicies,serviceaccounts,roles,rolebindings,configmaps",
          "-A",
          "-l",
          `${POLICY_LABEL}=${name},${MANAGED_BY_LABEL}`,
          "-o",
          "jsonpath={range .items[*]}{.kind}/{.metadata.namespace}/{.metadata.name} {end}",
        ])
      )
        .trim()
        .split(" ")
        .sort();
      expect(labelled).to.deep.equal(
        children.map((o) => `${o.kind}/${o.metadata?.namespace}/${o.metadata?.name}`).sort(),
      );
      // Shared objects: the rendered labels and automount setting are the live ones.
      for (const o of rendered.all.filter((x) => x.kind === "Namespace" || x.kind === "ServiceAccount")) {
        if (o.kind === "ServiceAccount" && o.metadata?.name !== "default") continue;
        const live = (await reader.read(o.apiVersion!, o.kind!, o.metadata?.namespace, o.metadata!.name!))!;
        expect(live.metadata?.labels).to.deep.include(o.metadata?.labels ?? {});
        expect(live.metadata?.annotations ?? {}).to.deep.include(o.metadata?.annotations ?? {});
        if (o.kind === "ServiceAccount") expect(live["automountServiceAccountToken"]).to.equal(false);
      }
    }
    // The audit Policy rendered is the one in the ConfigMap.
    const policyDoc = rendered.team.find((o) => o.kind === "Policy");
    const cm = rendered.team.find((o) => o.kind === "ConfigMap") as unknown as {
      data: Record<string, string>;
    };
    expect(parse(cm.data["audit-policy.yaml"]!)).to.deep.equal(policyDoc);
    const liveCm = await ok([
      "get",
      "cm",
      "-n",
      "csp-system",
      "csp-team-audit-policy",
      "-o",
      "jsonpath={.data.audit-policy\\.yaml}",
    ]);
    expect(parse(liveCm)).to.deep.equal(policyDoc);
    console.log(
      `      render == applied: ${rendered.all.length} objects of ${2 + GENERATED.length} policies`,
    );
  });

  it("a namespace user with edit: diff exits 2 with the API server's refusal, and writes nothing", async () => {
    await ok(["create", "serviceaccount", "dev", "-n", "db-a"]);
    await ok([
      "create",
      "rolebinding",
      "dev-edit",
      "-n",
      "db-a",
      "--clusterrole=edit",
      "--serviceaccount=db-a:dev",
    ]);
    const kubeconfig = await cp.serviceAccountKubeconfig("db-a", "dev");
    const before = await versions();
    const d = io();
    expect(await runDiff(["-f", file("team.yaml"), "--kubeconfig", kubeconfig], d.cio)).to.equal(2);
    expect(d.err()).to.match(/^error: .*forbidden/);
    expect(d.out()).to.equal("");
    expect(await versions()).to.deep.equal(before);
  });

  it("diff once converged: exit 0, no output; a change: exit 1; a prune: exit 1, listed; never a write", async () => {
    await eventually(
      "baseline converged (diff exit 0)",
      async () => (await diff("samples/baseline.yaml")).code === 0,
    );
    const same = await diff(file("team.yaml"));
    expect(same.code, same.out + same.err).to.equal(0);
    expect(same.out).to.equal("");

    const before = await versions();
    writeFileSync(file("changed.yaml"), TEAM.replace("port: 5432", "port: 5433"));
    const changed = await diff(file("changed.yaml"));
    expect(changed.code, changed.err).to.equal(1);
    expect(changed.out).to.include("-        - port: 5432\n+        - port: 5433\n");

    const withoutRole = parse(TEAM) as { spec: { rbac?: unknown } };
    delete withoutRole.spec.rbac;
    writeFileSync(file("pruned.yaml"), stringify(withoutRole));
    const pruned = await diff(file("pruned.yaml"));
    expect(pruned.code, pruned.err).to.equal(1);
    for (const key of ["Role/db-a/db-reader", "RoleBinding/db-a/db-reader", "ServiceAccount/db-a/db-reader"])
      expect(pruned.out).to.include(`prune ${key} (policy team)`);
    expect(await versions()).to.deep.equal(before);

    const bad = await diff(file("nope.yaml"));
    expect(bad.code).to.equal(2);
    // The live render of a converged cluster: nothing would change.
    const live = io();
    expect(await runRender(["-f", file("team.yaml"), "--kubeconfig", cp.kubeconfigPath], live.cio)).to.equal(
      0,
    );
    expect(live.out()).not.to.include("kind: NetworkPolicy");
    expect(live.out()).to.include("kind: Policy");
    expect(readFileSync(file("team.yaml"), "utf8")).to.equal(TEAM);
    // Live, Roles are judged against the real csp-operator-grantable (offline they are assumed grantable).
    writeFileSync(
      file("secrets.yaml"),
      TEAM.replace('resources: ["pods", "services"]', 'resources: ["secrets"]'),
    );
    const refused = io();
    expect(
      await runRender(["-f", file("secrets.yaml"), "--kubeconfig", cp.kubeconfigPath], refused.cio),
    ).to.equal(1);
    expect(refused.err()).to.include("RoleNotGrantable: spec.rbac.roles[name=db-reader]");
    expect(refused.out()).not.to.include("kind: Role\n");
    // diff gates on the same failure (exit 1), even though the refused Role is neither applied nor diffed.
    const gated = await diff(file("secrets.yaml"));
    expect(gated.err).to.include("RoleNotGrantable: spec.rbac.roles[name=db-reader]");
    expect(gated.code, gated.out + gated.err).to.equal(1);
  });
});

/** Every field path csp-operator owns in `obj`, whatever the operation (Apply or the creating Update). */
function operatorPaths(obj: { metadata?: { managedFields?: V1ManagedFieldsEntry[] } }): Set<string> {
  const paths = new Set<string>();
  for (const e of obj.metadata?.managedFields ?? [])
    if (e.manager === FIELD_MANAGER) for (const p of fieldPaths(e.fieldsV1)) paths.add(p);
  return paths;
}
