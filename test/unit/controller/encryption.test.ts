import { expect } from "chai";
import {
  encryptionReport,
  planEncryptionArea,
  type EncryptionGathered,
  type EncryptionPlanInput,
  type EncryptionWrites,
} from "../../../src/controller/encryption.js";
import type { StoredSecret } from "../../../src/cluster/encryption.js";
import { keyFromBytes } from "../../../src/desired/encryption/keys.js";
import { encryptionConfigHash, recordConfigYaml } from "../../../src/desired/encryption/render.js";
import type { EncryptionRecord } from "../../../src/desired/encryption/rotation.js";
import { encryptionSecret } from "../../../src/desired/encryption/secret.js";
import { apiServerIdHash, encryptionMetrics } from "../../../src/evidence/apiserver.js";
import { policy } from "../builders/policy.js";

const p = policy("prod").build();
const spec = { provider: "aescbc" as const, resources: ["secrets"] };
const now = new Date("2026-06-01T10:00:00Z");
const input = (over: Partial<EncryptionPlanInput> = {}): EncryptionPlanInput => ({
  policy: "prod",
  spec,
  enforce: true,
  now,
  configMaps: [],
  ...over,
});
const key = (name: string, fill: number) =>
  keyFromBytes("aescbc", name, "2026-01-01T00:00:00.000Z", new Uint8Array(32).fill(fill));
const stored = (record: EncryptionRecord, labels?: Record<string, string>): StoredSecret => {
  const s = encryptionSecret(p, spec, record);
  return {
    metadata: { ...s.metadata, labels: labels ?? s.metadata.labels, resourceVersion: "7" },
    data: s.data,
  };
};
/** One API server (identity `apiserver-a`) that reports having loaded the configuration with `hash`. */
const gathered = (hash: string | undefined, live?: StoredSecret): EncryptionGathered => {
  const text =
    hash === undefined
      ? ""
      : `apiserver_encryption_config_controller_last_config_info{apiserver_id_hash="${apiServerIdHash("apiserver-a")}",hash="${hash}"} 1\n`;
  const metrics = encryptionMetrics(text);
  return {
    view: { ok: true, metrics },
    seen: metrics.loaded,
    live,
    expected: { identities: ["apiserver-a"], endpoints: ["10.0.0.1"] },
  };
};
const hashOf = (r: EncryptionRecord) => encryptionConfigHash(recordConfigYaml(spec, r));
const promoted: EncryptionRecord = {
  phase: "Promoted",
  ring: { primary: "key-new", keys: [key("key-new", 2), key("key-old", 1)] },
  newKey: "key-new",
  resources: ["secrets"],
  phaseSince: "2026-06-01T09:00:00.000Z",
};

