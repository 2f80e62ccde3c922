// CIS 1.3.x (controller manager), 1.4.x (scheduler), 2.x (etcd) and 3.2.x (audit policy): each check from
// fixtures and literal argv, including flags given twice, `--flag value`, and absent files (Unknown, never
// Pass).
import { expect } from "chai";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AUDIT_POLICY_CHECKS } from "../../../src/cis/checks/auditpolicy.js";
import type { CheckOutcome, CisCheck } from "../../../src/cis/checks/check.js";
import { CONTROLLER_MANAGER_CHECKS } from "../../../src/cis/checks/controllermanager.js";
import { ETCD_CHECKS } from "../../../src/cis/checks/etcd.js";
import { ALL_CHECKS } from "../../../src/cis/checks/registry.js";
import { SCHEDULER_CHECKS } from "../../../src/cis/checks/scheduler.js";
import { runCheckCommand } from "../../../src/cis/command.js";
import type { ComponentInputs } from "../../../src/cis/gather/inputs.js";
import { gatherComponentInputs, gatherEtcdInputs } from "../../../src/cis/gather/inputs.js";
import type { ComponentManifest } from "../../../src/cis/parse/manifest.js";
import { parseComponentManifest } from "../../../src/cis/parse/manifest.js";
import { parseFlags } from "../../../src/cis/parse/flags.js";
import { CONTROLLER_MANAGER_GRAMMAR, SCHEDULER_GRAMMAR } from "../../../src/cis/parse/grammars.js";
import { api, memoryReader } from "./helpers.js";

const FIX = new URL("../../fixtures/cis/", import.meta.url).pathname;
const CLUSTER_CA = readFileSync(`${FIX}pkiroot/etc/kubernetes/pki/ca.crt`, "utf8");
const ETCD_CA = readFileSync(`${FIX}pkiroot/etc/kubernetes/pki/etcd/ca.crt`, "utf8");

function one<I>(checks: readonly CisCheck<I>[], id: string, inputs: I): CheckOutcome {
  const c = checks.find((x) => x.id === id);
  if (c === undefined) throw new Error(`no check ${id}`);
  return c.evaluate(inputs);
}

function component(argv: readonly string[], grammar = CONTROLLER_MANAGER_GRAMMAR): ComponentInputs {
  return {
    source: "test",
    pod: { name: "x", namespace: "kube-system" },
    flags: parseFlags(argv, grammar),
    files: {},
  };
}
const cm = (id: string, argv: readonly string[]) => one(CONTROLLER_MANAGER_CHECKS, id, component(argv));

function manifest(pod: Record<string, unknown>, name: "etcd" | "kube-scheduler"): ComponentManifest {
  const m = parseComponentManifest(JSON.stringify({ apiVersion: "v1", kind: "Pod", ...pod }), name);
  if (!m.ok) throw new Error(m.reason);
  return m.value;
}

/** etcd inputs from a command line, env and host files; the cluster CA is /pki/ca.crt. */
async function etcd(
  command: readonly string[],
  files: Record<string, string> = {},
  env: { name: string; value: string }[] = [],
): Promise<ComponentInputs> {
  const m = manifest(
    { spec: { containers: [{ name: "etcd", command: ["etcd", ...command], env }] } },
    "etcd",
  );
  return gatherEtcdInputs(m, "test", memoryReader(files), {
    path: "/pki/ca.crt",
    manifest: { mounts: [], workingDir: "/" },
    via: "test cluster CA",
  });
}
const TLS = [
  "--cert-file=/pki/etcd/server.crt",
  "--key-file=/pki/etcd/server.key",
  "--listen-client-urls=https://127.0.0.1:2379",
];

describe("cis/checks registry", () => {
  it("has one definition per id, each with a severity, its inputs and a title", () => {
    const ids = ALL_CHECKS.map((c) => c.id);
    expect(new Set(ids).size).to.equal(ids.length);
    for (const c of ALL_CHECKS) {
      expect(["Critical", "High", "Medium", "Low"], c.id).to.include(c.severity);
      expect(c.reads.length, c.id).to.be.greaterThan(0);
      expect(c.title.length, c.id).to.be.greaterThan(10);
    }
    for (const id of ["1.3.1", "1.3.7", "1.4.2", "2.1", "2.7", "3.2.1", "3.2.2"]) expect(ids).to.include(id);
  });
});

