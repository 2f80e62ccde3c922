import { expect } from "chai";
import { createHash } from "node:crypto";
import { parse } from "yaml";
import { applyDefaults } from "../../../../src/api/defaults.js";
import { specSchema, type ClusterSecurityPolicySpec } from "../../../../src/api/v1alpha1/policy.js";
import {
  describeKeyRing,
  generateKey,
  KEY_BYTES,
  keyFingerprint,
  keyFromBytes,
  keyName,
  type EncryptionKey,
  type EncryptionSpec,
  type KeyRing,
} from "../../../../src/desired/encryption/keys.js";
import {
  encryptionConfigHash,
  renderEncryptionConfiguration,
  renderEncryptionConfigurationYaml,
} from "../../../../src/desired/encryption/render.js";
import {
  nextRotationStep,
  rotationReason,
  RotationStateError,
  type RotationObservations,
  type RotationPhase,
  type RotationState,
  type RotationStep,
} from "../../../../src/desired/encryption/rotation.js";

// Test keys come from fixed buffers; no key material is ever committed as a file.
const fixed = (byte: number) => Buffer.alloc(KEY_BYTES, byte);
const K1 = keyFromBytes("aescbc", "key-20250101000000", "2025-01-01T00:00:00Z", fixed(1));
const K2 = keyFromBytes("aescbc", "key-20250401000000", "2025-04-01T00:00:00Z", fixed(2));
const G3 = keyFromBytes("aesgcm", "key-20250501000000", "2025-05-01T00:00:00Z", fixed(3));
const S1 = keyFromBytes("secretbox", "sb-1", "2025-01-01T00:00:00Z", fixed(1));
const SECRETS = [K1.secret, K2.secret, G3.secret];

function defaulted(encryption: EncryptionSpec): EncryptionSpec {
  return (applyDefaults(specSchema.openapi, { encryption }) as ClusterSecurityPolicySpec).encryption!;
}

describe("encryption keys", () => {
  it("generateKey draws KEY_BYTES from the random source and base64-encodes them", () => {
    const sizes: number[] = [];
    const key = generateKey("aesgcm", "key-x", "2025-01-01T00:00:00Z", (n) => {
      sizes.push(n);
      return fixed(7);
    });
    expect(sizes).to.deep.equal([32]);
    expect(key).to.deep.equal({
      name: "key-x",
      secret: fixed(7).toString("base64"),
      createdAt: "2025-01-01T00:00:00Z",
      provider: "aesgcm",
    });
  });

  it("generateKey defaults to the CSPRNG: 32 fresh bytes each time", () => {
    const a = generateKey("aescbc", "a", "t");
    const b = generateKey("secretbox", "b", "t");
    expect(Buffer.from(a.secret, "base64")).to.have.length(32);
    expect(Buffer.from(b.secret, "base64")).to.have.length(32);
    expect(a.secret).to.not.equal(b.secret);
  });

  it("keyFromBytes rejects lengths the API server would refuse and names it cannot prefix", () => {
    expect(() => keyFromBytes("secretbox", "k", "t", Buffer.alloc(16))).to.throw(/secretbox key/);
    expect(() => keyFromBytes("aescbc", "k", "t", Buffer.alloc(20))).to.throw();
    expect(keyFromBytes("aescbc", "k", "t", Buffer.alloc(16)).secret).to.equal(
      Buffer.alloc(16).toString("base64"),
    );
    expect(() => keyFromBytes("aescbc", "key:1", "t", fixed(1))).to.throw(/name/);
    expect(() => keyFromBytes("aescbc", "", "t", fixed(1))).to.throw(/name/);
  });

  it("keyName is key-<yyyymmddhhmmss> in UTC", () => {
    expect(keyName(new Date("2025-03-04T05:06:07.890Z"))).to.equal("key-20250304050607");
  });

  it("keyFingerprint is the first 16 hex characters of the SHA-256 of the key bytes", () => {
    expect(keyFingerprint(K1)).to.equal("72cd6e8422c407fb");
    expect(keyFingerprint(K1)).to.equal(createHash("sha256").update(fixed(1)).digest("hex").slice(0, 16));
    expect(keyFingerprint(K2)).to.not.equal(keyFingerprint(K1));
  });

  it("describeKeyRing reports names and fingerprints, never key material", () => {
    const described = describeKeyRing({ primary: K2.name, keys: [K2, K1] });
    expect(described).to.deep.equal({
      primary: K2.name,
      keys: [
        { name: K2.name, provider: "aescbc", createdAt: K2.createdAt, fingerprint: "75877bb41d393b5f" },
        { name: K1.name, provider: "aescbc", createdAt: K1.createdAt, fingerprint: "72cd6e8422c407fb" },
      ],
    });
    for (const secret of SECRETS) expect(JSON.stringify(described)).to.not.include(secret);
  });
});

