// The trusted file integrity baseline, persisted per node so that an operator restart does not trust
// whatever the agent's report says then.
import type { V1ConfigMap } from "@kubernetes/client-node";
import { expect } from "chai";
import {
  baselineConfigMap,
  baselineConfigMapName,
  FILE_BASELINE_CHANGED,
  fileIntegrityAreaWith,
  storedBaselines,
  type BaselineWriter,
} from "../../../src/controller/fileintegrity.js";
import type { IntegrityEntry } from "../../../src/evidence/agentreports.js";

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
function report(node: string, hex: string): V1ConfigMap {
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

async function reconcile(store: BaselineWriter, configMaps: V1ConfigMap[], area = newArea(store)) {
  const input = {
    policy: { metadata: { name: "p" } },
    spec: { controlPlane: { fileIntegrity: {} } },
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
    expect(baselineConfigMapName(long)).to.match(/^csp-integrity-baseline-[0-9a-f]{40}$/);
    expect(baselineConfigMapName("Upper_Case")).to.match(/^csp-integrity-baseline-[0-9a-f]{40}$/);
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
});
