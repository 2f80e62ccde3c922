import { expect } from "chai";
import fc from "fast-check";
import type { KubernetesObject } from "@kubernetes/client-node";
import { Interner, shareCommonParts } from "../../../src/cluster/intern.js";
import { slimMetadata, slimNetworkPolicy } from "../../../src/cluster/cache.js";
import {
  appliedPaths,
  lastOtherManager,
  withCompactManagedFields,
} from "../../../src/drift/managedfields.js";
import { controllingPolicy, writtenByOperator } from "../../../src/drift/ownership.js";

/** A child NetworkPolicy as a v1.36 API server lists it (the bench's allow-dns rule). */
function networkPolicy(ns: string, uid: string, time = "2026-12-05T12:14:21Z"): KubernetesObject {
  return JSON.parse(
    JSON.stringify({
      apiVersion: "networking.k8s.io/v1",
      kind: "NetworkPolicy",
      metadata: {
        name: "csp-baseline-allow-dns",
        namespace: ns,
        uid,
        resourceVersion: String(1000 + ns.length),
        generation: 1,
        creationTimestamp: time,
        labels: {
          "app.kubernetes.io/managed-by": "csp-operator",
          "security.csp-operator.io/policy": "baseline",
        },
        ownerReferences: [
          {
            apiVersion: "security.csp-operator.io/v1alpha1",
            kind: "ClusterSecurityPolicy",
            name: "baseline",
            uid: "3bd356ce-af6e-44b7-8281-9b6ed1ecfb58",
            controller: true,
            blockOwnerDeletion: true,
          },
        ],
        managedFields: [
          {
            manager: "csp-operator",
            operation: "Apply",
            apiVersion: "networking.k8s.io/v1",
            time,
            fieldsType: "FieldsV1",
            fieldsV1: {
              "f:metadata": {
                "f:labels": { "f:app.kubernetes.io/managed-by": {}, "f:security.csp-operator.io/policy": {} },
                "f:ownerReferences": { 'k:{"uid":"3bd356ce-af6e-44b7-8281-9b6ed1ecfb58"}': {} },
              },
              "f:spec": { "f:egress": {}, "f:podSelector": {}, "f:policyTypes": {} },
            },
          },
          {
            manager: "kubectl-edit",
            operation: "Update",
            apiVersion: "networking.k8s.io/v1",
            time: "2026-12-05T12:20:00Z",
            fieldsType: "FieldsV1",
            fieldsV1: { "f:spec": { "f:ingress": {} } },
          },
        ],
      },
      spec: {
        podSelector: {},
        policyTypes: ["Egress"],
        egress: [
          {
            to: [{ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "kube-system" } } }],
            ports: [
              { port: 53, protocol: "UDP" },
              { port: 53, protocol: "TCP" },
            ],
          },
        ],
      },
    }),
  ) as KubernetesObject;
}

function namespace(name: string): KubernetesObject {
  return JSON.parse(
    JSON.stringify({
      apiVersion: "v1",
      kind: "Namespace",
      metadata: {
        name,
        uid: `uid-${name}`,
        resourceVersion: "7",
        labels: { "kubernetes.io/metadata.name": name, "pod-security.kubernetes.io/enforce": "restricted" },
        annotations: { "security.csp-operator.io/pod-security-originals": '{"a":null}' },
      },
      spec: { finalizers: ["kubernetes"] },
      status: { phase: "Active" },
    }),
  ) as KubernetesObject;
}