describe("cis/controllermanager 1.3.x", () => {
  it("1.3.1 reports the effective threshold for a person; 0 or less never collects", () => {
    expect(cm("1.3.1", [])).to.deep.include({ status: "Manual" });
    expect(cm("1.3.1", []).evidence).to.contain("default is 12500");
    expect(cm("1.3.1", ["--terminated-pod-gc-threshold", "0"]).status).to.equal("Fail");
    expect(cm("1.3.1", ["--terminated-pod-gc-threshold=ten"]).status).to.equal("Unknown");
  });
  it("1.3.2 profiling: default on fails, the last of a repeated flag wins", () => {
    expect(cm("1.3.2", []).status).to.equal("Fail");
    expect(cm("1.3.2", ["--profiling=false"]).status).to.equal("Pass");
    expect(cm("1.3.2", ["--profiling=false", "--profiling"]).status).to.equal("Fail");
    expect(cm("1.3.2", ["--profiling", "--profiling=false"]).status).to.equal("Pass");
    expect(cm("1.3.2", ["--profiling=nope"]).status).to.equal("Unknown");
  });
  it("1.3.3 service account credentials: off by default", () => {
    expect(cm("1.3.3", []).status).to.equal("Fail");
    expect(cm("1.3.3", ["--use-service-account-credentials"]).status).to.equal("Pass");
    expect(
      cm("1.3.3", ["--use-service-account-credentials=true", "--use-service-account-credentials=0"]).status,
    ).to.equal("Fail");
  });
  it("1.3.4/1.3.5 need non-empty files, given as --flag value or --flag=value", () => {
    expect(cm("1.3.4", ["--service-account-private-key-file", "/pki/sa.key"]).status).to.equal("Pass");
    expect(cm("1.3.4", []).status).to.equal("Fail");
    expect(cm("1.3.5", ["--root-ca-file="]).status).to.equal("Fail");
    expect(cm("1.3.5", ["--root-ca-file=/pki/ca.crt"]).status).to.equal("Pass");
  });
  it("1.3.6 RotateKubeletServerCertificate: on by default, only an explicit false fails", () => {
    expect(cm("1.3.6", []).status).to.equal("Pass");
    expect(cm("1.3.6", ["--feature-gates=Foo=true"]).status).to.equal("Pass");
    expect(cm("1.3.6", ["--feature-gates=RotateKubeletServerCertificate=false"]).status).to.equal("Fail");
    expect(
      cm("1.3.6", [
        "--feature-gates=RotateKubeletServerCertificate=false",
        "--feature-gates=RotateKubeletServerCertificate=true",
      ]).status,
    ).to.equal("Pass");
    expect(cm("1.3.6", ["--feature-gates=RotateKubeletServerCertificate"]).status).to.equal("Unknown");
  });
  it("1.3.7 bind address: default 0.0.0.0 fails; loopback passes", () => {
    expect(cm("1.3.7", []).evidence).to.contain("every interface");
    expect(cm("1.3.7", ["--bind-address", "127.0.0.1"]).status).to.equal("Pass");
    expect(cm("1.3.7", ["--bind-address=127.0.0.1", "--bind-address=10.0.0.1"]).status).to.equal("Fail");
  });
});

