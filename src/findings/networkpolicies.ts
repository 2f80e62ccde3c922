import type { KubernetesObject, V1NetworkPolicyPeer, V1NetworkPolicyPort } from "@kubernetes/client-node";
import type { ClusterSecurityPolicy, ClusterSecurityPolicySpec } from "../api/v1alpha1/policy.js";
import { KIND } from "../api/v1alpha1/policy.js";
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
 * NetworkPolicies in the policy's namespaces that open to everything a direction its default-deny closes.
 * A policy's own NetworkPolicies (its extras may be allow-all by design) and those controlled by another
 * existing ClusterSecurityPolicy are not judged; everything else is (labels decide nothing: a user can
 * put the operator's labels on their own object). Medium: the namespace's isolation is gone for the pods
 * it selects. Exemptible by id, namespace or resource like every finding.
 */
export function wideningFindings(
  spec: ClusterSecurityPolicySpec,
  namespaces: readonly string[],
  policies: readonly ClusterSecurityPolicy[],
  summaries: readonly NetworkPolicySummary[],
): Finding[] {
  const np = spec.networkPolicies;
  if (!np) return [];
  const closed = new Set<Direction>();
  if (np.defaultDenyIngress) closed.add("Ingress");
  if (np.defaultDenyEgress) closed.add("Egress");
  if (closed.size === 0) return [];
  const selected = new Set(namespaces);
  const policyUids = new Set(policies.map((p) => p.metadata.uid).filter(Boolean));
  const out: Finding[] = [];
  for (const s of summaries) {
    const ns = s.metadata?.namespace;
    if (!ns || !selected.has(ns)) continue;
    const controller = s.metadata?.ownerReferences?.find((r) => r.controller === true);
    if (controller?.kind === KIND && policyUids.has(controller.uid)) continue;
    const opened = (s.widens ?? []).filter((d) => closed.has(d));
    if (opened.length === 0) continue;
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
