import { expect } from "chai";
import { planControlPlane, type ControlPlaneGathered } from "../../../src/controller/controlplane.js";
import { namespace, snapshot } from "../builders/policy.js";

function apiServerPod(name: string, flags: string[]) {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace: "kube-system", managedFields: [{ manager: "kubelet" }] },
    spec: { containers: [{ name: "kube-apiserver", command: ["kube-apiserver", ...flags] }] },
  };
}

const ids = (findings: { id: string; resource: string }[] | undefined) =>
  (findings ?? []).map((f) => `${f.id} ${f.resource}`);

describe("control-plane area plan (pure: what was gathered -> findings and condition)", () => {
  const gathered: ControlPlaneGathered = {
    observation: { apiServer: { pods: [apiServerPod("kube-apiserver-cp1", ["--profiling=true"])] } },
  };

  it("reports the mirror pod's failing checks and ControlPlaneHardened=False, and looks again later", async () => {
    const report = await planControlPlane(
      { spec: { controlPlane: {} }, snapshot: snapshot() },
      gathered,
      1234,
    );
    expect(ids(report.findings)).to.include("CIS-1.2.15 Pod/kube-system/kube-apiserver-cp1");
    expect(report.conditions?.[0]).to.deep.include({ type: "ControlPlaneHardened", status: "False" });
    expect(report.requeueAfterMs).to.equal(1234);
    expect(report.failure).to.equal(undefined);
  });

  it("keeps an exempted finding out of the condition, and is the same value for the same input", async () => {
    const spec = {
      controlPlane: {},
      exemptions: [{ findingId: "CIS-1.2.15", reason: "profiling needed", expires: "2030-01-01T00:00:00Z" }],
    };
    const input = { spec, snapshot: snapshot() };
    const a = await planControlPlane(input, gathered);
    const plain = await planControlPlane({ spec: { controlPlane: {} }, snapshot: snapshot() }, gathered);
    expect(plain.conditions?.[0]?.message).to.include("CIS-1.2.15 on Pod/kube-system/kube-apiserver-cp1");
    expect(a.conditions?.[0]?.message).not.to.include("CIS-1.2.15");
    expect(await planControlPlane(input, gathered)).to.deep.equal(a);
  });

  it("says why when the mirror pods cannot be read, and adds the 5.x checks only when gathered", async () => {
    const failed: ControlPlaneGathered = {
      observation: {
        apiServer: { failed: { reason: "Forbidden", message: "may not list pods in kube-system" } },
      },
    };
    const blind = await planControlPlane({ spec: { controlPlane: {} }, snapshot: snapshot() }, failed);
    expect(blind.conditions?.[0]?.status).to.not.equal("True");
    expect(blind.conditions?.[0]?.message).to.include("may not list pods in kube-system");
    expect(ids(blind.findings).some((f) => f.endsWith("Cluster/kubernetes"))).to.equal(false);

    const withPolicies: ControlPlaneGathered = {
      ...failed,
      policyObjects: { networkPolicyNamespaces: new Set<string>(), defaultNamespaceObjects: [], missing: {} },
    };
    const snap = snapshot({ namespaces: [namespace("team-a")] });
    const report = await planControlPlane({ spec: { controlPlane: {} }, snapshot: snap }, withPolicies);
    expect(ids(report.findings).some((f) => f.endsWith("Cluster/kubernetes"))).to.equal(true);
  });
});