describe("cis/scheduler 1.4.x", () => {
  const sched = async (command: string[], files: Record<string, string> = {}) => {
    const m = manifest(
      { spec: { containers: [{ name: "kube-scheduler", command: ["kube-scheduler", ...command] }] } },
      "kube-scheduler",
    );
    return gatherComponentInputs(m, "test", memoryReader(files), SCHEDULER_GRAMMAR, ["config"]);
  };
  const cfg = (body: string) =>
    `apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\n${body}`;
  it("an argument only known at run time makes every flag Unknown; metadata fieldRefs resolve from the manifest", async () => {
    const pod = (env: unknown[], annotations: Record<string, string> = {}) =>
      manifest(
        {
          metadata: { name: "kube-scheduler", namespace: "kube-system", annotations },
          spec: {
            containers: [
              {
                name: "kube-scheduler",
                command: ["kube-scheduler", "--profiling=false", "--bind-address=127.0.0.1", "$(B)"],
                env,
              },
            ],
          },
        },
        "kube-scheduler",
      );
    const inputs = (m: ComponentManifest) =>
      gatherComponentInputs(m, "test", memoryReader({}), SCHEDULER_GRAMMAR, []);
    const fromConfigMap = await inputs(
      pod([{ name: "B", valueFrom: { configMapKeyRef: { name: "x", key: "y" } } }]),
    );
    for (const id of ["1.4.1", "1.4.2"]) {
      const r = one(SCHEDULER_CHECKS, id, fromConfigMap);
      expect(r.status, id).to.equal("Unknown");
      expect(r.evidence).to.contain("$(B)");
    }
    expect(fromConfigMap.flags.positional).to.deep.equal([]); // not reported as a stray argument
    const fromAnnotation = await inputs(
      pod([{ name: "B", valueFrom: { fieldRef: { fieldPath: "metadata.annotations['extra']" } } }], {
        extra: "--profiling=true",
      }),
    );
    expect(one(SCHEDULER_CHECKS, "1.4.1", fromAnnotation).status).to.equal("Fail");
    expect(one(SCHEDULER_CHECKS, "1.4.2", fromAnnotation).status).to.equal("Pass");
  });
  it("1.4.1 judges --profiling without --config", async () => {
    expect(one(SCHEDULER_CHECKS, "1.4.1", await sched([])).status).to.equal("Fail");
    expect(one(SCHEDULER_CHECKS, "1.4.1", await sched(["--profiling=false"])).status).to.equal("Pass");
  });
  it("1.4.1 with --config judges enableProfiling in the file and ignores --profiling", async () => {
    const c = ["--config=/etc/kubernetes/sched.yaml", "--profiling=false"];
    const r = one(SCHEDULER_CHECKS, "1.4.1", await sched(c, { "/etc/kubernetes/sched.yaml": cfg("") }));
    expect(r.status).to.equal("Fail");
    expect(r.evidence).to.contain("--profiling is ignored with --config");
    const off = await sched(c, { "/etc/kubernetes/sched.yaml": cfg("enableProfiling: false\n") });
    expect(one(SCHEDULER_CHECKS, "1.4.1", off).status).to.equal("Pass");
  });
  it("1.4.1 is Unknown, never Pass, when the --config file is absent or malformed", async () => {
    const c = ["--config=/etc/kubernetes/sched.yaml", "--profiling=false"];
    expect(one(SCHEDULER_CHECKS, "1.4.1", await sched(c)).status).to.equal("Unknown");
    const bad = await sched(c, { "/etc/kubernetes/sched.yaml": cfg("enableProfiling: maybe\n") });
    expect(one(SCHEDULER_CHECKS, "1.4.1", bad).status).to.equal("Unknown");
  });
  it("1.4.2 bind address", async () => {
    expect(one(SCHEDULER_CHECKS, "1.4.2", await sched([])).status).to.equal("Fail");
    expect(one(SCHEDULER_CHECKS, "1.4.2", await sched(["--bind-address", "127.0.0.1"])).status).to.equal(
      "Pass",
    );
  });
});

