import { expect } from "chai";
import type { V1ManagedFieldsEntry } from "@kubernetes/client-node";
import {
  appliedPaths,
  compactManagedFields,
  fieldPaths,
  lastOtherManager,
  pruneFieldsV1,
  withCompactManagedFields,
} from "../../../src/drift/managedfields.js";
import { writtenByOperator } from "../../../src/drift/ownership.js";

/** managedFields as a v1.36 API server returns them for a Namespace the operator labelled. */
const entries: V1ManagedFieldsEntry[] = [
  {
    manager: "kubectl",
    operation: "Apply",
    apiVersion: "v1",
    fieldsType: "FieldsV1",
    time: "2026-12-05T09:00:00Z" as unknown as Date,
    fieldsV1: { "f:metadata": { "f:labels": { "f:tier": {} } } },
  },
  {
    manager: "kube-controller-manager",
    operation: "Update",
    apiVersion: "v1",
    fieldsType: "FieldsV1",
    time: "2026-12-05T09:00:01Z" as unknown as Date,
    subresource: "status",
    fieldsV1: { "f:status": { "f:phase": {} } },
  },
  {
    manager: "csp-operator",
    operation: "Apply",
    apiVersion: "v1",
    fieldsType: "FieldsV1",
    time: "2026-12-05T09:00:02Z" as unknown as Date,
    fieldsV1: {
      "f:metadata": {
        "f:annotations": { ".": {}, "f:security.csp-operator.io/pod-security-originals": {} },
        "f:labels": { "f:pod-security.kubernetes.io/enforce": {}, "f:pod-security.kubernetes.io/warn": {} },
        "f:ownerReferences": { ".": {}, 'k:{"uid":"u1"}': { ".": {}, "f:name": {}, "f:uid": {} } },
        "f:finalizers": { ".": {}, 'v:"x"': {} },
      },
      "f:spec": { "f:podSelector": {}, "f:policyTypes": {}, "f:ingress": {} },
    },
  },
];

describe("compacted managedFields (what the caches keep)", () => {
  it("keeps label and annotation keys, ownerReferences and top-level fields as leaves; drops status", () => {
    expect(pruneFieldsV1(entries[2]!.fieldsV1)).to.deep.equal({
      "f:metadata": {
        "f:annotations": { "f:security.csp-operator.io/pod-security-originals": {} },
        "f:labels": { "f:pod-security.kubernetes.io/enforce": {}, "f:pod-security.kubernetes.io/warn": {} },
        "f:ownerReferences": {},
      },
      "f:spec": {},
    });
    expect(pruneFieldsV1(entries[1]!.fieldsV1)).to.equal(undefined);
    const compact = compactManagedFields(entries)!;
    expect(compact.map((e) => e.manager)).to.deep.equal(["kubectl", "csp-operator"]);
    expect(compact[1]).to.have.all.keys("manager", "operation", "time", "fieldsV1");
  });

  it("answers every query the drift checks make exactly as the full entries do", () => {
    const full = { metadata: { managedFields: entries } };
    const slim = withCompactManagedFields(full);
    expect(slim.metadata.managedFields).to.not.equal(entries);
    const queries = [
      ["spec"],
      ["metadata.labels"],
      ["metadata.labels.tier"],
      ["metadata.labels.pod-security.kubernetes.io/enforce"],
      ["metadata.ownerReferences"],
      ["automountServiceAccountToken"],
    ];
    for (const q of queries)
      for (const self of ["csp-operator", "kubectl", "nobody"])
        expect(lastOtherManager(slim, self, q), `${self} ${q.join()}`).to.equal(
          lastOtherManager(full, self, q),
        );
    // What is asked of appliedPaths: top-level fields, label and annotation keys, ownerReferences.
    const asked = (p: string) =>
      !p.includes(".") || /^metadata\.(labels|annotations)\./.test(p) || p === "metadata.ownerReferences";
    for (const m of ["csp-operator", "kubectl"]) {
      const slimPaths = appliedPaths(slim, m);
      for (const p of appliedPaths(full, m))
        if (asked(p)) expect(slimPaths.has(p), `${m} ${p}`).to.equal(true);
    }
    for (const kind of ["NetworkPolicy", "ServiceAccount", "ConfigMap"])
      expect(writtenByOperator(slim, kind)).to.equal(writtenByOperator(full, kind));
    // Nothing the pruned tree reports is invented.
    const all = new Set(entries.flatMap((e) => fieldPaths(e.fieldsV1)));
    for (const e of slim.metadata.managedFields ?? [])
      for (const p of fieldPaths(e.fieldsV1)) expect(all).to.include(p);
  });

  it("leaves an object without managedFields as it is", () => {
    const o: { metadata: { name: string; managedFields?: V1ManagedFieldsEntry[] } } = {
      metadata: { name: "x" },
    };
    expect(withCompactManagedFields(o)).to.equal(o);
  });
});
