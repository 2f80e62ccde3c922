/**
 * GitOps against the real API server (built on first use by controlplane/build.sh):
 * - `validate` agrees with the API server, whose own answer to a server-side dry-run create is the reference,
 *   on every sample, every invalid sample and generated variants;
 * - the Argo CD health script (run by gopher-lua, Argo CD's interpreter) and Flux's kstatus judge status
 *   objects captured from real reconciles.
 */
import { expect } from "chai";
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { ApiException, CustomObjectsApi, type KubeConfig } from "@kubernetes/client-node";
import { Environment } from "@marcbachmann/cel-js";
import { parse, stringify } from "yaml";
import { startControlPlane, type ControlPlane } from "../../controlplane/harness.js";
import { GROUP, PLURAL, VERSION } from "../../src/api/v1alpha1/policy.js";
import { loadKubeConfig } from "../../src/cluster/client.js";
import { runValidate, type CommandIO } from "../../src/gitops/command.js";
import { loadValidator, type PolicyValidator } from "../../src/gitops/validate.js";
import { silentLogger } from "../../src/observability/logger.js";
import { Operator } from "../../src/controller/manager.js";
import { installCrd } from "../support/crd.js";
import { eventually } from "../support/eventually.js";
import { installGrantableRole } from "../support/grantable.js";
import { kubectlOk } from "../support/kubectl.js";
import { randomVariant, VARIANTS } from "../unit/gitops/variants.js";

interface Verdict {
  accepted: boolean;
  /** `field|reason` for every cause, sorted. */
  causes: string[];
  messages: string[];
}

/** The API server's answer to a dry-run create with kubectl's default strict field validation. */
async function serverVerdict(api: CustomObjectsApi, body: object): Promise<Verdict> {
  try {
    await api.createClusterCustomObject({
      group: GROUP,
      version: VERSION,
      plural: PLURAL,
      body,
      dryRun: "All",
      fieldValidation: "Strict",
    });
    return { accepted: true, causes: [], messages: [] };
  } catch (err) {
    if (!(err instanceof ApiException)) throw err;
    const status = (typeof err.body === "string" ? JSON.parse(err.body) : err.body) as {
      code: number;
      message: string;
      details?: { causes?: { reason: string; field?: string; message: string }[] };
    };
    if (status.code !== 422 && status.code !== 400)
      throw new Error(`unexpected ${status.code}: ${status.message}`, { cause: err });
    const causes = status.details?.causes ?? [];
    // A strict-decoding rejection (400) has no causes: its message names each unknown field.
    const unknown = [...status.message.matchAll(/unknown field "([^"]+)"/g)].map(
      (m) => `${m[1]}|FieldValueUnknown`,
    );
    return {
      accepted: false,
      causes: [...causes.map((c) => `${c.field ?? ""}|${c.reason}`), ...unknown].sort(),
      // validate prints one `unknown field "x"` line per field, without the decoder's preamble.
      messages:
        causes.length > 0
          ? causes.map((c) => `${c.field ?? ""}: ${c.message}`)
          : [...status.message.matchAll(/unknown field "[^"]+"/g)].map((m) => m[0]),
    };
  }
}

function offlineVerdict(validator: PolicyValidator, file: string, text: string): Verdict {
  const results = validator.validateText(file, text);
  expect(results, file).to.have.length(1);
  // The operator's own InvalidSpec checks go beyond admission by design: compared separately.
  const errors = results[0]!.errors.filter((e) => e.source !== "operator");
  return {
    accepted: errors.length === 0,
    // The server names the object itself "<nil>" (a nil field path); validate says "".
    causes: errors.map((e) => `${e.field || "<nil>"}|${e.reason}`).sort(),
    messages: errors.map((e) => e.message),
  };
}

