import type { Finding } from "../findings/finding.js";

export const AREA = "nodeIsolation";
export const NODE_SELECTOR_ANNOTATION = "scheduler.alpha.kubernetes.io/node-selector";
export const ISOLATION_POD_OUTSIDE = "ISOLATION-POD-OUTSIDE-SELECTOR";
export const ISOLATION_FOREIGN_POD = "ISOLATION-FOREIGN-POD";
export const ISOLATION_NO_NODES = "ISOLATION-NO-MATCHING-NODES";
export const ISOLATION_ANNOTATION = "ISOLATION-ANNOTATION-MISSING";

/** What the area needs of a Pod: where it runs, who owns it, what it tolerates. */
export interface PodPlacement {
  namespace: string;
  name: string;
  nodeName: string;
  daemonSet: boolean;
  /** Taint keys tolerated; "" for a toleration without key (operator Exists: everything). */
  tolerates: readonly string[];
}

export interface NodeLabels {
  name: string;
  labels: Readonly<Record<string, string>>;
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
 * or tolerates one of the named taint keys; no node matching the selector at all (Medium). Pods not yet
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
      const ok = p.tolerates.some((k) => k === "" || input.tolerations.includes(k));
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
