import type { KubeConfig, KubernetesListObject, KubernetesObject } from "@kubernetes/client-node";
import { MAX_FAILED_NAMES, type RewriteProgress } from "../desired/encryption/rotation.js";
import type { EncryptionSecret } from "../desired/encryption/secret.js";
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

/** Objects listed per page during a rewrite; progress is persisted after each page. */
const REWRITE_PAGE = 250;
/** Failures described (with their status) in a rewrite's result; all are counted. */
const FAILURES_SHOWN = 5;

/** `namespace/name`, or `name` for a cluster-scoped object: the order the API server lists objects in. */
function objectKeyOf(o: KubernetesObject): string {
  const ns = o.metadata?.namespace;
  return ns ? `${ns}/${o.metadata?.name ?? ""}` : (o.metadata?.name ?? "");
}

/** One object to rewrite. */
export interface RewriteItem {
  key: string;
  object: KubernetesObject;
}

/** The requests a rewrite makes; errors carry the HTTP status (statusCode). */
export interface RewriteIO {
  list(resource: string, cont: string | undefined): Promise<{ items: RewriteItem[]; continue?: string }>;
  get(resource: string, key: string): Promise<RewriteItem | undefined>;
  put(resource: string, item: RewriteItem): Promise<void>;
}

/** One object that could not be rewritten, with the API server's status code and message. */
export interface RewriteFailure {
  resource: string;
  object: string;
  code: number | undefined;
  message: string;
}

export interface RewriteResult {
  /** Objects written in this run. */
  written: number;
  /** Every object of every resource is rewritten (or was changed or deleted by someone else meanwhile). */
  complete: boolean;
  /** Objects that failed in this run: all counted, the first few described. */
  failed: number;
  failures: RewriteFailure[];
  /** At least one failure was 403 Forbidden. */
  forbidden: boolean;
  /** Where to resume (already handed to `save`). */
  progress: RewriteProgress;
}

/**
 * The rewrite loop, resumable and tolerant: it starts from `start` (resources done, the last object handled
 * and the list position after it), saves its progress after every page, goes on past an object that cannot
 * be updated (counted and named, its status code kept) and lists again from the top, skipping what it
 * already handled, when a continue token expired (410 Gone). A resource whose pass ended with failures is
 * retried object by object next time when every failed name is known, and listed again otherwise. An
 * object changed (409) or deleted (404) meanwhile was written by someone else, hence already re-encrypted.
 * A failed LIST throws (with its status code) after saving the progress so far.
 */
