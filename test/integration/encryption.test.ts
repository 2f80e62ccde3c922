/**
 * Audit policy and encryption at rest against a REAL kube-apiserver (v1.36.3, controlplane/harness.ts):
 * the rendered files are accepted; the operator, the node agent and the API server's automatic reload
 * together enable encryption and rotate keys; a crash between rotation steps recovers. The API server
 * polls its encryption config about once a minute, so the end-to-end tests take several minutes.
 */
import { expect } from "chai";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadKubeConfig } from "../../src/cluster/client.js";
import { Agent } from "../../src/agent/agent.js";
import { EncryptionClient } from "../../src/cluster/encryption.js";
import { AREAS } from "../../src/controller/registry.js";
import { renderAuditPolicy, renderAuditPolicyYaml } from "../../src/desired/auditpolicy.js";
import { generateKey } from "../../src/desired/encryption/keys.js";
import { renderEncryptionConfigurationYaml } from "../../src/desired/encryption/render.js";
import {
  ENCRYPTION_CONFIG_KEY,
  parseEncryptionRecord,
  PHASE_ANNOTATION,
  PRIMARY_ANNOTATION,
} from "../../src/desired/encryption/secret.js";
import type { RewriteProgress } from "../../src/desired/encryption/rotation.js";
import { lintAuditPolicy } from "../../src/findings/auditpolicy-lint.js";
import { createLogger, silentLogger } from "../../src/observability/logger.js";
import { OperatorMetrics } from "../../src/observability/metrics.js";
import { Operator } from "../../src/controller/manager.js";
import { useControlPlane } from "../support/controlplane.js";
import { installCrd } from "../support/crd.js";
import { eventually } from "../support/eventually.js";
import { kubectlOk } from "../support/kubectl.js";

interface Condition {
  type: string;
  status: string;
  reason: string;
  message: string;
}

describe("rendered audit Policy and EncryptionConfiguration (real kube-apiserver)", function () {
  this.timeout(120_000);
  const key = generateKey("aescbc", "key-render", "2026-01-01T00:00:00Z");
  const auditPolicy = renderAuditPolicy({});
  const cp = useControlPlane({
    name: "enc-render",
    controllerManager: false,
    auditPolicy,
    encryptionConfig: renderEncryptionConfigurationYaml(
      { provider: "aescbc" },
      { primary: key.name, keys: [key] },
    ),
  });

  it("starts with both files, encrypts Secrets with the rendered key and logs Secrets at Metadata only", async () => {
    expect(lintAuditPolicy(auditPolicy, "ConfigMap/csp-system/x")).to.deep.equal([]);
    const run = async (...args: string[]) => {
      const r = await cp().kubectl(args, args[0] === "apply" ? { input: args.pop()! } : {});
      expect(r.code, `kubectl ${args.join(" ")}: ${r.stderr}`).to.equal(0);
      return r.stdout;
    };
    await run("create", "namespace", "render");
    await run("create", "secret", "generic", "s1", "-n", "render", "--from-literal=password=hunter2");
    await run("get", "secret", "s1", "-n", "render", "-o", "yaml");
    const raw = await cp().etcdGet("/registry/secrets/render/s1");
    expect(raw?.subarray(0, 40).toString("latin1")).to.match(/^k8s:enc:aescbc:v1:key-render:/);
    expect(raw?.includes("hunter2")).to.equal(false);

    const events = await eventually("audit events for the secret", async () => {
      const evs = (await cp().auditEvents()).filter(
        (e) => (e["objectRef"] as { resource?: string } | undefined)?.resource === "secrets",
      );
      return evs.some((e) => e["verb"] === "create") && evs.some((e) => e["verb"] === "get") && evs;
    });
    for (const e of events) {
      expect(e["level"], JSON.stringify(e).slice(0, 200)).to.equal("Metadata");
      expect(e).not.to.have.property("requestObject");
      expect(e).not.to.have.property("responseObject");
    }
    expect(JSON.stringify(events)).not.to.include("hunter2");
  });
});

