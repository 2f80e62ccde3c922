import type { KubeConfig, KubernetesListObject, KubernetesObject } from "@kubernetes/client-node";
import type { EncryptionSecret } from "../desired/encryptionstate.js";
import { FIELD_MANAGER, OPERATOR_NAMESPACE } from "../desired/metadata.js";
import { IDENTITY_LEASE_LABEL } from "../evidence/apiserver.js";
import { errorMessage, statusCode } from "./client.js";
import { RestClient } from "./rest.js";

/** The encryption Secret as read back: data stays base64, as the API returns it. */
export interface StoredSecret {
  metadata: {
    name: string;
    resourceVersion?: string;
    labels?: Record<string, string>;
    ownerReferences?: { uid?: string }[];
  };
  data?: Record<string, string>;
}

/** API server identities are renewed every 10 s; one silent for this long is gone. */
const IDENTITY_FRESH_MS = 5 * 60_000;

/**
 * The encryption area's I/O: its Secret (read fresh on every reconcile, never from a cache, so a restart
 * resumes from what is stored), the API servers' /metrics and identity Leases, and the rewrite of stored
 * objects. Nothing here logs or returns key material except the Secret's data to its caller.
 */
export class EncryptionClient {
  private readonly rest: RestClient;

  constructor(kc: KubeConfig) {
    this.rest = new RestClient(kc);
  }

  async readSecret(name: string): Promise<StoredSecret | undefined> {
    try {
      return await this.rest.request<StoredSecret>(
        "GET",
        `/api/v1/namespaces/${OPERATOR_NAMESPACE}/secrets/${encodeURIComponent(name)}`,
      );
    } catch (err) {
      if (statusCode(err) === 404) return undefined;
      throw err;
    }
  }

  /**
   * Creates the Secret, or replaces it only if it is still at `resourceVersion` (optimistic concurrency:
   * a second operator instance cannot overwrite a key ring it has not read).
   */
  async writeSecret(secret: EncryptionSecret, resourceVersion: string | undefined): Promise<void> {
    const base = `/api/v1/namespaces/${OPERATOR_NAMESPACE}/secrets`;
    const query = { fieldManager: FIELD_MANAGER };
    if (resourceVersion === undefined) {
      await this.rest.request("POST", base, { query, body: secret });
      return;
    }
    const body = { ...secret, metadata: { ...secret.metadata, resourceVersion } };
    await this.rest.request("PUT", `${base}/${encodeURIComponent(secret.metadata.name)}`, { query, body });
  }

  /** The /metrics text of the API server the kubeconfig reaches. */
  metrics(): Promise<string> {
    return this.rest.text("/metrics");
  }

  /** Names of the live kube-apiserver identity Leases; undefined when they may not be read. */
  async apiServerIdentities(now: Date): Promise<string[] | undefined> {
    try {
      const list = await this.rest.request<
        KubernetesListObject<KubernetesObject & { spec?: { renewTime?: string } }>
      >("GET", "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases", {
        query: { labelSelector: `${IDENTITY_LEASE_LABEL}=kube-apiserver` },
      });
      return list.items
        .filter((l) => {
          const renewed = Date.parse(l.spec?.renewTime ?? "");
          return Number.isNaN(renewed) || now.getTime() - renewed < IDENTITY_FRESH_MS;
        })
        .map((l) => l.metadata?.name ?? "")
        .filter((n) => n !== "")
        .sort();
    } catch (err) {
      if (statusCode(err) === 403) return undefined;
      throw err;
    }
  }

  /**
   * Names of the control-plane nodes (label node-role.kubernetes.io/control-plane), where the agents must
   * deliver the configuration; undefined when nodes may not be listed.
   */
  async controlPlaneNodes(): Promise<string[] | undefined> {
    try {
      const list = await this.rest.request<KubernetesListObject<KubernetesObject>>("GET", "/api/v1/nodes", {
        query: { labelSelector: "node-role.kubernetes.io/control-plane" },
      });
      return list.items
        .map((n) => n.metadata?.name ?? "")
        .filter((n) => n !== "")
        .sort();
    } catch (err) {
      if (statusCode(err) === 403) return undefined;
      throw err;
    }
  }