describe("GitOps: validate and health against the real API server", function () {
  this.timeout(180_000);
  let cp: ControlPlane;
  let kc: KubeConfig;
  let api: CustomObjectsApi;
  let validator: PolicyValidator;
  const ok = kubectlOk(() => cp);
  let compared = 0;

  before(async function () {
    cp = await startControlPlane({ name: "gitops" });
    await installCrd(cp);
    kc = loadKubeConfig(cp.kubeconfigPath);
    api = kc.makeApiClient(CustomObjectsApi);
    validator = loadValidator();
  });

  after(async () => {
    if (compared > 0) console.log(`      validate vs API server: ${compared} manifests compared`);
    await cp?.stop();
  });

  /** Disagreements found by `agree`, asserted empty at the end of each test so one run shows them all. */
  let disagreements: string[] = [];
  const expectAgreement = () => {
    const found = disagreements;
    disagreements = [];
    expect(found, `validate disagrees with the API server:\n${found.join("\n")}`).to.deep.equal([]);
  };

  /** Compares validate with the server on one manifest, given as YAML text; the server gets kubectl's reading. */
  async function agree(label: string, text: string, generateName?: string): Promise<Verdict> {
    // kubectl's own YAML reading (YAML 1.1 booleans, timestamps kept as strings) is what the server receives.
    const body = JSON.parse(
      await ok(["create", "--dry-run=client", "-o", "json", "-f", "-"], text),
    ) as object;
    const server = await serverVerdict(api, body);
    // The server's generated name ends in 5 random characters; validate uses "xxxxx".
    if (generateName !== undefined)
      server.messages = server.messages.map((m) =>
        m.replace(
          new RegExp(`"${generateName.replace(/[.]/g, "\\.")}[a-z0-9]{5}"`, "g"),
          `"${generateName}xxxxx"`,
        ),
      );
    const offline = offlineVerdict(validator, label, text);
    compared++;
    // Same verdict, same causes (field + reason) and the same messages, word for word.
    const sorted = (v: Verdict) => JSON.stringify([v.accepted, v.causes, [...v.messages].sort()]);
    if (sorted(offline) !== sorted(server))
      disagreements.push(
        `${label}:\n  server:   ${server.messages.join("\n            ") || "accepted"}\n  validate: ${offline.messages.join("\n            ") || "valid"}`,
      );
    return server;
  }

  it("agrees with the API server on every sample", async () => {
    const files = readdirSync("samples").filter((f) => f.endsWith(".yaml"));
    expect(files.length).to.be.greaterThan(2);
    for (const f of files) {
      const server = await agree(`samples/${f}`, readFileSync(`samples/${f}`, "utf8"));
      expect(server.accepted, f).to.equal(true);
    }
    expectAgreement();
  });

  it("agrees with the API server on every invalid sample, naming the field the sample documents", async () => {
    const files = readdirSync("samples/invalid").filter((f) => f.endsWith(".yaml"));
    expect(files.length).to.be.greaterThan(10);
    for (const f of files) {
      const text = readFileSync(`samples/invalid/${f}`, "utf8");
      const server = await agree(`samples/invalid/${f}`, text);
      expect(server.accepted, f).to.equal(false);
      const documented = /^# error: ([^:\s]+)/m.exec(text)?.[1];
      const fields = validator.validateText(f, text)[0]!.errors.map((e) => e.field || "<nil>");
      if (documented !== "metadata.name") expect(fields, f).to.include(documented);
    }
    expectAgreement();
  });

  it("agrees with the API server on generated variants of every sample", async () => {
    const bases = readdirSync("samples")
      .filter((f) => f.endsWith(".yaml"))
      .map((f) => parse(readFileSync(`samples/${f}`, "utf8")) as Record<string, unknown>);
    let rejected = 0;
    for (const [b, base] of bases.entries()) {
      for (const [i, v] of VARIANTS.entries()) {
        // Every variant on the first sample; on the others, a rotating third of them (bounded test time).
        if (b > 0 && i % 3 !== b % 3) continue;
        const name = `v${b}-${i}`;
        let text: string;
        if (v.yaml) text = v.yaml.replace("NAME", name);
        else {
          const p = structuredClone(base);
          (p.metadata as Record<string, unknown>).name = name;
          v.mutate(p);
          text = stringify(p);
        }
        const server = await agree(`${name} (${v.name})`, text);
        if (!server.accepted) rejected++;
      }
    }
    expectAgreement();
    expect(rejected).to.be.greaterThan(30);
  });

  // CSP_GITOPS_RANDOM=N runs N seeds (400 passed when this was written; the default keeps npm test short).
  const randomSeeds = Number(process.env.CSP_GITOPS_RANDOM ?? 80);
  it(`agrees with the API server on ${randomSeeds} random variants (seeded: a failure names its seed)`, async () => {
    const crd = parse(readFileSync("crds/security.csp-operator.io_clustersecuritypolicies.yaml", "utf8")) as {
      spec: { versions: { schema: { openAPIV3Schema: Parameters<typeof randomVariant>[1] } }[] };
    };
    const root = crd.spec.versions[0]!.schema.openAPIV3Schema;
    const bases = readdirSync("samples")
      .filter((f) => f.endsWith(".yaml"))
      .map((f) => parse(readFileSync(`samples/${f}`, "utf8")) as Record<string, unknown>);
    let rejected = 0;
    for (let seed = 1; seed <= randomSeeds; seed++) {
      const p = randomVariant(bases[seed % bases.length]!, root, seed);
      (p.metadata as Record<string, unknown>).name = `r${seed}`;
      if (!(await agree(`random seed ${seed}`, stringify(p))).accepted) rejected++;
    }
    expectAgreement();
    expect(rejected).to.be.greaterThan(randomSeeds / 3);
  });

  it("agrees with the API server on metadata, generateName and go-yaml scalars (red-team cases)", async () => {
    const policy = (meta: string, spec = "  mode: Audit\n") =>
      `apiVersion: ${GROUP}/${VERSION}\nkind: ClusterSecurityPolicy\nmetadata:\n${meta}spec:\n${spec}`;
    const warnDays = (v: string) => policy("  name: wd\n", `  clusterVersion:\n    warnDays: ${v}\n`);
    const cases: [string, string][] = [
      ["label key", policy('  name: lbl\n  labels:\n    "bad key!": x\n')],
      ["label value", policy('  name: lblv\n  labels:\n    ok: "value with space"\n')],
      ["label prefix", policy('  name: lblp\n  labels:\n    "Ex.com/a": x\n    "a/b/c": z\n')],
      ["label ok", policy('  name: lblok\n  labels:\n    "example.com/My_name.1": "v-1"\n')],
      ["annotation key", policy('  name: ann\n  annotations:\n    "bad key!": x\n    "Upper.OK/X": z\n')],
      ["annotations size", policy(`  name: bigann\n  annotations:\n    a: "${"x".repeat(270_000)}"\n`)],
      ["finalizer", policy('  name: fin\n  finalizers: ["notqualified/a/b", "example.com/ok"]\n')],
      [
        "ownerReference",
        policy('  name: ownr\n  ownerReferences: [{apiVersion: v1, kind: X, name: z, uid: ""}]\n'),
      ],
      [
        "ownerReference empty",
        policy('  name: ownr2\n  ownerReferences: [{apiVersion: "", kind: "", name: "", uid: ""}]\n'),
      ],
      ["generateName invalid", policy('  generateName: "Bad_"\n')],
      ["generateName valid", policy('  generateName: "gen-"\n')],
      ["generateName too long for the rule", policy(`  generateName: "${"g".repeat(38)}-"\n`)],
      ["generateName with a dot", policy('  generateName: "a.b-"\n')],
      ["base-60 is a string", warnDays("1:00")],
      ["base-60 zero", warnDays("0:0")],
      ["0o octal", warnDays("0o17")],
      ["leading-zero octal", warnDays("017")],
      ["hex", warnDays("0x1F")],
      ["underscores", warnDays("1_0")],
      // pattern `^unix:///.+`: RE2's `.` takes \r, U+2028 and U+2029 (JavaScript's does not), never \n.
      ...["\\r", "\\u2028", "\\u2029", "\\n", "\\t"].map((c): [string, string] => [
        `kms endpoint ${c}`,
        policy(
          "  name: kms\n",
          `  mode: Audit\n  encryption:\n    provider: kms\n    kms:\n      name: k\n      endpoint: "unix:///${c}"\n`,
        ),
      ]),
    ];
    for (const [label, text] of cases) await agree(label, text, /generateName: "([^"]*)"/.exec(text)?.[1]);
    expectAgreement();
  });

  it("refuses ObjectMeta of the wrong JSON type with kubectl's own decoding error, word for word", async () => {
    const metas = [
      "{name: a, labels: {x: 1}}",
      "{name: a, labels: [a]}",
      "{name: a, annotations: {x: true}}",
      "{name: a, finalizers: [1]}",
      "{name: 5}",
      "{name: a, ownerReferences: [{apiVersion: v1, kind: X, name: z, uid: 1}]}",
      '{name: a, ownerReferences: [{apiVersion: v1, kind: X, name: z, uid: u, controller: "yes"}]}',
    ];
    for (const meta of metas) {
      const text = `apiVersion: ${GROUP}/${VERSION}\nkind: ClusterSecurityPolicy\nmetadata: ${meta}\nspec: {mode: Audit}\n`;
      const r = await cp.kubectl(["create", "--dry-run=client", "-o", "json", "-f", "-"], { input: text });
      expect(r.code, meta).to.not.equal(0);
      const errors = validator.validateText("m.yaml", text)[0]!.errors;
      expect(
        errors.map((e) => e.message),
        meta,
      ).to.have.length(1);
      expect(r.stderr, meta).to.include(`: ${errors[0]!.message}`);
    }
  });

  it("judges every item of a List as the API server judges it alone (kubectl create opens Lists)", async () => {
    const items = [
      {
        apiVersion: `${GROUP}/${VERSION}`,
        kind: "ClusterSecurityPolicy",
        metadata: { name: "in-list" },
        spec: { mode: "Bogus" },
      },
      {
        apiVersion: `${GROUP}/${VERSION}`,
        kind: "ClusterSecurityPolicy",
        metadata: { name: "in-list-ok" },
        spec: { mode: "Audit" },
      },
    ];
    const results = validator.validateText("list.yaml", stringify({ apiVersion: "v1", kind: "List", items }));
    expect(results.map((r) => `${r.document}/${r.item}=${r.result}`)).to.deep.equal([
      "0/0=invalid",
      "0/1=valid",
    ]);
    for (const [j, item] of items.entries()) {
      const server = await agree(`List item ${j}`, stringify(item));
      expect(server.accepted).to.equal(results[j]!.result === "valid");
    }
    expectAgreement();
  });

  it("goes beyond admission where the operator would report InvalidSpec (the server accepts, validate does not)", async () => {
    const text = stringify({
      apiVersion: `${GROUP}/${VERSION}`,
      kind: "ClusterSecurityPolicy",
      metadata: { name: "empty-encryption" },
      spec: { encryption: { resources: [] } },
    });
    const server = await agree("empty encryption resources", text);
    expect(server.accepted).to.equal(true);
    const errors = validator.validateText("e.yaml", text)[0]!.errors;
    expect(errors.map((e) => `${e.source}:${e.field}`)).to.deep.equal(["operator:spec.encryption"]);
    expectAgreement();
  });

  it("exits 1 on any invalid document, 0 when all are valid, 2 when nothing can be judged (many files, stdin)", async () => {
    const out: string[] = [];
    const io = (stdin = ""): CommandIO => ({
      stdout: (s) => out.push(s),
      stderr: (s) => out.push(s),
      readStdin: () => Promise.resolve(stdin),
      setExitCode: () => {},
    });
    expect(
      await runValidate(["-f", "samples/baseline.yaml", "-f", "samples/audit-only.yaml"], io()),
    ).to.equal(0);
    expect(await runValidate(["-f", "samples", "samples/invalid/bad-mode.yaml"], io())).to.equal(1);
    const stdin =
      readFileSync("samples/baseline.yaml", "utf8") +
      "---\n" +
      readFileSync("samples/invalid/bad-mode.yaml", "utf8");
    out.length = 0;
    expect(await runValidate(["-f", "-", "-o", "json"], io(stdin))).to.equal(1);
    const report = JSON.parse(out.join("")) as {
      valid: boolean;
      results: { result: string; name: string }[];
    };
    expect(report.valid).to.equal(false);
    expect(report.results.map((r) => `${r.name}=${r.result}`)).to.deep.equal([
      "baseline=valid",
      "invalid-bad-mode=invalid",
    ]);
    expect(await runValidate(["-f", "no-such-file.yaml"], io())).to.equal(2);
  });

  describe("health of status objects captured from real reconciles", function () {
    let operator: Operator | undefined;
    let healthcheck: string;
    const judge = (mode: "lua" | "kstatus", obj: object) =>
      JSON.parse(
        execFileSync(healthcheck, mode === "lua" ? ["lua", "health/argocd/health.lua"] : ["kstatus"], {
          input: JSON.stringify(obj),
        }).toString(),
      ) as { status: string; message: string };
    // The README's Flux healthCheckExprs, evaluated with a CEL evaluator (Flux runs cel-go) on the same objects.
    const exprs = (
      parse(readFileSync("health/flux/kustomization.yaml", "utf8")) as {
        spec: { healthCheckExprs: { current: string; failed: string }[] };
      }
    ).spec.healthCheckExprs[0]!;
    const cel = new Environment({ unlistedVariablesAreDyn: true });
    const flux = (obj: { metadata: object; status?: object }) => {
      const ctx = { ...obj };
      try {
        if (cel.evaluate(exprs.failed, ctx) === true) return "Failed";
        if (cel.evaluate(exprs.current, ctx) === true) return "Current";
      } catch {
        // Flux treats an expression on a field not there yet as not yet healthy.
      }
      return "InProgress";
    };
    const csp = async (name: string) =>
      JSON.parse(await ok(["get", "csp", name, "-o", "json"])) as {
        metadata: { generation: number };
        status?: {
          observedGeneration?: number;
          conditions?: { type: string; status: string; message: string }[];
        };
      };
    const condition = async (name: string, type: string) =>
      (await csp(name)).status?.conditions?.find((c) => c.type === type)?.status;

    before(async function () {
      this.timeout(180_000);
      healthcheck = execFileSync("bash", ["controlplane/build-health.sh"], {
        stdio: ["ignore", "pipe", "inherit"],
      })
        .toString()
        .trim()
        .split("\n")
        .pop()!;
      await installGrantableRole(cp);
      await ok(["create", "namespace", "team-a"]);
      await ok(["label", "namespace", "team-a", "csp.example.com/tier=web"]);
      operator = new Operator(kc, { workers: 2, resyncMs: 600_000 }, silentLogger());
      await operator.start();
    });

    after(async () => {
      await operator?.stop();
    });

    it("Ready and Compliant True: Argo CD Healthy, kstatus Current", async () => {
      await ok(["apply", "-f", "samples/baseline.yaml"]);
      await eventually(
        "baseline Ready and Compliant",
        async () =>
          (await condition("baseline", "Ready")) === "True" &&
          (await condition("baseline", "Compliant")) === "True",
      );
      const obj = await csp("baseline");
      expect(judge("lua", obj).status).to.equal("Healthy");
      expect(judge("kstatus", obj).status).to.equal("Current");
      expect(flux(obj)).to.equal("Current");
    });

    it("Compliant False (Audit mode finds drift): Argo CD Degraded with the condition's message", async () => {
      await ok(["apply", "-f", "samples/audit-only.yaml"]);
      await eventually(
        "audit-only evaluated and not compliant",
        async () =>
          (await condition("audit-only", "Ready")) === "True" &&
          (await condition("audit-only", "Compliant")) === "False",
      );
      const obj = await csp("audit-only");
      const compliant = obj.status!.conditions!.find((c) => c.type === "Compliant")!;
      const argo = judge("lua", obj);
      expect(argo.status).to.equal("Degraded");
      expect(argo.message).to.include(compliant.message);
      // kstatus reads only Ready and observedGeneration: a reconciled, non-compliant policy is Current.
      expect(judge("kstatus", obj).status).to.equal("Current");
      expect(flux(obj)).to.equal("Current");
    });

    it("Ready False (the API server refuses an extra NetworkPolicy: InvalidSpec): Degraded; kstatus InProgress", async () => {
      await ok(
        ["apply", "-f", "-"],
        stringify({
          apiVersion: `${GROUP}/${VERSION}`,
          kind: "ClusterSecurityPolicy",
          metadata: { name: "broken" },
          spec: {
            namespaces: { selector: { matchLabels: { "csp.example.com/tier": "web" } } },
            networkPolicies: {
              extra: [{ name: "bad", spec: { podSelector: {}, policyTypes: ["Sideways"] } }],
            },
          },
        }),
      );
      await eventually("broken not Ready", async () => (await condition("broken", "Ready")) === "False");
      const obj = await csp("broken");
      const ready = obj.status!.conditions!.find((c) => c.type === "Ready")!;
      const argo = judge("lua", obj);
      expect(argo.status).to.equal("Degraded");
      expect(argo.message).to.include(ready.message);
      // kstatus: Ready False without a Stalled condition is InProgress (Flux waits, then times out).
      expect(judge("kstatus", obj).status).to.equal("InProgress");
      expect(flux(obj), "healthCheckExprs fail fast on InvalidSpec").to.equal("Failed");
    });

    it("edge cases of the captured object: no status yet, Ready Unknown, stale condition order", async () => {
      const obj = await csp("baseline");
      const { status: _status, ...noStatus } = obj;
      expect(judge("lua", noStatus).status).to.equal("Progressing");
      // kstatus reads an object with no status at all as Current: before the operator's first status write,
      // a plain kstatus health check passes (the README's healthCheckExprs close that gap).
      expect(judge("kstatus", noStatus).status).to.equal("Current");
      expect(flux(noStatus), "healthCheckExprs wait for the first status").to.equal("InProgress");
      const unknown = structuredClone(obj);
      unknown.status!.conditions = unknown.status!.conditions!.map((c) =>
        c.type === "Ready" ? { ...c, status: "Unknown" } : c,
      );
      expect(judge("lua", unknown).status).to.equal("Progressing");
      const reversed = structuredClone(obj);
      reversed.status!.conditions!.reverse();
      expect(judge("lua", reversed).status).to.equal("Healthy");
    });

    it("observedGeneration behind the spec (operator stopped, spec changed): Progressing / InProgress", async () => {
      await operator!.stop();
      operator = undefined;
      await ok([
        "patch",
        "csp",
        "baseline",
        "--type=merge",
        "-p",
        '{"spec":{"podSecurity":{"warn":"baseline"}}}',
      ]);
      const obj = await csp("baseline");
      expect(obj.status?.observedGeneration).to.be.lessThan(obj.metadata.generation);
      expect(judge("lua", obj).status).to.equal("Progressing");
      expect(judge("kstatus", obj).status).to.equal("InProgress");
      expect(flux(obj)).to.equal("InProgress");
    });
  });
});
