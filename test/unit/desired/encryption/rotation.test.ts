import { expect } from "chai";
import { keyFromBytes, type EncryptionKey } from "../../../../src/desired/encryption/keys.js";
import {
  CONFIG_HASH_ANNOTATION,
  ENCRYPTION_CONFIG_KEY,
  ENCRYPTION_STATE_KEY,
  encryptionSecret,
  KEYS_ANNOTATION,
  parseEncryptionRecord,
  secretConfigYaml,
} from "../../../../src/desired/encryption/secret.js";
import {
  EMPTY_RECORD,
  planEncryption,
  withRewriteDone,
  type EncryptionRecord,
} from "../../../../src/desired/encryption/rotation.js";
import { keysDropped } from "../../../../src/agent/keyguard.js";
import { policy } from "../../builders/policy.js";

const bytes = (fill: number) => () => new Uint8Array(32).fill(fill);
const key = (name: string, fill: number): EncryptionKey =>
  keyFromBytes("aescbc", name, "2026-01-01T00:00:00.000Z", new Uint8Array(32).fill(fill));
const p = policy("prod").build();
const spec = { provider: "aescbc" as const, resources: ["secrets"] };
const at = (iso: string) => new Date(iso);
const loaded = { allServersLoaded: true };
const notLoaded = { allServersLoaded: false };

/** Walks the workflow as the reconciler does: persist what each step returns, step again. */
function walk(
  start: EncryptionRecord,
  s: typeof spec & { rotation?: { trigger?: string; period?: string } },
  now: Date,
  fill: number,
) {
  const phases: string[] = [];
  let record = start;
  for (let i = 0; i < 10; i++) {
    const plan = planEncryption(s, record, loaded, now, bytes(fill));
    if (plan.action === "None") break;
    phases.push(`${plan.record.phase}:${plan.action}`);
    record = plan.action === "RewriteObjects" ? withRewriteDone(plan.record) : plan.record;
  }
  return { record, phases };
}

