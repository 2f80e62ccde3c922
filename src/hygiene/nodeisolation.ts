import type { Finding } from "../findings/finding.js";

export const AREA = "nodeIsolation";
export const NODE_SELECTOR_ANNOTATION = "scheduler.alpha.kubernetes.io/node-selector";
export const ISOLATION_POD_OUTSIDE = "ISOLATION-POD-OUTSIDE-SELECTOR";
export const ISOLATION_FOREIGN_POD = "ISOLATION-FOREIGN-POD";
export const ISOLATION_NO_NODES = "ISOLATION-NO-MATCHING-NODES";
export const ISOLATION_ANNOTATION = "ISOLATION-ANNOTATION-MISSING";

/**
 * The field manager of one policy's node-selector annotation. Per policy: two policies selecting the same
 * namespace with different selectors then conflict (409) instead of overwriting each other forever, and a
 * policy releases exactly what it set. Not `csp-operator`, whose applies of the namespace labels would
 * remove the annotation again.
 */
export const NODE_ISOLATION_MANAGER_PREFIX = "csp-operator-node-isolation";
export function nodeIsolationManager(policy: string): string {
  return `${NODE_ISOLATION_MANAGER_PREFIX}:${policy}`;
}
/** The policy a node-isolation field manager belongs to; "" for the shared manager of earlier releases. */
export function policyOfManager(manager: string | undefined): string | undefined {
  if (manager === NODE_ISOLATION_MANAGER_PREFIX) return "";
  return manager?.startsWith(`${NODE_ISOLATION_MANAGER_PREFIX}:`)
    ? manager.slice(NODE_ISOLATION_MANAGER_PREFIX.length + 1)
    : undefined;
}

/** A toleration as written in a Pod spec. */
export interface Toleration {
  key?: string;
  operator?: string;
  value?: string;
  effect?: string;
}

/** What the area needs of a Pod: where it runs, who owns it, what it tolerates. */
export interface PodPlacement {
  namespace: string;
  name: string;
  nodeName: string;
  /**
   * Run by a DaemonSet: its controller reference names a DaemonSet that exists with that uid (and, where
   * the caller knows it, whose node selector admits the node). A reference alone is not enough: anyone
   * who can create a Pod can write one.
   */
  daemonSet: boolean;
  tolerations: readonly Toleration[];
}

export interface NodeLabels {
  name: string;
  labels: Readonly<Record<string, string>>;
}

/** A taint named in spec.nodeIsolation.tolerations: `key`, `key=value`, `key:effect` or `key=value:effect`. */
export interface TaintSpec {
  key: string;
  value?: string;
  effect?: string;
}

export function parseTaint(text: string): TaintSpec {
  const colon = text.lastIndexOf(":");
  const effect = colon > 0 ? text.slice(colon + 1) : undefined;
  const kv = colon > 0 ? text.slice(0, colon) : text;
  const eq = kv.indexOf("=");
  return {
    key: eq >= 0 ? kv.slice(0, eq) : kv,
    ...(eq >= 0 ? { value: kv.slice(eq + 1) } : {}),
    ...(effect ? { effect } : {}),
  };
}

/**
 * Whether a toleration tolerates a taint, as the scheduler decides it: empty key with Exists tolerates
 * everything; otherwise the keys match, Exists ignores the value, Equal (the default) needs the same value
 * (a taint named without value has the empty value); an empty effect tolerates every effect, and a taint
 * named without effect is tolerated whatever effect the toleration names.
 */
export function tolerates(t: Toleration, taint: TaintSpec): boolean {
  const op = t.operator ?? "Equal";
  if (op !== "Exists" && op !== "Equal") return false;
  if (t.effect && taint.effect && t.effect !== taint.effect) return false;
  if (!t.key) return op === "Exists";
  if (t.key !== taint.key) return false;
  return op === "Exists" || (t.value ?? "") === (taint.value ?? "");
}

const NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

/** A label key: `[prefix/]name`, name at most 63 characters, prefix a DNS subdomain of at most 253. */
export function isQualifiedName(key: string): boolean {
  const slash = key.indexOf("/");
  const prefix = slash >= 0 ? key.slice(0, slash) : undefined;
  const name = slash >= 0 ? key.slice(slash + 1) : key;
  if (prefix !== undefined && (prefix.length === 0 || prefix.length > 253 || !DNS_SUBDOMAIN.test(prefix)))
    return false;
  return name.length > 0 && name.length <= 63 && NAME.test(name);
}

