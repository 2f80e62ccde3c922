// The trusted file integrity baseline, persisted per node so that an operator restart does not trust
// whatever the agent's report says then.
import type { V1ConfigMap } from "@kubernetes/client-node";
import { expect } from "chai";
import {
  baselineConfigMap,
  baselineConfigMapName,
  FILE_BASELINE_CHANGED,
  fileIntegrityAreaWith,
  judgeBaseline,
  ownWritesOf,
  storedBaselines,
  type BaselineWriter,
} from "../../../src/controller/fileintegrity.js";
import { contentHash, type IntegrityEntry } from "../../../src/evidence/agentreports.js";

const KEY = "/etc/kubernetes/pki/apiserver.key";
const entry = (hex: string): IntegrityEntry => ({
  type: "file",
  sha256: `sha256:${hex.repeat(64)}`,
  mode: "0600",
  uid: 0,
  gid: 0,
  size: 10,
  mtime: "2026-01-01T00:00:00Z",
});

/** An agent report ConfigMap for `node` whose baseline holds the key at hash `hex`. */
function report(node: string, hex: string, extra: Record<string, unknown> = {}): V1ConfigMap {
  return {
    metadata: {
      name: `csp-agent-${node}`,
      namespace: "csp-system",
      labels: {
        "app.kubernetes.io/managed-by": "csp-operator",
        "app.kubernetes.io/component": "agent-report",
      },
    },
    data: {
      "integrity.json": JSON.stringify({
        version: 1,
        baselineAt: "2026-01-01T00:00:00Z",
        baseline: { [KEY]: entry(hex) },
        changes: [],
        scannedAt: new Date().toISOString(),
        ...extra,
      }),
    },
  };
}

/** Records what the area stores, the way the API server would keep it (the last apply wins). */
class Recorder implements BaselineWriter {
  readonly stored = new Map<string, V1ConfigMap>();
  fail: Error | undefined;
  apply(cm: V1ConfigMap): Promise<void> {
    if (this.fail) return Promise.reject(this.fail);
    this.stored.set(cm.metadata!.name!, cm);
    return Promise.resolve();
  }
}

async function reconcile(
  store: BaselineWriter,
  configMaps: V1ConfigMap[],
  area = newArea(store),
  fileIntegrity: Record<string, unknown> = {},
) {
  const input = {
    policy: { metadata: { name: "p" } },
    spec: { controlPlane: { fileIntegrity } },
    snapshot: { configMaps },
    enforce: false,
  } as unknown as Parameters<typeof area.reconcile>[0];
  return { area, out: await area.reconcile(input) };
}
const newArea = (store: BaselineWriter) =>
  fileIntegrityAreaWith(store)({} as Parameters<ReturnType<typeof fileIntegrityAreaWith>>[0]);

