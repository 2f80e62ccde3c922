/**
 * The traffic preview of `diff`: the question every reviewer of a default-deny change asks, "which pods
 * stop receiving the traffic they receive today?". A pod's port is in use when a Service selects the pod
 * and targets it, or a container declares it. It is cut when, today, every source may reach it and,
 * after the change, no NetworkPolicy lets every source reach it any more (blocked entirely, or only from
 * some peers). Pure; follows the NetworkPolicy API's semantics: a pod is isolated for ingress once a
 * policy with policyTypes Ingress selects it, and then only the union of those policies' rules applies.
 */
import type {
  V1NetworkPolicy,
  V1NetworkPolicyIngressRule,
  V1NetworkPolicyPort,
  V1Pod,
  V1Service,
} from "@kubernetes/client-node";
import { matchesSelector } from "../desired/namespaces.js";

/** One port of one pod whose ingress the change cuts, or (direction egress) a pod whose egress it cuts. */
export interface TrafficImpact {
  /** Absent for ingress (the port's traffic); `egress`: everything the pod sends, port `*`. */
  direction?: "egress";
  namespace: string;
  pod: string;
  port: number | string;
  protocol: string;
  /** Who uses the port today: `Service web` or `containerPort`. */
  via: string[];
  /** `blocked`: nothing reaches it any more; `restricted`: only the peers listed in `from`. */
  effect: "blocked" | "restricted";
  from: string[];
}

interface PodPort {
  port: number;
  name?: string;
  protocol: string;
  via: Set<string>;
}

type Selector = Parameters<typeof matchesSelector>[0];

function ingressPolicies(policies: readonly V1NetworkPolicy[], pod: V1Pod): V1NetworkPolicy[] {
  return policies.filter(
    (p) =>
      p.metadata?.namespace === pod.metadata?.namespace &&
      // policyTypes defaults to Ingress (plus Egress when egress rules are given).
      (p.spec?.policyTypes ?? ["Ingress"]).includes("Ingress") &&
      matchesSelector(p.spec?.podSelector as Selector, pod.metadata?.labels ?? {}),
  );
}

function portMatches(rule: readonly V1NetworkPolicyPort[] | undefined, p: PodPort): boolean {
  if (!rule || rule.length === 0) return true;
  return rule.some((r) => {
    if ((r.protocol ?? "TCP") !== p.protocol) return false;
    if (r.port === undefined) return true;
    if (typeof r.port === "string") return r.port === p.name;
    const end = r.endPort ?? r.port;
    return p.port >= r.port && p.port <= end;
  });
}

function describePeer(peer: NonNullable<V1NetworkPolicyIngressRule["_from"]>[number]): string {
  if (peer.ipBlock) return `ipBlock ${peer.ipBlock.cidr}`;
  const parts: string[] = [];
  if (peer.namespaceSelector) parts.push(`namespaces ${JSON.stringify(peer.namespaceSelector)}`);
  if (peer.podSelector) parts.push(`pods ${JSON.stringify(peer.podSelector)}`);
  if (!peer.namespaceSelector) parts.push("in the same namespace");
  return parts.join(" ");
}

/**
 * What reaches the port under `policies`: `open` (every source), or the peers allowed (empty: blocked).
 * Rules come from client-node's typed objects (`_from`) or raw JSON (`from`).
 */
function reach(
  policies: readonly V1NetworkPolicy[],
  pod: V1Pod,
  p: PodPort,
): { open: boolean; from: string[] } {
  const selecting = ingressPolicies(policies, pod);
  if (selecting.length === 0) return { open: true, from: [] };
  const from: string[] = [];
  for (const np of selecting)
    for (const rule of np.spec?.ingress ?? []) {
      if (!portMatches(rule.ports, p)) continue;
      const peers = rule._from ?? (rule as { from?: V1NetworkPolicyIngressRule["_from"] }).from ?? [];
      if (peers.length === 0) return { open: true, from: [] };
      for (const peer of peers) {
        // An empty namespaceSelector and podSelector together: every pod in every namespace, still not
        // every source (nodes, load balancers): reported as restricted.
        from.push(describePeer(peer));
      }
    }
  return { open: false, from: [...new Set(from)].sort() };
}

