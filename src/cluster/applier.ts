import {
  CoreV1Api,
  CustomObjectsApi,
  PatchStrategy,
  setHeaderOptions,
  type KubeConfig,
  type KubernetesObject,
} from "@kubernetes/client-node";
import {
  GROUP,
  PLURAL,
  VERSION,
  type ClusterSecurityPolicy,
  type ClusterSecurityPolicyStatus,
} from "../api/v1alpha1/policy.js";
import { OWNED_FIELDS, type Child } from "../desired/children.js";
import { FIELD_MANAGER, OPERATOR_NAMESPACE } from "../api/vocabulary.js";
import { statusCode } from "./client.js";
import { EventAggregator } from "./events.js";

/**
 * A resourceVersion no stored object has: etcd starts at revision 1 and every write makes a new revision,
 * so the first object ever stored is at 2. As a server-side apply precondition it means "create only".
 */
export const CREATE_ONLY_RESOURCE_VERSION = "1";

/** Events about cluster-scoped objects live in `default`, as client-go's recorder puts them. */
const EVENT_NAMESPACE = "default";
import {
  ConflictError,
  DEFAULT_RETRY,
  DEFAULT_TIMEOUT_MS,
  InvalidError,
  NotFoundError,
  objectPath,
  resourcePath,
  RestClient,
  withRetry,
  type RetryPolicy,
} from "./rest.js";

/**
 * An apply carrying the observed `metadata.uid` onto an object deleted and re-created meanwhile is refused
 * with 422 "metadata.uid: field is immutable": not a spec the API server rejects, but a conflict with a
 * newer object (like replaceOwned's uid check), which the next reconcile judges from fresh caches. A
 * ConflictError (retried) for a 422 whose causes name metadata.uid and nothing else; undefined otherwise.
 */
export function replacedObjectConflict(err: unknown): ConflictError | undefined {
  if (!(err instanceof InvalidError) || err.code !== 422) return undefined;
  const body = err.body as { message?: string; details?: { causes?: { field?: string }[] } } | undefined;
  const causes = body?.details?.causes ?? [];
  if (causes.length === 0 || !causes.every((c) => c.field === "metadata.uid")) return undefined;
  return new ConflictError(err.code, {
    ...body,
    message: `the object was deleted and re-created since it was observed (${body?.message ?? "metadata.uid: field is immutable"}); not written`,
  });
}

/**
 * The only code that writes to the API server. Every write uses the `csp-operator` field manager;
 * children and shared objects are written with server-side apply.
 */
export class Applier {
  private readonly rest: RestClient;
  private readonly custom: CustomObjectsApi;
  private readonly core: CoreV1Api;
  private readonly events = new EventAggregator();

  /** `retry`: how 429s are retried (a fake clock in tests); every write stays within DEFAULT_TIMEOUT_MS. */
  constructor(
    kc: KubeConfig,
    private readonly retry: RetryPolicy = DEFAULT_RETRY,
  ) {
    this.rest = new RestClient(kc, { retry });
    this.custom = kc.makeApiClient(CustomObjectsApi);
    this.core = kc.makeApiClient(CoreV1Api);
  }

  /**
   * Server-side apply with force: the policy is the source of truth for the fields it declares. Another
   * field manager is used only to give a shared label back (see drift/podsecurity.ts). A child carries
   * the observed object's `metadata.uid`: the API server refuses the apply when the object at that name
   * is another one (deleted and re-created meanwhile).
   */
  async apply<T extends KubernetesObject>(obj: T, fieldManager: string = FIELD_MANAGER): Promise<T> {
    try {
      return await this.rest.request<T>("PATCH", objectPath(obj), {
        query: { fieldManager, force: "true" },
        body: obj,
        contentType: PatchStrategy.ServerSideApply,
      });
    } catch (err) {
      throw replacedObjectConflict(err) ?? err;
    }
  }