describe("file integrity: the trusted baseline is persisted", () => {
  it("names the ConfigMap after the node, or its hash when the name would not fit", () => {
    expect(baselineConfigMapName("cp1")).to.equal("csp-integrity-baseline-cp1");
    const long = "n".repeat(250);
    expect(baselineConfigMapName(long)).to.match(/^csp-integrity-baseline--[0-9a-f]{40}$/);
    expect(baselineConfigMapName("Upper_Case")).to.match(/^csp-integrity-baseline--[0-9a-f]{40}$/);
    // A node literally named like a hashed form does not get the same ConfigMap.
    const hashed = baselineConfigMapName(long).slice("csp-integrity-baseline-".length);
    for (const plain of [hashed.slice(1), hashed.replace(/^-+/, "")])
      expect(baselineConfigMapName(plain)).to.not.equal(baselineConfigMapName(long));
    expect(baselineConfigMapName(hashed)).to.not.equal(baselineConfigMapName(long));
  });

  it("round-trips: what is stored reads back as the same baseline; a malformed one names the reason", () => {
    const known = { baselineAt: "2026-01-01T00:00:00Z", baseline: { [KEY]: entry("a") } };
    const cm = baselineConfigMap("cp1", known);
    expect(cm.metadata?.labels).to.deep.equal({
      "app.kubernetes.io/managed-by": "csp-operator",
      "app.kubernetes.io/component": "integrity-baseline",
    });
    expect(cm.metadata?.ownerReferences).to.equal(undefined);
    const back = storedBaselines([cm]).get("cp1");
    expect(back && "known" in back ? back.known : back).to.deep.equal(known);
    const bad = { ...cm, data: { ...cm.data, "baseline.json": "{" } };
    expect(storedBaselines([bad]).get("cp1")).to.deep.equal({
      problem: "ConfigMap csp-system/csp-integrity-baseline-cp1: not JSON",
    });
    // A ConfigMap whose name does not belong to the node it claims is not taken.
    const misnamed = { ...cm, metadata: { ...cm.metadata, name: "csp-integrity-baseline-other" } };
    expect(storedBaselines([misnamed]).size).to.equal(0);
  });

  it("a new area (an operator restart) judges the report against the stored baseline, not the report's own", async () => {
    const store = new Recorder();
    const first = await reconcile(store, [report("cp1", "a")]);
    expect(first.out.findings?.map((f) => f.id)).to.not.include(FILE_BASELINE_CHANGED);
    const stored = [...store.stored.values()];
    expect(stored).to.have.length(1);
    // Unchanged: nothing is written again.
    store.stored.clear();
    await reconcile(store, [report("cp1", "a"), ...stored], first.area);
    expect(store.stored.size).to.equal(0);

    // Restarted: memory is empty, the report's baseline was rewritten meanwhile.
    const restarted = await reconcile(store, [report("cp1", "b"), ...stored]);
    const f = restarted.out.findings?.find((x) => x.id === FILE_BASELINE_CHANGED);
    expect(f?.resource).to.equal("Node/cp1");
    expect(f?.message).to.contain(KEY);
    expect(restarted.out.conditions?.[0]).to.include({ status: "False", reason: "BaselineChanged" });
    expect(store.stored.size, "the trusted baseline is not replaced by the rewritten one").to.equal(0);

    // Without a stored baseline, a restart can only trust the report (what persistence prevents).
    const amnesic = await reconcile(new Recorder(), [report("cp1", "b")]);
    expect(amnesic.out.findings?.map((x) => x.id)).to.not.include(FILE_BASELINE_CHANGED);
  });

  it("a write that fails is a failure of the area naming the ConfigMap, retried", async () => {
    const store = new Recorder();
    store.fail = new Error("connection reset");
    const { out } = await reconcile(store, [report("cp1", "a")]);
    expect(out.failure).to.deep.include({ reason: "BaselineNotPersisted", retryable: true });
    expect(out.failure?.message).to.contain("csp-system/csp-integrity-baseline-cp1");
    expect(out.findings?.map((x) => x.id)).to.not.include(FILE_BASELINE_CHANGED);
  });

  it("a retake with a note is still judged against the trusted baseline until its entries are accepted", async () => {
    const store = new Recorder();
    const first = await reconcile(store, [report("cp1", "a")]);
    const stored = [...store.stored.values()];
    const retake = report("cp1", "b", {
      baselineAt: "2026-06-01T00:00:00Z",
      note: "the stored baseline could not be read back",
    });
    for (const area of [first.area, undefined]) {
      store.stored.clear();
      const { out } = await reconcile(store, [retake, ...stored], area);
      const f = out.findings?.find((x) => x.id === FILE_BASELINE_CHANGED);
      expect(f?.message, area ? "running" : "restarted").to.contain(KEY);
      expect(f?.message).to.contain(`sha256:${"b".repeat(64)}`);
      expect(out.conditions?.[0]).to.include({ status: "False", reason: "BaselineChanged" });
      expect(store.stored.size, "the trusted baseline is not overwritten").to.equal(0);
    }
    // Accepted: the retaken baseline becomes the trusted one, and is stored.
    const accept = [{ path: KEY, sha256: `sha256:${"b".repeat(64)}`, reason: "rotated" }];
    const { out } = await reconcile(store, [retake, ...stored], first.area, { accept });
    expect(out.findings?.map((x) => x.id)).to.not.include(FILE_BASELINE_CHANGED);
    const now = [...store.stored.values()][0]!;
    expect(JSON.parse(now.data!["baseline.json"]!)).to.deep.include({ baselineAt: "2026-06-01T00:00:00Z" });
  });

  it("a trustBaseline entry resets a node's trusted baseline to the report's, for that baselineAt only", async () => {
    const store = new Recorder();
    const first = await reconcile(store, [report("cp1", "a")]);
    const stored = [...store.stored.values()];
    const moved = report("cp1", "b", { baselineAt: "2026-06-01T00:00:00Z" });
    const trustBaseline = [{ node: "cp1", baselineAt: "2026-06-01T00:00:00Z", reason: "node reinstalled" }];
    const other = await reconcile(
      store,
      [report("cp1", "c", { baselineAt: "2026-07-01T00:00:00Z" }), ...stored],
      first.area,
      { trustBaseline },
    );
    expect(other.out.findings?.map((x) => x.id)).to.include(FILE_BASELINE_CHANGED);
    const { out } = await reconcile(store, [moved, ...stored], first.area, { trustBaseline });
    expect(out.findings?.map((x) => x.id)).to.not.include(FILE_BASELINE_CHANGED);
    expect(out.events?.map((e) => e.reason)).to.include("FileBaselineTrusted");
    const trusted = [...store.stored.values()];
    const parsed = JSON.parse(trusted[0]!.data!["baseline.json"]!) as {
      baseline: Record<string, IntegrityEntry>;
    };
    expect(parsed.baseline[KEY]!.sha256).to.equal(`sha256:${"b".repeat(64)}`);
    // Later edits of the report under the same baselineAt are judged again.
    const forged = await reconcile(
      store,
      [report("cp1", "d", { baselineAt: "2026-06-01T00:00:00Z" }), ...trusted],
      undefined,
      { trustBaseline },
    );
    expect(forged.out.findings?.map((x) => x.id)).to.include(FILE_BASELINE_CHANGED);
  });

  it("a node with a trusted baseline but no report is unreadable (Unknown), never True", async () => {
    const store = new Recorder();
    const first = await reconcile(store, [report("cp1", "a"), report("cp2", "a")]);
    const stored = [...store.stored.values()];
    for (const area of [first.area, undefined]) {
      const { out } = await reconcile(store, [report("cp2", "a"), ...stored], area);
      const f = out.findings?.find((x) => x.id === "FILE-INTEGRITY-UNREADABLE");
      expect(f?.resource, area ? "running" : "restarted").to.equal("Node/cp1");
      expect(f?.message).to.contain("no report");
      expect(out.conditions?.[0]).to.include({ status: "Unknown", reason: "ReportUnreadable" });
    }
    // Report and stored baseline both deleted: the node is forgotten, with an event.
    const gone = await reconcile(
      store,
      [report("cp2", "a"), stored.find((c) => c.data!.node === "cp2")!],
      first.area,
    );
    expect(gone.out.conditions?.[0]).to.include({ status: "True" });
    expect(gone.out.events?.map((e) => e.reason)).to.include("FileBaselineForgotten");
  });

  it("a stored baseline deleted or edited while the operator runs is written back, with a Warning", async () => {
    const store = new Recorder();
    const first = await reconcile(store, [report("cp1", "a")]);
    const stored = [...store.stored.values()];
    store.stored.clear();
    // Deleted: not in the snapshot.
    const deleted = await reconcile(store, [report("cp1", "a")], first.area);
    expect(store.stored.size).to.equal(1);
    expect(deleted.out.events?.find((e) => e.reason === "FileBaselineRestored")?.message).to.contain(
      "deleted",
    );
    // Edited to the report's rewritten baseline: written back to the trusted one.
    store.stored.clear();
    const edited = baselineConfigMap("cp1", {
      baselineAt: "2026-01-01T00:00:00Z",
      baseline: { [KEY]: entry("b") },
    });
    const out = await reconcile(store, [report("cp1", "b"), edited], first.area);
    expect(out.out.findings?.map((x) => x.id)).to.include(FILE_BASELINE_CHANGED);
    expect(store.stored.get("csp-integrity-baseline-cp1")?.data).to.deep.equal(stored[0]!.data);
    expect(out.out.events?.find((e) => e.reason === "FileBaselineRestored")?.message).to.contain("changed");
  });
});