describe("renderEncryptionConfiguration", () => {
  it("renders the provider with the ring's keys primary-first, identity last", () => {
    const spec = defaulted({ resources: ["secrets", "configmaps"] });
    expect(renderEncryptionConfigurationYaml(spec, { primary: K2.name, keys: [K1, K2] })).to.equal(
      `apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
  - resources:
      - secrets
      - configmaps
    providers:
      - aescbc:
          keys:
            - name: key-20250401000000
              secret: AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=
            - name: key-20250101000000
              secret: AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=
      - identity: {}
`,
    );
  });

  it("defaults to secrets and renders secretbox", () => {
    expect(
      renderEncryptionConfigurationYaml(defaulted({ provider: "secretbox" }), {
        primary: S1.name,
        keys: [S1],
      }),
    ).to.equal(
      `apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
  - resources:
      - secrets
    providers:
      - secretbox:
          keys:
            - name: sb-1
              secret: AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=
      - identity: {}
`,
    );
  });

  it("renders kms v2 first, keeps old local keys readable, identity last", () => {
    const spec = defaulted({
      provider: "kms",
      kms: { name: "vault", endpoint: "unix:///var/run/kms/vault.sock" },
    });
    expect(renderEncryptionConfigurationYaml(spec, { primary: K1.name, keys: [K1] })).to.equal(
      `apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
  - resources:
      - secrets
    providers:
      - kms:
          apiVersion: v2
          name: vault
          endpoint: unix:///var/run/kms/vault.sock
          timeout: 3s
      - aescbc:
          keys:
            - name: key-20250101000000
              secret: AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=
      - identity: {}
`,
    );
    expect(
      renderEncryptionConfiguration(spec, { primary: "", keys: [] }).resources[0]!.providers,
    ).to.deep.equal([
      { kms: { apiVersion: "v2", name: "vault", endpoint: "unix:///var/run/kms/vault.sock", timeout: "3s" } },
      { identity: {} },
    ]);
  });

  it("during a provider change the primary's provider leads and the old provider's keys stay readable", () => {
    const cfg = renderEncryptionConfiguration(defaulted({ provider: "aesgcm" }), {
      primary: G3.name,
      keys: [K1, G3, K2],
    });
    expect(cfg.resources[0]!.providers).to.deep.equal([
      { aesgcm: { keys: [{ name: G3.name, secret: G3.secret }] } },
      {
        aescbc: {
          keys: [
            { name: K1.name, secret: K1.secret },
            { name: K2.name, secret: K2.secret },
          ],
        },
      },
      { identity: {} },
    ]);
  });

  it("without a primary, identity leads (keys are readable, writes stay plaintext)", () => {
    const cfg = renderEncryptionConfiguration(defaulted({}), { primary: "", keys: [K1] });
    expect(cfg.resources[0]!.providers).to.deep.equal([
      { identity: {} },
      { aescbc: { keys: [{ name: K1.name, secret: K1.secret }] } },
    ]);
  });

  it("is deterministic and round-trips through YAML", () => {
    const spec = defaulted({ resources: ["secrets", "configmaps"] });
    const ring: KeyRing = { primary: K1.name, keys: [K1, K2] };
    const a = renderEncryptionConfigurationYaml(spec, ring);
    expect(renderEncryptionConfigurationYaml(structuredClone(spec), structuredClone(ring))).to.equal(a);
    expect(parse(a)).to.deep.equal(renderEncryptionConfiguration(spec, ring));
    expect(encryptionConfigHash(a)).to.equal(`sha256:${createHash("sha256").update(a).digest("hex")}`);
  });

  it("refuses inconsistent input without revealing key material", () => {
    const spec = defaulted({});
    const cases: [EncryptionSpec, KeyRing, RegExp][] = [
      [spec, { primary: "missing", keys: [K1] }, /not in the key ring/],
      [spec, { primary: K1.name, keys: [K1, { ...K2, name: K1.name }] }, /twice/],
      [spec, { primary: K1.name, keys: [{ ...K1, secret: "not base64!" }] }, /base64/],
      [defaulted({ provider: "kms" }), { primary: "", keys: [] }, /kms/],
      [{ ...spec, resources: [] }, { primary: K1.name, keys: [K1] }, /empty/],
    ];
    for (const [s, ring, message] of cases) {
      let error: unknown;
      try {
        renderEncryptionConfiguration(s, ring);
      } catch (err) {
        error = err;
      }
      expect(error, String(message)).to.be.instanceOf(Error);
      expect((error as Error).message).to.match(message);
      for (const secret of SECRETS) expect((error as Error).message).to.not.include(secret);
    }
  });
});