  /**
   * Creates an object that was observed missing, as a server-side apply that only creates: the apply carries
   * `metadata.resourceVersion: "1"`, a precondition no stored object can meet (etcd's first write is
   * revision 2), so the API server creates the object when the name is free and answers 409 Conflict when
   * anything sits there. Undefined in that case: someone put an object there meanwhile, and it is never
   * written (the next reconcile judges it from the caches). A plain apply would have taken it over.
   *
   * Why not POST: a created object's fields belong to an `Update` entry of the field manager, which later
   * applies never release, so a field dropped from the policy would stay on the child for ever. Checked
   * on a v1.36 API server: this apply creates with a single `csp-operator` `Apply` entry; a POST whose body
   * carries an `Apply` managedFields entry still gets an `Update` entry owning every field.
   */
  async create<T extends KubernetesObject>(obj: T): Promise<T | undefined> {
    try {
      return await this.apply<T>({
        ...obj,
        metadata: { ...obj.metadata, resourceVersion: CREATE_ONLY_RESOURCE_VERSION },
      });
    } catch (err) {
      if (err instanceof ConflictError) return undefined;
      throw err;
    }
  }

  /**
   * Replaces the owned fields of a child with an update (PUT). Needed when another manager ADDED fields
   * the operator never declared (e.g. an allow-all ingress rule on a deny policy): server-side apply
   * leaves fields owned by others in place, so apply alone cannot remove them. With `child.metadata.uid`
   * (the object observed), a live object with another UID (deleted and re-created meanwhile) is refused:
   * a ConflictError, nothing written.
   */
  async replaceOwned(child: Child, reclaim = false): Promise<void> {
    const live = await this.rest.request<KubernetesObject & Record<string, unknown>>(
      "GET",
      objectPath(child),
    );
    const expected = child.metadata.uid;
    if (expected && live.metadata?.uid !== expected)
      throw new ConflictError(409, {
        message: `${child.kind} ${child.metadata.namespace}/${child.metadata.name} was replaced (uid ${live.metadata?.uid ?? "none"}, expected ${expected}); not written`,
      });
    for (const field of OWNED_FIELDS[child.kind]) {
      if (child[field] === undefined) delete live[field];
      else live[field] = child[field];
    }
    live.metadata = {
      ...live.metadata,
      labels: { ...(live.metadata?.labels ?? {}), ...child.metadata.labels },
      // Reclaiming a child whose identity marks someone rewrote: the policy's reference, nobody else's.
      ...(reclaim ? { ownerReferences: child.metadata.ownerReferences } : {}),
    };
    await this.rest.request("PUT", objectPath(child), { query: { fieldManager: FIELD_MANAGER }, body: live });
  }

  /** Deletes an object, but only the exact one observed (uid precondition): never a newer namesake. */
  async delete(obj: KubernetesObject): Promise<void> {
    try {
      await this.rest.request("DELETE", objectPath(obj), {
        body: {
          apiVersion: "v1",
          kind: "DeleteOptions",
          propagationPolicy: "Background",
          ...(obj.metadata?.uid ? { preconditions: { uid: obj.metadata.uid } } : {}),
        },
      });
    } catch (err) {
      if (!(err instanceof NotFoundError)) throw err;
    }
  }

  /** Reads a live object; undefined when it does not exist. */
  async read(
    apiVersion: string,
    kind: string,
    namespace: string | undefined,
    name: string,
  ): Promise<KubernetesObject | undefined> {
    try {
      return await this.rest.request<KubernetesObject>(
        "GET",
        resourcePath(apiVersion, kind, namespace, name),
      );
    } catch (err) {
      if (err instanceof NotFoundError) return undefined;
      throw err;
    }
  }

