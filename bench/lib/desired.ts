// What the baseline policy (samples/baseline.yaml) wants in one namespace, written out by hand so the bare
// and reflex clients do not share code with the operator: 3 NetworkPolicies, 6 Pod Security labels on the
// namespace, and automountServiceAccountToken=false on the `default` ServiceAccount. The observer judges
// convergence and repairs with the same definitions, for the operator and the bare client alike.
import type { Json } from "./kube.js";

export const SELECTOR_LABEL = "csp.example.com/tier";
export const POLICY_NAME = "baseline";
export const MANAGED_LABELS = {
  "app.kubernetes.io/managed-by": "csp-operator",
  "security.csp-operator.io/policy": POLICY_NAME,
};

export function baselinePolicy(name = POLICY_NAME, mode: "Enforce" | "Audit" = "Enforce"): Json {
  return {
    apiVersion: "security.csp-operator.io/v1alpha1",
    kind: "ClusterSecurityPolicy",
    metadata: { name },
    spec: {
      mode,
      namespaces: {
        selector: { matchExpressions: [{ key: SELECTOR_LABEL, operator: "Exists" }] },
        exclude: ["kube-system", "kube-public", "kube-node-lease"],
      },
      networkPolicies: {
        defaultDenyIngress: true,
        defaultDenyEgress: true,
        allowDNS: true,
        allowSameNamespace: true,
      },
      podSecurity: { enforce: "restricted", audit: "restricted", warn: "restricted", version: "latest" },
      serviceAccounts: { automountDefaultToken: false },
    },
  };
}

export const PSA_LABELS: Record<string, string> = {
  "pod-security.kubernetes.io/audit": "restricted",
  "pod-security.kubernetes.io/audit-version": "latest",
  "pod-security.kubernetes.io/enforce": "restricted",
  "pod-security.kubernetes.io/enforce-version": "latest",
  "pod-security.kubernetes.io/warn": "restricted",
  "pod-security.kubernetes.io/warn-version": "latest",
};

const BOTH = ["Ingress", "Egress"];
export const NP_SPECS: Record<string, Json> = {
  "csp-baseline-default-deny": { podSelector: {}, policyTypes: BOTH },
  "csp-baseline-allow-dns": {
    podSelector: {},
    policyTypes: ["Egress"],
    egress: [
      {
        to: [
          {
            namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "kube-system" } },
            podSelector: { matchLabels: { "k8s-app": "kube-dns" } },
          },
        ],
        ports: [
          { protocol: "UDP", port: 53 },
          { protocol: "TCP", port: 53 },
        ],
      },
    ],
  },
  "csp-baseline-allow-same-namespace": {
    podSelector: {},
    policyTypes: BOTH,
    ingress: [{ from: [{ podSelector: {} }] }],
    egress: [{ to: [{ podSelector: {} }] }],
  },
};
export const NP_NAMES = Object.keys(NP_SPECS);
/** Objects the policy manages per namespace: the namespace, its default ServiceAccount, 3 NetworkPolicies. */
export const OBJECTS_PER_NAMESPACE = 2 + NP_NAMES.length;

export function npPath(ns: string, name?: string): string {
  return `/apis/networking.k8s.io/v1/namespaces/${ns}/networkpolicies${name ? `/${name}` : ""}`;
}
export const nsPath = (ns: string) => `/api/v1/namespaces/${ns}`;
export const saPath = (ns: string) => `/api/v1/namespaces/${ns}/serviceaccounts/default`;

/** The apply configurations a minimal client sends for one namespace (5 writes). */
export function minimalWrites(ns: string, policyUid: string): { path: string; body: Json }[] {
  const owner = {
    apiVersion: "security.csp-operator.io/v1alpha1",
    kind: "ClusterSecurityPolicy",
    name: POLICY_NAME,
    uid: policyUid,
    controller: true,
  };
  return [
    {
      path: nsPath(ns),
      body: { apiVersion: "v1", kind: "Namespace", metadata: { name: ns, labels: PSA_LABELS } },
    },
    {
      path: saPath(ns),
      body: {
        apiVersion: "v1",
        kind: "ServiceAccount",
        metadata: { name: "default", namespace: ns },
        automountServiceAccountToken: false,
      },
    },
    ...NP_NAMES.map((name) => ({
      path: npPath(ns, name),
      body: {
        apiVersion: "networking.k8s.io/v1",
        kind: "NetworkPolicy",
        metadata: { name, namespace: ns, labels: MANAGED_LABELS, ownerReferences: [owner] },
        spec: NP_SPECS[name],
      },
    })),
  ];
}

/** JSON with sorted keys, to compare specs regardless of key order. */
export function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(",")}]`;
  if (v && typeof v === "object")
    return `{${Object.entries(v as Json)
      .filter(([, x]) => x !== undefined)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([k, x]) => `${JSON.stringify(k)}:${canonical(x)}`)
      .join(",")}}`;
  return JSON.stringify(v);
}
const NP_CANONICAL = Object.fromEntries(NP_NAMES.map((n) => [n, canonical(NP_SPECS[n])]));

export type Kind = "ns" | "sa" | "np";

/** Whether a live object is what the policy wants (only called for objects of a selected namespace). */
export function isDesired(kind: Kind, obj: Json | undefined): boolean {
  if (!obj) return false;
  const meta = obj["metadata"] as { name?: string; labels?: Record<string, string> } | undefined;
  if (kind === "ns") return Object.entries(PSA_LABELS).every(([k, v]) => meta?.labels?.[k] === v);
  if (kind === "sa") return obj["automountServiceAccountToken"] === false;
  const want = NP_CANONICAL[meta?.name ?? ""];
  return want !== undefined && canonical(obj["spec"]) === want;
}
