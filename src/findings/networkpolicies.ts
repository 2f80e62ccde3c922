import type { KubernetesObject, V1NetworkPolicyPeer, V1NetworkPolicyPort } from "@kubernetes/client-node";
import type { ClusterSecurityPolicy, ClusterSecurityPolicySpec } from "../api/v1alpha1/policy.js";
import { KIND } from "../api/v1alpha1/policy.js";
import { childName } from "../desired/metadata.js";
import { extraNetworkPolicyName, legacyExtraNetworkPolicyName } from "../desired/networkpolicies.js";
import { effectiveSpec } from "../desired/spec.js";
import { rememberedChild } from "../drift/ownership.js";
import type { Finding } from "./finding.js";

/** A direction a NetworkPolicy isolates and may open. */
export type Direction = "Ingress" | "Egress";

/** Finding id: a NetworkPolicy opens to every peer and port a direction the policy's default-deny closes. */
export const NETPOL_WIDENS_DEFAULT_DENY = "NETPOL-WIDENS-DEFAULT-DENY";

/**
 * A NetworkPolicy as the widening check keeps it: identity, ownerReferences (to skip a policy's own
 * objects) and the directions it opens to everything. The cache keeps only this of every NetworkPolicy,
 * so a cluster with many large NetworkPolicies costs little memory.
 */
export type NetworkPolicySummary = KubernetesObject & { widens?: Direction[] };

const ANY_CIDRS = new Set(["0.0.0.0/0", "::/0"]);

function emptySelector(sel: { matchLabels?: object; matchExpressions?: unknown[] } | undefined): boolean {
  return (
    !!sel && Object.keys(sel.matchLabels ?? {}).length === 0 && (sel.matchExpressions ?? []).length === 0
  );
}

/** A peer that admits every source or destination: any IP, or every pod of every namespace. */
function anyPeer(p: V1NetworkPolicyPeer): boolean {
  if (p.ipBlock) return ANY_CIDRS.has(p.ipBlock.cidr) && (p.ipBlock.except ?? []).length === 0;
  return emptySelector(p.namespaceSelector) && (p.podSelector === undefined || emptySelector(p.podSelector));
}

/** A port entry that admits every port of its protocol: no port, or a range over all of them. */
function anyPort(p: V1NetworkPolicyPort): boolean {
  if (p.port === undefined || p.port === null) return true;
  return typeof p.port === "number" && p.port <= 1 && (p.endPort ?? 0) >= 65535;
}

/** A rule (from/to + ports) that allows everything in its direction. */
function allowsAll(peers: V1NetworkPolicyPeer[] | undefined, ports: V1NetworkPolicyPort[] | undefined) {
  const everyPeer = !peers || peers.length === 0 || peers.some(anyPeer);
  const everyPort = !ports || ports.length === 0 || ports.some(anyPort);
  return everyPeer && everyPort;
}

/** A NetworkPolicy as plain JSON (LISTs and watch events are not passed through client-node's models). */
export interface NetworkPolicyJson extends KubernetesObject {
  spec?: {
    policyTypes?: string[];
    ingress?: { from?: V1NetworkPolicyPeer[]; ports?: V1NetworkPolicyPort[] }[];
    egress?: { to?: V1NetworkPolicyPeer[]; ports?: V1NetworkPolicyPort[] }[];
  };
}

/**
 * The directions `np` opens to every peer on every port for the pods it selects: what a default-deny in
 * the same namespace closes, opened again (NetworkPolicies are additive). policyTypes as the API server
 * reads them: Ingress always when unset, Egress when there are egress rules.
 */
export function wideningDirections(np: NetworkPolicyJson): Direction[] {
  const spec = np.spec;
  if (!spec) return [];
  const types = spec.policyTypes ?? ["Ingress", ...((spec.egress ?? []).length ? ["Egress"] : [])];
  const out: Direction[] = [];
  if (types.includes("Ingress") && (spec.ingress ?? []).some((r) => allowsAll(r.from, r.ports)))
    out.push("Ingress");
  if (types.includes("Egress") && (spec.egress ?? []).some((r) => allowsAll(r.to, r.ports)))
    out.push("Egress");
  return out;
}

/**
 * What tells a policy's own NetworkPolicies from objects that merely point at it (anyone with `edit` in a
 * namespace can put a controller ownerReference to a policy's UID on their own object).
 */