describe("file integrity: the agent's own writes", () => {
  const dir = "/etc/kubernetes/csp-operator";
  const files = (entries: object[]): V1ConfigMap => ({
    metadata: {
      name: "csp-agent-cp1",
      namespace: "csp-system",
      labels: {
        "app.kubernetes.io/managed-by": "csp-operator",
        "app.kubernetes.io/component": "agent-report",
      },
    },
    data: { "files.json": JSON.stringify(entries) },
  });
  const write = (o: object) => ({
    file: "audit-policy",
    source: "ConfigMap/csp-system/p-audit-policy",
    path: `${dir}/audit-policy.yaml`,
    sha256: contentHash("rules: []\n"),
    writtenAt: "2026-01-01T00:00:00Z",
    node: "cp1",
    ...o,
  });

  it("counts only error-free writes, by path and hash, and prefers the hash of what the operator rendered", () => {
    const h = contentHash("rules: []\n");
    expect(ownWritesOf([files([write({})])], "cp1").get(`${dir}/audit-policy.yaml`)).to.deep.equal(
      new Set([h]),
    );
    expect(ownWritesOf([files([write({ error: "EACCES" })])], "cp1").size).to.equal(0);
    // Written under the agent's --host-root: the host path is the one the baseline names.
    expect(
      ownWritesOf([files([write({ path: `/host${dir}/audit-policy.yaml` })])], "cp1").get(
        `${dir}/audit-policy.yaml`,
      ),
    ).to.deep.equal(new Set([h]));
    expect(ownWritesOf([files([write({})])], "cp2").size).to.equal(0);
    expect(ownWritesOf([files([write({ path: "/etc/kubernetes/manifests/x.yaml" })])], "cp1").size).to.equal(
      0,
    );
    const rendered = (yaml: string): V1ConfigMap => ({
      metadata: { name: "p-audit-policy", namespace: "csp-system" },
      data: { "audit-policy.yaml": yaml },
    });
    expect(ownWritesOf([files([write({})]), rendered("rules: []\n")], "cp1").size).to.equal(1);
    expect(ownWritesOf([files([write({})]), rendered("rules: [x]\n")], "cp1").size).to.equal(0);
  });

  it("an own-write hash at another path than the one written is a baseline change", () => {
    const h = contentHash("rules: []\n");
    const own = new Map([[`${dir}/audit-policy.yaml`, new Set([h])]]);
    const e = { ...entry("a"), sha256: h };
    const known = { baselineAt: "2026-01-01T00:00:00Z", baseline: {} };
    const at = (path: string) => ({
      version: 1,
      baselineAt: known.baselineAt,
      baseline: { [path]: e },
      changes: [],
    });
    expect(judgeBaseline("cp1", known, at(`${dir}/audit-policy.yaml`), own).finding).to.equal(undefined);
    expect(judgeBaseline("cp1", known, at(`${dir}/encryption-config.yaml`), own).finding?.id).to.equal(
      FILE_BASELINE_CHANGED,
    );
  });
});
