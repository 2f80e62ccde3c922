/** Needs the local control plane (built on first use by controlplane/build.sh). */
import { expect } from "chai";
import { readFileSync } from "node:fs";
import { parse, parseAllDocuments } from "yaml";
import { useControlPlane } from "../support/controlplane.js";
import { CRD_FILE } from "../support/crd.js";
import { eventually } from "../support/eventually.js";
import { kubectlOk } from "../support/kubectl.js";

const CRD_NAME = "clustersecuritypolicies.security.csp-operator.io";
const LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration";

interface Obj {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; annotations?: Record<string, string> };
  spec?: unknown;
}

describe("install paths: kubectl apply -f crds/, --server-side, -k config/default (real API server)", function () {
  this.timeout(120_000);
  const cp = useControlPlane();
  const ok = kubectlOk(cp);
  const committed = parse(readFileSync(CRD_FILE, "utf8")) as Obj;

  it("--server-side -f crds/ is accepted on a cluster without the CRD (dry run)", async () => {
    const out = await ok(["apply", "--server-side", "--dry-run=server", "-f", "crds/", "-o", "name"]);
    expect(out.trim().split("\n")).to.deep.equal([
      `customresourcedefinition.apiextensions.k8s.io/${CRD_NAME}`,
    ]);
    expect((await cp().kubectl(["get", "crd", CRD_NAME])).code).to.not.equal(0);
  });

  it("-f crds/ applies exactly the CRD, without a warning, and its annotation fits the 256 KiB limit", async () => {
    const r = await cp().kubectl(["apply", "-f", "crds/"]);
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stderr).to.equal("");
    expect(r.stdout.trim()).to.equal(`customresourcedefinition.apiextensions.k8s.io/${CRD_NAME} created`);
    // kubectl wait fails outright while the new CRD has no status.conditions yet: wait for them first.
    await eventually("the CRD to be Established", async () => {
      const crd = JSON.parse(await ok(["get", "crd", CRD_NAME, "-o", "json"])) as {
        status?: { conditions?: { type: string; status: string }[] };
      };
      return crd.status?.conditions?.some((c) => c.type === "Established" && c.status === "True");
    });
    const live = JSON.parse(await ok(["get", "crd", CRD_NAME, "-o", "json"])) as Obj;
    const annotations = live.metadata.annotations ?? {};
    expect(annotations[LAST_APPLIED]).to.be.a("string");
    const size = Object.entries(annotations).reduce((n, [k, v]) => n + k.length + v.length, 0);
    expect(size).to.be.below(256 * 1024);
    expect((await ok(["apply", "-f", "crds/"])).trim()).to.equal(
      `customresourcedefinition.apiextensions.k8s.io/${CRD_NAME} unchanged`,
    );
  });

  it("--server-side -f crds/ then takes over the client-side applied CRD without a conflict", async () => {
    const out = await ok(["apply", "--server-side", "-f", "crds/"]);
    expect(out.trim()).to.equal(
      `customresourcedefinition.apiextensions.k8s.io/${CRD_NAME} serverside-applied`,
    );
    const live = JSON.parse(await ok(["get", "crd", CRD_NAME, "-o", "json"])) as Obj;
    // The API server adds its default conversion strategy; everything else is what crds/ says.
    const { conversion, ...spec } = live.spec as { conversion?: unknown };
    expect(conversion).to.deep.equal({ strategy: "None" });
    expect(spec).to.deep.equal(committed.spec);
  });

  it("-k config/default renders the committed CRD and installs it with the namespace, RBAC and Deployment", async () => {
    const rendered = parseAllDocuments(await ok(["kustomize", "config/default"])).map((d) => d.toJS() as Obj);
    const crds = rendered.filter((o) => o.kind === "CustomResourceDefinition");
    expect(crds).to.deep.equal([committed]);
    await ok(["apply", "-k", "config/default"]);
    for (const o of rendered) {
      const ref = [o.kind, o.metadata.name, ...(o.metadata.namespace ? ["-n", o.metadata.namespace] : [])];
      await eventually(
        `${ref.join(" ")} to exist`,
        async () => (await cp().kubectl(["get", ...ref])).code === 0,
      );
    }
  });

  it("-k config/default, config/agent and config/encryption applied again change nothing, and --server-side takes them over without a conflict", async () => {
    // Fields the API server defaults (a fieldRef's apiVersion, an admission policy's matchPolicy, selectors
    // and scope) are spelled out in config/: otherwise every apply reports "configured" and a server-side
    // apply conflicts with the client-side manager that "owns" the default.
    const dirs = ["config/default", "config/agent", "config/encryption"];
    for (const dir of dirs.slice(1)) await ok(["apply", "-k", dir]);
    const versions = async (dir: string) =>
      (
        JSON.parse(await ok(["get", "-k", dir, "-o", "json"])) as {
          items: { kind: string; metadata: { name: string; resourceVersion: string } }[];
        }
      ).items.map((o) => `${o.kind}/${o.metadata.name}@${o.metadata.resourceVersion}`);
    for (const dir of dirs) {
      const before = await versions(dir);
      const lines = (await ok(["apply", "-k", dir])).trim().split("\n");
      expect(lines.length, dir).to.be.above(0);
      // kubectl always sends a PodDisruptionBudget's selector (its patch strategy is "replace") and so says
      // "configured" although the API server changes nothing; the resourceVersions below prove it.
      for (const line of lines.filter((l) => !l.startsWith("poddisruptionbudget.policy/")))
        expect(line, `kubectl apply -k ${dir} again`).to.match(/ unchanged$/);
      expect(await versions(dir), `${dir}: no object written`).to.deep.equal(before);
    }
    for (const dir of dirs) {
      const r = await cp().kubectl(["apply", "--server-side", "-k", dir]);
      expect(r.code, `kubectl apply --server-side -k ${dir}: ${r.stderr}`).to.equal(0);
      for (const line of r.stdout.trim().split("\n")) expect(line, dir).to.match(/ serverside-applied$/);
    }
  });

  it("the README's kustomize uninstall removes the operator and keeps csp-system, the CRD and the policies", async () => {
    await ok(
      ["apply", "-f", "-"],
      "apiVersion: security.csp-operator.io/v1alpha1\nkind: ClusterSecurityPolicy\nmetadata: {name: kept}\nspec: {mode: Audit}\n",
    );
    // The README's lines, word for word (Uninstall section).
    for (const dir of ["config/agent", "config/encryption", "config/credentials"])
      await ok(["delete", "--ignore-not-found", "-k", dir]);
    await ok(["delete", "-k", "config/rbac"]);
    await ok([
      "delete",
      "-n",
      "csp-system",
      "deployment/csp-operator",
      "poddisruptionbudget/csp-operator",
      "service/csp-operator-metrics",
      "networkpolicy/csp-operator",
    ]);
    const rendered = parseAllDocuments(await ok(["kustomize", "config/default"])).map((d) => d.toJS() as Obj);
    for (const o of rendered) {
      const ref = [o.kind, o.metadata.name, ...(o.metadata.namespace ? ["-n", o.metadata.namespace] : [])];
      const kept = o.kind === "CustomResourceDefinition" || o.kind === "Namespace";
      expect(
        (await cp().kubectl(["get", ...ref])).code === 0,
        `${ref.join(" ")} ${kept ? "kept" : "removed"}`,
      ).to.equal(kept);
    }
    await ok(["get", "clustersecuritypolicy", "kept"]);
  });
});