describe("rotationReason", () => {
  const now = new Date("2025-06-01T00:00:00Z");
  const ring: KeyRing = { primary: K2.name, keys: [K2] };

  it("is due when there is no key, the provider changed, the trigger changed or the key is old", () => {
    expect(rotationReason(defaulted({}), { primary: "", keys: [] }, now)).to.equal("NoKey");
    expect(rotationReason(defaulted({ provider: "aesgcm" }), ring, now)).to.equal("ProviderChanged");
    expect(rotationReason(defaulted({ rotation: { trigger: "now" } }), ring, now, "before")).to.equal(
      "Triggered",
    );
    expect(rotationReason(defaulted({ rotation: { trigger: "now" } }), ring, now, "now")).to.equal(undefined);
    expect(rotationReason(defaulted({ rotation: { period: "720h" } }), ring, now)).to.equal("PeriodElapsed");
    expect(rotationReason(defaulted({ rotation: { period: "2160h" } }), ring, now)).to.equal(undefined);
    expect(rotationReason(defaulted({}), ring, now)).to.equal(undefined);
  });

  it("never for kms: the plugin rotates its own keys", () => {
    const spec = defaulted({ provider: "kms", kms: { name: "v", endpoint: "unix:///s" } });
    expect(rotationReason(spec, { primary: "", keys: [] }, now)).to.equal(undefined);
  });

  it("reads rotation.period as a Go duration, to the second", () => {
    const created = Date.parse(K2.createdAt);
    const at = (ms: number) => new Date(created + ms);
    const period = defaulted({ rotation: { period: "1h30m10s" } });
    const exact = 3_600_000 + 30 * 60_000 + 10_000;
    expect(rotationReason(period, ring, at(exact - 1000))).to.equal(undefined);
    expect(rotationReason(period, ring, at(exact))).to.equal("PeriodElapsed");
    // Not a Go duration (the schema rejects it at admission): never a reason to rotate.
    expect(rotationReason(defaulted({ rotation: { period: "90d" } }), ring, at(365 * 86_400_000))).to.equal(
      undefined,
    );
  });
});

