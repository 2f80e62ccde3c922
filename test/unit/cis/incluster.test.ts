import { expect } from "chai";
import {
  apiServerInputsFromPod,
  controlPlaneReport,
  evaluateControlPlane,
  kubeletInputsFromConfigz,
  sampleNodes,
} from "../../../src/cis/gather/incluster.js";
import { runCisChecks } from "../../../src/cis/checks/run.js";

const NOW = new Date("2026-03-01T00:00:00Z");

function pod(name: string, command: string[], extra: Record<string, unknown> = {}) {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace: "kube-system", managedFields: [{ manager: "kubelet" }] },
    spec: { containers: [{ name: "kube-apiserver", command: ["kube-apiserver", ...command], ...extra }] },
  };
}

const statusOf = (results: { id: string; status: string }[], id: string) =>
  results.find((r) => r.id === id)?.status;

describe("cis/incluster: CIS checks from the API's view of the control plane", () => {
  it("reads a mirror pod like a manifest: last of a repeated flag wins, env references expand", async () => {
    const inputs = await apiServerInputsFromPod(
      pod("kube-apiserver-cp1", ["--profiling=false", "--profiling=true", "--anonymous-auth=$(ANON)"], {
        env: [{ name: "ANON", value: "false" }],
      }),
    );
    expect(inputs.ok).to.equal(true);
    if (!inputs.ok) return;
    expect(inputs.value.pod).to.deep.equal({ name: "kube-apiserver-cp1", namespace: "kube-system" });
    const results = runCisChecks({ apiserver: inputs.value });
    expect(statusOf(results, "1.2.15")).to.equal("Fail");
    expect(statusOf(results, "1.2.1")).to.equal("Pass");
  });

  it("makes checks that need a node file Unknown with the reason, never a guess", async () => {
    const inputs = await apiServerInputsFromPod(
      pod("kube-apiserver-cp1", ["--encryption-provider-config=/etc/kubernetes/enc.yaml"]),
    );
    if (!inputs.ok) throw new Error(inputs.reason);
    const r = runCisChecks({ apiserver: inputs.value }).find((x) => x.id === "1.2.28");
    expect(r?.status).to.equal("Unknown");
    expect(r?.evidence).to.include("node agent");
  });

  it("rejects a pod that does not run kube-apiserver, naming the problem", async () => {
    const r = await apiServerInputsFromPod({ kind: "Pod", spec: { containers: [{ command: ["sh"] }] } });
    expect(r).to.deep.include({ ok: false });
    expect(!r.ok && r.reason).to.include("not kube-apiserver");
    expect(await apiServerInputsFromPod("nope")).to.deep.equal({ ok: false, reason: "is not an object" });
  });

  it("reads configz as the effective kubelet config; command-line-only 4.2.7 is Unknown", async () => {
    const inputs = await kubeletInputsFromConfigz("n1", {
      kubeletconfig: {
        authentication: { anonymous: { enabled: false }, x509: { clientCAFile: "/ca.crt" } },
        authorization: { mode: "Webhook" },
        readOnlyPort: 10255,
        streamingConnectionIdleTimeout: "0s",
      },
    });
    if (!inputs.ok) throw new Error(inputs.reason);
    const results = runCisChecks({ kubelet: inputs.value });
    expect(statusOf(results, "4.2.1")).to.equal("Pass");
    expect(statusOf(results, "4.2.2")).to.equal("Pass");
    expect(statusOf(results, "4.2.4")).to.equal("Fail");
    expect(statusOf(results, "4.2.5")).to.equal("Pass"); // the kubelet replaces 0 with 4h
    expect(statusOf(results, "4.2.7")).to.equal("Unknown");
    // Fields configz leaves out take the v1beta1 defaults (rotateCertificates false), not the flag defaults.
    expect(statusOf(results, "4.2.10")).to.equal("Fail");
  });

  it("rejects a configz body without kubeletconfig, or with a field of the wrong type", async () => {
    expect((await kubeletInputsFromConfigz("n1", { other: {} })).ok).to.equal(false);
    const bad = await kubeletInputsFromConfigz("n1", { kubeletconfig: { readOnlyPort: "x" } });
    if (!bad.ok) throw new Error(bad.reason);
    const r = runCisChecks({ kubelet: bad.value }).find((x) => x.id === "4.2.4");
    expect(r?.status).to.equal("Unknown");
    expect(r?.evidence).to.include("readOnlyPort");
  });

  it("samples one node per kubelet version / pool first, then by name, deterministically", () => {
    const nodes = [
      { name: "d", kubeletVersion: "v1.36.3", labels: { "node.kubernetes.io/instance-type": "m5" } },
      { name: "a", kubeletVersion: "v1.36.3", labels: { "node.kubernetes.io/instance-type": "m5" } },
      { name: "c", kubeletVersion: "v1.35.0" },
      { name: "b", kubeletVersion: "v1.36.3", labels: { "node.kubernetes.io/instance-type": "m5" } },
      { name: "e", kubeletVersion: "v1.36.3", labels: { "node-role.kubernetes.io/control-plane": "" } },
    ];
    expect(sampleNodes(nodes, 3)).to.deep.equal(["a", "c", "e"]);
    expect(sampleNodes(nodes, 4)).to.deep.equal(["a", "b", "c", "e"]);
    expect(sampleNodes([...nodes].reverse(), 3)).to.deep.equal(["a", "c", "e"]);
    expect(sampleNodes(nodes, 0)).to.deep.equal([]);
  });

  describe("ControlPlaneHardened", () => {
    it("is Unknown with the first reason when nothing could be evaluated", async () => {
      const { findings, condition } = controlPlaneReport(
        await evaluateControlPlane({
          apiServer: { pods: [] },
          kubelet: { failed: { reason: "Forbidden", message: "listing nodes: forbidden" } },
        }),
        undefined,
        NOW,
      );
      expect(findings).to.deep.equal([]);
      expect(condition).to.include({
        type: "ControlPlaneHardened",
        status: "Unknown",
        reason: "NoMirrorPod",
      });
      expect(condition.message).to.include("listing nodes: forbidden");
    });

    it("is Unknown/ChecksDisabled when the policy disables both components", async () => {
      const { condition } = controlPlaneReport(await evaluateControlPlane({}), undefined, NOW);
      expect(condition).to.include({ status: "Unknown", reason: "ChecksDisabled" });
    });

    it("is False when a check fails, with findings per object; an active exemption turns it True", async () => {
      const evaluation = await evaluateControlPlane({
        apiServer: {
          pods: [pod("kube-apiserver-cp1", ["--anonymous-auth=true", "--authorization-mode=Node,RBAC"])],
        },
      });
      const { findings, condition } = controlPlaneReport(evaluation, undefined, NOW);
      expect(condition).to.include({ status: "False", reason: "ChecksFailed" });
      expect(findings.find((f) => f.id === "CIS-1.2.1")).to.include({
        resource: "Pod/kube-system/kube-apiserver-cp1",
        area: "controlPlane",
      });
      const failing = findings.filter((f) => f.severity !== "Info").map((f) => f.id);
      const exempt = controlPlaneReport(evaluation, [{ area: "controlPlane", reason: "lab cluster" }], NOW);
      expect(exempt.condition).to.include({ status: "True", reason: "ChecksPassed" });
      expect(failing.length).to.be.greaterThan(1);
      // An expired exemption no longer applies.
      const expired = controlPlaneReport(
        evaluation,
        [{ area: "controlPlane", reason: "lab", expires: "2026-01-01T00:00:00Z" }],
        NOW,
      );
      expect(expired.condition.status).to.equal("False");
    });

    it("reports per-node problems (Forbidden configz) next to evaluated results, and the sampling", async () => {
      const { condition } = controlPlaneReport(
        await evaluateControlPlane({
          kubelet: {
            totalNodes: 30,
            nodes: [
              { name: "n1", configz: { failed: { reason: "Forbidden", message: "needs nodes/proxy" } } },
              {
                name: "n2",
                configz: {
                  body: {
                    kubeletconfig: {
                      authentication: { anonymous: { enabled: false }, x509: { clientCAFile: "/ca" } },
                      authorization: { mode: "Webhook" },
                      rotateCertificates: true,
                      serverTLSBootstrap: true,
                      podPidsLimit: 100,
                      seccompDefault: true,
                      tlsMinVersion: "VersionTLS13",
                    },
                  },
                },
              },
            ],
          },
        }),
        undefined,
        NOW,
      );
      expect(condition).to.include({ status: "True", reason: "ChecksPassed" });
      expect(condition.message).to.include("sampled 2 of 30 nodes");
      expect(condition.message).to.include("Node/n1: needs nodes/proxy");
      expect(condition.message).to.include("could not be evaluated");
    });

    it("keeps the message bounded however many objects fail", async () => {
      const pods = Array.from({ length: 40 }, (_, i) =>
        pod(`kube-apiserver-${i}`, ["--anonymous-auth=true"]),
      );
      const { condition } = controlPlaneReport(await evaluateControlPlane({ apiServer: { pods } }), [], NOW);
      expect(condition.message.length).to.be.at.most(1000);
    });
  });
});
