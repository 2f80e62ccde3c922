import type { KubeConfig } from "@kubernetes/client-node";
import type { NodeLabels, PodPlacement } from "../hygiene/nodeisolation.js";
import { NODE_SELECTOR_ANNOTATION } from "../hygiene/nodeisolation.js";
import { RestClient } from "./rest.js";

/**
 * The field manager of the node-selector annotation. Not `csp-operator`: the namespace labels are applied
 * under that manager by the reconcile, and an apply under the same manager without this annotation would
 * remove it again; a manager of its own keeps the two writes from undoing each other.
 */
export const NODE_ISOLATION_FIELD_MANAGER = "csp-operator-node-isolation";

interface RawPod {
  metadata?: {
    name?: string;
    namespace?: string;
    ownerReferences?: { kind?: string; controller?: boolean }[];
  };
  spec?: { nodeName?: string; tolerations?: { key?: string; operator?: string }[] };
}

function placement(p: RawPod): PodPlacement | undefined {
  const m = p.metadata;
  if (!m?.name || !m.namespace) return undefined;
  return {
    namespace: m.namespace,
    name: m.name,
    nodeName: p.spec?.nodeName ?? "",
    daemonSet: (m.ownerReferences ?? []).some((o) => o.kind === "DaemonSet" && o.controller === true),
    tolerates: (p.spec?.tolerations ?? []).map((t) => t.key ?? ""),
  };
}

/** Reads for spec.nodeIsolation, only ever made while a policy uses it (an idle operator lists no Pod). */
export class NodeIsolationReader {
  private readonly rest: RestClient;

  constructor(kc: KubeConfig) {
    this.rest = new RestClient(kc, { defaultTimeoutMs: 15_000 });
  }

  private async list<T>(path: string, query: Record<string, string> = {}): Promise<T[]> {
    const out: T[] = [];
    let cont: string | undefined;
    do {
      const page = await this.rest.request<{ items?: T[]; metadata?: { continue?: string } }>("GET", path, {
        query: { ...query, limit: "500", ...(cont ? { continue: cont } : {}) },
      });
      out.push(...(page.items ?? []));
      cont = page.metadata?.continue || undefined;
    } while (cont);
    return out;
  }

  async nodes(): Promise<NodeLabels[]> {
    const nodes = await this.list<{ metadata?: { name?: string; labels?: Record<string, string> } }>(
      "/api/v1/nodes",
    );
    return nodes.flatMap((n) =>
      n.metadata?.name ? [{ name: n.metadata.name, labels: n.metadata.labels ?? {} }] : [],
    );
  }

  async podsInNamespace(namespace: string): Promise<PodPlacement[]> {
    const pods = await this.list<RawPod>(`/api/v1/namespaces/${encodeURIComponent(namespace)}/pods`);
    return pods.flatMap((p) => placement(p) ?? []);
  }

  /** The pods bound to one node, from a field-selected LIST across namespaces. */
  async podsOnNode(node: string): Promise<PodPlacement[]> {
    const pods = await this.list<RawPod>("/api/v1/pods", { fieldSelector: `spec.nodeName=${node}` });
    return pods.flatMap((p) => placement(p) ?? []);
  }

  /**
   * Whether every kube-apiserver mirror pod (kube-system, component=kube-apiserver) enables the
   * PodNodeSelector admission plugin; undefined when no such pod is visible (managed control planes).
   */
  async podNodeSelectorEnabled(): Promise<boolean | undefined> {
    const pods = await this.list<{ spec?: { containers?: { command?: string[]; args?: string[] }[] } }>(
      "/api/v1/namespaces/kube-system/pods",
      { labelSelector: "component=kube-apiserver" },
    );
    if (pods.length === 0) return undefined;
    return pods.every((p) =>
      (p.spec?.containers ?? []).some((c) =>
        [...(c.command ?? []), ...(c.args ?? [])].some(
          (a) =>
            a.startsWith("--enable-admission-plugins=") &&
            a.split("=")[1]!.split(",").includes("PodNodeSelector"),
        ),
      ),
    );
  }

  /** Server-side applies the node-selector annotation on a namespace, without forcing over another manager. */
  async setNodeSelector(namespace: string, value: string): Promise<void> {
    await this.rest.request("PATCH", `/api/v1/namespaces/${encodeURIComponent(namespace)}`, {
      query: { fieldManager: NODE_ISOLATION_FIELD_MANAGER, force: "false" },
      contentType: "application/apply-patch+yaml",
      body: {
        apiVersion: "v1",
        kind: "Namespace",
        metadata: { name: namespace, annotations: { [NODE_SELECTOR_ANNOTATION]: value } },
      },
    });
  }
}
