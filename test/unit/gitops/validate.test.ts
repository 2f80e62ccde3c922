import { expect } from "chai";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse, stringify } from "yaml";
import type { OpenApiSchema } from "../../../src/api/schema.js";
import { validateCel } from "../../../src/gitops/cel.js";
import { runValidate, type CommandIO } from "../../../src/gitops/command.js";
import { loadValidator, type PolicyValidator } from "../../../src/gitops/validate.js";
import { randomVariant } from "./variants.js";

/** A policy manifest as YAML text. */
function policy(name: string, spec: unknown): string {
  return stringify({
    apiVersion: "security.csp-operator.io/v1alpha1",
    kind: "ClusterSecurityPolicy",
    metadata: { name },
    spec,
  });
}

function capture(stdin = ""): CommandIO & { out: string[]; err: string[] } {
  const out: string[] = [];
  const err: string[] = [];
  return {
    out,
    err,
    stdout: (s) => out.push(s),
    stderr: (s) => err.push(s),
    readStdin: () => Promise.resolve(stdin),
    setExitCode: () => {},
  };
}

describe("gitops validate (offline, no API server)", () => {
  let v: PolicyValidator;
  const errors = (text: string) => v.validateText("t.yaml", text).flatMap((r) => r.errors);
  const fields = (text: string) => errors(text).map((e) => e.field);

  before(() => {
    v = loadValidator();
  });

  it("reads every CEL rule of the generated CRD (none is re-written here)", () => {
    const crd = readFileSync("crds/security.csp-operator.io_clustersecuritypolicies.yaml", "utf8");
    expect(v.ruleCount).to.equal((crd.match(/^\s*- rule: /gm) ?? []).length);
    expect(v.ruleCount).to.be.greaterThan(8);
  });

  it("accepts every sample and rejects every invalid sample at the field its comment documents", () => {
    for (const f of readdirSync("samples").filter((x) => x.endsWith(".yaml")))
      expect(errors(readFileSync(`samples/${f}`, "utf8")), f).to.deep.equal([]);
    for (const f of readdirSync("samples/invalid")) {
      const text = readFileSync(`samples/invalid/${f}`, "utf8");
      const documented = /^# error: ([^:\s]+)/m.exec(text)![1]!;
      const found = fields(text).map((x) => x || "metadata.name"); // root rules are about metadata.name
      expect(found, f).to.include(documented);
    }
  });

  it("names the field and the rule's own message, like the API server", () => {
    const text = policy("p", {
      rbac: { roles: [{ name: "a", rules: [{ resources: ["*"], verbs: ["get"] }] }] },
    });
    expect(errors(text).map((e) => e.message)).to.deep.equal([
      "spec.rbac.roles[0].rules: Invalid value: wildcards ('*') and the verbs escalate, bind and impersonate need riskAcceptance.reason",
    ]);
  });

  it("evaluates messageExpression: the entries that collide are named", () => {
    const roles = [
      { name: "a", rules: [{ verbs: ["get"], resources: ["pods"] }] },
      { name: "b", serviceAccount: "a", rules: [{ verbs: ["get"], resources: ["pods"] }] },
    ];
    expect(errors(policy("p", { rbac: { roles } })).map((e) => e.message)).to.deep.equal([
      "spec.rbac.roles: Invalid value: entries name=a and name=b generate the same ServiceAccount a: give each entry its own serviceAccount",
    ]);
  });

  it("runs an optionalOldSelf rule on create (oldSelf has no value) and skips other transition rules", () => {
    const schema: OpenApiSchema = {
      type: "object",
      properties: { n: { type: "integer" } },
      "x-kubernetes-validations": [
        { rule: "self == oldSelf", message: "immutable" },
        { rule: "oldSelf.hasValue() || self.n < 3", optionalOldSelf: true, message: "n < 3 on create" },
        { rule: "self.n + 1 > 0", message: "integers are CEL ints" },
      ],
    };
    expect(validateCel(schema, { n: 5 }).map((e) => e.message)).to.deep.equal([
      "<nil>: Invalid value: n < 3 on create",
    ]);
    expect(validateCel(schema, { n: 1 })).to.deep.equal([]);
  });

  it("prunes null like the server, then defaults (null mode is Enforce), and types null array items", () => {
    expect(errors(policy("p", { mode: null, networkPolicies: null }))).to.deep.equal([]);
    expect(fields(policy("p", { namespaces: { exclude: [null] } }))).to.deep.equal([
      "spec.namespaces.exclude[0]",
      "",
    ]);
  });

  it("skips CEL after a blocking schema error and says so, like the server", () => {
    const messages = errors(policy("p", { mode: "x", encryption: { provider: "kms" } })).map(
      (e) => e.message,
    );
    expect(messages).to.deep.equal([
      'spec.mode: Unsupported value: "x": supported values: "Enforce", "Audit"',
      "<nil>: Invalid value: null: some validation rules were not checked because the object was invalid; correct the existing errors to complete validation",
    ]);
    // A pattern error is not blocking: the CEL rule runs too.
    expect(
      fields(policy("p", { podSecurity: { version: "1.30" }, encryption: { provider: "kms" } })),
    ).to.deep.equal(["spec.podSecurity.version", "spec.encryption"]);
  });

  it("reports only unknown fields when there are any (the server's strict decoder stops there)", () => {
    expect(errors(policy("p", { mode: "x", modes: "Audit" })).map((e) => e.message)).to.deep.equal([
      'unknown field "spec.modes"',
    ]);
    expect(
      errors(policy("p", { networkPolicies: { extra: [{ name: "x", spec: { anything: { goes: 1 } } }] } })),
    ).to.deep.equal([]);
  });

  it("runs the operator's InvalidSpec checks on what admission accepts: an empty encryption resource list", () => {
    const found = errors(policy("p", { encryption: { resources: [] } }));
    expect(found.map((e) => [e.source, e.field])).to.deep.equal([["operator", "spec.encryption"]]);
    expect(found[0]!.message).to.match(/spec\.encryption: InvalidSpec: .*resources is empty/);
  });

  it("reads YAML as kubectl does: YAML 1.1 booleans, timestamps as strings; a syntax error names itself", () => {
    const text =
      "apiVersion: security.csp-operator.io/v1alpha1\nkind: ClusterSecurityPolicy\nmetadata: {name: p}\n" +
      "spec:\n  networkPolicies: {allowDNS: yes}\n  exemptions: [{area: rbac, reason: r, expires: 2030-01-02T03:04:05Z}]\n";
    expect(errors(text)).to.deep.equal([]);
    const broken = v.validateText("b.yaml", "kind: ClusterSecurityPolicy\nspec: {mode: [\n");
    expect(broken.map((r) => r.result)).to.deep.equal(["invalid"]);
    expect(broken[0]!.errors[0]!.message).to.match(/^invalid YAML: /);
  });

  it("skips other kinds, rejects our kind at another version, ignores empty documents", () => {
    const text = `apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\n---\n${policy("p", {}).replace("v1alpha1", "v1beta1")}`;
    const results = v.validateText("m.yaml", text);
    expect(results.map((r) => `${r.document}:${r.kind}:${r.result}`)).to.deep.equal([
      "0:Namespace:skipped",
      "2:ClusterSecurityPolicy:invalid",
    ]);
  });

  it("never throws on 1000 random variants of the samples; every error names a field of the input", () => {
    const crd = parse(readFileSync("crds/security.csp-operator.io_clustersecuritypolicies.yaml", "utf8")) as {
      spec: { versions: { schema: { openAPIV3Schema: Parameters<typeof randomVariant>[1] } }[] };
    };
    const root = crd.spec.versions[0]!.schema.openAPIV3Schema;
    const bases = readdirSync("samples")
      .filter((f) => f.endsWith(".yaml"))
      .map((f) => parse(readFileSync(`samples/${f}`, "utf8")) as Record<string, unknown>);
    let invalid = 0;
    for (let seed = 1; seed <= 1000; seed++) {
      const p = randomVariant(bases[seed % bases.length]!, root, seed);
      const found = v.validate(p);
      if (found.length > 0) invalid++;
      for (const e of found) {
        expect(e.message, `seed ${seed}`).to.be.a("string").and.not.equal("");
        expect(e.field === "" || /^(spec|metadata)\b/.test(e.field), `seed ${seed}: ${e.field}`).to.equal(
          true,
        );
      }
    }
    expect(invalid).to.be.greaterThan(500);
  });

  it("a YAML alias bomb is an invalid document, not a crash", () => {
    const bomb =
      "a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n" +
      "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n" +
      "kind: ClusterSecurityPolicy\n";
    const r = v.validateText("bomb.yaml", bomb);
    expect(r.map((x) => x.result)).to.deep.equal(["invalid"]);
  });

  describe("command", () => {
    let dir: string;
    before(() => {
      dir = mkdtempSync(join(tmpdir(), "csp-validate-"));
    });
    after(() => rmSync(dir, { recursive: true, force: true }));

    it("--help prints usage and exits 0; a bad option or output format exits 2", async () => {
      const help = capture();
      expect(await runValidate(["--help"], help)).to.equal(0);
      expect(help.out.join(""))
        .to.match(/Usage: validate \[options\]/)
        .and.match(/--filename/);
      expect(await runValidate(["--nope"], capture())).to.equal(2);
      expect(await runValidate(["-f", "samples/baseline.yaml", "-o", "xml"], capture())).to.equal(2);
      expect(await runValidate([], capture())).to.equal(2);
      const io = capture();
      expect(await runValidate(["-f", "samples/baseline.yaml", "--crd", "no-such-crd.yaml"], io)).to.equal(2);
      expect(io.err.join("")).to.match(/^error: .*no-such-crd\.yaml/);
    });

    it("-o yaml and -o json are data: one result per document with its errors", async () => {
      const io = capture();
      expect(await runValidate(["-f", "samples/invalid/bad-mode.yaml", "-o", "yaml"], io)).to.equal(1);
      const report = parse(io.out.join("")) as {
        valid: boolean;
        results: { errors: { field: string; reason: string }[] }[];
      };
      expect(report.valid).to.equal(false);
      expect(report.results[0]!.errors.map((e) => `${e.field}|${e.reason}`)).to.include(
        "spec.mode|FieldValueNotSupported",
      );
    });

    it("reads directories (-R for subdirectories) and stdin; text output names file and policy", async () => {
      writeFileSync(join(dir, "a.yaml"), policy("a", {}));
      writeFileSync(join(dir, "notes.txt"), "not a manifest");
      const io = capture(policy("from-stdin", { mode: "Audit" }));
      expect(await runValidate(["-f", dir, "-f", "-"], io)).to.equal(0);
      expect(io.out.join("")).to.equal(
        `${join(dir, "a.yaml")}: ClusterSecurityPolicy/a is valid\n-: ClusterSecurityPolicy/from-stdin is valid\n`,
      );
      expect(io.err.join("")).to.equal("2 valid, 0 invalid, 0 skipped\n");
    });

    it("validates 100 policies fast enough for a pre-commit hook", async () => {
      const bases = readdirSync("samples")
        .filter((f) => f.endsWith(".yaml"))
        .map((f) => parse(readFileSync(`samples/${f}`, "utf8")) as { metadata: { name: string } });
      const many = join(dir, "many");
      mkdirSync(many);
      for (let i = 0; i < 100; i++) {
        const p = structuredClone(bases[i % bases.length]!);
        p.metadata.name = `policy-${i}`;
        writeFileSync(join(many, `p${String(i).padStart(3, "0")}.yaml`), stringify(p));
      }
      const start = performance.now();
      const io = capture();
      expect(await runValidate(["-f", many], io)).to.equal(0);
      const ms = performance.now() - start;
      expect(io.err.join("")).to.equal("100 valid, 0 invalid, 0 skipped\n");
      console.log(`      100 policies validated in ${ms.toFixed(0)} ms (in process, CRD load included)`);
      expect(ms).to.be.lessThan(5000);
    });
  });
});