describe("encryption at rest end to end: operator, agent, API server reload (real kube-apiserver)", function () {
  this.timeout(400_000);
  // Start unencrypted: identity only, as a cluster is before the policy exists.
  const cp = useControlPlane({
    name: "enc-e2e",
    controllerManager: false,
    encryptionConfig: renderEncryptionConfigurationYaml({}, { primary: "", keys: [] }),
  });
  let operator: Operator | undefined;
  let metrics = new OperatorMetrics({ defaultMetrics: false });
  let agent: Agent | undefined;
  let auditPath = "";

  const ok = kubectlOk(cp);
  const startOperator = async () => {
    // Each process has its own metrics: what a restarted operator or a new leader exports.
    metrics = new OperatorMetrics({ defaultMetrics: false });
    operator = new Operator(
      loadKubeConfig(cp().kubeconfigPath),
      { workers: 1, resyncMs: 600_000, areas: AREAS, metrics },
      process.env["CSP_TEST_LOG"] ? createLogger("debug") : silentLogger(),
    );
    await operator.start();
  };
  const conditions = async (name: string): Promise<Condition[]> =>
    (JSON.parse(await ok(["get", "csp", name, "-o", "json"])) as { status?: { conditions?: Condition[] } })
      .status?.conditions ?? [];
  const condition = async (name: string, type: string) =>
    (await conditions(name)).find((c) => c.type === type);
  const stateSecret = async () =>
    JSON.parse(await ok(["get", "secret", "csp-e2e-encryption", "-n", "csp-system", "-o", "json"])) as {
      metadata: { annotations: Record<string, string> };
      data: Record<string, string>;
    };
  /** The csp_encryption_rotation_* series this process exports. */
  const rotationSeries = async () =>
    (await metrics.registry.metrics())
      .split("\n")
      .filter((l) => l.startsWith("csp_encryption_"))
      .sort();
  const rawPrefix = async (ns: string, name: string) =>
    (await cp().etcdGet(`/registry/secrets/${ns}/${name}`))?.subarray(0, 40).toString("latin1") ?? "";
  const allSecrets = async () =>
    (
      JSON.parse(await ok(["get", "secrets", "-A", "-o", "json"])) as {
        items: { metadata: { namespace: string; name: string } }[];
      }
    ).items.map((s) => s.metadata);

  before(async function () {
    this.timeout(120_000);
    await installCrd(cp());
    await ok(["create", "namespace", "csp-system"]);
    await ok(["create", "namespace", "app"]);
    await ok(["create", "secret", "generic", "before", "-n", "app", "--from-literal=k=plaintext-before"]);
    expect(await rawPrefix("app", "before")).not.to.match(/^k8s:enc:/); // stored in plaintext
    auditPath = join(cp().dir, "agent", "audit-policy.yaml");
    agent = new Agent(
      loadKubeConfig(cp().kubeconfigPath),
      { node: "cp-1", encryptionConfigPath: cp().encryptionConfigPath!, auditPolicyPath: auditPath },
      silentLogger(),
    );
    await agent.start();
    await startOperator();
  });

  after(async () => {
    await operator?.stop();
    await agent?.stop();
  });

  const policy = (trigger?: string) => `apiVersion: security.csp-operator.io/v1alpha1
kind: ClusterSecurityPolicy
metadata: {name: e2e}
spec:
  mode: Enforce
  namespaces: {selector: {matchLabels: {none: none}}}
  auditPolicy: {}
  encryption:
    provider: aescbc
    resources: [secrets]
${trigger ? `    rotation: {trigger: ${trigger}}\n` : ""}`;

  it("delivers the audit policy through the agent, restores its ConfigMap, and says so in AuditPolicyApplied", async () => {
    await ok(["apply", "-f", "-"], policy());
    const c = await eventually("AuditPolicyApplied=True", async () => {
      const cond = await condition("e2e", "AuditPolicyApplied");
      return cond?.status === "True" && cond;
    });
    expect(c.reason).to.equal("Delivered");
    expect(readFileSync(auditPath, "utf8")).to.equal(renderAuditPolicyYaml({}));
    expect(statSync(auditPath).mode & 0o777).to.equal(0o600);
    const cm = JSON.parse(
      await ok(["get", "cm", "csp-e2e-audit-policy", "-n", "csp-system", "-o", "json"]),
    ) as {
      metadata: { labels: Record<string, string>; ownerReferences: { kind: string; name: string }[] };
    };
    expect(cm.metadata.labels).to.include({
      "app.kubernetes.io/managed-by": "csp-operator",
      "security.csp-operator.io/policy": "e2e",
    });
    expect(cm.metadata.ownerReferences[0]).to.include({ kind: "ClusterSecurityPolicy", name: "e2e" });
    await ok(["delete", "cm", "csp-e2e-audit-policy", "-n", "csp-system"]);
    await eventually("the audit policy ConfigMap restored", async () => {
      const r = await cp().kubectl(["get", "cm", "csp-e2e-audit-policy", "-n", "csp-system"]);
      return r.code === 0;
    });
  });

  it("never overwrites an EncryptionConfiguration it did not write when that would drop a key", async () => {
    // A node where encryption was set up by hand, with a key the operator knows nothing about.
    const dir = mkdtempSync(join(cp().dir, "foreign-"));
    const path = join(dir, "encryption-config.yaml");
    const foreign = renderEncryptionConfigurationYaml(
      { provider: "aesgcm", resources: ["secrets"] },
      {
        primary: "legacy-1",
        keys: [
          {
            name: "legacy-1",
            secret: Buffer.alloc(32, 7).toString("base64"),
            createdAt: "2025-01-01T00:00:00Z",
            provider: "aesgcm",
          },
        ],
      },
    );
    writeFileSync(path, foreign, { mode: 0o600 });
    // The same agent checks its node: a kube-apiserver manifest readable by everyone fails 1.1.1, and the
    // encryption config its flags name (read on the host, as the mirror pod never can) decides 1.2.28.
    const hostRoot = join(dir, "host");
    const manifest = join(hostRoot, "etc/kubernetes/manifests/kube-apiserver.yaml");
    mkdirSync(join(hostRoot, "etc/kubernetes/manifests"), { recursive: true });
    mkdirSync(join(hostRoot, "etc/kubernetes/enc"), { recursive: true });
    writeFileSync(join(hostRoot, "etc/kubernetes/enc/config.yaml"), foreign, { mode: 0o600 });
    writeFileSync(
      manifest,
      "apiVersion: v1\nkind: Pod\nmetadata: {name: kube-apiserver}\nspec:\n  containers:\n  - name: kube-apiserver\n    command: [kube-apiserver, --encryption-provider-config=/etc/kubernetes/enc/config.yaml]\n",
    );
    chmodSync(manifest, 0o644);
    await eventually(
      "the key-ring Secret",
      async () =>
        (await cp().kubectl(["get", "secret", "csp-e2e-encryption", "-n", "csp-system"])).code === 0,
    );
    const other = new Agent(
      loadKubeConfig(cp().kubeconfigPath),
      { node: "cp-2", encryptionConfigPath: path, hostRoot },
      silentLogger(),
    );
    await other.start();
    try {
      const reportKey = (key: string) =>
        cp().kubectl(["get", "cm", "csp-agent-cp-2", "-n", "csp-system", "-o", `jsonpath={.data.${key}}`]);
      const report = await eventually("cp-2's report", async () => {
        const r = await reportKey("files\\.json");
        return r.code === 0 && r.stdout.includes("encryption-config") ? r.stdout : undefined;
      });
      expect(report).to.include("aesgcm/legacy-1");
      expect(report).to.include("not overwriting");
      expect(readFileSync(path, "utf8")).to.equal(foreign, "the file is untouched");
      const checks = JSON.parse((await reportKey("cis-files\\.json")).stdout) as {
        id: string;
        status: string;
      }[];
      expect(checks.find((c) => c.id === "1.1.1")).to.include({ status: "Fail" });
      const apiserver = JSON.parse((await reportKey("cis-apiserver\\.json")).stdout) as {
        id: string;
        status: string;
        evidence: string;
      }[];
      const enc = apiserver.find((c) => c.id === "1.2.28");
      expect(enc).to.include({ status: "Fail" }); // aesgcm is not a provider CIS accepts
      expect(enc?.evidence).to.contain("aesgcm");
    } finally {
      await other.stop();
      await ok(["delete", "cm", "csp-agent-cp-2", "-n", "csp-system", "--ignore-not-found"]);
    }
  });

  it("generates a key, waits for the API server to load it, promotes it and rewrites stored Secrets", async () => {
    const c = await eventually(
      "EncryptionAtRest=True",
      async () => {
        const cond = await condition("e2e", "EncryptionAtRest");
        return cond?.status === "True" && cond.reason === "Encrypted" && cond;
      },
      300_000,
    );
    const secret = await stateSecret();
    const primary = secret.metadata.annotations[PRIMARY_ANNOTATION]!;
    expect(primary).to.match(/^key-\d{14}$/);
    expect(c.message).to.include(primary);
    // The Secret stored in plaintext before the policy was rewritten; a new one is encrypted.
    expect(await rawPrefix("app", "before")).to.match(new RegExp(`^k8s:enc:aescbc:v1:${primary}:`));
    await ok(["create", "secret", "generic", "after", "-n", "app", "--from-literal=k=v"]);
    expect(await rawPrefix("app", "after")).to.match(new RegExp(`^k8s:enc:aescbc:v1:${primary}:`));
    // The agent wrote exactly what the Secret carries, 0600.
    const path = cp().encryptionConfigPath!;
    expect(readFileSync(path, "utf8")).to.equal(
      Buffer.from(secret.data[ENCRYPTION_CONFIG_KEY]!, "base64").toString("utf8"),
    );
    expect(statSync(path).mode & 0o777).to.equal(0o600);
    // No key material in the policy (spec, status) or in events.
    const keyMaterial = parseEncryptionRecord(secret.data).ring.keys.map((k) => k.secret);
    const visible =
      (await ok(["get", "csp", "e2e", "-o", "json"])) + (await ok(["get", "events", "-A", "-o", "json"]));
    for (const k of keyMaterial) expect(visible).not.to.include(k);
    // Each rotation step is an Event on the policy, naming keys only.
    expect(visible).to.include("EncryptionStep");
    expect(visible).to.include("EncryptionRewrite");
  });

  it("rotates on a changed trigger across two operator crashes: every Secret carries the new key, the old key is gone", async () => {
    const old = (await stateSecret()).metadata.annotations[PRIMARY_ANNOTATION]!;
    await ok(["apply", "-f", "-"], policy("rotate-1"));
    const phase = async () => (await stateSecret()).metadata.annotations[PHASE_ANNOTATION];
    // Crash 1: the new key is stored and being delivered, not yet loaded everywhere.
    await eventually("phase NewKeyAdded", async () => (await phase()) === "NewKeyAdded", 30_000);
    const since = parseEncryptionRecord((await stateSecret()).data).phaseSince!;
    const before = await eventually("the rotation phase exported from the stored state", async () => {
      const series = await rotationSeries();
      return series.includes(
        `csp_encryption_rotation_phase_since_timestamp_seconds{policy="e2e"} ${Date.parse(since) / 1000}`,
      ) && series.includes('csp_encryption_rotation_phase{policy="e2e",phase="NewKeyAdded"} 1')
        ? series
        : undefined;
    });
    await operator!.stop();
    operator = undefined;
    await startOperator();
    // The restarted operator (as a new leader would) exports the same values from the persisted state,
    // the time the phase began included: the API server needs ~1 min to load the key, so still NewKeyAdded.
    await eventually("the restarted operator exports the same rotation metrics", async () => {
      const series = await rotationSeries();
      return series.length > 0 && series.join("\n") === before.join("\n");
    });
    expect(await phase()).to.equal("NewKeyAdded");
    // Crash 2: the new key is primary; stored objects still need the old key.
    await eventually("phase Promoted", async () => (await phase()) === "Promoted", 200_000);
    await operator!.stop();
    operator = undefined;
    const mid = parseEncryptionRecord((await stateSecret()).data);
    expect(mid.ring.keys.map((k) => k.name)).to.include(old); // nothing lost while objects need it
    await startOperator();

    const done = await eventually(
      "rotation back to Stable with a new primary",
      async () => {
        const s = await stateSecret();
        return s.metadata.annotations[PHASE_ANNOTATION] === "Stable" &&
          s.metadata.annotations[PRIMARY_ANNOTATION] !== old
          ? s
          : undefined;
      },
      200_000,
    );
    const fresh = done.metadata.annotations[PRIMARY_ANNOTATION]!;
    const record = parseEncryptionRecord(done.data);
    // The completed rotation, exported from the persisted record.
    expect(record.rotationCompletedAt).to.be.a("string");
    await eventually("the last completed rotation exported", async () => {
      const series = await rotationSeries();
      return (
        series.includes('csp_encryption_rotation_phase{policy="e2e",phase="Stable"} 1') &&
        series.includes(
          `csp_encryption_last_rotation_completed_timestamp_seconds{policy="e2e"} ${Date.parse(record.rotationCompletedAt!) / 1000}`,
        )
      );
    });
    expect(record.ring.keys.map((k) => k.name)).to.deep.equal([fresh]);
    expect(record.lastTrigger).to.equal("rotate-1");
    for (const s of await allSecrets()) {
      expect(await rawPrefix(s.namespace, s.name), `${s.namespace}/${s.name}`).to.match(
        new RegExp(`^k8s:enc:aescbc:v1:${fresh}:`),
      );
    }
    // The old key is gone from the configuration the agent wrote.
    await eventually("the agent wrote the final configuration", () => {
      const text = readFileSync(cp().encryptionConfigPath!, "utf8");
      return Promise.resolve(text.includes(fresh) && !text.includes(old));
    });
    // And the API server confirms it runs it.
    await eventually(
      "EncryptionAtRest=True with the new key",
      async () => {
        const cond = await condition("e2e", "EncryptionAtRest");
        return cond?.status === "True" && cond.reason === "Encrypted" && cond.message.includes(fresh);
      },
      150_000,
    );
  });

  it("refuses to start a new key ring when its Secret is deleted, and carries on once it is restored", async () => {
    const saved = JSON.parse(
      await ok(["get", "secret", "csp-e2e-encryption", "-n", "csp-system", "-o", "json"]),
    ) as { metadata: Record<string, unknown> };
    const path = cp().encryptionConfigPath!;
    const fileBefore = readFileSync(path, "utf8");
    await ok(["delete", "secret", "csp-e2e-encryption", "-n", "csp-system"]);
    await ok(["annotate", "csp", "e2e", "touched=deleted-ring", "--overwrite"]);
    const c = await eventually("EncryptionAtRest=False/KeyRingMissing", async () => {
      const cond = await condition("e2e", "EncryptionAtRest");
      return cond?.reason === "KeyRingMissing" && cond;
    });
    expect(c.status).to.equal("False");
    expect(c.message).to.include("backup");
    const events = await ok(["get", "events", "-A", "-o", "json"]);
    expect(events).to.include("KeyRingMissing");
    // No fresh ring was started, and the node's file still holds the only other copy of the keys.
    expect(
      (await cp().kubectl(["get", "secret", "csp-e2e-encryption", "-n", "csp-system"])).code,
    ).to.not.equal(0);
    expect(readFileSync(path, "utf8")).to.equal(fileBefore);
    // Restored from the backup: the operator carries on with the same keys.
    for (const field of ["resourceVersion", "uid", "creationTimestamp", "managedFields"])
      delete saved.metadata[field];
    await ok(["create", "-f", "-"], JSON.stringify(saved));
    await ok(["annotate", "csp", "e2e", "touched=restored-ring", "--overwrite"]);
    await eventually(
      "EncryptionAtRest=True again",
      async () => (await condition("e2e", "EncryptionAtRest"))?.reason === "Encrypted",
      120_000,
    );
    expect(readFileSync(path, "utf8")).to.equal(fileBefore);
  });

  it("in Audit mode writes no Secret and no ConfigMap, and reports EncryptionAtRest from metrics", async () => {
    await ok(
      ["apply", "-f", "-"],
      `apiVersion: security.csp-operator.io/v1alpha1
kind: ClusterSecurityPolicy
metadata: {name: observer}
spec:
  mode: Audit
  namespaces: {selector: {matchLabels: {none: none}}}
  auditPolicy: {}
  encryption: {provider: aescbc}
`,
    );
    const c = await eventually("EncryptionAtRest on the Audit policy", () =>
      condition("observer", "EncryptionAtRest"),
    );
    expect(c.status).to.equal("True");
    expect(
      (await cp().kubectl(["get", "secret", "csp-observer-encryption", "-n", "csp-system"])).code,
    ).to.not.equal(0);
    expect(
      (await cp().kubectl(["get", "cm", "csp-observer-audit-policy", "-n", "csp-system"])).code,
    ).to.not.equal(0);
    expect((await condition("observer", "AuditPolicyApplied"))?.reason).to.equal("NotDelivered");
  });
});

