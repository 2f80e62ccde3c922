import type { V1NetworkPolicy, V1NetworkPolicySpec } from "@kubernetes/client-node";
import type { ClusterSecurityPolicySpec } from "../api/v1alpha1/policy.js";
import type { Child } from "./children.js";
import { childName } from "./metadata.js";

type NetworkSpec = NonNullable<ClusterSecurityPolicySpec["networkPolicies"]>;

/** Builds one desired NetworkPolicy; `source` is the spec field it comes from, for messages. */
export type NetworkPolicyChild = (
  kind: "NetworkPolicy",
  name: string,
  fields: Record<string, unknown>,
  source: string,
) => Child;

/** Where cluster DNS lives: CoreDNS/kube-dns pods in kube-system, as kubeadm and most distributions label them. */
export const DNS_PEER = {
  namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "kube-system" } },
  podSelector: { matchLabels: { "k8s-app": "kube-dns" } },
};

/**
 * Name of an extra NetworkPolicy: `csp-<policy>.<extra>`. Built-in ones are `csp-<policy>-<suffix>` (no
 * '.'), policy and extra names are DNS labels (no '.', enforced at admission), so the '.' says where the
 * policy's name ends: no extra can take a built-in's name, nor another policy's child's name. A '-' there
 * could not: policy `a` with extra `b-default-deny` and policy `a-b` would both own `csp-a-b-default-deny`.
 */
export function extraNetworkPolicyName(policyName: string, extraName: string): string {
  return `csp-${policyName}.${extraName}`;
}

/**
 * The name earlier versions gave an extra NetworkPolicy (`csp-<policy>-<extra>`). Objects with that name
 * are kept until the newly named one exists, then pruned as orphans: see desiredNetworkPolicies.
 */
export function legacyExtraNetworkPolicyName(policyName: string, extraName: string): string {
  return childName(policyName, extraName);
}

/** What desiredNetworkPolicies needs to know about the live cluster: the namespace's managed NetworkPolicies. */
export interface LiveNetworkPolicies {
  /** The policy's UID: an object is the policy's when its controller ownerReference carries it. */
  policyUid: string | undefined;
  objects: readonly V1NetworkPolicy[];
}

function ownedBy(o: V1NetworkPolicy | undefined, uid: string | undefined): boolean {
  return !!uid && !!o?.metadata?.ownerReferences?.some((r) => r.controller === true && r.uid === uid);
}

/**
 * The NetworkPolicies one policy wants in one namespace.
 * - `default-deny` selects every pod for the denied directions and allows nothing.
 * - `allow-dns` and `allow-same-namespace` are created only for directions that are denied: a policy
 *   with policyTypes [Egress] isolates the pods it selects, so creating it when egress is open would
 *   silently deny all other egress.
 * - each extra is stamped in as `csp-<policy>.<extra>`. Where the policy still owns an extra under its
 *   earlier name and the new one does not exist yet, the old one stays wanted too (same spec): the new
 *   object is created first and the old one is pruned only by a later reconcile that sees the new one,
 *   so a failed create never leaves the namespace without the rule.
 */
/** live.objects indexed by namespace then name, once per list (a snapshot's list is never mutated). */
const indexes = new WeakMap<readonly V1NetworkPolicy[], Map<string, Map<string, V1NetworkPolicy>>>();
function inNamespace(objects: readonly V1NetworkPolicy[], namespace: string): Map<string, V1NetworkPolicy> {
  let index = indexes.get(objects);
  if (!index) {
    index = new Map<string, Map<string, V1NetworkPolicy>>();
    for (const o of objects) {
      const ns = o.metadata?.namespace;
      const name = o.metadata?.name;
      if (ns === undefined || !name) continue;
      let names = index.get(ns);
      if (!names) index.set(ns, (names = new Map<string, V1NetworkPolicy>()));
      names.set(name, o);
    }
    indexes.set(objects, index);
  }
  return index.get(namespace) ?? new Map<string, V1NetworkPolicy>();
}

export function desiredNetworkPolicies(
  policyName: string,
  namespace: string,
  spec: NetworkSpec,
  child: NetworkPolicyChild,
  live: LiveNetworkPolicies = { policyUid: undefined, objects: [] },
): Child[] {
  const out: Child[] = [];
  const denied: ("Ingress" | "Egress")[] = [];
  if (spec.defaultDenyIngress) denied.push("Ingress");
  if (spec.defaultDenyEgress) denied.push("Egress");
  const deniedSource = "spec.networkPolicies.defaultDeny{Ingress,Egress}";

  if (denied.length > 0) {
    out.push(
      child(
        "NetworkPolicy",
        childName(policyName, "default-deny"),
        { spec: { podSelector: {}, policyTypes: denied } },
        deniedSource,
      ),
    );
  }
  if (spec.allowDNS && spec.defaultDenyEgress) {
    out.push(
      child(
        "NetworkPolicy",
        childName(policyName, "allow-dns"),
        {
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
        },
        "spec.networkPolicies.allowDNS",
      ),
    );
  }
  if (spec.allowSameNamespace && denied.length > 0) {
    const same: Record<string, unknown> = { podSelector: {}, policyTypes: denied };
    if (spec.defaultDenyIngress) same["ingress"] = [{ from: [{ podSelector: {} }] }];
    if (spec.defaultDenyEgress) same["egress"] = [{ to: [{ podSelector: {} }] }];
    out.push(
      child(
        "NetworkPolicy",
        childName(policyName, "allow-same-namespace"),
        { spec: same },
        "spec.networkPolicies.allowSameNamespace",
      ),
    );
  }
  const byName = inNamespace(live.objects, namespace);
  const wanted = new Set(out.map((c) => c.metadata.name));
  for (const extra of spec.extra ?? []) {
    const extraSpec: V1NetworkPolicySpec = { podSelector: {}, ...extra.spec };
    const source = `spec.networkPolicies.extra[name=${extra.name}]`;
    const name = extraNetworkPolicyName(policyName, extra.name);
    out.push(child("NetworkPolicy", name, { spec: extraSpec }, source));
    wanted.add(name);
    const legacy = legacyExtraNetworkPolicyName(policyName, extra.name);
    if (
      !wanted.has(legacy) &&
      ownedBy(byName.get(legacy), live.policyUid) &&
      !ownedBy(byName.get(name), live.policyUid)
    ) {
      out.push(child("NetworkPolicy", legacy, { spec: extraSpec }, `${source} (earlier name)`));
      wanted.add(legacy);
    }
  }
  return out;
}
