import { expect } from "chai";
import { runAreas, type AreaReconciler } from "../../../src/controller/areas.js";
import { effectiveSpec } from "../../../src/desired/spec.js";
import { silentLogger } from "../../../src/observability/logger.js";
import { policy } from "../builders/policy.js";

describe("area reconcilers", () => {
  const p = policy("p").build();
  const input = {
    policy: p,
    spec: effectiveSpec(p),
    snapshot: {
      policies: [p],
      namespaces: [],
      networkPolicies: [],
      serviceAccounts: [],
      roles: [],
      roleBindings: [],
      now: new Date(),
    },
    enforce: true,
    log: silentLogger(),
  };
  const area = (name: string, inUse: boolean, run: () => Promise<object>): AreaReconciler => ({
    name,
    inUse: () => inUse,
    reconcile: run,
  });

  it("runs only the areas in use and turns a thrown error into a retryable failure naming the area", async () => {
    let ranUnused = false;
    const out = await runAreas(
      [
        area("unused", false, () => ((ranUnused = true), Promise.resolve({}))),
        area("encryption", true, () => Promise.reject(new Error("metrics unreachable"))),
        area("controlPlane", true, () => Promise.resolve({ requeueAfterMs: 5 })),
      ],
      input,
    );
    expect(ranUnused).to.equal(false);
    expect(out.map((o) => o.name)).to.deep.equal(["encryption", "controlPlane"]);
    expect(out[0]?.report.failure).to.deep.equal({
      reason: "AreaFailed",
      message: "encryption: metrics unreachable",
      retryable: true,
    });
    expect(out[1]?.report.requeueAfterMs).to.equal(5);
  });
});
