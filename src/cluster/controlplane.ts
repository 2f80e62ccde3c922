import type { KubeConfig } from "@kubernetes/client-node";
import type { ControlPlaneObservation, NodeSummary, Problem } from "../cis/gather/incluster.js";
import { sampleNodes } from "../cis/gather/incluster.js";
import { PolicyObjectReader, problemOf, type PolicyObjects } from "./cispolicies.js";
import type { Logger } from "../observability/logger.js";
import { errorMessage, statusCode } from "./client.js";
import { ResilientInformer } from "./informer.js";
import { RestClient } from "./rest.js";

/** Where the API server's static pod shows up as a mirror pod (kubeadm, kops, kubespray, k3s-less setups). */
export const APISERVER_NAMESPACE = "kube-system";
export const APISERVER_SELECTOR = "component=kube-apiserver";
/** The control-plane components whose mirror pods are checked, by their `component` label. */
export const CONTROL_PLANE_COMPONENTS = [
  "kube-apiserver",
  "kube-controller-manager",
  "kube-scheduler",
  "etcd",
] as const;
export type ControlPlaneComponent = (typeof CONTROL_PLANE_COMPONENTS)[number];
/** One watch for the mirror pods of every checked component (kubeadm labels them `component=<name>`). */
export const CONTROL_PLANE_SELECTOR = `component in (${CONTROL_PLANE_COMPONENTS.join(",")})`;

/** Bounds of the kubelet checks: configz is a proxied request to each kubelet, so only a sample is read. */
export interface KubeletLimits {
  /** Nodes whose configz is read per reconcile. */
  maxNodes: number;
  /** Per-request timeout of a configz read (a dead kubelet must not hold the reconcile). */
  timeoutMs: number;
  /** configz reads in flight at once. */
  concurrency: number;
  /** How long one read of the kubelets serves later reconciles (0: read every time). */
  reuseMs: number;
  /**
   * How long one scan of every Pod (CIS 5.4.1) serves later reconciles; default 5 x reuseMs (5 minutes):
   * it is the costliest read here, and the area's own recheck comes every 10 minutes anyway.
   */
  podScanReuseMs?: number;
}

export const DEFAULT_KUBELET_LIMITS: KubeletLimits = {
  maxNodes: 10,
  timeoutMs: 10_000,
  concurrency: 4,
  reuseMs: 60_000,
};

/** The fields of a NodeList read here, as the API sends them (raw JSON, not client-node models). */
interface RawNodeList {
  metadata?: { continue?: string };
  items: {
    metadata?: { name?: string; labels?: Record<string, string> };
    status?: { nodeInfo?: { kubeletVersion?: string } };
  }[];
}

/**
 * The cluster side of the control-plane checks. kube-apiserver pods are watched (an informer on labelled
 * pods in kube-system: few objects, and a changed manifest should show at once). Nodes are listed and
 * configz read on each reconcile instead: a kubelet's configuration cannot be watched, and caching every
 * Node (large objects, frequent status updates) would cost more than one paged list per resync.
 */
export class ControlPlaneReader {
  readonly pods: ResilientInformer;
  private readonly rest: RestClient;
  private lastKubelets: { at: number; value: NonNullable<ControlPlaneObservation["kubelet"]> } | undefined;
  private readonly policy: PolicyObjectReader;

  constructor(
    kc: KubeConfig,
    log: Logger,
    onPodChange: () => void,
    private readonly limits: KubeletLimits = DEFAULT_KUBELET_LIMITS,
  ) {
    this.rest = new RestClient(kc);
    this.policy = new PolicyObjectReader(this.rest, limits.podScanReuseMs ?? 5 * limits.reuseMs);
    this.pods = new ResilientInformer(
      kc,
      {
        path: `/api/v1/namespaces/${APISERVER_NAMESPACE}/pods`,
        apiVersion: "v1",
        kind: "Pod",
        labelSelector: CONTROL_PLANE_SELECTOR,
      },
      onPodChange,
      log,
    );
  }

  /** The API server pods as cached, or why they cannot be known (e.g. Forbidden without the Role). */
  apiServerPods(): NonNullable<ControlPlaneObservation["apiServer"]> {
    return this.componentPods("kube-apiserver");
  }