  /**
   * The distinct addresses of the API servers behind Service default/kubernetes (its EndpointSlices, or
   * its Endpoints where slices are not served); undefined when neither may be read.
   */
  async apiServerEndpoints(): Promise<string[] | undefined> {
    try {
      const slices = await this.rest.request<{ items: { endpoints?: { addresses?: string[] }[] }[] }>(
        "GET",
        "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices",
        { query: { labelSelector: "kubernetes.io/service-name=kubernetes" } },
      );
      const addrs = slices.items.flatMap((s) => (s.endpoints ?? []).flatMap((e) => e.addresses ?? []));
      if (addrs.length > 0) return [...new Set(addrs)].sort();
    } catch (err) {
      if (statusCode(err) !== 403 && statusCode(err) !== 404) throw err;
    }
    try {
      const ep = await this.rest.request<{ subsets?: { addresses?: { ip: string }[] }[] }>(
        "GET",
        "/api/v1/namespaces/default/endpoints/kubernetes",
      );
      return [...new Set((ep.subsets ?? []).flatMap((s) => (s.addresses ?? []).map((a) => a.ip)))].sort();
    } catch (err) {
      if (statusCode(err) === 403 || statusCode(err) === 404) return undefined;
      throw err;
    }
  }

  /**
   * Rewrites every stored object of `resources` (EncryptionConfiguration names: `secrets`, or
   * `<resource>.<group>`) by reading it and writing it back unchanged. The API server reports an object
   * read with a key that is not the primary as stale, so the unchanged update is stored again, encrypted
   * with the primary. An object changed or deleted in between was written by someone else (and so
   * encrypted with the primary already): skipped. Returns the number of objects written.
   */
  async rewrite(resources: readonly string[]): Promise<number> {
    let written = 0;
    for (const resource of resources) {
      const { path, apiVersion, kind } = await this.collectionOf(resource);
      let cont: string | undefined;
      do {
        const page: KubernetesListObject<KubernetesObject> = await this.rest.request("GET", path, {
          query: { limit: "250", ...(cont ? { continue: cont } : {}) },
        });
        for (const item of page.items) {
          const ns = item.metadata?.namespace;
          const name = item.metadata?.name ?? "";
          const base = ns ? path.replace(/\/([^/]+)$/, `/namespaces/${encodeURIComponent(ns)}/$1`) : path;
          try {
            await this.rest.request("PUT", `${base}/${encodeURIComponent(name)}`, {
              query: { fieldManager: FIELD_MANAGER },
              body: { ...item, apiVersion, kind },
            });
            written++;
          } catch (err) {
            const code = statusCode(err);
            if (code === 409 || code === 404) continue;
            throw new Error(`rewriting ${resource} ${ns ? `${ns}/` : ""}${name}: ${errorMessage(err)}`, {
              cause: err,
            });
          }
        }
        cont = page.metadata?._continue;
      } while (cont);
    }
    return written;
  }

  /** The list path of an EncryptionConfiguration resource name; wildcards are refused (named). */
  private async collectionOf(resource: string): Promise<{ path: string; apiVersion: string; kind: string }> {
    if (resource.includes("*"))
      throw new Error(
        `spec.encryption.resources: ${resource}: wildcards cannot be rewritten by the operator; list the resources`,
      );
    const dot = resource.indexOf(".");
    const plural = dot < 0 ? resource : resource.slice(0, dot);
    const group = dot < 0 ? "" : resource.slice(dot + 1);
    const groupVersion =
      group === ""
        ? "v1"
        : (await this.rest.request<{ preferredVersion?: { groupVersion?: string } }>("GET", `/apis/${group}`))
            .preferredVersion?.groupVersion;
    if (!groupVersion) throw new Error(`spec.encryption.resources: ${resource}: API group not served`);
    const prefix = group === "" ? "/api/v1" : `/apis/${groupVersion}`;
    const discovery = await this.rest.request<{ resources?: { name: string; kind: string }[] }>(
      "GET",
      prefix,
    );
    const kind = discovery.resources?.find((r) => r.name === plural)?.kind;
    if (!kind) throw new Error(`spec.encryption.resources: ${resource}: no such resource in ${groupVersion}`);
    return { path: `${prefix}/${plural}`, apiVersion: groupVersion, kind };
  }
}