export interface OwnNetworkPolicies {
  /** objectKey() of each NetworkPolicy the judging policy wants (its desired children). */
  desired: ReadonlySet<string>;
  /** The NetworkPolicies labelled managed-by csp-operator (the managed cache): judged as children. */
  labelled: readonly KubernetesObject[];
}

/**
 * The names another policy's NetworkPolicies may have, from its spec alone (its desired children would need
 * its namespaces): its built-in ones, each extra under its name and its earlier name.
 */
export function networkPolicyChildNames(policy: ClusterSecurityPolicy): Set<string> {
  const name = policy.metadata.name;
  const np = effectiveSpec(policy).networkPolicies;
  const out = new Set<string>();
  if (!np) return out;
  if (np.defaultDenyIngress || np.defaultDenyEgress) {
    out.add(childName(name, "default-deny"));
    if (np.allowSameNamespace) out.add(childName(name, "allow-same-namespace"));
  }
  if (np.allowDNS && np.defaultDenyEgress) out.add(childName(name, "allow-dns"));
  for (const e of np.extra ?? []) {
    out.add(extraNetworkPolicyName(name, e.name));
    out.add(legacyExtraNetworkPolicyName(name, e.name));
  }
  return out;
}

/**
 * NetworkPolicies in the policy's namespaces that open to everything a direction its default-deny closes.
 * Not judged: a policy's own NetworkPolicies (its extras may be allow-all by design; its drift check
 * restores them), another existing ClusterSecurityPolicy's likewise. "Own" takes more than a controller
 * ownerReference to the policy, which a namespace user can forge: the object must sit at the name of one of
 * that policy's children (for the judging policy: one it wants in that namespace) AND be either labelled
 * managed (then the drift check compares it with the policy) or remembered in that policy's
 * status.childUIDs (status is where namespace users cannot write). Everything else is judged (labels alone
 * decide nothing: a user can put the operator's labels on their own object). Medium: the namespace's
 * isolation is gone for the pods it selects. Exemptible by id, namespace or resource like every finding.
 */
export function wideningFindings(
  policy: ClusterSecurityPolicy,
  spec: ClusterSecurityPolicySpec,
  namespaces: readonly string[],
  policies: readonly ClusterSecurityPolicy[],
  summaries: readonly NetworkPolicySummary[],
  own: OwnNetworkPolicies,
): Finding[] {
  const np = spec.networkPolicies;
  if (!np) return [];
  const closed = new Set<Direction>();
  if (np.defaultDenyIngress) closed.add("Ingress");
  if (np.defaultDenyEgress) closed.add("Egress");
  if (closed.size === 0) return [];
  const selected = new Set(namespaces);
  const byUid = new Map<string, ClusterSecurityPolicy>();
  for (const p of policies) if (p.metadata.uid) byUid.set(p.metadata.uid, p);
  const labelled = new Set(own.labelled.map((o) => o.metadata?.uid).filter(Boolean));
  const names = new Map<ClusterSecurityPolicy, Set<string>>();
  const isChildOf = (q: ClusterSecurityPolicy, s: NetworkPolicySummary, ns: string): boolean => {
    const name = s.metadata?.name ?? "";
    if (q.metadata.uid === policy.metadata.uid) {
      if (!own.desired.has(`NetworkPolicy/${ns}/${name}`)) return false;
    } else {
      let set = names.get(q);
      if (!set) names.set(q, (set = networkPolicyChildNames(q)));
      if (!set.has(name)) return false;
    }
    return labelled.has(s.metadata?.uid) || rememberedChild(s, q);
  };
  const out: Finding[] = [];
  for (const s of summaries) {
    const ns = s.metadata?.namespace;
    if (!ns || !selected.has(ns)) continue;
    const opened = (s.widens ?? []).filter((d) => closed.has(d));
    if (opened.length === 0) continue;
    const controller = s.metadata?.ownerReferences?.find((r) => r.controller === true);
    const q = controller?.kind === KIND ? byUid.get(controller.uid) : undefined;
    if (q && isChildOf(q, s, ns)) continue;
    const dirs = opened.map((d) => d.toLowerCase()).join(" and ");
    out.push({
      id: NETPOL_WIDENS_DEFAULT_DENY,
      severity: "Medium",
      resource: `NetworkPolicy/${ns}/${s.metadata!.name!}`,
      area: "networkPolicies",
      message: `allows all ${dirs} traffic (every peer, every port) for the pods it selects, which the policy's default-deny closes; remove it, narrow its rules, or exempt it`,
    });
  }
  return out.sort((a, b) => a.resource.localeCompare(b.resource));
}