describe("nextRotationStep", () => {
  const idle: RotationObservations = { rotationDue: false, allServersLoaded: false, rewriteComplete: false };
  const loaded: RotationObservations = { ...idle, allServersLoaded: true };
  const done: RotationObservations = { ...loaded, rewriteComplete: true };
  const stable: RotationState = { phase: "Stable", ring: { primary: K1.name, keys: [K1] } };
  const asState = ({ phase, ring, newKey }: RotationStep): RotationState =>
    newKey === undefined ? { phase, ring } : { phase, ring, newKey };

  /** Walks a rotation of K1 -> K2 from `from` to Stable, checking every step; returns the phases passed. */
  function walk(from: RotationState): RotationPhase[] {
    const phases: RotationPhase[] = [from.phase];
    let state = from;
    for (let i = 0; i < 10 && !(state.phase === "Stable" && i > 0); i++) {
      let step: RotationStep;
      switch (state.phase) {
        case "Stable":
          step = nextRotationStep(state, { ...idle, rotationDue: true, candidate: K2 });
          break;
        case "NewKeyAdded":
          expect(nextRotationStep(state, idle).action).to.equal("WaitForAPIServers");
          step = nextRotationStep(state, loaded);
          break;
        case "NewKeyLoaded":
          step = nextRotationStep(state, idle);
          break;
        case "Promoted":
          expect(nextRotationStep(state, idle).action).to.equal("WaitForAPIServers");
          expect(nextRotationStep(state, { ...idle, rewriteComplete: true }).action).to.equal(
            "WaitForAPIServers",
          );
          expect(nextRotationStep(state, loaded).action).to.equal("RewriteObjects");
          step = nextRotationStep(state, done);
          break;
        case "Rewritten":
          step = nextRotationStep(state, idle);
          break;
      }
      expect(step.action).to.equal("Apply");
      // The old key is never dropped before the rewrite is recorded.
      if (step.phase !== "Stable") expect(step.ring.keys.map((k) => k.name)).to.include(K1.name);
      for (const secret of SECRETS) expect(step.message).to.not.include(secret);
      state = asState(step);
      phases.push(state.phase);
    }
    expect(state).to.deep.equal({ phase: "Stable", ring: { primary: K2.name, keys: [K2] } });
    return phases;
  }

  it("stays Stable when no rotation is due, and asks for a key when one is", () => {
    expect(nextRotationStep(stable, idle)).to.include({ phase: "Stable", action: "None" });
    expect(nextRotationStep(stable, { ...idle, rotationDue: true })).to.include({
      phase: "Stable",
      action: "GenerateKey",
    });
  });

  it("walks every phase: add secondary -> loaded -> promote -> rewrite -> remove the old key", () => {
    expect(walk(stable)).to.deep.equal([
      "Stable",
      "NewKeyAdded",
      "NewKeyLoaded",
      "Promoted",
      "Rewritten",
      "Stable",
    ]);
  });

  it("has the right ring and configuration in each phase", () => {
    const spec = defaulted({});
    const added = nextRotationStep(stable, { ...idle, rotationDue: true, candidate: K2 });
    expect(added).to.deep.include({
      phase: "NewKeyAdded",
      newKey: K2.name,
      ring: { primary: K1.name, keys: [K1, K2] },
    });
    const firstKeys = (ring: KeyRing) =>
      (
        renderEncryptionConfiguration(spec, ring).resources[0]!.providers[0] as {
          aescbc: { keys: { name: string }[] };
        }
      ).aescbc.keys.map((k) => k.name);
    expect(firstKeys(added.ring)).to.deep.equal([K1.name, K2.name], "old key still encrypts");
    const loadedStep = nextRotationStep(asState(added), loaded);
    expect(loadedStep).to.deep.include({ phase: "NewKeyLoaded", ring: added.ring });
    const promoted = nextRotationStep(asState(loadedStep), idle);
    expect(promoted).to.deep.include({ phase: "Promoted", ring: { primary: K2.name, keys: [K2, K1] } });
    expect(firstKeys(promoted.ring)).to.deep.equal(
      [K2.name, K1.name],
      "new key encrypts, old key still decrypts",
    );
    const rewritten = nextRotationStep(asState(promoted), done);
    expect(rewritten).to.deep.include({ phase: "Rewritten", ring: promoted.ring });
    const final = nextRotationStep(asState(rewritten), idle);
    expect(final).to.deep.equal({
      phase: "Stable",
      ring: { primary: K2.name, keys: [K2] },
      action: "Apply",
      message: `removed retired keys ${K1.name}`,
    });
    expect(final).to.not.have.property("newKey");
  });

  it("resumes from every persisted phase", () => {
    const persisted: Record<RotationPhase, RotationState> = {
      Stable: stable,
      NewKeyAdded: { phase: "NewKeyAdded", ring: { primary: K1.name, keys: [K1, K2] }, newKey: K2.name },
      NewKeyLoaded: { phase: "NewKeyLoaded", ring: { primary: K1.name, keys: [K1, K2] }, newKey: K2.name },
      Promoted: { phase: "Promoted", ring: { primary: K2.name, keys: [K2, K1] }, newKey: K2.name },
      Rewritten: { phase: "Rewritten", ring: { primary: K2.name, keys: [K2, K1] }, newKey: K2.name },
    };
    const order: RotationPhase[] = [
      "Stable",
      "NewKeyAdded",
      "NewKeyLoaded",
      "Promoted",
      "Rewritten",
      "Stable",
    ];
    for (const [i, phase] of order.slice(0, -1).entries()) {
      // A crash is a reload of the persisted state: JSON round-trip, then carry on.
      const resumed = JSON.parse(JSON.stringify(persisted[phase])) as RotationState;
      expect(walk(resumed), phase).to.deep.equal(order.slice(i));
    }
  });

  it("enables encryption from an empty ring the same way, keeping plaintext readable", () => {
    const spec = defaulted({});
    let state: RotationState = { phase: "Stable", ring: { primary: "", keys: [] } };
    const added = nextRotationStep(state, { ...idle, rotationDue: true, candidate: K1 });
    expect(added.ring).to.deep.equal({ primary: "", keys: [K1] });
    expect(renderEncryptionConfiguration(spec, added.ring).resources[0]!.providers[0]).to.deep.equal({
      identity: {},
    });
    state = asState(added);
    for (const obs of [loaded, idle, done, idle]) state = asState(nextRotationStep(state, obs));
    expect(state).to.deep.equal({ phase: "Stable", ring: { primary: K1.name, keys: [K1] } });
    expect(renderEncryptionConfiguration(spec, state.ring).resources[0]!.providers).to.deep.equal([
      { aescbc: { keys: [{ name: K1.name, secret: K1.secret }] } },
      { identity: {} },
    ]);
  });

  it("switches provider by rotating to a key of the new provider", () => {
    let state: RotationState = stable;
    state = asState(nextRotationStep(state, { ...idle, rotationDue: true, candidate: G3 }));
    for (const obs of [loaded, idle, done]) state = asState(nextRotationStep(state, obs));
    const cfg = renderEncryptionConfiguration(defaulted({ provider: "aesgcm" }), state.ring);
    expect(cfg.resources[0]!.providers.map((p) => Object.keys(p)[0])).to.deep.equal([
      "aesgcm",
      "aescbc",
      "identity",
    ]);
    state = asState(nextRotationStep(state, idle));
    expect(state).to.deep.equal({ phase: "Stable", ring: { primary: G3.name, keys: [G3] } });
  });

  it("refuses inconsistent persisted states and a clashing candidate", () => {
    const bad: RotationState[] = [
      { phase: "Stable", ring: stable.ring, newKey: K1.name },
      { phase: "NewKeyAdded", ring: { primary: K1.name, keys: [K1] } },
      { phase: "NewKeyAdded", ring: { primary: K1.name, keys: [K1, K2] }, newKey: "other" },
      { phase: "NewKeyLoaded", ring: { primary: K2.name, keys: [K2, K1] }, newKey: K2.name },
      { phase: "Promoted", ring: { primary: K1.name, keys: [K1, K2] }, newKey: K2.name },
      { phase: "Rewritten", ring: { primary: "missing", keys: [K1, K2] }, newKey: K2.name },
    ];
    for (const state of bad) {
      expect(() => nextRotationStep(state, done), JSON.stringify(state.phase)).to.throw(RotationStateError);
    }
    expect(() => nextRotationStep(stable, { ...idle, rotationDue: true, candidate: K1 })).to.throw(
      /already in the key ring/,
    );
  });

  it("is pure: the input state is not modified", () => {
    const state: RotationState = {
      phase: "NewKeyLoaded",
      ring: { primary: K1.name, keys: [K1, K2] },
      newKey: K2.name,
    };
    const before = structuredClone(state);
    nextRotationStep(state, done);
    expect(state).to.deep.equal(before);
    const key: EncryptionKey = K2;
    expect(key.secret).to.equal(fixed(2).toString("base64"));
  });
});
