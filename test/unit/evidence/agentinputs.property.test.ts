/**
 * Property-based (fast-check): the node agent's inputs and the reports the operator reads back, generated
 * malformed. Pure parsers never throw; bad input gives a result naming what is wrong (a `reason`, a
 * `problem`, a named AcceptError), and nothing key-like in the input comes back in a message.
 */
import { expect } from "chai";
import fc from "fast-check";
import type { V1ConfigMap } from "@kubernetes/client-node";
import { stringify } from "yaml";
import {
  AGENT_CHECK_KEYS,
  AGENT_REPORT_COMPONENT,
  AGENT_REPORT_KEY,
  INTEGRITY_KEY,
  INTEGRITY_REPORT_VERSION,
  agentCheckResults,
  agentReportConfigMap,
  agentReportName,
  fileReports,
  integrityReports,
  judgeDelivery,
  parseIntegrityReport,
  redactKeyMaterial,
  type IntegrityEntry,
  type IntegrityReport,
} from "../../../src/evidence/agentreports.js";
import { COMPONENT_LABEL, retiredFromAnnotations } from "../../../src/desired/encryption/secret.js";
import { AcceptError, acceptEntry } from "../../../src/agent/accept.js";
import {
  decryptionKeys,
  keysDropped,
  overwriteRefusal,
  parseEncryptionConfig,
} from "../../../src/agent/keyguard.js";
import { parseApiServerManifest } from "../../../src/cis/parse/manifest.js";

const RUNS = { numRuns: 300 };

// ---------------------------------------------------------------------------------------------------------
// Generators

const hex64 = fc.stringMatching(/^[0-9a-f]{64}$/);
const time = fc.integer({ min: 0, max: 4_102_444_800_000 }).map((ms) => new Date(ms).toISOString());
const entry: fc.Arbitrary<IntegrityEntry> = fc.record({
  type: fc.constantFrom("file", "symlink", "directory", "other", "unreadable"),
  sha256: fc.oneof(
    fc.constant(""),
    hex64.map((h) => `sha256:${h}`),
  ),
  mode: fc.stringMatching(/^0[0-7]{3,4}$/),
  uid: fc.nat(),
  gid: fc.nat(),
  size: fc.nat(),
  mtime: time,
});
const hostPath = fc
  .array(fc.stringMatching(/^[a-z0-9._-]{1,12}$/), { minLength: 1, maxLength: 4 })
  .map((parts) => `/${parts.join("/")}`);
const validReport: fc.Arbitrary<IntegrityReport> = fc.record({
  version: fc.constant(INTEGRITY_REPORT_VERSION),
  baselineAt: time,
  baseline: fc.dictionary(hostPath, entry, { maxKeys: 5 }),
  changes: fc.array(
    fc
      .tuple(hostPath, fc.option(entry, { nil: undefined }), entry, fc.boolean(), time)
      // A change has an old state, a new one, or both (added / removed / changed).
      .map(([path, old, other, removed, seenAt]) => ({
        path,
        ...(old ? { old } : {}),
        ...(removed && old ? {} : { new: other }),
        seenAt,
      })),
    { maxLength: 4 },
  ),
});

/** A JSON value that replaces one random leaf or key of `value` with junk (the agent's report, tampered). */
function mutate(value: unknown, path: number[], junk: unknown): unknown {
  if (path.length === 0 || value === null || typeof value !== "object") return junk;
  const [i, ...rest] = path as [number, ...number[]];
  if (Array.isArray(value)) {
    if (value.length === 0) return [junk];
    const k = i % value.length;
    return (value as unknown[]).map((v, j) => (j === k ? mutate(v, rest, junk) : v));
  }
  const keys = Object.keys(value);
  if (keys.length === 0) return { junk };
  const key = keys[i % keys.length]!;
  return {
    ...(value as Record<string, unknown>),
    [key]: mutate((value as Record<string, unknown>)[key], rest, junk),
  };
}

const junk = fc.oneof(
  fc.jsonValue(),
  fc.constantFrom(null, -1, 1.5, "", "not a time", "sha256:xyz", "0999", "../../etc/passwd", "\u0000"),
);
const tamperedReport = fc
  .tuple(validReport, fc.array(fc.nat(), { maxLength: 5 }), junk)
  .map(([r, path, j]) => JSON.stringify(mutate(r, path, j)));
const anyText = fc.oneof(
  fc.string(),
  fc.jsonValue().map((v) => JSON.stringify(v)),
  tamperedReport,
);