describe("encryption state (Secret) and plan", () => {
  it("round-trips the record through the Secret and keeps key material out of labels and annotations", () => {
    const k = key("key-1", 7);
    const record: EncryptionRecord = {
      phase: "Stable",
      ring: { primary: "key-1", keys: [k] },
      lastTrigger: "t1",
      resources: ["secrets"],
    };
    const secret = encryptionSecret(p, spec, record);
    expect(secret.metadata).to.deep.include({ name: "csp-prod-encryption", namespace: "csp-system" });
    expect(secret.metadata.labels).to.include({
      "app.kubernetes.io/managed-by": "csp-operator",
      "security.csp-operator.io/policy": "prod",
    });
    // Keys outlive the policy: no ownerReference, so deleting the policy never garbage-collects them.
    expect(secret.metadata).to.not.have.property("ownerReferences");
    expect(JSON.stringify(secret.metadata)).not.to.include(k.secret);
    expect(secret.metadata.annotations[KEYS_ANNOTATION]).to.match(/^key-1:aescbc:[0-9a-f]{16}$/);
    expect(secret.metadata.annotations[CONFIG_HASH_ANNOTATION]).to.match(/^sha256:[0-9a-f]{64}$/);
    expect(parseEncryptionRecord(secret.data)).to.deep.equal(record);
    expect(secretConfigYaml(secret.data)).to.include("name: key-1");
    expect(Object.keys(secret.data).sort()).to.deep.equal([ENCRYPTION_CONFIG_KEY, "state.json"]);
  });

  it("rejects a hand-edited state with an error naming the field and no key material", () => {
    const b64 = (o: unknown) => ({ "state.json": Buffer.from(JSON.stringify(o)).toString("base64") });
    expect(() => parseEncryptionRecord(undefined)).to.throw(/data.state.json is missing/);
    expect(() => parseEncryptionRecord(b64({ phase: "Bogus", ring: { primary: "", keys: [] } }))).to.throw(
      /phase must be one of/,
    );
    const secretValue = key("k", 3).secret;
    const bad = () =>
      parseEncryptionRecord(
        b64({ phase: "Stable", ring: { primary: "k", keys: [{ name: "k", secret: secretValue }] } }),
      );
    expect(bad).to.throw(/ring.keys\[0\] needs/);
    try {
      bad();
    } catch (err) {
      expect((err as Error).message).not.to.include(secretValue);
    }
  });

  it("drops an invalid or future phaseSince/rotationCompletedAt instead of failing; the plan stamps it anew", () => {
    const now = at("2026-12-05T10:00:00Z");
    const state = (extra: Record<string, unknown>) => ({
      "state.json": Buffer.from(
        JSON.stringify({ phase: "Stable", ring: { primary: "k", keys: [key("k", 1)] }, ...extra }),
      ).toString("base64"),
    });
    for (const v of [
      "1",
      "2026",
      "Saturday 5 December 2026",
      "+275760-09-13T00:00:00Z",
      "2999-01-01T00:00:00Z",
      "2026-12-05T10:06:00Z",
      "2026-13-01T00:00:00Z",
      "not a time",
      0,
      null,
    ]) {
      const r = parseEncryptionRecord(state({ phaseSince: v, rotationCompletedAt: v }), now);
      expect(r, JSON.stringify(v)).to.not.have.property("phaseSince");
      expect(r, JSON.stringify(v)).to.not.have.property("rotationCompletedAt");
      const p = planEncryption(spec, r, notLoaded, now);
      expect(p.record.phaseSince, JSON.stringify(v)).to.equal(now.toISOString());
      expect(p.persist).to.equal(true);
    }
    // Valid times are kept, a little clock skew included.
    for (const v of ["2026-12-01T00:00:00Z", "2026-12-05T10:04:00.123+00:00", "2026-12-05T11:00:00+02:00"])
      expect(parseEncryptionRecord(state({ phaseSince: v }), now).phaseSince).to.equal(v);
  });

  it("enables encryption on an empty ring: add, wait for the servers, promote, rewrite, settle", () => {
    const now = at("2026-06-01T10:00:00Z");
    const first = planEncryption(spec, EMPTY_RECORD, notLoaded, now, bytes(1));
    expect(first).to.deep.include({ action: "Apply", persist: true });
    expect(first.record.phase).to.equal("NewKeyAdded");
    expect(first.record.ring.primary).to.equal("");
    expect(first.record.newKey).to.equal("key-20260601100000");
    expect(first.message).to.include("NoKey");
    // Not loaded yet: wait, persist nothing.
    const wait = planEncryption(spec, first.record, notLoaded, now);
    expect(wait).to.deep.include({ action: "WaitForAPIServers", persist: false });
    expect(wait.record).to.equal(first.record);
    const { record, phases } = walk(first.record, spec, now, 1);
    expect(phases).to.deep.equal([
      "NewKeyLoaded:Apply",
      "Promoted:Apply",
      "Promoted:RewriteObjects",
      "Rewritten:Apply",
      "Stable:Apply",
    ]);
    expect(record).to.deep.equal({
      phase: "Stable",
      ring: { primary: "key-20260601100000", keys: [first.record.ring.keys[0]] },
      resources: ["secrets"],
      phaseSince: "2026-06-01T10:00:00.000Z",
      rotationCompletedAt: "2026-06-01T10:00:00.000Z",
    });
  });

  it("persists when each phase began and when the last rotation completed, surviving the Secret", () => {
    const t = (m: number) => at(`2026-06-01T10:${String(m).padStart(2, "0")}:00Z`);
    // Every step through the Secret (what a restarted operator or a new leader reads).
    const through = (r: EncryptionRecord) => parseEncryptionRecord(encryptionSecret(p, spec, r).data);
    let record = through(planEncryption(spec, EMPTY_RECORD, notLoaded, t(0), bytes(1)).record);
    expect(record).to.deep.include({ phase: "NewKeyAdded", phaseSince: "2026-06-01T10:00:00.000Z" });
    expect(record.rotationCompletedAt).to.equal(undefined);
    // Waiting changes nothing: the phase still began at 10:00.
    const wait = planEncryption(spec, record, notLoaded, t(5));
    expect(wait).to.deep.include({ persist: false, action: "WaitForAPIServers" });
    expect(wait.record.phaseSince).to.equal("2026-06-01T10:00:00.000Z");
    const steps: string[] = [];
    for (let m = 10; record.phase !== "Stable" || steps.length === 0; m += 10) {
      const plan = planEncryption(spec, record, loaded, t(m));
      record = through(plan.action === "RewriteObjects" ? withRewriteDone(plan.record) : plan.record);
      steps.push(`${record.phase}@${record.phaseSince}`);
    }
    expect(steps).to.deep.equal([
      "NewKeyLoaded@2026-06-01T10:10:00.000Z",
      "Promoted@2026-06-01T10:20:00.000Z",
      "Promoted@2026-06-01T10:20:00.000Z", // the rewrite, same phase
      "Rewritten@2026-06-01T10:40:00.000Z",
      "Stable@2026-06-01T10:50:00.000Z",
    ]);
    expect(record.rotationCompletedAt).to.equal("2026-06-01T10:50:00.000Z");
    // Steady state afterwards: nothing persisted, both times kept.
    const idle = planEncryption(spec, record, loaded, t(59));
    expect(idle).to.deep.include({ persist: false, action: "None" });
    expect(idle.record).to.deep.include({
      phaseSince: "2026-06-01T10:50:00.000Z",
      rotationCompletedAt: "2026-06-01T10:50:00.000Z",
    });
  });

  it("stamps phaseSince once on a record written before it existed, and once more over a malformed one", () => {
    const now = at("2026-06-03T00:00:00Z");
    const old: EncryptionRecord = {
      phase: "Stable",
      ring: { primary: "key-old", keys: [key("key-old", 9)] },
      resources: ["secrets"],
    };
    const plan = planEncryption(spec, old, loaded, now);
    expect(plan).to.deep.include({ persist: true, action: "Apply" });
    expect(plan.record).to.deep.equal({ ...old, phaseSince: "2026-06-03T00:00:00.000Z" });
    expect(planEncryption(spec, plan.record, loaded, now)).to.deep.include({
      persist: false,
      action: "None",
    });
    const data = encryptionSecret(p, spec, plan.record).data;
    const state = JSON.parse(Buffer.from(data[ENCRYPTION_STATE_KEY]!, "base64").toString()) as object;
    const bad = Buffer.from(JSON.stringify({ ...state, phaseSince: "yesterday" })).toString("base64");
    const back = parseEncryptionRecord({ ...data, [ENCRYPTION_STATE_KEY]: bad }, now);
    expect(back).to.deep.equal(old);
    expect(planEncryption(spec, back, loaded, now).record.phaseSince).to.equal("2026-06-03T00:00:00.000Z");
  });

  it("rotates once per trigger value, keeps the old key until the rewrite is recorded, then drops it", () => {
    const now = at("2026-06-02T00:00:00Z");
    const start: EncryptionRecord = {
      phase: "Stable",
      ring: { primary: "key-old", keys: [key("key-old", 9)] },
    };
    const triggered = { ...spec, rotation: { trigger: "r1" } };
    const { record, phases } = walk(start, triggered, now, 2);
    expect(phases[0]).to.equal("NewKeyAdded:Apply");
    expect(record.ring.keys.map((k) => k.name)).to.deep.equal(["key-20260602000000"]);
    expect(record.lastTrigger).to.equal("r1");
    // Same trigger again: nothing to do.
    expect(planEncryption(triggered, record, loaded, now).action).to.equal("None");
  });

  it("resumes after a crash at any phase from the stored record alone, never losing the old key early", () => {
    const now = at("2026-06-02T00:00:00Z");
    const start: EncryptionRecord = {
      phase: "Stable",
      ring: { primary: "key-old", keys: [key("key-old", 9)] },
    };
    const triggered = { ...spec, rotation: { trigger: "r1" } };
    let record = start;
    const seen: EncryptionRecord[] = [];
    for (let i = 0; i < 10; i++) {
      // A "crash" after every step: only the persisted record survives, serialized through the Secret.
      const plan = planEncryption(triggered, record, loaded, now, bytes(4));
      if (plan.action === "None") break;
      const kept = plan.action === "RewriteObjects" ? withRewriteDone(plan.record) : plan.record;
      record = parseEncryptionRecord(encryptionSecret(p, triggered, kept).data);
      seen.push(record);
    }
    // Until the rewrite was recorded, every persisted ring still holds the old key.
    for (const r of seen) {
      if (r.phase !== "Stable") expect(r.ring.keys.map((k) => k.name)).to.include("key-old");
    }
    expect(record.phase).to.equal("Stable");
    expect(record.ring.keys.map((k) => k.name)).to.deep.equal(["key-20260602000000"]);
  });

  it("keeps generated key names unique within one second", () => {
    const now = at("2026-06-02T00:00:00Z");
    const start: EncryptionRecord = {
      phase: "Stable",
      ring: { primary: "key-20260602000000", keys: [key("key-20260602000000", 9)] },
    };
    const plan = planEncryption({ ...spec, rotation: { trigger: "x" } }, start, loaded, now, bytes(5));
    expect(plan.record.newKey).to.equal("key-20260602000000-1");
  });

  /**
   * Drives the plan like the reconciler and a cluster would, checking each configuration delivered against
   * the previous one with the node agent's key guard (per resource, honouring what the Secret declares
   * retired): nothing that could decrypt a stored object may vanish before its objects were rewritten.
   */
  function deliverAll(s: Parameters<typeof planEncryption>[0], start: EncryptionRecord, now: Date) {
    let record = start;
    let config = secretConfigYaml(encryptionSecret(p, s, record).data)!;
    const steps: string[] = [];
    for (let i = 0; i < 12; i++) {
      const plan = planEncryption(s, record, loaded, now, bytes(6));
      if (plan.action === "None") break;
      steps.push(`${plan.record.phase}:${plan.action}`);
      record = plan.action === "RewriteObjects" ? withRewriteDone(plan.record) : plan.record;
      const secret = encryptionSecret(p, s, record);
      const next = secretConfigYaml(secret.data)!;
      const annotations = secret.metadata.annotations;
      const retired = {
        keys: (annotations["security.csp-operator.io/retired-keys"] ?? "").split(",").filter(Boolean),
        resources: (annotations["security.csp-operator.io/retired-resources"] ?? "")
          .split(",")
          .filter(Boolean),
      };
      expect(keysDropped(config, next, retired), `step ${i}: ${plan.message}`).to.deep.equal([]);
      config = next;
    }
    return { record, steps, config };
  }

  it("removing a resource drains it: plaintext writes first, rewrite, and only then out of the configuration", () => {
    const now = at("2026-06-03T00:00:00Z");
    const both = { provider: "aescbc" as const, resources: ["secrets", "configmaps"] };
    const start: EncryptionRecord = {
      phase: "Stable",
      ring: { primary: "key-a", keys: [key("key-a", 9)] },
    };
    // The Secret as the operator stored it while both resources were encrypted.
    const stored = parseEncryptionRecord(encryptionSecret(p, both, start).data);
    const { record, steps, config } = deliverAll(spec, stored, now);
    expect(steps).to.include("Stable:RewriteObjects", "the drained objects are rewritten before removal");
    expect(config).not.to.include("configmaps");
    expect(record.ring.keys.map((k) => k.name)).to.deep.equal(["key-a"]);
    // The rewrite asked for covers exactly the resource leaving.
    const draining = planEncryption(
      spec,
      parseEncryptionRecord(encryptionSecret(p, spec, planEncryption(spec, stored, loaded, now).record).data),
      loaded,
      now,
    );
    expect(draining.action).to.equal("RewriteObjects");
    expect(draining.rewrite?.resources).to.deep.equal(["configmaps"]);
  });

  it("a rotation never removes a key a stored object may need, across resource and provider changes", () => {
    const now = at("2026-06-04T00:00:00Z");
    const start: EncryptionRecord = {
      phase: "Stable",
      ring: { primary: "key-a", keys: [key("key-a", 9)] },
    };
    const both = { provider: "aescbc" as const, resources: ["secrets", "configmaps"] };
    // Provider switch and resource removal at once.
    const gcm = { provider: "aesgcm" as const, resources: ["secrets"], rotation: { trigger: "x" } };
    const { record } = deliverAll(gcm, parseEncryptionRecord(encryptionSecret(p, both, start).data), now);
    expect(record.ring.keys.map((k) => k.provider)).to.deep.equal(["aesgcm"]);
    // Away from KMS: its provider stays readable until a rotation rewrote every object.
    const kmsSpec = {
      provider: "kms" as const,
      resources: ["secrets"],
      kms: { name: "v", endpoint: "unix:///k" },
    };
    const onKms = planEncryption(kmsSpec, start, loaded, now).record;
    expect(secretConfigYaml(encryptionSecret(p, kmsSpec, onKms).data)).to.include("name: v");
    const back = deliverAll(spec, parseEncryptionRecord(encryptionSecret(p, kmsSpec, onKms).data), now);
    expect(back.config).not.to.include("kms");
  });
});
