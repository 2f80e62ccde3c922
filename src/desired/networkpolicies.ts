import type { V1NetworkPolicySpec } from "@kubernetes/client-node";
import type { ClusterSecurityPolicySpec } from "../api/v1alpha1/policy.js";
import type { Child } from "./children.js";
import { childName } from "./metadata.js";

type NetworkSpec = NonNullable<ClusterSecurityPolicySpec["networkPolicies"]>;

/** Where cluster DNS lives: CoreDNS/kube-dns pods in kube-system, as kubeadm and most distributions label them. */
export const DNS_PEER = {
  namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "kube-system" } },
  podSelector: { matchLabels: { "k8s-app": "kube-dns" } },
};

/**
 * The NetworkPolicies one policy wants in one namespace.
 * - `default-deny` selects every pod for the denied directions and allows nothing.
 * - `allow-dns` and `allow-same-namespace` are created only for directions that are denied: a policy
 *   with policyTypes [Egress] isolates the pods it selects, so creating it when egress is open would
 *   silently deny all other egress.
 */
export function desiredNetworkPolicies(
  policyName: string,
  namespace: string,
  spec: NetworkSpec,
  child: (kind: "NetworkPolicy", name: string, fields: Record<string, unknown>) => Child,
): Child[] {
  const out: Child[] = [];
  const denied: ("Ingress" | "Egress")[] = [];
  if (spec.defaultDenyIngress) denied.push("Ingress");
  if (spec.defaultDenyEgress) denied.push("Egress");

  if (denied.length > 0) {
    out.push(
      child("NetworkPolicy", childName(policyName, "default-deny"), {
        spec: { podSelector: {}, policyTypes: denied },
      }),
    );
  }
  if (spec.allowDNS && spec.defaultDenyEgress) {
    out.push(
      child("NetworkPolicy", childName(policyName, "allow-dns"), {
        spec: {
          podSelector: {},
          policyTypes: ["Egress"],
          egress: [
            {
              to: [DNS_PEER],
              ports: [
                { protocol: "UDP", port: 53 },
                { protocol: "TCP", port: 53 },
              ],
            },
          ],
        },
      }),
    );
  }
  if (spec.allowSameNamespace && denied.length > 0) {
    const same: Record<string, unknown> = { podSelector: {}, policyTypes: denied };
    if (spec.defaultDenyIngress) same["ingress"] = [{ from: [{ podSelector: {} }] }];
    if (spec.defaultDenyEgress) same["egress"] = [{ to: [{ podSelector: {} }] }];
    out.push(child("NetworkPolicy", childName(policyName, "allow-same-namespace"), { spec: same }));
  }
  for (const extra of spec.extra ?? []) {
    const extraSpec: V1NetworkPolicySpec = { podSelector: {}, ...extra.spec };
    out.push(child("NetworkPolicy", childName(policyName, extra.name), { spec: extraSpec }));
  }
  void namespace;
  return out;
}