  /**
   * Writes the status subresource. With `uid` (what reconcile passes: the policy object the status was
   * computed for), a JSON Patch whose first operation tests `/metadata/uid`: a policy deleted and re-created
   * meanwhile under the same name is refused (422) instead of getting the old object's status, whose
   * childUIDs are ownership proof. A merge patch carrying metadata.uid would not guard: the API server
   * ignores it. Returns false, nothing written, when that object is gone (404) or replaced (422 and the
   * policy under that name has another uid, or none); any other failure is thrown. Without `uid`, a JSON
   * merge patch of status (client-node would default to JSON-Patch).
   */
  async patchStatus(name: string, status: ClusterSecurityPolicyStatus, uid?: string): Promise<boolean> {
    const body =
      uid === undefined
        ? { status }
        : [
            { op: "test", path: "/metadata/uid", value: uid },
            { op: "add", path: "/status", value: status },
          ];
    try {
      // client-node's typed calls retry nothing: a 429 is retried here as RestClient retries it, within the
      // same time budget (tries and waits together), so a throttled write never holds a worker for long.
      await withRetry(
        "PATCH",
        () =>
          this.custom.patchClusterCustomObjectStatus(
            { group: GROUP, version: VERSION, plural: PLURAL, name, body, fieldManager: FIELD_MANAGER },
            setHeaderOptions(
              "Content-Type",
              uid === undefined ? PatchStrategy.MergePatch : PatchStrategy.JsonPatch,
            ),
          ),
        this.retry,
        DEFAULT_TIMEOUT_MS,
      );
      return true;
    } catch (err) {
      if (uid === undefined) throw err;
      const code = statusCode(err);
      if (code === 404) return false;
      // A failed test operation is a bare 422, as a status the schema refuses is: told apart by a read.
      if (code === 422 && (await this.policyUid(name)) !== uid) return false;
      throw err;
    }
  }

  /** The uid of the policy named `name` as the API server holds it now; undefined when there is none. */
  private async policyUid(name: string): Promise<string | undefined> {
    try {
      const o = (await withRetry(
        "GET",
        () => this.custom.getClusterCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, name }),
        this.retry,
        DEFAULT_TIMEOUT_MS,
      )) as ClusterSecurityPolicy;
      return o.metadata?.uid;
    } catch (err) {
      if (statusCode(err) === 404) return undefined;
      throw err;
    }
  }

  /**
   * Records a Kubernetes Event on the policy (`kubectl describe csp` shows it). A repeat of the same
   * event bumps the count of the first one instead of creating another (see EventAggregator).
   */
  async event(
    policy: ClusterSecurityPolicy,
    type: "Normal" | "Warning",
    reason: string,
    message: string,
  ): Promise<void> {
    const name = policy.metadata.name;
    const uid = policy.metadata.uid ?? "";
    const text = message.slice(0, 1024);
    const write = this.events.next(
      { uid, name, type, reason, message: text },
      {
        metadata: { generateName: `${name}.`, namespace: EVENT_NAMESPACE },
        involvedObject: {
          apiVersion: `${GROUP}/${VERSION}`,
          kind: "ClusterSecurityPolicy",
          name,
          ...(uid ? { uid } : {}),
        },
        reason,
        message: text,
        type,
        source: { component: FIELD_MANAGER },
        reportingComponent: FIELD_MANAGER,
        reportingInstance: process.env["POD_NAME"] ?? FIELD_MANAGER,
      },
      new Date(),
    );
    if (write.action === "patch") {
      try {
        await withRetry(
          "PATCH",
          () =>
            this.core.patchNamespacedEvent(
              { name: write.eventName, namespace: EVENT_NAMESPACE, body: write.patch },
              setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
            ),
          this.retry,
          DEFAULT_TIMEOUT_MS,
        );
        return;
      } catch (err) {
        if (statusCode(err) !== 404) throw err;
        this.events.forget(write.eventName); // expired (event TTL): record it anew
        return this.event(policy, type, reason, message);
      }
    }
    const created = await withRetry(
      "POST",
      () => this.core.createNamespacedEvent({ namespace: EVENT_NAMESPACE, body: write.body }),
      this.retry,
      DEFAULT_TIMEOUT_MS,
    );
    if (created.metadata?.name) write.remember(created.metadata.name);
  }
}

export { OPERATOR_NAMESPACE };
