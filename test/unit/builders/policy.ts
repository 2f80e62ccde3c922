import type { V1Namespace, V1NetworkPolicy, V1ServiceAccount } from "@kubernetes/client-node";
import type { ClusterSecurityPolicy, ClusterSecurityPolicySpec } from "../../../src/api/v1alpha1/policy.js";
import type { Snapshot } from "../../../src/cluster/snapshot.js";

/** Fluent builder for policies in tests: `policy("p").audit().spec({...}).build()`. */
export class PolicyBuilder {
  private p: ClusterSecurityPolicy;
  constructor(name: string) {
    this.p = {
      apiVersion: "security.csp-operator.io/v1alpha1",
      kind: "ClusterSecurityPolicy",
      metadata: { name, uid: `uid-${name}`, generation: 1, creationTimestamp: "2026-01-01T00:00:00Z" },
      spec: {},
    };
  }
  spec(s: ClusterSecurityPolicySpec): this {
    this.p.spec = { ...this.p.spec, ...s };
    return this;
  }
  audit(): this {
    return this.spec({ mode: "Audit" });
  }
  createdAt(iso: string): this {
    this.p.metadata.creationTimestamp = iso;
    return this;
  }
  build(): ClusterSecurityPolicy {
    return structuredClone(this.p);
  }
}
export const policy = (name: string) => new PolicyBuilder(name);

export function namespace(name: string, labels: Record<string, string> = {}): V1Namespace {
  return {
    metadata: { name, labels: { "kubernetes.io/metadata.name": name, ...labels } },
    status: { phase: "Active" },
  };
}

export function defaultSA(ns: string, automount?: boolean): V1ServiceAccount {
  return {
    metadata: { name: "default", namespace: ns },
    ...(automount === undefined ? {} : { automountServiceAccountToken: automount }),
  };
}

export function snapshot(s: Partial<Snapshot> = {}): Snapshot {
  return {
    policies: [],
    namespaces: [],
    networkPolicies: [] as V1NetworkPolicy[],
    serviceAccounts: [],
    roles: [],
    roleBindings: [],
    now: new Date("2026-06-01T00:00:00Z"),
    ...s,
  };
}