/** ConfigMaps as the operator's cache may hold them: any shape of metadata, any data values. */
const configMap: fc.Arbitrary<V1ConfigMap> = fc.record(
  {
    metadata: fc.record(
      {
        name: fc.oneof(fc.string(), fc.stringMatching(/^csp-agent-[a-z0-9-]{0,12}$/)),
        labels: fc.oneof(
          fc.constant({ [COMPONENT_LABEL]: AGENT_REPORT_COMPONENT }),
          fc.dictionary(fc.string(), fc.string()),
        ),
      },
      { requiredKeys: [] },
    ),
    data: fc.record(
      {
        [AGENT_REPORT_KEY]: fc.oneof(
          anyText,
          fc
            .array(
              fc.dictionary(
                fc.constantFrom("file", "source", "path", "sha256", "writtenAt", "node", "error", "keys"),
                junk,
              ),
            )
            .map((v) => JSON.stringify(v)),
        ),
        [INTEGRITY_KEY]: anyText,
        [AGENT_CHECK_KEYS.files]: anyText,
        [AGENT_CHECK_KEYS.apiserver]: anyText,
      },
      { requiredKeys: [] },
    ),
  },
  { requiredKeys: [] },
);

// ---------------------------------------------------------------------------------------------------------

describe("agent reports (property): the operator's parsers never throw on what an agent (or anyone) wrote", function () {
  // Hundreds of generated cases per property: seconds on a loaded machine, beyond the 10 s default.
  this.timeout(60_000);
  it("parseIntegrityReport: a valid report round-trips", () => {
    fc.assert(
      fc.property(validReport, (r) => {
        const parsed = parseIntegrityReport(JSON.stringify(r));
        expect(parsed.ok, JSON.stringify(parsed)).to.equal(true);
        if (parsed.ok) expect(parsed.value.baseline).to.deep.equal(r.baseline);
      }),
      RUNS,
    );
  });

  it("parseIntegrityReport: any text or tampered report is either valid or refused with a reason", () => {
    fc.assert(
      fc.property(anyText, (raw) => {
        const parsed = parseIntegrityReport(raw);
        if (!parsed.ok) expect(parsed.reason).to.be.a("string").and.not.equal("");
      }),
      { numRuns: 1000 },
    );
  });

  it("fileReports, integrityReports, agentCheckResults, judgeDelivery: never throw, keep only well-formed entries", () => {
    fc.assert(
      fc.property(fc.array(configMap, { maxLength: 4 }), fc.string(), (cms, hash) => {
        const files = fileReports(cms);
        for (const f of files) {
          expect(f.node).to.be.a("string");
          // An entry speaks only for the node whose report holds it.
          expect(cms.some((cm) => cm.metadata?.name === agentReportName(f.node))).to.equal(true);
        }
        for (const n of integrityReports(cms))
          expect(n.report !== undefined || typeof n.problem === "string").to.equal(true);
        for (const kind of ["files", "apiserver"] as const)
          for (const r of agentCheckResults(cms, kind)) expect(r.results.length).to.be.greaterThan(0);
        const j = judgeDelivery("ConfigMap/csp-system/x", hash, files, ["n1"]);
        expect(j.message).to.be.a("string");
      }),
      RUNS,
    );
  });

  it("what the agent publishes reads back the same (agentReportConfigMap -> fileReports / integrityReports)", () => {
    fc.assert(
      fc.property(fc.stringMatching(/^[a-z0-9][a-z0-9-]{0,20}$/), validReport, (node, report) => {
        const cm = agentReportConfigMap(
          node,
          [
            {
              file: "audit-policy",
              source: "ConfigMap/csp-system/p",
              path: "/etc/p.yaml",
              sha256: "sha256:0",
              writtenAt: "t",
              node,
            },
          ],
          {},
          undefined,
          report,
        );
        expect(fileReports([cm])).to.have.length(1);
        expect(integrityReports([cm])[0]?.report?.baseline).to.deep.equal(report.baseline);
      }),
      RUNS,
    );
  });

  it("redactKeyMaterial never throws and removes a generated key wherever it sits in a message", () => {
    fc.assert(
      fc.property(
        fc.string(),
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.string(),
        (before, key, after) => {
          const b64 = Buffer.from(key).toString("base64");
          fc.pre(/[A-Z]/.test(b64) && /[a-z]/.test(b64) && /[0-9]/.test(b64));
          const out = redactKeyMaterial(`${before} ${b64} ${after}`);
          expect(out).to.not.contain(b64);
        },
      ),
      RUNS,
    );
  });
});

