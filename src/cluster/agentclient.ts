import type { KubeConfig, KubernetesObject, V1ConfigMap, V1Secret } from "@kubernetes/client-node";
import { COMPONENT_LABEL, ENCRYPTION_COMPONENT } from "../desired/encryption/secret.js";
import {
  MANAGED_BY_LABEL,
  MANAGED_BY_VALUE,
  OPERATOR_NAMESPACE,
  POLICY_LABEL,
  childName,
} from "../desired/metadata.js";
import { isAgentReport } from "../evidence/agentreports.js";
import type { Logger } from "../observability/logger.js";
import { CacheNotSyncedError, ResilientInformer } from "./informer.js";
import { RestClient } from "./rest.js";

/** The agent's field manager: its report is its own, distinct from the operator's children. */
export const AGENT_FIELD_MANAGER = "csp-operator-agent";

/**
 * Everything the node agent reads from and writes to the API server, and nothing else: watches of what the
 * operator renders in csp-system (labelled ConfigMaps, the encryption Secrets), its Node's uid, and the
 * server-side apply of its own report.
 */
export class AgentClient {
  private readonly configMaps: ResilientInformer<V1ConfigMap>;
  private readonly secrets: ResilientInformer<V1Secret>;
  private readonly rest: RestClient;

  constructor(kc: KubeConfig, log: Logger, onChange: () => void) {
    this.rest = new RestClient(kc);
    const base = `/api/v1/namespaces/${OPERATOR_NAMESPACE}`;
    const managed = `${MANAGED_BY_LABEL}=${MANAGED_BY_VALUE}`;
    this.configMaps = new ResilientInformer<V1ConfigMap>(
      kc,
      { path: `${base}/configmaps`, apiVersion: "v1", kind: "ConfigMap", labelSelector: managed },
      onChange,
      log,
    );
    this.secrets = new ResilientInformer<V1Secret>(
      kc,
      {
        path: `${base}/secrets`,
        apiVersion: "v1",
        kind: "Secret",
        labelSelector: `${managed},${COMPONENT_LABEL}=${ENCRYPTION_COMPONENT}`,
      },
      onChange,
      log,
    );
  }

  /** Starts both watches and resolves once both caches have synced (false when stopped first). */
  async start(): Promise<boolean> {
    await Promise.all([this.configMaps.start(), this.secrets.start()]);
    const synced = await Promise.all([this.configMaps.waitForSync(), this.secrets.waitForSync()]);
    return synced.every(Boolean);
  }

  async stop(): Promise<void> {
    await Promise.all([this.configMaps.stop(), this.secrets.stop()]);
  }

  /**
   * The operator's labelled ConfigMaps in csp-system (rendered audit policies, agents' reports). Throws
   * CacheNotSyncedError while the cache has not synced since its last failure.
   */
  configMapList(): readonly V1ConfigMap[] {
    return synced(this.configMaps).list();
  }

  /**
   * The audit Policy ConfigMaps the operator rendered, and only those: named `csp-<policy>-audit-policy`
   * after their own policy label (src/desired/auditpolicy.ts auditPolicyConfigMap) and not an agent report.
   * Every node's agent writes a labelled ConfigMap in csp-system (its report), so the labels alone would let
   * one node's agent hand every other node an audit Policy of its choosing. Throws like configMapList().
   */
  renderedAuditPolicies(): readonly V1ConfigMap[] {
    return this.configMapList().filter((cm) => isRenderedAuditPolicy(cm));
  }

  /** The encryption key-ring Secrets in csp-system; throws CacheNotSyncedError like configMapList(). */
  secretList(): readonly V1Secret[] {
    return synced(this.secrets).list();
  }

  /** The uid of a Node (throws when it cannot be read). */
  async nodeUid(node: string): Promise<string | undefined> {
    const n = await this.rest.request<{ metadata?: { uid?: string } }>(
      "GET",
      `/api/v1/nodes/${encodeURIComponent(node)}`,
    );
    return n.metadata?.uid;
  }

  /** Server-side applies the agent's report with the agent's own field manager. */
  async applyReport(report: V1ConfigMap): Promise<void> {
    await this.rest.request(
      "PATCH",
      `/api/v1/namespaces/${OPERATOR_NAMESPACE}/configmaps/${encodeURIComponent(report.metadata!.name!)}`,
      {
        query: { fieldManager: AGENT_FIELD_MANAGER, force: "true" },
        body: report,
        contentType: "application/apply-patch+yaml",
      },
    );
  }
}

/** True for the operator's rendered audit Policy ConfigMap of the policy its label names. */
export function isRenderedAuditPolicy(cm: V1ConfigMap): boolean {
  const policy = cm.metadata?.labels?.[POLICY_LABEL];
  return !!policy && !isAgentReport(cm) && cm.metadata?.name === childName(policy, "audit-policy");
}

function synced<T extends KubernetesObject>(informer: ResilientInformer<T>): ResilientInformer<T> {
  if (!informer.hasSynced) throw new CacheNotSyncedError([informer.description]);
  return informer;
}
