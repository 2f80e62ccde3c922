import type { KubeConfig, V1ConfigMap } from "@kubernetes/client-node";
import { FIELD_MANAGER, OPERATOR_NAMESPACE } from "../api/vocabulary.js";
import { RestClient } from "./rest.js";

/**
 * Where the operator keeps the file integrity baselines it trusts, one ConfigMap per node in csp-system
 * (src/controller/fileintegrity.ts builds and reads them; the operator's cache already watches managed
 * ConfigMaps there, so reading costs nothing). Written by server-side apply under the operator's field
 * manager; the node agents cannot write them (config/agent/report_admission_policy.yaml lets an agent
 * write only its own report).
 */
export class IntegrityBaselineStore {
  private readonly rest: RestClient;

  constructor(kc: KubeConfig) {
    this.rest = new RestClient(kc);
  }

  async apply(cm: V1ConfigMap): Promise<void> {
    await this.rest.request(
      "PATCH",
      `/api/v1/namespaces/${OPERATOR_NAMESPACE}/configmaps/${encodeURIComponent(cm.metadata!.name!)}`,
      {
        query: { fieldManager: FIELD_MANAGER, force: "true" },
        body: cm,
        contentType: "application/apply-patch+yaml",
      },
    );
  }
}