describe("agent inputs (property): the configuration and ConfigMaps the agent reads", function () {
  // Hundreds of generated cases per property: seconds on a loaded machine, beyond the 10 s default.
  this.timeout(60_000);
  const yamlish = fc.oneof(
    fc.string(),
    fc.jsonValue().map((v) => stringify(v)),
    fc
      .record({
        resources: fc.array(
          fc.record(
            {
              resources: fc.oneof(fc.array(fc.constantFrom("secrets", "*.*", "*.apps", "configmaps")), junk),
              providers: fc.oneof(
                fc.array(
                  fc.oneof(
                    fc.constant({ identity: {} }),
                    fc.record({
                      aescbc: fc.record({
                        keys: fc.array(fc.record({ name: fc.string(), secret: fc.base64String() })),
                      }),
                    }),
                    fc.record({ kms: fc.record({ name: junk }) }),
                    junk,
                  ),
                ),
                junk,
              ),
            },
            { requiredKeys: [] },
          ),
        ),
      })
      .map((v) =>
        stringify({ apiVersion: "apiserver.config.k8s.io/v1", kind: "EncryptionConfiguration", ...v }),
      ),
  );

  it("parseEncryptionConfig, decryptionKeys, keysDropped, overwriteRefusal: never throw; a problem names a position, not the text", () => {
    fc.assert(
      fc.property(yamlish, yamlish, fc.array(fc.string(), { maxLength: 3 }), (a, b, retiredKeys) => {
        const parsed = parseEncryptionConfig(a);
        if (!parsed.ok) {
          expect(parsed.problem).to.be.a("string").and.not.equal("");
          for (const line of a.split("\n"))
            if (line.trim().length >= 12) expect(parsed.problem).to.not.contain(line.trim());
        }
        decryptionKeys(a);
        keysDropped(a, b, { keys: retiredKeys, resources: [] });
        const refusal = overwriteRefusal("/etc/enc.yaml", a, b, undefined);
        if (refusal !== undefined) expect(refusal).to.contain("/etc/enc.yaml");
      }),
      RUNS,
    );
  });

  // Found by the property above: yaml's toJS() threw on an unresolved alias (`*x`) or an alias bomb.
  it("an unresolved alias or an alias bomb in an EncryptionConfiguration is refused, not a throw", () => {
    expect(parseEncryptionConfig("*x").ok).to.equal(false);
    const bomb = ["a: &a [x, x, x, x, x, x, x, x, x, x]"];
    for (let i = 1; i < 9; i++) {
      const prev = String.fromCharCode(96 + i);
      const next = String.fromCharCode(97 + i);
      bomb.push(`${next}: &${next} [${Array(10).fill(`*${prev}`).join(", ")}]`);
    }
    const text = bomb.join("\n");
    const parsed = parseEncryptionConfig(text);
    expect(parsed.ok).to.equal(false);
    expect(overwriteRefusal("/etc/enc.yaml", text, "resources: []", undefined)).to.contain("not overwriting");
  });

  it("retiredFromAnnotations: any annotations give two lists of non-empty names", () => {
    fc.assert(
      fc.property(fc.option(fc.dictionary(fc.string(), fc.string()), { nil: undefined }), (ann) => {
        const r = retiredFromAnnotations(ann);
        for (const x of [...r.keys, ...r.resources]) expect(x).to.not.equal("");
      }),
      RUNS,
    );
  });

  it("acceptEntry (integrity accept): any report ConfigMap gives an entry or a named AcceptError", () => {
    fc.assert(
      fc.property(
        fc.option(configMap, { nil: undefined }),
        fc.record({ node: fc.string(), path: fc.oneof(fc.string(), hostPath), reason: fc.string() }),
        (cm, req) => {
          try {
            const e = acceptEntry(cm, req);
            expect(e.path).to.equal(req.path);
          } catch (err) {
            expect(err, String(err)).to.be.instanceOf(AcceptError);
            expect((err as Error).message).to.not.equal("");
          }
        },
      ),
      RUNS,
    );
  });

  it("parseApiServerManifest (the agent's host checks): any text parses or is refused, never a throw", () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string(),
          fc.jsonValue().map((v) => stringify(v)),
          fc
            .record({
              command: fc.oneof(fc.array(fc.string()), junk),
              name: fc.oneof(fc.constant("kube-apiserver"), junk),
            })
            .map((c) =>
              stringify({
                apiVersion: "v1",
                kind: "Pod",
                metadata: { name: "kube-apiserver" },
                spec: { containers: [c] },
              }),
            ),
        ),
        (text) => {
          parseApiServerManifest(text);
        },
      ),
      RUNS,
    );
  });
});