/** The ports in use on a pod: Service targets (by number or container-port name) and declared ports. */
function portsInUse(pod: V1Pod, services: readonly V1Service[]): PodPort[] {
  const declared = (pod.spec?.containers ?? []).flatMap((c) => c.ports ?? []);
  const byKey = new Map<string, PodPort>();
  const add = (port: number, protocol: string, via: string, name?: string) => {
    const key = `${port}/${protocol}`;
    const e = byKey.get(key) ?? { port, protocol, via: new Set<string>(), ...(name ? { name } : {}) };
    e.via.add(via);
    byKey.set(key, e);
  };
  for (const c of declared) add(c.containerPort, c.protocol ?? "TCP", "containerPort", c.name);
  for (const s of services) {
    const sel = s.spec?.selector;
    if (s.metadata?.namespace !== pod.metadata?.namespace || !sel || Object.keys(sel).length === 0) continue;
    if (!Object.entries(sel).every(([k, v]) => pod.metadata?.labels?.[k] === v)) continue;
    for (const sp of s.spec?.ports ?? []) {
      const target = sp.targetPort ?? sp.port;
      const protocol = sp.protocol ?? "TCP";
      const named = typeof target === "string" ? declared.find((c) => c.name === target) : undefined;
      const number = typeof target === "number" ? target : named?.containerPort;
      if (number === undefined) continue;
      add(
        number,
        protocol,
        `Service ${s.metadata?.name}`,
        named?.name ?? declared.find((c) => c.containerPort === number)?.name,
      );
    }
  }
  return [...byKey.values()].sort((a, b) => a.port - b.port || a.protocol.localeCompare(b.protocol));
}

/**
 * The ports cut by replacing `before` with `after` (both: every NetworkPolicy of the namespaces
 * concerned), for the pods of `namespaces`. Sorted by namespace, pod, port.
 */
export function trafficImpact(input: {
  namespaces: readonly string[];
  pods: readonly V1Pod[];
  services: readonly V1Service[];
  before: readonly V1NetworkPolicy[];
  after: readonly V1NetworkPolicy[];
}): TrafficImpact[] {
  const selected = new Set(input.namespaces);
  const out: TrafficImpact[] = [];
  for (const pod of input.pods) {
    const ns = pod.metadata?.namespace ?? "";
    if (!selected.has(ns) || pod.status?.phase === "Succeeded" || pod.status?.phase === "Failed") continue;
    if (pod.spec?.hostNetwork) continue; // NetworkPolicies do not apply to host-network pods
    for (const p of portsInUse(pod, input.services)) {
      if (!reach(input.before, pod, p).open) continue;
      const after = reach(input.after, pod, p);
      if (after.open) continue;
      out.push({
        namespace: ns,
        pod: pod.metadata?.name ?? "",
        port: p.port,
        protocol: p.protocol,
        via: [...p.via].sort(),
        effect: after.from.length === 0 ? "blocked" : "restricted",
        from: after.from,
      });
    }
  }
  return out.sort(
    (a, b) =>
      a.namespace.localeCompare(b.namespace) || a.pod.localeCompare(b.pod) || Number(a.port) - Number(b.port),
  );
}

type EgressRule = NonNullable<NonNullable<V1NetworkPolicy["spec"]>["egress"]>[number];

/** Policies that isolate the pod for egress: policyTypes Egress, or (unset) egress rules given. */
function egressPolicies(policies: readonly V1NetworkPolicy[], pod: V1Pod): V1NetworkPolicy[] {
  return policies.filter(
    (p) =>
      p.metadata?.namespace === pod.metadata?.namespace &&
      (p.spec?.policyTypes ?? (p.spec?.egress ? ["Ingress", "Egress"] : ["Ingress"])).includes("Egress") &&
      matchesSelector(p.spec?.podSelector as Selector, pod.metadata?.labels ?? {}),
  );
}

