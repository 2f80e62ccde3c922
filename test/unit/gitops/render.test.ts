import { expect } from "chai";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { V1Namespace } from "@kubernetes/client-node";
import { parseAllDocuments } from "yaml";
import type { ClusterSecurityPolicy } from "../../../src/api/v1alpha1/policy.js";
import { keyFromBytes } from "../../../src/desired/encryption/keys.js";
import { renderEncryptionConfiguration } from "../../../src/desired/encryption/render.js";
import type { CommandIO } from "../../../src/gitops/command.js";
import { runDiff, runRender } from "../../../src/gitops/rendercommand.js";
import {
  crossPolicyConflicts,
  InputError,
  KEY_PLACEHOLDER,
  offlineSnapshot,
  parseNamespaces,
  policyDocuments,
  redactKeys,
  renderPolicy,
  renderYaml,
  UID_PLACEHOLDER,
} from "../../../src/gitops/render.js";

const NOW = new Date("2026-01-02T03:04:05Z");

const ns = (name: string, labels: Record<string, string> = {}): V1Namespace => ({
  apiVersion: "v1",
  kind: "Namespace",
  metadata: { name, labels },
});

function policy(name: string, spec: Record<string, unknown>): ClusterSecurityPolicy {
  return {
    apiVersion: "security.csp-operator.io/v1alpha1",
    kind: "ClusterSecurityPolicy",
    metadata: { name },
    spec,
  };
}

const baseline = policy("baseline", {
  namespaces: { selector: { matchLabels: { tier: "web" } } },
  networkPolicies: { defaultDenyIngress: true, defaultDenyEgress: true, allowDNS: true },
  podSecurity: { enforce: "restricted" },
  serviceAccounts: { automountDefaultToken: false },
  rbac: {
    roles: [
      {
        name: "reader",
        rules: [{ apiGroups: [""], resources: ["pods"], verbs: ["get"] }],
      },
    ],
  },
});

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

