import type { KubeConfig } from "@kubernetes/client-node";
import type { NodeLabels, PodPlacement, Toleration } from "../hygiene/nodeisolation.js";
import { matches, NODE_SELECTOR_ANNOTATION } from "../hygiene/nodeisolation.js";
import { ApiError, RestClient } from "./rest.js";

interface RawPod {
  metadata?: {
    name?: string;
    namespace?: string;
    ownerReferences?: { kind?: string; name?: string; uid?: string; controller?: boolean }[];
  };
  spec?: { nodeName?: string; tolerations?: Toleration[] };
}

/** A pod's placement; `daemonSet` is only a claim here (its controller reference), checked by the reader. */
function placement(p: RawPod): (PodPlacement & { owner?: { name: string; uid: string } }) | undefined {
  const m = p.metadata;
  if (!m?.name || !m.namespace) return undefined;
  const ref = (m.ownerReferences ?? []).find(
    (o) => o.kind === "DaemonSet" && o.controller === true && o.name && o.uid,
  );
  return {
    namespace: m.namespace,
    name: m.name,
    nodeName: p.spec?.nodeName ?? "",
    daemonSet: false,
    tolerations: (p.spec?.tolerations ?? []).map((t) => ({
      ...(t.key !== undefined ? { key: String(t.key) } : {}),
      ...(t.operator !== undefined ? { operator: String(t.operator) } : {}),
      ...(t.value !== undefined ? { value: String(t.value) } : {}),
      ...(t.effect !== undefined ? { effect: String(t.effect) } : {}),
    })),
    ...(ref ? { owner: { name: ref.name!, uid: ref.uid! } } : {}),
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
    return pods.flatMap((p) => {
      const pl = placement(p);
      if (!pl) return [];
      const { owner: _owner, ...rest } = pl;
      return [rest];
    });
  }

  /**
   * The pods bound to one node, from a field-selected LIST across namespaces. A pod counts as a
   * DaemonSet's only when its controller reference names a DaemonSet that exists with that uid and whose
   * node selector admits the node: a bare Pod with a forged reference to a decoy DaemonSet is not one.
   */
  async podsOnNode(node: NodeLabels): Promise<PodPlacement[]> {
    const pods = await this.list<RawPod>("/api/v1/pods", { fieldSelector: `spec.nodeName=${node.name}` });
    const daemonSets = new Map<string, { uid?: string; nodeSelector?: Record<string, string> } | null>();
    const out: PodPlacement[] = [];
    for (const p of pods) {
      const pl = placement(p);
      if (!pl) continue;
      const { owner, ...rest } = pl;
      if (owner) {
        const key = `${rest.namespace}/${owner.name}`;
        if (!daemonSets.has(key)) daemonSets.set(key, await this.daemonSet(rest.namespace, owner.name));
        const ds = daemonSets.get(key);
        rest.daemonSet = !!ds && ds.uid === owner.uid && matches(ds.nodeSelector ?? {}, node.labels);
      }
      out.push(rest);
    }
    return out;
  }

  private async daemonSet(
    namespace: string,
    name: string,
  ): Promise<{ uid?: string; nodeSelector?: Record<string, string> } | null> {
    try {
      const ds = await this.rest.request<{
        metadata?: { uid?: string };
        spec?: { template?: { spec?: { nodeSelector?: Record<string, string> } } };
      }>(
        "GET",
        `/apis/apps/v1/namespaces/${encodeURIComponent(namespace)}/daemonsets/${encodeURIComponent(name)}`,
      );
      return {
        ...(ds.metadata?.uid ? { uid: ds.metadata.uid } : {}),
        ...(ds.spec?.template?.spec?.nodeSelector
          ? { nodeSelector: ds.spec.template.spec.nodeSelector }
          : {}),
      };
    } catch (err) {
      if (err instanceof ApiError && err.code === 404) return null;
      throw err;
    }
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

  /**
   * Server-side applies the node-selector annotation on a namespace under `manager` (one per policy),
   * without forcing over another manager: a second policy wanting another value gets a 409.
   */
  async setNodeSelector(namespace: string, value: string, manager: string): Promise<void> {
    await this.applyAnnotations(namespace, manager, { [NODE_SELECTOR_ANNOTATION]: value });
  }

  /**
   * Releases what `manager` applied on a namespace (an apply of nothing): the annotation goes unless
   * another manager (another policy, a person) owns it too. A namespace that is gone is nothing to release.
   */
  async releaseNodeSelector(namespace: string, manager: string): Promise<void> {
    try {
      await this.applyAnnotations(namespace, manager, undefined);
    } catch (err) {
      if (!(err instanceof ApiError && err.code === 404)) throw err;
    }
  }

  private async applyAnnotations(
    namespace: string,
    manager: string,
    annotations: Record<string, string> | undefined,
  ): Promise<void> {
    await this.rest.request("PATCH", `/api/v1/namespaces/${encodeURIComponent(namespace)}`, {
      query: { fieldManager: manager, force: "false" },
      contentType: "application/apply-patch+yaml",
      body: {
        apiVersion: "v1",
        kind: "Namespace",
        metadata: { name: namespace, ...(annotations ? { annotations } : {}) },
      },
    });
  }
}