export async function runRewrite(
  io: RewriteIO,
  resources: readonly string[],
  start: RewriteProgress,
  save: (progress: RewriteProgress) => Promise<void>,
): Promise<RewriteResult> {
  let progress: RewriteProgress = { ...start, done: [...start.done] };
  let written = 0;
  let failed = 0;
  let forbidden = false;
  const failures: RewriteFailure[] = [];
  const attempt = async (resource: string, item: RewriteItem): Promise<boolean> => {
    try {
      await io.put(resource, item);
      written++;
      return true;
    } catch (err) {
      const code = statusCode(err);
      if (code === 404 || code === 409) return true;
      failed++;
      if (code === 403) forbidden = true;
      if (failures.length < FAILURES_SHOWN)
        failures.push({ resource, object: item.key, code, message: errorMessage(err) });
      return false;
    }
  };
  for (const resource of resources) {
    if (progress.done.includes(resource)) continue;
    if (progress.resource !== resource) progress = { target: progress.target, done: progress.done, resource };
    if (progress.failedOnly && progress.failed) {
      // A finished pass left these few objects behind: retry exactly them.
      const still: string[] = [];
      for (const key of progress.failed) {
        const item = await io.get(resource, key);
        if (item && !(await attempt(resource, item))) still.push(key);
      }
      progress =
        still.length === 0
          ? { target: progress.target, done: [...progress.done, resource] }
          : { ...progress, failed: still, failedCount: still.length };
      await save(progress);
      continue;
    }
    let cont = progress.continue;
    let expiredInARow = 0;
    let passFailed = progress.failedCount ?? 0;
    const passNames = [...(progress.failed ?? [])];
    for (;;) {
      let page: Awaited<ReturnType<RewriteIO["list"]>>;
      try {
        page = await io.list(resource, cont);
      } catch (err) {
        if (statusCode(err) === 410 && cont !== undefined && ++expiredInARow <= 3) {
          cont = undefined; // the list expired: start again from the top, skipping what was handled
          continue;
        }
        await save(progress);
        throw err;
      }
      for (const item of page.items) {
        if (progress.after !== undefined && item.key <= progress.after) continue;
        if (!(await attempt(resource, item))) {
          passFailed++;
          if (passNames.length < MAX_FAILED_NAMES) passNames.push(item.key);
        }
        progress = { ...progress, after: item.key };
      }
      expiredInARow = 0;
      cont = page.continue;
      const next: RewriteProgress = { target: progress.target, done: progress.done, resource };
      if (progress.after !== undefined) next.after = progress.after;
      if (cont !== undefined) next.continue = cont;
      if (passFailed > 0) {
        next.failed = passNames;
        next.failedCount = passFailed;
      }
      progress = next;
      if (cont === undefined) break;
      await save(progress);
    }
    // The pass is over.
    if (passFailed === 0) progress = { target: progress.target, done: [...progress.done, resource] };
    else if (passFailed <= passNames.length)
      progress = {
        target: progress.target,
        done: progress.done,
        resource,
        failed: passNames,
        failedCount: passFailed,
        failedOnly: true,
      };
    else progress = { target: progress.target, done: progress.done, resource }; // too many to name: list again
    await save(progress);
  }
  const complete = resources.every((r) => progress.done.includes(r));
  return { written, complete, failed, failures, forbidden, progress };
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
   * `<resource>.<group>`) by reading it and writing it back unchanged, resuming from `start` (see
   * runRewrite): the API server stores the unchanged update again, encrypted with the configuration's
   * first provider. `save` is called with the progress after every page, to be persisted.
   */
  rewrite(
    resources: readonly string[],
    start: RewriteProgress,
    save: (progress: RewriteProgress) => Promise<void>,
  ): Promise<RewriteResult> {
    const collections = new Map<string, { path: string; apiVersion: string; kind: string }>();
    const collection = async (resource: string) => {
      let c = collections.get(resource);
      if (!c) collections.set(resource, (c = await this.collectionOf(resource)));
      return c;
    };
    const itemPath = (path: string, key: string) => {
      const slash = key.indexOf("/");
      if (slash < 0) return `${path}/${encodeURIComponent(key)}`;
      const ns = key.slice(0, slash);
      return `${path.replace(/\/([^/]+)$/, `/namespaces/${encodeURIComponent(ns)}/$1`)}/${encodeURIComponent(key.slice(slash + 1))}`;
    };
    const io: RewriteIO = {
      list: async (resource, cont) => {
        const { path } = await collection(resource);
        const page: KubernetesListObject<KubernetesObject> = await this.rest.request("GET", path, {
          query: { limit: String(REWRITE_PAGE), ...(cont ? { continue: cont } : {}) },
        });
        return {
          items: page.items.map((o) => ({ key: objectKeyOf(o), object: o })),
          ...(page.metadata?._continue ? { continue: page.metadata._continue } : {}),
        };
      },
      get: async (resource, key) => {
        const { path } = await collection(resource);
        try {
          return { key, object: await this.rest.request<KubernetesObject>("GET", itemPath(path, key)) };
        } catch (err) {
          if (statusCode(err) === 404) return undefined;
          throw err;
        }
      },
      put: async (resource, item) => {
        const { path, apiVersion, kind } = await collection(resource);
        await this.rest.request("PUT", itemPath(path, item.key), {
          query: { fieldManager: FIELD_MANAGER },
          body: { ...item.object, apiVersion, kind },
        });
      },
    };
    return runRewrite(io, resources, start, save);
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