describe("cis/etcd 2.x", () => {
  const e = async (
    id: string,
    command: string[],
    files: Record<string, string> = {},
    env: { name: string; value: string }[] = [],
  ) => one(ETCD_CHECKS, id, await etcd(command, files, env));
  it("2.1 needs cert and key, and no plain-http client listener (the default is http://localhost:2379)", async () => {
    expect((await e("2.1", TLS)).status).to.equal("Pass");
    expect((await e("2.1", TLS.slice(0, 2))).evidence).to.contain(
      "http://localhost:2379 is served without TLS",
    );
    expect((await e("2.1", [...TLS, "--listen-client-urls=https://a:2379,http://b:2379"])).status).to.equal(
      "Fail",
    );
    expect((await e("2.1", ["--cert-file=/c", "--listen-client-urls=https://a:2379"])).status).to.equal(
      "Fail",
    );
  });
  it("2.2 client cert auth: flag, Go single-dash form, last wins, env applies only when the flag is absent", async () => {
    expect((await e("2.2", [])).status).to.equal("Fail");
    expect((await e("2.2", ["--client-cert-auth"])).status).to.equal("Pass");
    expect((await e("2.2", ["-client-cert-auth=true"])).status).to.equal("Pass");
    expect((await e("2.2", ["--client-cert-auth=true", "--client-cert-auth=false"])).status).to.equal("Fail");
    const env = [{ name: "ETCD_CLIENT_CERT_AUTH", value: "true" }];
    expect(await e("2.2", [], {}, env)).to.deep.equal({
      status: "Pass",
      evidence: "--client-cert-auth=true (from env ETCD_CLIENT_CERT_AUTH)",
    });
    expect((await e("2.2", ["--client-cert-auth=false"], {}, env)).status).to.equal("Fail");
  });
  it("2.2 a boolean with a separate value is a stray argument etcd refuses; the flag itself is true", async () => {
    const i = await etcd(["--client-cert-auth", "false"]);
    expect(one(ETCD_CHECKS, "2.2", i).status).to.equal("Pass");
    expect(i.flags.positional.map((p) => p.text)).to.deep.equal(["false"]);
  });
  it("2.3/2.6 auto TLS must not be on", async () => {
    expect((await e("2.3", [])).status).to.equal("Pass");
    expect((await e("2.3", ["--auto-tls"])).status).to.equal("Fail");
    expect((await e("2.6", ["--peer-auto-tls=true"])).status).to.equal("Fail");
    expect((await e("2.6", ["--peer-auto-tls=yes"])).status).to.equal("Unknown");
  });
  it("2.4/2.5 peer TLS identity and client cert auth", async () => {
    const peer = [
      "--peer-cert-file=/p.crt",
      "--peer-key-file",
      "/p.key",
      "--listen-peer-urls=https://10.0.0.1:2380",
    ];
    expect((await e("2.4", peer)).status).to.equal("Pass");
    expect((await e("2.4", peer.slice(0, 3))).status).to.equal("Fail");
    expect((await e("2.5", ["--peer-client-cert-auth"])).status).to.equal("Pass");
    expect((await e("2.5", [])).status).to.equal("Fail");
  });
  it("2.7 compares the certificates of etcd's CA with the cluster CA; absent files are Unknown", async () => {
    const files = { "/pki/ca.crt": CLUSTER_CA, "/pki/etcd/ca.crt": ETCD_CA };
    expect((await e("2.7", ["--trusted-ca-file=/pki/etcd/ca.crt"], files)).status).to.equal("Pass");
    const shared = await e("2.7", ["--trusted-ca-file=/pki/ca.crt"], files);
    expect(shared.status).to.equal("Fail");
    expect(shared.evidence).to.contain("CN=cluster-ca");
    const bundle = { ...files, "/pki/etcd/bundle.crt": ETCD_CA + CLUSTER_CA };
    expect((await e("2.7", ["--trusted-ca-file=/pki/etcd/bundle.crt"], bundle)).status).to.equal("Fail");
    expect((await e("2.7", ["--trusted-ca-file=/pki/etcd/ca.crt"])).status).to.equal("Unknown");
    expect(
      (await e("2.7", ["--trusted-ca-file=/pki/etcd/ca.crt"], { "/pki/etcd/ca.crt": ETCD_CA })).status,
    ).to.equal("Unknown");
    expect(
      (await e("2.7", ["--trusted-ca-file=/pki/etcd/ca.crt"], { ...files, "/pki/etcd/ca.crt": "junk" }))
        .status,
    ).to.equal("Unknown");
    expect((await e("2.7", [])).status).to.equal("Fail");
  });
  it("reads the settings from --config-file only (flags and env ignored), Unknown when it cannot", async () => {
    const conf = [
      "listen-client-urls: https://127.0.0.1:2379",
      "client-transport-security:",
      "  cert-file: /pki/etcd/server.crt",
      "  key-file: /pki/etcd/server.key",
      "  client-cert-auth: true",
      "peer-transport-security:",
      "  auto-tls: true",
    ].join("\n");
    const files = { "/etc/etcd/etcd.conf.yml": conf };
    const i = await etcd(["--config-file=/etc/etcd/etcd.conf.yml", "--client-cert-auth=false"], files);
    expect(one(ETCD_CHECKS, "2.1", i).status).to.equal("Pass");
    expect(one(ETCD_CHECKS, "2.2", i).status).to.equal("Pass");
    expect(one(ETCD_CHECKS, "2.6", i).status).to.equal("Fail");
    const missing = await etcd(["--config-file=/etc/etcd/etcd.conf.yml"]);
    expect(missing.unavailable).to.contain("cannot read /etc/etcd/etcd.conf.yml");
  });
  it("reads the config file named by env ETCD_CONFIG_FILE when --config-file is not given (flags ignored)", async () => {
    const conf = [
      "client-transport-security:",
      "  cert-file: /pki/etcd/server.crt",
      "  key-file: /pki/etcd/server.key",
      "  client-cert-auth: false",
      "peer-transport-security:",
      "  client-cert-auth: false",
    ].join("\n");
    const files = { "/etc/etcd/etcd.yaml": conf };
    const env = [{ name: "ETCD_CONFIG_FILE", value: "/etc/etcd/etcd.yaml" }];
    const argv = [...TLS, "--client-cert-auth=true", "--peer-client-cert-auth=true"];
    const i = await etcd(argv, files, env);
    expect(one(ETCD_CHECKS, "2.2", i)).to.include({ status: "Fail" });
    expect(one(ETCD_CHECKS, "2.2", i).evidence).to.include("/etc/etcd/etcd.yaml");
    expect(one(ETCD_CHECKS, "2.5", i).status).to.equal("Fail");
    expect((await etcd(argv, {}, env)).unavailable).to.contain("cannot read /etc/etcd/etcd.yaml");
  });
  it("sets flags only from upper-case ETCD_ variables, as etcd looks them up", async () => {
    const env = [
      { name: "ETCD_client_cert_auth", value: "true" },
      { name: "ETCD_Peer_Client_Cert_Auth", value: "true" },
    ];
    expect(one(ETCD_CHECKS, "2.2", await etcd(TLS, {}, env)).status).to.equal("Fail");
    expect(one(ETCD_CHECKS, "2.5", await etcd(TLS, {}, env)).status).to.equal("Fail");
    const upper = [{ name: "ETCD_CLIENT_CERT_AUTH", value: "true" }];
    expect(one(ETCD_CHECKS, "2.2", await etcd(TLS, {}, upper)).status).to.equal("Pass");
  });
  it("ignores TLS keys at the top level of the config file (etcd reads them only in the transport sections)", async () => {
    const conf = [
      "listen-client-urls: https://127.0.0.1:2379",
      "cert-file: /pki/etcd/server.crt",
      "key-file: /pki/etcd/server.key",
      "client-cert-auth: true",
      "peer-cert-file: /pki/etcd/peer.crt",
      "peer-key-file: /pki/etcd/peer.key",
      "peer-client-cert-auth: true",
      "trusted-ca-file: /pki/etcd/ca.crt",
    ].join("\n");
    const i = await etcd(["--config-file=/etc/etcd/top.yaml"], { "/etc/etcd/top.yaml": conf });
    for (const id of ["2.1", "2.2", "2.4", "2.5", "2.7"])
      expect(one(ETCD_CHECKS, id, i).status, id).to.equal("Fail");
  });
  it("2.1 fails on a plain-http --listen-client-http-urls listener", async () => {
    const plain = await etcd([...TLS, "--listen-client-http-urls=http://0.0.0.0:2382"]);
    expect(one(ETCD_CHECKS, "2.1", plain)).to.include({ status: "Fail" });
    expect(one(ETCD_CHECKS, "2.1", plain).evidence).to.include("--listen-client-http-urls");
    const tls = await etcd([...TLS, "--listen-client-http-urls=https://0.0.0.0:2382"]);
    expect(one(ETCD_CHECKS, "2.1", tls).status).to.equal("Pass");
  });
  it("2.7 fails when the cluster CA is an intermediate signed by a root etcd trusts", async () => {
    const root = readFileSync(`${FIX}pkiroot/chain/root.crt`, "utf8");
    const intermediate = readFileSync(`${FIX}pkiroot/chain/int.crt`, "utf8");
    const files = { "/pki/ca.crt": intermediate, "/pki/etcd/ca.crt": root };
    const r = await e27(files);
    expect(r.status).to.equal("Fail");
    expect(r.evidence).to.include("is signed by");
    // A root of its own is still unique.
    expect((await e27({ "/pki/ca.crt": intermediate, "/pki/etcd/ca.crt": ETCD_CA })).status).to.equal("Pass");
  });
});