  /** The mirror pods labelled `component=<component>` as cached, by name, or why they cannot be known. */
  componentPods(component: ControlPlaneComponent): NonNullable<ControlPlaneObservation["apiServer"]> {
    const err = this.pods.lastError;
    if (err !== undefined) {
      return {
        failed: problemOf(
          err,
          `listing pods labelled component=${component} in ${APISERVER_NAMESPACE}`,
          `list/watch on pods in ${APISERVER_NAMESPACE}`,
        ),
      };
    }
    if (!this.pods.hasSynced) {
      return { failed: { reason: "NotSynced", message: `the ${component} pod cache is not filled yet` } };
    }
    const pods = [...this.pods.list()]
      .filter((p) => p.metadata?.labels?.component === component)
      .sort((a, b) => (a.metadata?.name ?? "").localeCompare(b.metadata?.name ?? ""));
    return { pods };
  }

  /**
   * The sampled kubelets' configz, read at most once per `limits.reuseMs`: every policy's reconcile (and
   * every watch event) asks, and each read costs one proxied request per sampled node.
   */
  async kubelets(now = Date.now()): Promise<NonNullable<ControlPlaneObservation["kubelet"]>> {
    if (this.lastKubelets && now - this.lastKubelets.at < this.limits.reuseMs) return this.lastKubelets.value;
    const value = await this.readKubelets();
    this.lastKubelets = { at: now, value };
    return value;
  }

  /** Lists nodes (paged), samples them, and reads each sampled kubelet's configz through the API server. */
  private async readKubelets(): Promise<NonNullable<ControlPlaneObservation["kubelet"]>> {
    const summaries: NodeSummary[] = [];
    let cont: string | undefined;
    try {
      do {
        const page = await this.rest.request<RawNodeList>("GET", "/api/v1/nodes", {
          query: { limit: "500", ...(cont ? { continue: cont } : {}) },
          timeoutMs: 30_000,
        });
        for (const n of page.items) {
          summaries.push({
            name: n.metadata?.name ?? "",
            ...(n.metadata?.labels ? { labels: n.metadata.labels } : {}),
            ...(n.status?.nodeInfo?.kubeletVersion
              ? { kubeletVersion: n.status.nodeInfo.kubeletVersion }
              : {}),
          });
        }
        cont = page.metadata?.continue;
      } while (cont);
    } catch (err) {
      return { failed: problemOf(err, "listing nodes", "list on nodes") };
    }
    const names = sampleNodes(summaries, this.limits.maxNodes);
    const nodes: { name: string; configz: { body: unknown } | { failed: Problem } }[] = [];
    for (let i = 0; i < names.length; i += this.limits.concurrency) {
      const batch = names.slice(i, i + this.limits.concurrency);
      nodes.push(
        ...(await Promise.all(batch.map(async (name) => ({ name, configz: await this.configz(name) })))),
      );
    }
    return { totalNodes: summaries.length, nodes };
  }

  /** What the 5.x checks need beyond the caches; see {@link PolicyObjectReader.policyObjects}. */
  policyObjects(opts: { secretEnv?: boolean } = {}): Promise<PolicyObjects> {
    return this.policy.policyObjects(opts);
  }

  private async configz(node: string): Promise<{ body: unknown } | { failed: Problem }> {
    try {
      const body = await this.rest.request<unknown>(
        "GET",
        `/api/v1/nodes/${encodeURIComponent(node)}/proxy/configz`,
        { timeoutMs: this.limits.timeoutMs },
      );
      return { body };
    } catch (err) {
      const code = statusCode(err);
      if (code === 403) {
        return {
          failed: {
            reason: "Forbidden",
            message: "reading configz is forbidden (the operator needs get on nodes/proxy; see config/rbac)",
          },
        };
      }
      return {
        failed: {
          reason: "KubeletUnreachable",
          message: `configz could not be read through the API server: ${code ? `HTTP ${code}: ` : ""}${errorMessage(err)}`,
        },
      };
    }
  }

  start(): Promise<void> {
    return this.pods.start();
  }

  stop(): Promise<void> {
    return this.pods.stop();
  }
}