export function isLabelValue(value: string): boolean {
  return value.length <= 63 && LABEL_VALUE.test(value);
}

/**
 * The first invalid entry of spec.nodeIsolation (selector keys and values must be label keys and values:
 * anything else would write an annotation PodNodeSelector cannot read, e.g. `a=x,y`), as a message naming
 * the field; undefined when valid. The CRD rejects the same (CEL); this guards older CRDs.
 */
export function invalidIsolationSpec(
  selector: Readonly<Record<string, string>>,
  tolerations: readonly string[],
): string | undefined {
  for (const [k, v] of Object.entries(selector)) {
    const field = `spec.nodeIsolation.nodeSelector[${JSON.stringify(k.slice(0, 80))}]`;
    if (!isQualifiedName(k)) return `${field}: the key is not a label key ([prefix/]name)`;
    if (typeof v !== "string" || !isLabelValue(v))
      return `${field}: ${JSON.stringify(String(v).slice(0, 80))} is not a label value`;
  }
  for (const [i, t] of tolerations.entries()) {
    const taint = parseTaint(t);
    if (!isQualifiedName(taint.key))
      return `spec.nodeIsolation.tolerations[${i}]: ${JSON.stringify(t.slice(0, 80))} is not key[=value][:effect]`;
  }
  return undefined;
}

/** `k1=v1,k2=v2`, sorted: the value PodNodeSelector reads from the namespace annotation. */
export function selectorAnnotation(selector: Readonly<Record<string, string>>): string {
  return Object.keys(selector)
    .sort()
    .map((k) => `${k}=${selector[k]}`)
    .join(",");
}

export function matches(
  selector: Readonly<Record<string, string>>,
  labels: Readonly<Record<string, string>>,
): boolean {
  return Object.entries(selector).every(([k, v]) => labels[k] === v);
}

/**
 * Placement findings: a pod of a selected namespace on a node outside the selector (High); a pod of any
 * other namespace on an isolated node (Medium) unless it is a DaemonSet's (runs on every node by design)
 * or tolerates one of the named taints (key, value and effect as the scheduler matches them); no node matching the selector at all (Medium). Pods not yet
 * scheduled (no nodeName) are not judged.
 */
export function placementFindings(input: {
  selector: Readonly<Record<string, string>>;
  tolerations: readonly string[];
  selected: ReadonlySet<string>;
  nodes: readonly NodeLabels[];
  /** Pods of the selected namespaces, and pods on the isolated nodes. */
  pods: readonly PodPlacement[];
}): Finding[] {
  const findings: Finding[] = [];
  const want = selectorAnnotation(input.selector);
  const isolated = new Set(input.nodes.filter((n) => matches(input.selector, n.labels)).map((n) => n.name));
  const known = new Set(input.nodes.map((n) => n.name));
  if (isolated.size === 0)
    findings.push({
      id: ISOLATION_NO_NODES,
      severity: "Medium",
      area: AREA,
      resource: "Node/*",
      message: `no Node has the labels ${want}: pods of the isolated namespaces cannot be scheduled anywhere`,
    });
  const seen = new Set<string>();
  const pods = [...input.pods].sort(
    (a, b) => a.namespace.localeCompare(b.namespace) || a.name.localeCompare(b.name),
  );
  for (const p of pods) {
    const key = `${p.namespace}/${p.name}`;
    if (seen.has(key) || !p.nodeName) continue;
    seen.add(key);
    const resource = `Pod/${p.namespace}/${p.name}`;
    if (input.selected.has(p.namespace)) {
      if (!isolated.has(p.nodeName))
        findings.push({
          id: ISOLATION_POD_OUTSIDE,
          severity: "High",
          area: AREA,
          resource,
          message: `runs on node ${p.nodeName}${known.has(p.nodeName) ? "" : " (no such Node object)"}, which does not have the labels ${want} its namespace is isolated to`,
        });
    } else if (isolated.has(p.nodeName) && !p.daemonSet) {
      const taints = input.tolerations.map(parseTaint);
      const ok = p.tolerations.some((t) => taints.some((taint) => tolerates(t, taint)));
      if (!ok)
        findings.push({
          id: ISOLATION_FOREIGN_POD,
          severity: "Medium",
          area: AREA,
          resource,
          message: `runs on isolated node ${p.nodeName} (${want}) but its namespace is not isolated there${input.tolerations.length ? ` and it tolerates none of the taints ${input.tolerations.join(", ")}` : ""}`,
        });
    }
  }
  return findings;
}
