import { expect } from "chai";
import type { V1ManagedFieldsEntry, V1Namespace } from "@kubernetes/client-node";
import { policyFindings } from "../../../src/controller/findings.js";
import { sharedNamespaceStates } from "../../../src/desired/namespacestate.js";
import { effectiveSpec } from "../../../src/desired/spec.js";
import { sharedDrift } from "../../../src/drift/checks.js";
import { sharedWrites } from "../../../src/drift/shared.js";
import type { Snapshot } from "../../../src/cluster/snapshot.js";
import { defaultSA, namespace, policy, snapshot } from "../builders/policy.js";

const PSA = "pod-security.kubernetes.io/";
const ORIGINALS = "security.csp-operator.io/pod-security-originals";

/** A managedFields entry owning the given label (and annotation) keys. */
function owns(manager: string, labels: string[], annotations: string[] = []): V1ManagedFieldsEntry {
  const f = (keys: string[]) => Object.fromEntries(keys.map((k) => [`f:${k}`, {}]));
  return {
    manager,
    operation: manager === "csp-operator" || manager === "csp-operator-restore" ? "Apply" : "Update",
    fieldsV1: {
      "f:metadata": {
        "f:labels": f(labels),
        ...(annotations.length ? { "f:annotations": f(annotations) } : {}),
      },
    },
  };
}
function ns(
  labels: Record<string, string>,
  managedFields: V1ManagedFieldsEntry[],
  annotations?: Record<string, string>,
) {
  const n: V1Namespace = namespace("a", labels);
  n.metadata!.managedFields = managedFields;
  if (annotations) n.metadata!.annotations = annotations;
  return n;
}
const baseline = policy("psa")
  .spec({ podSecurity: { enforce: "baseline", audit: "baseline", warn: "baseline" } })
  .build();
const withPolicies = (n: V1Namespace, policies = [baseline]): Snapshot =>
  snapshot({ policies, namespaces: [n], serviceAccounts: [defaultSA("a", false)] });
const writes = (s: Snapshot) => sharedWrites(s, sharedNamespaceStates(s));