function describePorts(ports: EgressRule["ports"]): string {
  if (!ports || ports.length === 0) return "";
  return ` ports ${ports.map((x) => `${x.port ?? "*"}${x.endPort ? `-${x.endPort}` : ""}/${x.protocol ?? "TCP"}`).join(",")}`;
}

/** What the pod may send under `policies`: open, or the destinations allowed, and whether DNS is among them. */
function egressReach(
  policies: readonly V1NetworkPolicy[],
  pod: V1Pod,
): { open: boolean; to: string[]; dns: boolean } {
  const selecting = egressPolicies(policies, pod);
  if (selecting.length === 0) return { open: true, to: [], dns: true };
  const to: string[] = [];
  let dns = false;
  const dnsPort: PodPort = { port: 53, protocol: "UDP", via: new Set() };
  for (const np of selecting)
    for (const rule of np.spec?.egress ?? []) {
      const peers = rule.to ?? [];
      if (peers.length === 0 && (!rule.ports || rule.ports.length === 0))
        return { open: true, to: [], dns: true };
      if (portMatches(rule.ports, dnsPort)) dns = true;
      if (peers.length === 0) to.push(`anywhere${describePorts(rule.ports)}`);
      for (const peer of peers) to.push(`${describePeer(peer)}${describePorts(rule.ports)}`);
    }
  return { open: false, to: [...new Set(to)].sort(), dns };
}

/**
 * Pods whose egress is open today and would not be after the change (default-deny egress): `blocked` when
 * no rule lets anything out, else `restricted` to the destinations listed; a missing DNS allowance
 * (53/UDP) is called out, the usual surprise. Which destinations a pod really talks to is not knowable
 * from the API, so this is per pod, not per connection.
 */
export function egressImpact(input: {
  namespaces: readonly string[];
  pods: readonly V1Pod[];
  before: readonly V1NetworkPolicy[];
  after: readonly V1NetworkPolicy[];
}): TrafficImpact[] {
  const selected = new Set(input.namespaces);
  const out: TrafficImpact[] = [];
  for (const pod of input.pods) {
    const ns = pod.metadata?.namespace ?? "";
    if (!selected.has(ns) || pod.status?.phase === "Succeeded" || pod.status?.phase === "Failed") continue;
    if (pod.spec?.hostNetwork) continue;
    if (!egressReach(input.before, pod).open) continue;
    const after = egressReach(input.after, pod);
    if (after.open) continue;
    out.push({
      direction: "egress",
      namespace: ns,
      pod: pod.metadata?.name ?? "",
      port: "*",
      protocol: "*",
      via: after.dns ? ["egress"] : ["egress", "DNS 53/UDP not allowed"],
      effect: after.to.length === 0 ? "blocked" : "restricted",
      from: after.to,
    });
  }
  return out.sort((a, b) => a.namespace.localeCompare(b.namespace) || a.pod.localeCompare(b.pod));
}

/** One line per impact, as `diff` prints it. */
export function describeImpact(i: TrafficImpact): string {
  if (i.direction === "egress") {
    const dns = i.via.includes("DNS 53/UDP not allowed") ? " (DNS 53/UDP not allowed)" : "";
    return i.effect === "blocked"
      ? `${i.namespace}/${i.pod} egress: no NetworkPolicy would allow egress any more${dns}`
      : `${i.namespace}/${i.pod} egress: only to ${i.from.join("; ")}${dns}`;
  }
  const what = `${i.namespace}/${i.pod} port ${i.port}/${i.protocol} (${i.via.join(", ")})`;
  return i.effect === "blocked"
    ? `${what}: no NetworkPolicy would allow ingress any more`
    : `${what}: ingress only from ${i.from.join("; ")}`;
}