const e27 = async (files: Record<string, string>) =>
  one(ETCD_CHECKS, "2.7", await etcd(["--trusted-ca-file=/pki/etcd/ca.crt"], files));

describe("cis/auditpolicy 3.2.x", () => {
  const policy = (rules: string) => `apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n${rules}`;
  const a = (id: string, text: string | null | undefined) =>
    one(
      AUDIT_POLICY_CHECKS,
      id,
      api(
        text === undefined ? [] : ["--audit-policy-file=/etc/kubernetes/audit.yaml"],
        text === undefined ? {} : { "audit-policy-file": text },
      ),
    );
  const GOOD = policy(
    [
      "  - level: Metadata",
      "    resources:",
      '      - group: ""',
      "        resources: [secrets, configmaps, serviceaccounts/token]",
      "      - group: authentication.k8s.io",
      "        resources: [tokenreviews]",
      "  - level: RequestResponse",
    ].join("\n"),
  );
  it("3.2.1 fails without a policy, is Unknown when it cannot be read, passes when it records", () => {
    expect(a("3.2.1", undefined).status).to.equal("Fail");
    expect(a("3.2.1", null).status).to.equal("Unknown");
    expect(a("3.2.1", GOOD).status).to.equal("Pass");
    expect(a("3.2.1", policy("  - level: None\n")).status).to.equal("Fail");
    expect(a("3.2.1", policy("  - level: Loud\n")).status).to.equal("Unknown");
  });
  it("3.2.2 passes a policy that keeps Secrets, ConfigMaps and TokenReviews at Metadata", () => {
    expect(a("3.2.2", GOOD)).to.deep.include({ status: "Pass" });
  });
  it("3.2.2 fails a catch-all that logs Secrets' bodies, or one that never logs TokenReviews", () => {
    const leaky = a("3.2.2", policy("  - level: RequestResponse\n"));
    expect(leaky.status).to.equal("Fail");
    expect(leaky.evidence).to.contain("Secrets");
    const silent = a(
      "3.2.2",
      policy("  - level: None\n    resources:\n      - group: authentication.k8s.io\n  - level: Metadata\n"),
    );
    expect(silent.status).to.equal("Fail");
    expect(silent.evidence).to.contain("TokenReviews are not logged");
  });
  const METADATA_KEYS = [
    "  - level: Metadata",
    "    resources:",
    '      - group: ""',
    "        resources: [secrets, configmaps, serviceaccounts/token]",
    "      - group: authentication.k8s.io",
    "        resources: [tokenreviews]",
    "  - level: RequestResponse",
  ];
  it("3.2.2 fails an earlier None rule that drops some requests (a verb, a namespace, a group of users)", () => {
    const verbs = a(
      "3.2.2",
      policy(
        [
          "  - level: None",
          "    verbs: [get, list, watch]",
          "    resources:",
          '      - group: ""',
          "        resources: [secrets]",
          ...METADATA_KEYS,
        ].join("\n"),
      ),
    );
    expect(verbs.status).to.equal("Fail");
    expect(verbs.evidence).to.contain("some requests for Secrets are not logged (rules[0] is level None");
    const scoped = a(
      "3.2.2",
      policy(
        [
          "  - level: None",
          "    namespaces: [kube-system]",
          "  - level: None",
          "    userGroups: [system:serviceaccounts]",
          ...METADATA_KEYS,
        ].join("\n"),
      ),
    );
    expect(scoped.status).to.equal("Fail");
    expect(scoped.evidence).to.contain("rules[0]").and.contain("rules[1]");
    // A None rule for other resources or for non-resource URLs drops none of them.
    const unrelated = a(
      "3.2.2",
      policy(
        [
          "  - level: None",
          "    users: [system:kube-proxy]",
          "    verbs: [watch]",
          "    resources:",
          '      - group: ""',
          "        resources: [endpoints, services]",
          "  - level: None",
          "    nonResourceURLs: [/healthz*]",
          ...METADATA_KEYS,
        ].join("\n"),
      ),
    );
    expect(unrelated.status).to.equal("Pass");
  });
  it("3.2.1/3.2.2 fail when omitStages leave nothing, or never the outcome, recorded", () => {
    const all = `omitStages: [RequestReceived, ResponseStarted, ResponseComplete, Panic]\n`;
    const silent = policy(METADATA_KEYS.join("\n")).replace("rules:", `${all}rules:`);
    expect(a("3.2.1", silent).status).to.equal("Fail");
    expect(a("3.2.2", silent).status).to.equal("Fail");
    const perRule = policy(
      [
        "  - level: Metadata",
        "    omitStages: [ResponseStarted, ResponseComplete]",
        "    resources:",
        '      - group: ""',
        "        resources: [secrets, configmaps, serviceaccounts/token]",
        "      - group: authentication.k8s.io",
        "        resources: [tokenreviews]",
        "  - level: RequestResponse",
      ].join("\n"),
    );
    expect(a("3.2.1", perRule).status).to.equal("Pass");
    expect(a("3.2.2", perRule).evidence).to.contain("never recorded with their outcome");
    expect(
      a("3.2.2", policy(METADATA_KEYS.join("\n")).replace("rules:", "omitStages: [RequestReceived]\nrules:"))
        .status,
    ).to.equal("Pass");
  });
});