describe("shared common parts of cached objects (intern.ts)", () => {
  it("serialises exactly like the object it was made from, for every kind of cached object", () => {
    const i = new Interner();
    for (const o of [
      networkPolicy("a", "u1"),
      namespace("a"),
      withCompactManagedFields(networkPolicy("b", "u2")),
    ])
      expect(JSON.stringify(shareCommonParts(o, i))).to.equal(JSON.stringify(o));
    const np = networkPolicy("c", "u3");
    expect(JSON.stringify(shareCommonParts(slimMetadata(np), i))).to.equal(JSON.stringify(slimMetadata(np)));
    expect(JSON.stringify(shareCommonParts(slimNetworkPolicy(np), i))).to.equal(
      JSON.stringify(slimNetworkPolicy(np)),
    );
  });

  it("shares labels, ownerReferences, field trees and specs between children; keeps what is unique", () => {
    const i = new Interner();
    const a = shareCommonParts(networkPolicy("a", "u1"), i) as KubernetesObject & { spec: unknown };
    const b = shareCommonParts(networkPolicy("b", "u2"), i) as KubernetesObject & { spec: unknown };
    expect(a.spec).to.equal(b.spec);
    expect(a.metadata!.labels).to.equal(b.metadata!.labels);
    expect(a.metadata!.ownerReferences).to.equal(b.metadata!.ownerReferences);
    expect(a.metadata!.managedFields).to.equal(b.metadata!.managedFields);
    // Written in another second: managedFields of its own, its strings shared.
    const c = shareCommonParts(networkPolicy("c", "u3", "2026-12-05T12:14:22Z"), i);
    expect(c.metadata!.managedFields).to.not.equal(a.metadata!.managedFields);
    expect(c.metadata!.managedFields![1]!.manager).to.equal(a.metadata!.managedFields![1]!.manager);
    expect([a.metadata!.namespace, a.metadata!.uid]).to.deep.equal(["a", "u1"]);
    expect([b.metadata!.namespace, b.metadata!.uid]).to.deep.equal(["b", "u2"]);
    // A Namespace's labels name it: never a table entry of their own, but the common values are shared.
    const n1 = shareCommonParts(namespace("n1"), i);
    const n2 = shareCommonParts(namespace("n2"), i);
    expect(n1.metadata!.labels).to.not.equal(n2.metadata!.labels);
    expect(n1.metadata!.labels).to.deep.equal(namespace("n1").metadata!.labels);
    expect((n1 as unknown as { spec: unknown }).spec).to.equal((n2 as unknown as { spec: unknown }).spec);
  });

  it("freezes what is shared, so an in-place change fails instead of changing every object", () => {
    const a = shareCommonParts(networkPolicy("a", "u1"), new Interner());
    expect(() => {
      a.metadata!.labels!["x"] = "y";
    }).to.throw(TypeError);
    expect(() => {
      (a as unknown as { spec: { policyTypes: string[] } }).spec.policyTypes.push("Ingress");
    }).to.throw(TypeError);
    // The object itself and its metadata are its own: the informer may replace fields of them.
    a.metadata!.resourceVersion = "9";
    expect(a.metadata!.resourceVersion).to.equal("9");
  });

  it("answers every question the operator asks of a cached object as the unshared object does", () => {
    const i = new Interner();
    for (const raw of [networkPolicy("a", "u1"), networkPolicy("b", "u2"), namespace("c")]) {
      const o = withCompactManagedFields(raw);
      const s = shareCommonParts(o, i);
      expect([...appliedPaths(s, "csp-operator")]).to.deep.equal([...appliedPaths(o, "csp-operator")]);
      expect(lastOtherManager(s, "csp-operator", ["spec"])).to.equal(
        lastOtherManager(o, "csp-operator", ["spec"]),
      );
      expect(controllingPolicy(s)).to.equal(controllingPolicy(o));
      expect(writtenByOperator(s, o.kind!)).to.equal(writtenByOperator(o, o.kind!));
      expect(slimNetworkPolicy(s)).to.deep.equal(slimNetworkPolicy(o));
    }
  });

  it("keeps its tables bounded and large values out of them, whatever the objects", () => {
    fc.assert(
      fc.property(fc.array(fc.jsonValue(), { maxLength: 200 }), (values) => {
        const i = new Interner(256, 64);
        for (const v of values) {
          const obj = { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "x" }, data: v };
          const s = shareCommonParts(obj as KubernetesObject, i);
          expect(JSON.stringify(s)).to.equal(JSON.stringify(obj));
        }
        expect(i.sizes.stringChars).to.be.at.most(256);
        expect(i.sizes.valueChars).to.be.at.most(256);
      }),
    );
    const big = { rules: Array.from({ length: 100 }, (_, k) => ({ verbs: [`v${k}`] })) };
    const i = new Interner(256, 64);
    expect(i.value(big)).to.equal(big);
    expect(i.sizes.values).to.equal(0);
  });
});