describe("render (offline, from the controller's plan)", () => {
  it("renders in write order: Namespace, ServiceAccount, Role, RoleBinding, NetworkPolicy; by namespace and name", () => {
    const r = renderPolicy(
      "baseline",
      offlineSnapshot([baseline], [ns("b", { tier: "web" }), ns("a", { tier: "web" }), ns("c")], NOW),
    );
    const keys = r.objects.map(
      (o) => `${o.object.kind}/${o.object.metadata?.namespace ?? ""}/${o.object.metadata?.name}`,
    );
    expect(keys).to.deep.equal([
      "Namespace//a",
      "Namespace//b",
      "ServiceAccount/a/default",
      "ServiceAccount/a/reader",
      "ServiceAccount/b/default",
      "ServiceAccount/b/reader",
      "Role/a/reader",
      "Role/b/reader",
      "RoleBinding/a/reader",
      "RoleBinding/b/reader",
      "NetworkPolicy/a/csp-baseline-allow-dns",
      "NetworkPolicy/a/csp-baseline-default-deny",
      "NetworkPolicy/b/csp-baseline-allow-dns",
      "NetworkPolicy/b/csp-baseline-default-deny",
    ]);
    expect(r.failures).to.deep.equal([]);
    expect(r.objects[0]!.object.metadata?.labels).to.deep.include({
      "pod-security.kubernetes.io/enforce": "restricted",
    });
    expect(
      r.objects.find((o) => o.object.kind === "NetworkPolicy")!.object.metadata?.ownerReferences?.[0]?.uid,
    ).to.equal(UID_PLACEHOLDER);
  });

  it("gives byte-identical YAML whatever the order of the input namespaces", () => {
    const a = renderYaml([
      renderPolicy(
        "baseline",
        offlineSnapshot([baseline], [ns("x", { tier: "web" }), ns("y", { tier: "web" })], NOW),
      ),
    ]);
    const b = renderYaml([
      renderPolicy(
        "baseline",
        offlineSnapshot([baseline], [ns("y", { tier: "web" }), ns("x", { tier: "web" })], NOW),
      ),
    ]);
    expect(a).to.equal(b);
    const docs = parseAllDocuments(a);
    expect(Array.isArray(docs) ? docs.length : 1).to.equal(14);
  });

  it("renders nothing for namespaces another policy selects, nor for an Audit policy's writes", () => {
    const other = policy("other", {
      namespaces: { selector: { matchLabels: { tier: "db" } } },
      podSecurity: { enforce: "baseline" },
    });
    const r = renderPolicy(
      "baseline",
      offlineSnapshot([baseline, other], [ns("a", { tier: "web" }), ns("d", { tier: "db" })], NOW),
    );
    expect(
      r.objects.filter((o) => o.object.metadata?.name === "d" || o.object.metadata?.namespace === "d"),
    ).to.deep.equal([]);
    const audit = policy("baseline", { ...baseline.spec, mode: "Audit", auditPolicy: {} });
    expect(
      renderPolicy("baseline", offlineSnapshot([audit], [ns("a", { tier: "web" })], NOW)).objects,
    ).to.deep.equal([]);
  });

  it("names children two policies rendered together both generate", () => {
    const other = policy("other", { ...baseline.spec, networkPolicies: {} });
    const snapshot = offlineSnapshot([baseline, other], [ns("a", { tier: "web" })], NOW);
    expect(
      crossPolicyConflicts([renderPolicy("baseline", snapshot), renderPolicy("other", snapshot)]),
    ).to.deep.equal([
      "Conflict: Role/a/reader is generated by policies baseline and other: the first reconciled owns it, the other reports Conflict",
      "Conflict: RoleBinding/a/reader is generated by policies baseline and other: the first reconciled owns it, the other reports Conflict",
      "Conflict: ServiceAccount/a/reader is generated by policies baseline and other: the first reconciled owns it, the other reports Conflict",
    ]);
    expect(crossPolicyConflicts([renderPolicy("baseline", snapshot)])).to.deep.equal([]);
  });

  it("replaces every key of the EncryptionConfiguration by the placeholder", () => {
    const key = keyFromBytes("aescbc", "k1", NOW.toISOString(), new Uint8Array(32).fill(7));
    const config = renderEncryptionConfiguration({ provider: "aescbc" }, { primary: "k1", keys: [key] });
    const redacted = JSON.stringify(redactKeys(config));
    expect(redacted).not.to.include(key.secret);
    expect(redacted).to.include(KEY_PLACEHOLDER);
    expect(JSON.stringify(config)).to.include(key.secret); // the input is left alone

    const r = renderPolicy(
      "enc",
      offlineSnapshot([policy("enc", { encryption: { provider: "aesgcm" }, auditPolicy: {} })], [], NOW),
    );
    const kinds = r.objects.map((o) => o.object.kind);
    expect(kinds).to.deep.equal(["ConfigMap", "Policy", "EncryptionConfiguration"]);
    const text = renderYaml([r]);
    expect(text).to.include(`secret: "${KEY_PLACEHOLDER}"`);
    // No base64 of 32 bytes anywhere (the shape of a key).
    expect(text).not.to.match(/[A-Za-z0-9+/]{43}=/);
  });

  it("reads Namespace files and Lists, naming the document and field of bad input", () => {
    const list =
      "apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Namespace, metadata: {name: b}}\n- {apiVersion: v1, kind: Namespace, metadata: {name: a}}\n";
    expect(parseNamespaces("ns.yaml", list).map((n) => n.metadata?.name)).to.deep.equal(["a", "b"]);
    expect(() => parseNamespaces("ns.yaml", list.replace("name: a", "name: b"))).to.throw(
      InputError,
      "ns.yaml (document 1, item 2): namespace b given twice",
    );
    expect(() => parseNamespaces("ns.yaml", "kind: Namespace\nmetadata: {}\n")).to.throw(
      InputError,
      "ns.yaml: metadata.name is required",
    );
    expect(() =>
      parseNamespaces("ns.yaml", "---\nkind: Namespace\nmetadata: {name: a}\n---\nkind: Pod\n"),
    ).to.throw(InputError, 'ns.yaml (document 2): kind is "Pod", expected Namespace');
    expect(() =>
      parseNamespaces("ns.yaml", "kind: Namespace\nmetadata: {name: a, labels: {x: 1}}\n"),
    ).to.throw("metadata.labels must map strings to strings");
    expect(() => parseNamespaces("ns.yaml", "kind: [\n")).to.throw(InputError, "not valid YAML");
  });

  it("reads policy YAML as kubectl does (YAML 1.1 booleans, timestamps as strings)", () => {
    const [doc] = policyDocuments(
      "p.yaml",
      "kind: ClusterSecurityPolicy\nmetadata: {name: p, labels: {a: y}}\nspec: {exemptions: [{expires: 2027-01-01T00:00:00Z}]}\n",
    ).map((d) => d.object) as {
      metadata: { labels: { a: unknown } };
      spec: { exemptions: { expires: unknown }[] };
    }[];
    expect(doc!.metadata.labels.a).to.equal(true);
    expect(doc!.spec.exemptions[0]!.expires).to.equal("2027-01-01T00:00:00Z");
  });

  it("opens Lists of policies, each located by document and item", () => {
    const docs = policyDocuments(
      "p.yaml",
      "kind: Namespace\n---\napiVersion: v1\nkind: List\nitems:\n- {kind: ClusterSecurityPolicy, metadata: {name: a}}\n- {kind: ConfigMap}\n- {kind: ClusterSecurityPolicy, metadata: {name: b}}\n",
    );
    expect(docs.map((d) => d.where)).to.deep.equal([
      "p.yaml (document 2, item 1)",
      "p.yaml (document 2, item 3)",
    ]);
  });

  describe("runRender", () => {
    let dir: string;
    before(() => (dir = mkdtempSync(join(tmpdir(), "render-"))));
    after(() => rmSync(dir, { recursive: true, force: true }));

    it("exits 0 with a YAML stream, or a kubectl List with -o json", async () => {
      writeFileSync(
        join(dir, "ns.yaml"),
        "kind: Namespace\nmetadata: {name: team-a, labels: {csp.example.com/tier: web}}\n",
      );
      const y = io();
      expect(
        await runRender(["-f", "samples/baseline.yaml", "--namespaces", join(dir, "ns.yaml")], y.cio),
      ).to.equal(0);
      expect(y.out()).to.match(/^---\n# policy baseline, shared/);
      const j = io();
      expect(
        await runRender(
          ["-f", "samples/baseline.yaml", "--namespaces", join(dir, "ns.yaml"), "-o", "json"],
          j.cio,
        ),
      ).to.equal(0);
      const parsed = JSON.parse(j.out()) as { kind: string; items: { kind: string }[] };
      expect(parsed.kind).to.equal("List");
      expect(parsed.items.map((i) => i.kind)).to.deep.equal([
        "Namespace",
        "ServiceAccount",
        "NetworkPolicy",
        "NetworkPolicy",
        "NetworkPolicy",
      ]);
    });

    it("exits 1 naming the field of an invalid policy, 2 on unreadable input or bad usage", async () => {
      writeFileSync(
        join(dir, "bad.yaml"),
        "apiVersion: security.csp-operator.io/v1alpha1\nkind: ClusterSecurityPolicy\nmetadata: {name: bad}\nspec: {mode: Sometimes}\n",
      );
      const bad = io();
      expect(await runRender(["-f", join(dir, "bad.yaml")], bad.cio)).to.equal(1);
      expect(bad.err()).to.include("spec.mode");
      expect(bad.out()).to.equal("");
      const missing = io();
      expect(await runRender(["-f", join(dir, "nope.yaml")], missing.cio)).to.equal(2);
      expect(missing.err()).to.include("nope.yaml");
      const both = io();
      expect(
        await runRender(["-f", "samples/baseline.yaml", "--namespaces", "x", "--kubeconfig", "y"], both.cio),
      ).to.equal(2);
      const badNs = io();
      writeFileSync(join(dir, "badns.yaml"), "kind: Namespace\n");
      expect(
        await runRender(["-f", "samples/baseline.yaml", "--namespaces", join(dir, "badns.yaml")], badNs.cio),
      ).to.equal(2);
      expect(badNs.err()).to.include("metadata.name is required");
      const help = io();
      expect(await runRender(["--help"], help.cio)).to.equal(0);
      expect(help.out()).to.include("--namespaces");
    });

    it("diff exits 2 on bad usage, an invalid policy (before any request) or an unreachable cluster", async () => {
      const usage = io();
      expect(await runDiff([], usage.cio)).to.equal(2);
      expect(usage.err()).to.include("--filename");
      const invalid = io();
      expect(
        await runDiff(["-f", join(dir, "bad.yaml"), "--kubeconfig", join(dir, "none")], invalid.cio),
      ).to.equal(2);
      expect(invalid.err()).to.include("spec.mode");
      writeFileSync(
        join(dir, "kubeconfig"),
        "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'https://127.0.0.1:1'}}]\n" +
          "users: [{name: u, user: {token: t}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n",
      );
      const down = io();
      expect(
        await runDiff(["-f", "samples/baseline.yaml", "--kubeconfig", join(dir, "kubeconfig")], down.cio),
      ).to.equal(2);
      expect(down.err()).to.match(/^error: /);
    });

    it("reads the policy from standard input with -f -", async () => {
      const s = io(
        "apiVersion: security.csp-operator.io/v1alpha1\nkind: ClusterSecurityPolicy\nmetadata: {name: p}\nspec: {auditPolicy: {}}\n",
      );
      expect(await runRender(["-f", "-"], s.cio)).to.equal(0);
      expect(s.out()).to.include("kind: Policy");
    });
  });
});
