/** Needs the local control plane (built on first use by controlplane/build.sh). */
import { expect } from "chai";
import { readdirSync, readFileSync } from "node:fs";
import { NetworkingV1Api, Watch, type KubeConfig, type V1NetworkPolicy } from "@kubernetes/client-node";
import { parse, stringify } from "yaml";
import { startControlPlane, type ControlPlane } from "../../controlplane/harness.js";
import { loadKubeConfig } from "../../src/cluster/client.js";
import { silentLogger } from "../../src/observability/logger.js";
import { Operator } from "../../src/controller/manager.js";
import { CRD_FILE, installCrd } from "../support/crd.js";
import { eventually } from "../support/eventually.js";
import { installGrantableRole } from "../support/grantable.js";
import { kubectlOk } from "../support/kubectl.js";

interface PolicyStatus {
  metadata: { uid: string };
  status?: {
    conditions?: { type: string; status: string; reason: string; message: string }[];
    drift?: { reason: string; kind: string; name: string; namespace?: string }[];
  };
}

/** The `# error: <text>` line of an invalid sample: what its rejection must say (the field it names). */
function expectedField(file: string): string | undefined {
  return /^# error: (.+)$/m.exec(readFileSync(`samples/invalid/${file}`, "utf8"))?.[1];
}

describe("child names unique by construction (real API server)", function () {
  this.timeout(180_000);
  let cp: ControlPlane;
  let kc: KubeConfig;
  let operator: Operator | undefined;
  let net: NetworkingV1Api;
  const mustSucceed = kubectlOk(() => cp);
  const ok = (args: string[], input?: string) => mustSucceed(args, input);
  const csp = async (name: string) =>
    JSON.parse(await ok(["get", "csp", name, "-o", "json"])) as PolicyStatus;
  const condition = async (name: string, type: string) =>
    (await csp(name)).status?.conditions?.find((c) => c.type === type);
  const nps = async (ns: string) => (await net.listNamespacedNetworkPolicy({ namespace: ns })).items;
  const versions = async (ns: string) =>
    Object.fromEntries((await nps(ns)).map((p) => [p.metadata!.name!, p.metadata!.resourceVersion!]));
  const startOperator = async () => {
    operator = new Operator(kc, { workers: 2, resyncMs: 1500 }, silentLogger());
    await operator.start();
  };
  /** Waits until every policy has been reconciled `rounds` more times (resync every 1.5 s). */
  const afterReconciles = async (rounds: number, policies: number) => {
    const start = operator!.controller.stats.reconciles;
    await eventually(
      `${rounds} more reconciles of ${policies} policies`,
      () => Promise.resolve(operator!.controller.stats.reconciles >= start + rounds * policies),
      60_000,
    );
  };

  before(async function () {
    this.timeout(240_000);
    cp = await startControlPlane({ name: "names" });
    await installCrd(cp);
    await installGrantableRole(cp);
    kc = loadKubeConfig(cp.kubeconfigPath);
    net = kc.makeApiClient(NetworkingV1Api);
    await startOperator();
  });

  after(async () => {
    await operator?.stop();
    await cp?.stop();
  });

  afterEach(function () {
    if (this.currentTest?.state === "failed") console.error(`control plane logs:\n${cp.logs()}`);
  });

  it("refuses every invalid sample at admission with an error naming its field (server dry run)", async () => {
    const files = readdirSync("samples/invalid").filter((f) => f.endsWith(".yaml"));
    for (const f of [
      "extra-named-like-built-in.yaml",
      "role-service-account-default.yaml",
      "role-named-default.yaml",
      "roles-sharing-service-account.yaml",
      "name-with-dot.yaml",
    ])
      expect(files).to.include(f);
    for (const file of files) {
      const field = expectedField(file);
      expect(field, `samples/invalid/${file} has no '# error: <field>' line`).to.be.a("string");
      const r = await cp.kubectl(["apply", "--dry-run=server", "-f", `samples/invalid/${file}`]);
      expect(r.code, `samples/invalid/${file} was accepted`).to.not.equal(0);
      expect(r.stderr, `samples/invalid/${file}`).to.include(field);
    }
  });

  it("names both entries when two roles share a ServiceAccount, and accepts the near misses", async () => {
    const r = await cp.kubectl([
      "apply",
      "--dry-run=server",
      "-f",
      "samples/invalid/roles-sharing-service-account.yaml",
    ]);
    expect(r.stderr).to.include(
      "entries name=reader and name=writer generate the same ServiceAccount reader",
    );
    const accepted = stringify({
      apiVersion: "security.csp-operator.io/v1alpha1",
      kind: "ClusterSecurityPolicy",
      metadata: { name: "near-misses" },
      spec: {
        networkPolicies: {
          extra: ["b-default-deny", "default-deny-web", "allow-dns-2", "my-allow-same-namespace"].map(
            (name) => ({
              name,
              spec: { podSelector: {} },
            }),
          ),
        },
        rbac: {
          roles: [
            { name: "reader", rules: [{ apiGroups: [""], resources: ["pods"], verbs: ["get"] }] },
            {
              name: "writer",
              serviceAccount: "writer-sa",
              rules: [{ apiGroups: [""], resources: ["pods"], verbs: ["get"] }],
            },
            {
              name: "default-reader",
              rules: [{ apiGroups: [""], resources: ["pods"], verbs: ["get"] }],
            },
          ],
        },
      },
    });
    await ok(["apply", "--dry-run=server", "-f", "-"], accepted);
    for (const file of readdirSync("samples").filter((f) => f.endsWith(".yaml")))
      await ok(["apply", "--dry-run=server", "-f", `samples/${file}`]);
  });

  it("policy a with extra b-default-deny and policy a-b: distinct default-denies, nothing flaps", async () => {
    await ok(["create", "namespace", "shop"]);
    await ok(["label", "namespace", "shop", "names-test=on-x"]);
    const policy = (name: string, extra: object[]) =>
      stringify({
        apiVersion: "security.csp-operator.io/v1alpha1",
        kind: "ClusterSecurityPolicy",
        metadata: { name },
        spec: {
          namespaces: { selector: { matchLabels: { "names-test": "on-x" } } },
          networkPolicies: { extra },
        },
      });
    // The extra opens all ingress: were it to share the default-deny's name, the two would alternate.
    await ok(["apply", "-f", "-"], policy("a", [{ name: "b-default-deny", spec: { ingress: [{}] } }]));
    await ok(["apply", "-f", "-"], policy("a-b", []));
    for (const p of ["a", "a-b"]) {
      await ok(["wait", "--for=condition=Ready", `csp/${p}`, "--timeout=60s"]);
      await ok(["wait", "--for=condition=Compliant", `csp/${p}`, "--timeout=60s"]);
    }
    const byName = new Map((await nps("shop")).map((p) => [p.metadata!.name!, p]));
    expect([...byName.keys()].sort()).to.deep.equal([
      "csp-a-allow-dns",
      "csp-a-b-allow-dns",
      "csp-a-b-default-deny",
      "csp-a-default-deny",
      "csp-a.b-default-deny",
    ]);
    for (const [name, owner] of [
      ["csp-a-default-deny", "a"],
      ["csp-a-b-default-deny", "a-b"],
    ] as const) {
      const deny = byName.get(name)!;
      expect(deny.spec, name).to.deep.equal({ podSelector: {}, policyTypes: ["Ingress", "Egress"] });
      expect(deny.metadata?.ownerReferences?.[0]?.name, name).to.equal(owner);
    }
    expect(byName.get("csp-a.b-default-deny")?.spec?.ingress).to.deep.equal([{}]);

    const before = await versions("shop");
    await afterReconciles(3, 2);
    expect(await versions("shop")).to.deep.equal(before, "a NetworkPolicy was rewritten while converged");
    for (const p of ["a", "a-b"])
      expect((await csp(p)).status?.drift ?? [], `drift of ${p}`).to.deep.equal([]);
  });

  it("a policy stored before the admission rules neither flaps nor hides the problem", async () => {
    // The CRD as it was before the rules existed, so the API server stores what it now refuses.
    const crd = parse(readFileSync(CRD_FILE, "utf8")) as Record<string, unknown>;
    const strip = (node: unknown): unknown => {
      if (Array.isArray(node)) return node.map(strip);
      if (!node || typeof node !== "object") return node;
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(node)) {
        if (k === "x-kubernetes-validations")
          out[k] = (v as { rule: string }[]).filter(
            (r) => !/default-deny|serviceAccount|contains\('\.'\)/.test(r.rule),
          );
        else out[k] = strip(v);
      }
      return out;
    };
    await ok(["apply", "-f", "-"], stringify(strip(crd)));
    const stored = stringify({
      apiVersion: "security.csp-operator.io/v1alpha1",
      kind: "ClusterSecurityPolicy",
      metadata: { name: "legacy" },
      spec: {
        namespaces: { selector: { matchLabels: { "names-test": "on-x" } } },
        networkPolicies: { extra: [{ name: "default-deny", spec: { ingress: [{}] } }] },
        rbac: {
          roles: [
            { name: "reader", rules: [{ apiGroups: [""], resources: ["pods"], verbs: ["get"] }] },
            {
              name: "writer",
              serviceAccount: "reader",
              rules: [{ apiGroups: [""], resources: ["services"], verbs: ["get"] }],
            },
          ],
        },
      },
    });
    await eventually("the old CRD to take effect", async () => {
      const r = await cp.kubectl(["apply", "-f", "-"], { input: stored });
      return r.code === 0;
    });
    await installCrd(cp);
    // A new policy like it is refused (the stored one is ratcheted: its unchanged fields are not re-checked).
    const again = stored.replace("name: legacy", "name: legacy-again");
    await eventually(
      "the new CRD to refuse it",
      async () => (await cp.kubectl(["create", "--dry-run=server", "-f", "-"], { input: again })).code !== 0,
    );

    const ready = await eventually("InvalidSpec", async () => {
      const c = await condition("legacy", "Ready");
      return c?.reason === "InvalidSpec" ? c : undefined;
    });
    expect(ready.status).to.equal("False");
    expect(ready.message).to.include(
      "spec.rbac.roles[name=reader].name and spec.rbac.roles[name=writer].serviceAccount generate the same ServiceAccount",
    );
    await eventually("the extra and the role objects", async () => {
      const names = (await nps("shop")).map((p) => p.metadata!.name!);
      return names.includes("csp-legacy.default-deny") && names.includes("csp-legacy-default-deny");
    });
    const deny = (await nps("shop")).find((p) => p.metadata?.name === "csp-legacy-default-deny");
    expect(deny?.spec).to.deep.equal({ podSelector: {}, policyTypes: ["Ingress", "Egress"] });
    await eventually("the RoleBindings", async () => {
      const r = await cp.kubectl(["get", "rolebinding", "reader", "writer", "-n", "shop"]);
      return r.code === 0;
    });

    const before = await versions("shop");
    const sa = JSON.parse(await ok(["get", "serviceaccount", "reader", "-n", "shop", "-o", "json"])) as {
      metadata: { resourceVersion: string };
    };
    await afterReconciles(3, 3);
    expect(await versions("shop")).to.deep.equal(before, "a NetworkPolicy was rewritten while converged");
    const saAfter = JSON.parse(await ok(["get", "serviceaccount", "reader", "-n", "shop", "-o", "json"])) as {
      metadata: { resourceVersion: string };
    };
    expect(saAfter.metadata.resourceVersion).to.equal(
      sa.metadata.resourceVersion,
      "the ServiceAccount flapped",
    );
    await ok(["delete", "csp", "legacy"]);
  });

  it("upgrade: an extra named the old way is replaced, the new one created before the old is pruned", async () => {
    // The state an earlier version left: children named csp-up-<suffix>, the extra included.
    await operator!.stop();
    operator = undefined;
    await ok(["create", "namespace", "legacy-ns"]);
    await ok(["label", "namespace", "legacy-ns", "names-up=on-x"]);
    await ok(
      ["apply", "-f", "-"],
      stringify({
        apiVersion: "security.csp-operator.io/v1alpha1",
        kind: "ClusterSecurityPolicy",
        metadata: { name: "up" },
        spec: {
          namespaces: { selector: { matchLabels: { "names-up": "on-x" } } },
          // Egress is not denied by default here: the extra is what restricts it, so losing it opens egress.
          networkPolicies: {
            defaultDenyEgress: false,
            extra: [{ name: "web", spec: { policyTypes: ["Egress"], egress: [{ ports: [{ port: 443 }] }] } }],
          },
        },
      }),
    );
    const uid = (await csp("up")).metadata.uid;
    const old = (name: string, spec: object) =>
      stringify({
        apiVersion: "networking.k8s.io/v1",
        kind: "NetworkPolicy",
        metadata: {
          name,
          namespace: "legacy-ns",
          labels: { "app.kubernetes.io/managed-by": "csp-operator", "security.csp-operator.io/policy": "up" },
          ownerReferences: [
            {
              apiVersion: "security.csp-operator.io/v1alpha1",
              kind: "ClusterSecurityPolicy",
              name: "up",
              uid,
              controller: true,
            },
          ],
        },
        spec,
      });
    await ok(
      ["apply", "--server-side", "--field-manager=csp-operator", "-f", "-"],
      [
        old("csp-up-default-deny", { podSelector: {}, policyTypes: ["Ingress"] }),
        old("csp-up-web", { podSelector: {}, policyTypes: ["Egress"], egress: [{ ports: [{ port: 443 }] }] }),
      ].join("---\n"),
    );
    // A namespace user squats the new name first: the old object must then stay, whatever the operator does.
    await ok([
      "create",
      "rolebinding",
      "mallory-edit",
      "--clusterrole=edit",
      "--user=mallory",
      "-n",
      "legacy-ns",
    ]);
    await ok(
      ["apply", "--as=mallory", "-f", "-"],
      stringify({
        apiVersion: "networking.k8s.io/v1",
        kind: "NetworkPolicy",
        metadata: { name: "csp-up.web", namespace: "legacy-ns" },
        spec: { podSelector: {}, policyTypes: ["Egress"], egress: [{}] },
      }),
    );

    const initial = await nps("legacy-ns");
    const rv = (await net.listNamespacedNetworkPolicy({ namespace: "legacy-ns" })).metadata!.resourceVersion!;
    const seen: string[] = [];
    const watch = await new Watch(kc).watch(
      "/apis/networking.k8s.io/v1/namespaces/legacy-ns/networkpolicies",
      { resourceVersion: rv },
      (type: string, obj: V1NetworkPolicy) => seen.push(`${type} ${obj.metadata?.name}`),
      () => undefined,
    );
    try {
      await startOperator();
      const unowned = await eventually("the squatted name reported Unowned", async () => {
        const d = (await csp("up")).status?.drift?.find((x) => x.name === "csp-up.web");
        return d?.reason === "Unowned" ? d : undefined;
      });
      expect(unowned.namespace).to.equal("legacy-ns");
      await afterReconciles(2, 3);
      expect((await nps("legacy-ns")).map((p) => p.metadata!.name!).sort()).to.deep.equal(
        ["csp-up-default-deny", "csp-up-web", "csp-up.web"],
        "the old extra must stay while the new name is not the policy's",
      );

      await ok(["delete", "networkpolicy", "csp-up.web", "-n", "legacy-ns", "--as=mallory"]);
      await eventually("the old-named extra pruned", () =>
        Promise.resolve(seen.includes("DELETED csp-up-web")),
      ).catch(async (err: Error) => {
        const status = (await csp("up")).status;
        throw new Error(`${err.message}; watched: ${seen.join(", ")}; status: ${JSON.stringify(status)}`);
      });
      // Not Compliant: mallory's `edit` binding is itself a finding. Ready, and nothing drifted.
      await ok(["wait", "--for=condition=Ready", "csp/up", "--timeout=60s"]);
      await eventually("no drift", async () => ((await csp("up")).status?.drift ?? []).length === 0);
    } finally {
      watch.abort();
    }
    const created = seen.lastIndexOf("ADDED csp-up.web");
    const pruned = seen.indexOf("DELETED csp-up-web");
    expect(created, seen.join(", ")).to.be.greaterThan(-1);
    expect(created, `created after the old one was pruned: ${seen.join(", ")}`).to.be.lessThan(pruned);
    expect(seen.filter((e) => e.endsWith(" csp-up-default-deny") && e.startsWith("DELETED"))).to.deep.equal(
      [],
    );
    const final = await nps("legacy-ns");
    expect(final.map((p) => p.metadata!.name!).sort()).to.deep.equal(["csp-up-default-deny", "csp-up.web"]);
    const web = final.find((p) => p.metadata?.name === "csp-up.web")!;
    expect(web.metadata?.ownerReferences?.[0]?.uid).to.equal(uid);
    expect(web.spec?.egress).to.deep.equal([{ ports: [{ port: 443, protocol: "TCP" }] }]);
    const deny = final.find((p) => p.metadata?.name === "csp-up-default-deny")!;
    const deny0 = initial.find((p) => p.metadata?.name === "csp-up-default-deny")!;
    expect(deny.metadata?.uid).to.equal(deny0.metadata?.uid, "the default-deny was never replaced");
  });
});