describe("rewrite of stored Secrets under a token that may not update all of them (real kube-apiserver)", function () {
  this.timeout(180_000);
  const cp = useControlPlane({ name: "enc-rewrite", controllerManager: false });
  const ok = kubectlOk(cp);
  const user = "system:serviceaccount:csp-system:rewriter";
  const updatesBy = async (namespace: string) =>
    (await cp().auditEvents()).filter(
      (e) =>
        e["verb"] === "update" &&
        (e["user"] as { username?: string } | undefined)?.username === user &&
        (e["objectRef"] as { namespace?: string } | undefined)?.namespace === namespace &&
        e["stage"] === "ResponseComplete",
    ).length;

  it("reports each 403 with its status, rewrites the rest, and the retry writes only what was left", async () => {
    for (const ns of ["csp-system", "open", "locked"]) await ok(["create", "namespace", ns]);
    for (const ns of ["open", "locked"])
      for (const i of [1, 2, 3])
        await ok(["create", "secret", "generic", `s${i}`, "-n", ns, `--from-literal=k=v${i}`]);
    await ok(["create", "serviceaccount", "rewriter", "-n", "csp-system"]);
    await ok(["create", "clusterrole", "secret-reader", "--verb=get,list", "--resource=secrets"]);
    await ok([
      "create",
      "clusterrolebinding",
      "rewriter-read",
      "--clusterrole=secret-reader",
      `--serviceaccount=csp-system:rewriter`,
    ]);
    await ok(["create", "role", "secret-writer", "-n", "open", "--verb=update", "--resource=secrets"]);
    await ok([
      "create",
      "rolebinding",
      "rewriter-write",
      "-n",
      "open",
      "--role=secret-writer",
      `--serviceaccount=csp-system:rewriter`,
    ]);
    const all = (
      JSON.parse(await ok(["get", "secrets", "-A", "-o", "json"])) as {
        items: { metadata: { namespace: string; name: string } }[];
      }
    ).items.map((s) => `${s.metadata.namespace}/${s.metadata.name}`);
    const lockedOut = all.filter((k) => !k.startsWith("open/"));

    const client = new EncryptionClient(
      loadKubeConfig(await cp().serviceAccountKubeconfig("csp-system", "rewriter")),
    );
    const saved: RewriteProgress[] = [];
    const save = (p: RewriteProgress) => {
      saved.push(p);
      return Promise.resolve();
    };
    const first = await client.rewrite(["secrets"], { target: "key-x", done: [] }, save);
    expect(first).to.deep.include({ complete: false, forbidden: true, written: 3, failed: lockedOut.length });
    for (const f of first.failures) {
      expect(f.code, f.object).to.equal(403);
      expect(lockedOut).to.include(f.object);
    }
    expect(first.progress).to.deep.include({ failedOnly: true, failed: lockedOut });
    expect(saved.at(-1)).to.deep.equal(first.progress);

    // An admin grants the missing right; the retry resumes with exactly the objects left behind.
    for (const ns of [...new Set(lockedOut.map((k) => k.split("/")[0]!))]) {
      await ok(["create", "role", "secret-writer", "-n", ns, "--verb=update", "--resource=secrets"]);
      await ok([
        "create",
        "rolebinding",
        "rewriter-write",
        "-n",
        ns,
        "--role=secret-writer",
        `--serviceaccount=csp-system:rewriter`,
      ]);
    }
    const retry = await client.rewrite(["secrets"], first.progress, save);
    expect(retry).to.deep.include({ complete: true, forbidden: false, written: lockedOut.length, failed: 0 });
    expect(retry.progress).to.deep.equal({ target: "key-x", done: ["secrets"] });
    // Counted by the API server itself: the Secrets in "open" were updated once, not again on the retry.
    const opened = await eventually("the audit log has the updates", async () => {
      const n = await updatesBy("open");
      return n >= 3 && (await updatesBy("locked")) >= 3 ? n : undefined;
    });
    expect(opened).to.equal(3);
  });
});