describe("shared Pod Security labels only tighten", () => {
  it("never lowers a level the namespace set itself; raises a lower one and records what it found", () => {
    const s = withPolicies(
      ns({ [`${PSA}enforce`]: "restricted", [`${PSA}audit`]: "privileged" }, [
        owns("kubectl-label", [`${PSA}enforce`, `${PSA}audit`]),
      ]),
    );
    const w = writes(s);
    expect(w.map((x) => x.object)).to.deep.equal([
      {
        apiVersion: "v1",
        kind: "Namespace",
        metadata: {
          name: "a",
          labels: { [`${PSA}audit`]: "baseline", [`${PSA}warn`]: "baseline" },
          annotations: { [ORIGINALS]: `{"${PSA}audit":"privileged","${PSA}warn":null}` },
        },
      },
    ]);
    expect(sharedDrift(baseline, ["a"], s, sharedNamespaceStates(s)).map((d) => d.fields)).to.deep.equal([
      [`metadata.labels.${PSA}audit`],
      [`metadata.labels.${PSA}warn`],
    ]);
  });

  it("reports a stricter namespace as Info (not a drift, not counted), naming the label and both levels", () => {
    const n = ns({ [`${PSA}enforce`]: "restricted" }, [owns("kubectl-label", [`${PSA}enforce`])]);
    const s = withPolicies(n);
    const findings = policyFindings(baseline, effectiveSpec(baseline), s).filter(
      (f) => f.area === "podSecurity",
    );
    expect(findings).to.have.length(1);
    expect(findings[0]).to.deep.include({ severity: "Info", resource: "Namespace/a" });
    expect(findings[0]?.message)
      .to.match(/enforce=restricted/)
      .and.match(/baseline/);
    const drift = sharedDrift(baseline, ["a"], s, sharedNamespaceStates(s));
    expect(drift.filter((d) => d.fields?.includes(`metadata.labels.${PSA}enforce`))).to.deep.equal([]);
  });

  it("on release gives a raised label back at its original value and removes the ones it added", () => {
    const raised = ns(
      { [`${PSA}enforce`]: "restricted", [`${PSA}audit`]: "baseline", [`${PSA}warn`]: "baseline" },
      [
        owns("kubectl-label", [`${PSA}enforce`]),
        owns("csp-operator", [`${PSA}audit`, `${PSA}warn`], [ORIGINALS]),
      ],
      { [ORIGINALS]: `{"${PSA}audit":"privileged","${PSA}warn":null}` },
    );
    const w = writes(withPolicies(raised, []));
    expect(w.map((x) => [x.manager, x.object.metadata])).to.deep.equal([
      ["csp-operator-restore", { name: "a", labels: { [`${PSA}audit`]: "privileged" } }],
      [undefined, { name: "a", labels: {} }],
    ]);
  });

  it("keeps the first original when a user lowers a raised label by hand and it is raised again", () => {
    const lowered = ns(
      { [`${PSA}enforce`]: "privileged" },
      [owns("kubectl-label", [`${PSA}enforce`]), owns("csp-operator", [], [ORIGINALS])],
      { [ORIGINALS]: `{"${PSA}enforce":null}` },
    );
    const strict = policy("psa")
      .spec({ podSecurity: { enforce: "restricted" } })
      .build();
    const w = writes(withPolicies(lowered, [strict]));
    expect(w.map((x) => x.object.metadata)).to.deep.equal([
      {
        name: "a",
        labels: { [`${PSA}enforce`]: "restricted" },
        annotations: { [ORIGINALS]: `{"${PSA}enforce":null}` },
      },
    ]);
  });

  it("gives a label back when the policy no longer wants more than its original", () => {
    const raised = ns(
      { [`${PSA}enforce`]: "restricted" },
      [owns("csp-operator", [`${PSA}enforce`], [ORIGINALS])],
      { [ORIGINALS]: `{"${PSA}enforce":"baseline"}` },
    );
    const w = writes(
      withPolicies(raised, [
        policy("psa")
          .spec({ podSecurity: { enforce: "baseline" } })
          .build(),
      ]),
    );
    expect(w.map((x) => [x.manager, x.object.metadata])).to.deep.equal([
      ["csp-operator-restore", { name: "a", labels: { [`${PSA}enforce`]: "baseline" } }],
      [undefined, { name: "a", labels: {} }],
    ]);
  });

  it("writes nothing once converged, and never trusts a record it does not own", () => {
    const converged = ns(
      { [`${PSA}enforce`]: "restricted", [`${PSA}audit`]: "baseline", [`${PSA}warn`]: "baseline" },
      [
        owns("kubectl-label", [`${PSA}enforce`]),
        owns("csp-operator", [`${PSA}audit`, `${PSA}warn`], [ORIGINALS]),
      ],
      { [ORIGINALS]: `{"${PSA}audit":"privileged","${PSA}warn":null}` },
    );
    expect(writes(withPolicies(converged))).to.deep.equal([]);
    const forged = ns(
      { [`${PSA}enforce`]: "restricted" },
      [owns("csp-operator", [`${PSA}enforce`]), owns("kubectl-annotate", [], [ORIGINALS])],
      { [ORIGINALS]: `{"${PSA}enforce":"privileged"}` },
    );
    expect(writes(withPolicies(forged, [])).map((x) => [x.manager, x.object.metadata])).to.deep.equal([
      [undefined, { name: "a", labels: {} }],
    ]);
  });

  it("takes over a level pinned to an older version than wanted: the same level name enforces less", () => {
    const pinned = ns({ [`${PSA}enforce`]: "restricted", [`${PSA}enforce-version`]: "v1.0" }, [
      owns("kubectl-label", [`${PSA}enforce`, `${PSA}enforce-version`]),
    ]);
    const latest = policy("psa")
      .spec({ podSecurity: { enforce: "restricted", version: "latest" } })
      .build();
    expect(writes(withPolicies(pinned, [latest])).map((x) => x.object.metadata)).to.deep.equal([
      {
        name: "a",
        labels: { [`${PSA}enforce`]: "restricted", [`${PSA}enforce-version`]: "latest" },
        annotations: { [ORIGINALS]: `{"${PSA}enforce":"restricted","${PSA}enforce-version":"v1.0"}` },
      },
    ]);
    const newer = ns({ [`${PSA}enforce`]: "restricted", [`${PSA}enforce-version`]: "v1.36" }, [
      owns("kubectl-label", [`${PSA}enforce`, `${PSA}enforce-version`]),
    ]);
    const older = policy("psa")
      .spec({ podSecurity: { enforce: "restricted", version: "v1.30" } })
      .build();
    expect(writes(withPolicies(newer, [older])), "a newer pinned version is kept").to.deep.equal([]);
  });

  it("on release gives nothing back over a label another manager now declares (never lowers their value)", () => {
    const declared = ns(
      { [`${PSA}enforce`]: "restricted" },
      [
        owns("csp-operator", [`${PSA}enforce`], [ORIGINALS]),
        { ...owns("gitops", [`${PSA}enforce`]), operation: "Apply" },
      ],
      { [ORIGINALS]: `{"${PSA}enforce":"privileged"}` },
    );
    expect(writes(withPolicies(declared, [])).map((x) => [x.manager, x.object.metadata])).to.deep.equal([
      [undefined, { name: "a", labels: {} }],
    ]);
  });
});