describe("cis/command with the controller manager, scheduler and etcd manifests", () => {
  async function run(argv: string[]) {
    let stdout = "";
    let stderr = "";
    const code = await runCheckCommand(argv, { stdout: (s) => (stdout += s), stderr: (s) => (stderr += s) });
    return { code, stdout, stderr };
  }
  const statuses = (stdout: string) =>
    Object.fromEntries(
      (JSON.parse(stdout) as { results: { id: string; status: string }[] }).results.map((r) => [
        r.id,
        r.status,
      ]),
    );
  const args = (kind: "hardened" | "weak") => [
    "--controller-manager-manifest",
    `${FIX}components/${kind}/kube-controller-manager.yaml`,
    `--scheduler-manifest=${FIX}components/${kind}/kube-scheduler.yaml`,
    "--etcd-manifest",
    `${FIX}components/${kind}/etcd.yaml`,
    "--host-root",
    `${FIX}pkiroot`,
    "-o",
    "json",
  ];
  it("passes the hardened manifests (1.3.1 is for a person)", async () => {
    const { code, stdout, stderr } = await run(args("hardened"));
    expect(stderr).to.equal("");
    const s = statuses(stdout);
    expect(Object.keys(s)).to.deep.equal([
      "1.3.1",
      "1.3.2",
      "1.3.3",
      "1.3.4",
      "1.3.5",
      "1.3.6",
      "1.3.7",
      "1.4.1",
      "1.4.2",
      "2.1",
      "2.2",
      "2.3",
      "2.4",
      "2.5",
      "2.6",
      "2.7",
    ]);
    expect(Object.entries(s).filter(([, v]) => v !== "Pass")).to.deep.equal([["1.3.1", "Manual"]]);
    expect(code).to.equal(0);
  });
  it("fails the weak manifests that a regex audit would pass", async () => {
    const { code, stdout } = await run(args("weak"));
    expect(code).to.equal(1);
    expect(statuses(stdout)).to.deep.equal({
      "1.3.1": "Manual",
      "1.3.2": "Fail",
      "1.3.3": "Fail",
      "1.3.4": "Pass",
      "1.3.5": "Fail",
      "1.3.6": "Fail",
      "1.3.7": "Fail",
      "1.4.1": "Fail",
      "1.4.2": "Fail",
      "2.1": "Fail",
      "2.2": "Fail",
      "2.3": "Fail",
      "2.4": "Fail",
      "2.5": "Fail",
      "2.6": "Fail",
      "2.7": "Fail",
    });
  });
  it("reads the four manifests from --manifests-dir under --host-root; an explicit manifest wins", async () => {
    const root = mkdtempSync(join(tmpdir(), "cis-manifests-"));
    try {
      cpSync(`${FIX}pkiroot`, root, { recursive: true });
      mkdirSync(join(root, "etc/kubernetes/manifests"), { recursive: true });
      for (const f of ["kube-controller-manager.yaml", "kube-scheduler.yaml", "etcd.yaml"])
        cpSync(`${FIX}components/hardened/${f}`, join(root, "etc/kubernetes/manifests", f));
      const dflt = await run(["--host-root", root, "-o", "json"]);
      expect(dflt.code).to.equal(0);
      expect(Object.keys(statuses(dflt.stdout))).to.have.length(16);
      const mixed = await run([
        "--host-root",
        root,
        "--manifests-dir",
        "/etc/kubernetes/manifests",
        "--etcd-manifest",
        `${FIX}components/weak/etcd.yaml`,
        "-o",
        "json",
      ]);
      expect(mixed.code).to.equal(1);
      expect(statuses(mixed.stdout)["2.2"]).to.equal("Fail");
      expect(statuses(mixed.stdout)["1.3.2"]).to.equal("Pass");
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