describe("encryption area plan (pure)", () => {
  it("in Audit mode only reports what metrics show: no write, no rotation state", () => {
    const plan = planEncryptionArea(input({ enforce: false }), gathered(undefined));
    expect(plan.kind).to.equal("Report");
    if (plan.kind !== "Report") return;
    expect(plan.rotation).to.equal(undefined);
    expect(plan.report.conditions?.[0]).to.deep.include({ type: "EncryptionAtRest", status: "False" });
    expect(plan.report.failure).to.equal(undefined);
  });

  it("leaves a Secret of someone else alone and says so", () => {
    const live = stored(promoted, { app: "other" });
    const plan = planEncryptionArea(input(), gathered(undefined, live));
    expect(plan).to.deep.include({ kind: "Report", rotation: undefined });
    if (plan.kind !== "Report") return;
    expect(plan.report.failure).to.deep.include({ reason: "Unowned", retryable: false });
  });

  it("starts a ring on a fresh cluster: the Secret is written first, with the step's time and an Event", () => {
    const plan = planEncryptionArea(input(), gathered(undefined));
    expect(plan.kind).to.equal("Write");
    if (plan.kind !== "Write") return;
    expect(plan).to.deep.include({ secretName: "csp-prod-encryption", write: true, stored: undefined });
    expect(plan.step).to.deep.include({ action: "Apply", persist: true });
    expect(plan.step.record).to.deep.include({
      phase: "NewKeyAdded",
      phaseSince: "2026-06-01T10:00:00.000Z",
    });
    expect(plan.rewrite).to.equal(undefined);
    expect(plan.events).to.have.length(1);
    expect(plan.events[0]).to.deep.include({ type: "Normal", reason: "EncryptionStep" });
    expect(plan.events[0]!.message).to.match(/^NewKeyAdded: added key key-20260601100000/);
    // Printable without key material: the events and messages name keys only.
    const secret = plan.step.record.ring.keys[0]!.secret;
    expect(JSON.stringify(plan.events) + plan.step.message).not.to.include(secret);
  });

  it("rewrites once the new primary is loaded everywhere, resuming saved progress, writing no Secret first", () => {
    const progress = { target: "key-new", done: ["configmaps"], resource: "secrets", after: "a/b" };
    const record = { ...promoted, rewrite: progress };
    const plan = planEncryptionArea(input(), gathered(hashOf(record), stored(record)));
    if (plan.kind !== "Write") throw new Error(`expected writes, got ${plan.kind}`);
    expect(plan.write).to.equal(false);
    expect(plan.stored).to.deep.include({ resourceVersion: "7" });
    expect(plan.step.action).to.equal("RewriteObjects");
    expect(plan.rewrite).to.deep.equal({
      resources: ["secrets"],
      target: "key-new",
      what: "with key key-new",
      start: progress,
    });
    expect(plan.events).to.deep.equal([]);
  });

  it("waits while an API server has not loaded the configuration, and looks again soon", () => {
    const plan = planEncryptionArea(input(), gathered("sha256:other", stored(promoted)));
    if (plan.kind !== "Write") throw new Error(`expected writes, got ${plan.kind}`);
    expect(plan).to.deep.include({ write: false });
    expect(plan.step.action).to.equal("WaitForAPIServers");
    const report = encryptionReport(input(), gathered("sha256:other"), plan, {
      kind: "Done",
      record: plan.step.record,
    });
    expect(report.requeueAfterMs).to.equal(5_000);
    expect(report.conditions?.[0]?.message).to.include("waiting for every API server to use key key-new");
  });
});

describe("encryption area report (pure)", () => {
  const plan = (): EncryptionWrites => {
    const p0 = planEncryptionArea(input(), gathered(hashOf(promoted), stored(promoted)));
    if (p0.kind !== "Write") throw new Error("expected writes");
    return p0;
  };

  it("turns a 409 into a retryable Conflict and a refused rewrite into RewriteForbidden", () => {
    const g = gathered(hashOf(promoted));
    const conflict = encryptionReport(input(), g, plan(), {
      kind: "Failed",
      record: promoted,
      status: 409,
      message: "conflict",
    });
    expect(conflict.failure).to.deep.equal({
      reason: "Conflict",
      message: "Secret csp-system/csp-prod-encryption changed meanwhile",
      retryable: true,
    });
    const forbidden = encryptionReport(input(), g, plan(), {
      kind: "Failed",
      record: promoted,
      status: 403,
      message: "secrets is forbidden",
    });
    expect(forbidden.failure).to.deep.include({ reason: "RewriteForbidden", retryable: false });
    expect(forbidden.failure?.message).to.include("kubectl apply -k config/encryption");
  });

  it("names the objects a rewrite left behind, and counts what it rewrote when complete", () => {
    const g = gathered(hashOf(promoted));
    const incomplete = encryptionReport(input(), g, plan(), {
      kind: "RewriteIncomplete",
      record: promoted,
      result: {
        written: 3,
        complete: false,
        failed: 1,
        failures: [{ resource: "secrets", object: "app/locked", code: 500, message: "boom" }],
        forbidden: false,
        progress: { target: "key-new", done: [] },
      },
    });
    expect(incomplete.failure).to.deep.include({ reason: "RewriteFailed", retryable: true });
    expect(incomplete.failure?.message).to.include("secrets app/locked (500: boom)");
    const done = encryptionReport(input(), g, plan(), { kind: "Done", record: promoted, rewritten: 12 });
    expect(done.events).to.deep.include({
      type: "Normal",
      reason: "EncryptionRewrite",
      message: "rewrote 12 stored object(s) of secrets with key key-new",
    });
    expect(done.requeueAfterMs).to.equal(1_000);
  });
});
