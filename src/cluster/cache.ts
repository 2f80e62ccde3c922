import type {
  KubeConfig,
  KubernetesObject,
  V1ClusterRole,
  V1ClusterRoleBinding,
  V1ConfigMap,
  V1Namespace,
  V1NetworkPolicy,
  V1Role,
  V1RoleBinding,
  V1ServiceAccount,
} from "@kubernetes/client-node";
import {
  API_VERSION,
  GROUP,
  KIND,
  PLURAL,
  VERSION,
  type ClusterSecurityPolicy,
} from "../api/v1alpha1/policy.js";
import {
  FIELD_MANAGER,
  MANAGED_BY_LABEL,
  MANAGED_BY_VALUE,
  OPERATOR_NAMESPACE,
  POLICY_LABEL,
} from "../api/vocabulary.js";
import { selectNamespaces } from "../desired/namespaces.js";
import { effectiveSpec, isDeleting } from "../desired/spec.js";
import type { Logger } from "../observability/logger.js";
import { objectKey, type Snapshot } from "./snapshot.js";
import { controllerRef, controllingPolicy, rememberedBy } from "../drift/ownership.js";
import { compactManagedFields, withCompactManagedFields } from "../drift/managedfields.js";
import {
  wideningDirections,
  type NetworkPolicyJson,
  type NetworkPolicySummary,
} from "../findings/networkpolicies.js";
import { errorMessage } from "./client.js";
import {
  auditKey,
  findingsAudit,
  mayConcernOperator,
  rbacEventPolicies,
  RbacFindingsMemo,
  type RbacView,
} from "./rbacevents.js";
import type { RbacAuditSpec } from "../findings/rbac.js";
import { CacheNotSyncedError, ResilientInformer, type InformerSpec } from "./informer.js";
import { sharedInterner } from "./intern.js";
import { slimRoleBinding } from "./slimbinding.js";

export { CacheNotSyncedError } from "./informer.js";

/** Whether `policy` (not being deleted) selects namespace `ns` (see desired/namespaces.ts). */
function policySelects(policy: ClusterSecurityPolicy, ns: V1Namespace): boolean {
  return !isDeleting(policy) && selectNamespaces(effectiveSpec(policy), [ns]).length > 0;
}

// Which policies an RBAC event concerns, and the memo of findings that decides it: rbacevents.ts.
export { rbacEventPolicies } from "./rbacevents.js";

/** What selection reads of a namespace: its name, labels and whether it is terminating. */
function slimNamespace(ns: V1Namespace): V1Namespace {
  return {
    metadata: {
      ...(ns.metadata?.name !== undefined ? { name: ns.metadata.name } : {}),
      ...(ns.metadata?.labels ? { labels: ns.metadata.labels } : {}),
      ...(ns.metadata?.deletionTimestamp ? { deletionTimestamp: ns.metadata.deletionTimestamp } : {}),
    },
    // One frozen `{ phase: "Active" }` for every namespace (intern.ts).
    ...(ns.status?.phase ? { status: sharedInterner.value({ phase: ns.status.phase }) } : {}),
  };
}

/**
 * What the occupancy caches keep of an object: its identity and what ownership is judged by (its
 * ownerReferences and the operator's own managedFields entries, compacted), and the policy label when
 * present. Everything else is dropped on arrival.
 */
export function slimMetadata(obj: KubernetesObject): KubernetesObject {
  const m = obj.metadata ?? {};
  const managedFields = compactManagedFields(m.managedFields?.filter((e) => e.manager === FIELD_MANAGER));
  // The policy label, when a child lost only its managed-by label: Audit mode judges it from this.
  const policyLabel = m.labels?.[POLICY_LABEL];
  return {
    ...(obj.apiVersion ? { apiVersion: obj.apiVersion } : {}),
    ...(obj.kind ? { kind: obj.kind } : {}),
    metadata: {
      ...(m.name !== undefined ? { name: m.name } : {}),
      ...(m.namespace !== undefined ? { namespace: m.namespace } : {}),
      ...(m.uid !== undefined ? { uid: m.uid } : {}),
      ...(m.resourceVersion !== undefined ? { resourceVersion: m.resourceVersion } : {}),
      ...(policyLabel !== undefined ? { labels: { [POLICY_LABEL]: policyLabel } } : {}),
      ...(m.ownerReferences?.length ? { ownerReferences: m.ownerReferences } : {}),
      ...(managedFields?.length ? { managedFields } : {}),
    },
  };
}

/**
 * What the NetworkPolicy occupancy cache keeps: slimMetadata plus the directions the object opens to
 * everything (see findings/networkpolicies.ts); its rules are dropped on arrival.
 */
export function slimNetworkPolicy(obj: NetworkPolicyJson): NetworkPolicySummary {
  const widens = wideningDirections(obj);
  return { ...slimMetadata(obj), ...(widens.length ? { widens } : {}) };
}

const MANAGED = `${MANAGED_BY_LABEL}=${MANAGED_BY_VALUE}`;
/** Everything the managed caches do not hold (no label, or another value): the two partition a kind. */
const NOT_MANAGED = `${MANAGED_BY_LABEL}!=${MANAGED_BY_VALUE}`;

/**
 * The informer caches the controller reads from. Children are watched only through the managed-by label,
 * so unrelated NetworkPolicies cost no memory; ServiceAccounts are watched twice, narrowly: the
 * `default` ones by field selector and the operator's own by label. RBAC is watched in full because the
 * findings judge every binding.
 *
 * Each event calls `enqueue` with the policy it concerns, or with undefined for "every policy"; an event
 * that concerns one namespace of a policy whose selection it does not change calls `repair` with both
 * instead (the repair lane, controller/lane.ts), or `enqueue` when there is no repair lane.
 */
export class ClusterCache {
  readonly policies: ResilientInformer<ClusterSecurityPolicy & KubernetesObject>;
  private readonly namespaces: ResilientInformer<V1Namespace>;
  private readonly networkPolicies: ResilientInformer<V1NetworkPolicy>;
  private readonly defaultServiceAccounts: ResilientInformer<V1ServiceAccount>;
  private readonly managedServiceAccounts: ResilientInformer<V1ServiceAccount>;
  private readonly roles: ResilientInformer<V1Role>;
  private readonly roleBindings: ResilientInformer<V1RoleBinding>;
  private readonly clusterRoles: ResilientInformer<V1ClusterRole>;
  private readonly clusterRoleBindings: ResilientInformer<V1ClusterRoleBinding>;
  /** Labelled ConfigMaps in csp-system only: rendered control-plane files and the agents' reports. */
  private readonly configMaps: ResilientInformer<V1ConfigMap>;
  /**
   * Occupancy: the metadata of every object of the kinds children have (Roles and RoleBindings are
   * cached in full already), so what sits at a child's name is known without a GET per child.
   */
  private readonly occupancy: Record<string, ResilientInformer>;
  /** Every NetworkPolicy, as a summary: occupancy, and the ones that open what a default-deny closes. */
  private readonly networkPolicySummaries: ResilientInformer<NetworkPolicySummary>;
  private readonly all: ResilientInformer[];

  constructor(
    kc: KubeConfig,
    log: Logger,
    enqueue: (policy: string | undefined, specChanged?: boolean) => void,
    /** Called with each namespace as it is after an event (not on deletion), once the caches synced. */
    namespaceChanged?: (ns: V1Namespace) => void,
    /**
     * One namespace of one policy to repair (see above); `selected`: the event selected the namespace for
     * the policy (a full reconcile is enqueued too: the namespace is its to cover first).
     */
    repair?: (policy: string, namespace: string, selected?: boolean) => void,
    /**
     * Every object event as the caches take it in (objectKey, resourceVersion, whether it was a delete),
     * before the handlers run: the controller's WriteLedger learns which of its writes the caches have seen.
     * What it returns, when anything, takes the event's `repair` calls instead (not its full reconciles):
     * the echo of the operator's own write repairs nothing, an object being written now defers them.
     */
    observed?: (
      key: string,
      resourceVersion: string | undefined,
      deleted: boolean,
    ) => ((policy: string, namespace: string) => void) | void,
  ) {
    // Where the repair-lane items of the event being handled go, when `observed` said so.
    let gate: ((policy: string, namespace: string) => void) | undefined;
    // Objects in csp-system are policy-wide children (the rendered audit Policy): the full reconcile's.
    const inNamespace = (policy: string | undefined, ns: string | undefined) => {
      if (policy && ns && ns !== OPERATOR_NAMESPACE && repair) (gate ?? repair)(policy, ns);
      else enqueue(policy);
    };
    // A child is its controlling policy's whatever its labels say (a user may relabel it): tell both, and
    // the policies whose status remembers its UID (a child taken or deleted wakes its owner).
    const byLabel = (o: KubernetesObject) => {
      const owner = controllingPolicy(o);
      const ns = o.metadata?.namespace;
      if (owner) inNamespace(owner, ns);
      const label = o.metadata?.labels?.[POLICY_LABEL];
      if (!owner || label !== owner) inNamespace(label, ns);
      for (const p of rememberedBy(o, this.policies.list()))
        if (p.metadata.name !== owner && p.metadata.name !== label) inNamespace(p.metadata.name, ns);
    };
    const everyPolicy = () => enqueue(undefined);
    // Tells `observed` of an event (the cache already holds, or no longer holds, the object), then handles
    // it with the repair-lane gate `observed` returned.
    const handle = <T extends KubernetesObject>(
      inf: ResilientInformer<T> | undefined,
      kind: string,
      o: T,
      on: (o: T) => void,
    ) => {
      const name = o.metadata?.name;
      if (observed && inf && name !== undefined) {
        const ns = o.metadata?.namespace;
        const deleted = inf.get(name, ns) === undefined;
        gate = observed(objectKey(kind, ns, name), o.metadata?.resourceVersion, deleted) ?? undefined;
      }
      try {
        on(o);
      } finally {
        gate = undefined;
      }
    };
    // Every full cache keeps managedFields compacted to what is read of them (drift/managedfields.ts).
    const mk = <T extends KubernetesObject>(
      path: string,
      apiVersion: string,
      kind: string,
      on: (o: T) => void,
      sel: Pick<InformerSpec<T>, "labelSelector" | "fieldSelector" | "transform" | "share"> = {},
    ) => {
      const inf: ResilientInformer<T> = new ResilientInformer<T>(
        kc,
        // The policies are read and copied by every reconcile: their objects are not shared or frozen.
        { path, apiVersion, kind, transform: withCompactManagedFields, share: kind !== KIND, ...sel },
        (o) => handle(inf, kind, o, on),
        log,
        {
          // A cache back after a failure: what changed meanwhile may have fired no event that was acted on.
          onResynced: everyPolicy,
        },
      );
      return inf;
    };

    // A new generation is a spec the user changed: it runs at once, even while a failure backs off.
    const generations = new Map<string, number | undefined>();
    this.policies = mk(`/apis/${GROUP}/${VERSION}/${PLURAL}`, API_VERSION, KIND, (p) => {
      const name = p.metadata.name;
      const seen = generations.get(name);
      generations.set(name, p.metadata.generation);
      enqueue(name, seen !== undefined && seen !== p.metadata.generation);
    });
    // A Namespace event concerns only the policies that select it now or selected it before (its labels
    // at the previous event, judged by today's policies): a burst of unrelated namespaces costs nothing.
    // Selected before and after: a repair of that namespace; selected or deselected by this event: a full
    // reconcile (the policy's namespace count, releases and children elsewhere change).
    const previous = new Map<string, V1Namespace>();
    const selecting = (ns: V1Namespace | undefined): string[] =>
      ns
        ? this.policies
            .list()
            .filter((p) => policySelects(p, ns))
            .map((p) => p.metadata.name)
        : [];
    const onNamespace = (ns: V1Namespace) => {
      const name = ns.metadata?.name;
      if (!name) return;
      const current = this.namespaces.get(name);
      const before = new Set(selecting(previous.get(name)));
      if (current) previous.set(name, slimNamespace(current));
      else previous.delete(name);
      const after = new Set(selecting(current));
      for (const p of new Set([...before, ...after]))
        if (before.has(p) && after.has(p)) inNamespace(p, name);
        else {
          if (after.has(p)) repair?.(p, name, true);
          enqueue(p);
        }
      if (current && this.hasSynced) namespaceChanged?.(current);
    };
    this.namespaces = mk("/api/v1/namespaces", "v1", "Namespace", onNamespace);
    this.networkPolicies = mk(
      "/apis/networking.k8s.io/v1/networkpolicies",
      "networking.k8s.io/v1",
      "NetworkPolicy",
      byLabel,
      {
        labelSelector: MANAGED,
      },
    );
    // A default ServiceAccount concerns the policies that select its namespace.
    const onDefaultServiceAccount = (sa: V1ServiceAccount) => {
      const ns = sa.metadata?.namespace;
      for (const p of selecting(ns ? this.namespaces.get(ns) : undefined)) inNamespace(p, ns);
    };
    this.defaultServiceAccounts = mk(
      "/api/v1/serviceaccounts",
      "v1",
      "ServiceAccount",
      onDefaultServiceAccount,
      {
        fieldSelector: "metadata.name=default",
      },
    );
    this.managedServiceAccounts = mk("/api/v1/serviceaccounts", "v1", "ServiceAccount", byLabel, {
      labelSelector: MANAGED,
    });
    const rbac = "rbac.authorization.k8s.io/v1";
    // RBAC events concern only the policies whose findings they move or whose desired state depends on
    // the object (see rbacevents.ts): RBAC findings are recomputed for the bindings the object touches,
    // once per audit configuration, instead of every policy recomputing everything.
    const rbacView: RbacView = {
      clusterRole: (name) => this.clusterRoles.get(name),
      role: (namespace, name) => this.roles.get(name, namespace),
      clusterRoleBinding: (name) => this.clusterRoleBindings.get(name),
      roleBinding: (namespace, name) => this.roleBindings.get(name, namespace),
      clusterRoleBindings: () => this.clusterRoleBindings.list(),
      roleBindings: () => this.roleBindings.list(),
    };
    const findingsMemo = new RbacFindingsMemo();
    const rbacEvent = (o: KubernetesObject) => {
      if (o.metadata?.namespace && o.metadata.labels?.[POLICY_LABEL]) byLabel(o);
      // The memo follows the caches event by event; a cache that is not synced breaks that chain.
      const synced = [this.roles, this.roleBindings, this.clusterRoles, this.clusterRoleBindings].every(
        (i) => i.hasSynced,
      );
      if (!synced) findingsMemo.reset();
      const policies = this.policies.list();
      const audits = new Map<string, RbacAuditSpec>();
      for (const p of policies) {
        const audit = isDeleting(p) ? undefined : findingsAudit(p);
        if (audit) audits.set(auditKey(audit), audit);
      }
      // Always told, even when every policy is concerned anyway: the memo must follow every change.
      const moved = synced ? findingsMemo.moved(o, rbacView, audits) : "all";
      if (synced && mayConcernOperator(o, rbacView)) return everyPolicy();
      const ns = o.metadata?.namespace;
      const namespace = ns ? this.namespaces.get(ns) : undefined;
      for (const p of rbacEventPolicies(policies, o, namespace, moved)) enqueue(p);
    };
    this.roles = mk<V1Role>(`/apis/${rbac}/roles`, rbac, "Role", rbacEvent);
    // Other writers' bindings slimmed to what findings and occupancy read (slimbinding.ts), shared there.
    const slim = { transform: (b: V1RoleBinding) => slimRoleBinding(b), share: false };
    this.roleBindings = mk<V1RoleBinding>(`/apis/${rbac}/rolebindings`, rbac, "RoleBinding", rbacEvent, slim);
    this.clusterRoles = mk<V1ClusterRole>(`/apis/${rbac}/clusterroles`, rbac, "ClusterRole", rbacEvent);
    this.clusterRoleBindings = mk<V1ClusterRoleBinding>(
      `/apis/${rbac}/clusterrolebindings`,
      rbac,
      "ClusterRoleBinding",
      rbacEvent,
    );
    this.configMaps = mk<V1ConfigMap>(
      `/api/v1/namespaces/${OPERATOR_NAMESPACE}/configmaps`,
      "v1",
      "ConfigMap",
      (o) => (o.metadata?.labels?.[POLICY_LABEL] ? byLabel(o) : everyPolicy()),
      { labelSelector: MANAGED },
    );
    // Slimmed to what ownership is judged by, and only objects WITHOUT the managed-by label: the labelled
    // ones are in the managed caches already (a second copy of every child cost ~1 KB per object), and
    // occupant() looks there first. An event concerns the policies selecting the object's namespace: the
    // object blocking a child's name went away, or a user's NetworkPolicy opened what a default-deny
    // closes. Namespaces no policy selects cost nothing. A relabelled object moves from one cache to the
    // other (a delete in one watch, an add in the other): in between it may be in neither, and a child
    // planned "Missing" then is created with a create-only apply, which the object at the name refuses.
    const onOccupant = (o: KubernetesObject) => {
      const ns = o.metadata?.namespace;
      if (ns === OPERATOR_NAMESPACE) return everyPolicy();
      for (const p of selecting(ns ? this.namespaces.get(ns) : undefined)) inNamespace(p, ns);
    };
    const occupancy = <T extends KubernetesObject>(
      path: string,
      apiVersion: string,
      kind: string,
      transform: (o: T) => T,
      metadataOnly = true,
      fieldSelector?: string,
    ) => {
      const inf: ResilientInformer<T> = new ResilientInformer<T>(
        kc,
        {
          path,
          apiVersion,
          kind,
          metadataOnly,
          transform,
          share: true,
          labelSelector: NOT_MANAGED,
          ...(fieldSelector ? { fieldSelector } : {}),
        },
        (o) => handle(inf, kind, o, onOccupant),
        log,
        { onResynced: everyPolicy },
      );
      return inf;
    };
    this.networkPolicySummaries = occupancy<NetworkPolicySummary>(
      "/apis/networking.k8s.io/v1/networkpolicies",
      "networking.k8s.io/v1",
      "NetworkPolicy",
      slimNetworkPolicy,
      // Full objects travel (the rules are judged on arrival), only the summary is kept.
      false,
    );
    this.occupancy = {
      NetworkPolicy: this.networkPolicySummaries,
      // The `default` ServiceAccounts are cached in full already.
      ServiceAccount: occupancy(
        "/api/v1/serviceaccounts",
        "v1",
        "ServiceAccount",
        slimMetadata,
        true,
        "metadata.name!=default",
      ),
      ConfigMap: occupancy(
        `/api/v1/namespaces/${OPERATOR_NAMESPACE}/configmaps`,
        "v1",
        "ConfigMap",
        slimMetadata,
      ),
    };
    this.all = [
      ...Object.values(this.occupancy),
      this.policies,
      this.namespaces,
      this.networkPolicies,
      this.defaultServiceAccounts,
      this.managedServiceAccounts,
      this.roles,
      this.roleBindings,
      this.clusterRoles,
      this.clusterRoleBindings,
      this.configMaps,
    ] as ResilientInformer[];
  }

  /**
   * Starts every informer and resolves once every cache has synced (a LIST succeeded); informers whose
   * first LIST fails keep retrying with backoff meanwhile. Resolves false when stopped before that.
   */
  async start(): Promise<boolean> {
    await Promise.all(this.all.map((i) => i.start()));
    const synced = await Promise.all(this.all.map((i) => i.waitForSync()));
    return synced.every(Boolean);
  }

  /** Synced caches whose watch brought nothing for `maxSilenceMs`, or timed out `maxTimeouts` times in a row. */
  silentWatches(
    maxSilenceMs: number,
    maxTimeouts = 3,
  ): { description: string; silentMs: number; timeouts: number }[] {
    const silent = [];
    for (const i of this.all) {
      const s = i.silence;
      if (s && (s.ms > maxSilenceMs || s.timeouts >= maxTimeouts))
        silent.push({ description: i.description, silentMs: s.ms, timeouts: s.timeouts });
    }
    return silent;
  }

  /** Every cache has synced since its last failure. */
  get hasSynced(): boolean {
    return this.all.every((i) => i.hasSynced);
  }

  async stop(): Promise<void> {
    await Promise.all(this.all.map((i) => i.stop()));
  }

  /** The cached Namespace `name`, if any. */
  namespace(name: string): V1Namespace | undefined {
    return this.namespaces.get(name);
  }

  policy(name: string): ClusterSecurityPolicy | undefined {
    return this.policies.list().find((p) => p.metadata.name === name);
  }

  /**
   * The snapshot of one namespace, for the repair lane (controller/lane.ts): the Namespace, the objects in
   * it, the policies and the cluster-wide RBAC roles a RoleBinding may bind; occupancy answers only inside
   * that namespace. Nothing here is computed per object of other namespaces (the informers index their
   * objects by namespace), so its cost hardly grows with the cluster. Throws CacheNotSyncedError like snapshot().
   */
  namespaceSnapshot(namespace: string, now = new Date()): Snapshot {
    const unsynced = this.all.filter((i) => !i.hasSynced);
    if (unsynced.length > 0)
      throw new CacheNotSyncedError(
        unsynced.map((i) => i.description),
        [],
      );
    const managed = <T extends KubernetesObject>(objs: readonly T[]) =>
      objs.filter((o) => o.metadata?.labels?.[MANAGED_BY_LABEL] === MANAGED_BY_VALUE);
    const ns = this.namespaces.get(namespace);
    const roles = this.roles.list(namespace);
    const roleBindings = this.roleBindings.list(namespace);
    const networkPolicies = this.networkPolicies.list(namespace);
    const defaultSa = this.defaultServiceAccounts.get("default", namespace);
    const lookups: Record<string, { get(name: string, namespace?: string): KubernetesObject | undefined }[]> =
      {
        NetworkPolicy: [this.networkPolicies, this.occupancy["NetworkPolicy"]!],
        ServiceAccount: [
          this.managedServiceAccounts,
          this.defaultServiceAccounts,
          this.occupancy["ServiceAccount"]!,
        ],
        Role: [this.roles],
        RoleBinding: [this.roleBindings],
      };
    return {
      occupant: (kind, ns2, name) => {
        if (ns2 !== namespace) return undefined;
        for (const l of lookups[kind] ?? []) {
          const o = l.get(name, ns2);
          if (o) return o;
        }
        return undefined;
      },
      policies: [...this.policies.list()],
      namespaces: ns ? [ns] : [],
      networkPolicies,
      serviceAccounts: [...(defaultSa ? [defaultSa] : []), ...this.managedServiceAccounts.list(namespace)],
      roles: managed(roles),
      roleBindings: managed(roleBindings),
      configMaps: [],
      wideningNetworkPolicies: [
        ...this.networkPolicySummaries.list(namespace).filter((o) => o.widens?.length),
        ...networkPolicies.map((o) => slimNetworkPolicy(o)).filter((o) => o.widens?.length),
      ],
      rbac: {
        clusterRoles: [...this.clusterRoles.list()],
        clusterRoleBindings: [],
        roles,
        roleBindings,
      },
      now,
    };
  }

  /**
   * An immutable snapshot of the caches for one reconcile. Throws CacheNotSyncedError (retryable) when
   * any cache has not synced since its last failure: an object missing from such a cache may exist, so
   * nothing (above all no delete, no Orphaned judgement) may be computed from it.
   */
  snapshot(now = new Date()): Snapshot {
    const unsynced = this.all.filter((i) => !i.hasSynced);
    if (unsynced.length > 0) {
      throw new CacheNotSyncedError(
        unsynced.map((i) => i.description),
        unsynced
          .filter((i) => i.lastError !== undefined)
          .map((i) => `${i.spec.kind}: ${errorMessage(i.lastError)}`),
      );
    }
    const managed = <T extends KubernetesObject>(objs: readonly T[]) =>
      objs.filter((o) => o.metadata?.labels?.[MANAGED_BY_LABEL] === MANAGED_BY_VALUE);
    const roles = this.roles.list();
    const roleBindings = this.roleBindings.list();
    type Lookup = { get(name: string, namespace?: string): KubernetesObject | undefined };
    // Where an object at a name may be: the managed caches (labelled), the `default` ServiceAccounts, the
    // occupancy caches (everything else); Roles and RoleBindings are cached in full.
    const lookups: Record<string, Lookup[]> = {
      NetworkPolicy: [this.networkPolicies, this.occupancy["NetworkPolicy"]!],
      ServiceAccount: [
        this.managedServiceAccounts,
        this.defaultServiceAccounts,
        this.occupancy["ServiceAccount"]!,
      ],
      ConfigMap: [this.configMaps, this.occupancy["ConfigMap"]!],
      Role: [this.roles],
      RoleBinding: [this.roleBindings],
    };
    const networkPolicies = [...this.networkPolicies.list()];
    // Indexed by the controlling policy's UID on first use (once per snapshot, only when a plan asks).
    let controlled: Map<string, { kind: string; object: KubernetesObject }[]> | undefined;
    const controlledUnlabelled = (policyUid: string) => {
      if (!controlled) {
        const index = new Map<string, { kind: string; object: KubernetesObject }[]>();
        const add = (kind: string, objs: readonly KubernetesObject[]) => {
          for (const object of objs) {
            if (object.metadata?.labels?.[MANAGED_BY_LABEL] === MANAGED_BY_VALUE) continue;
            const uid = controllingPolicy(object) && controllerRef(object)?.uid;
            if (!uid) continue;
            const at = index.get(uid);
            if (at) at.push({ kind, object });
            else index.set(uid, [{ kind, object }]);
          }
        };
        add("NetworkPolicy", this.networkPolicySummaries.list());
        add("ServiceAccount", this.occupancy["ServiceAccount"]!.list());
        add("Role", roles);
        add("RoleBinding", roleBindings);
        controlled = index;
      }
      return controlled.get(policyUid) ?? [];
    };
    return {
      controlledUnlabelled,
      occupant: (kind, namespace, name) => {
        for (const l of lookups[kind] ?? []) {
          const o = l.get(name, namespace);
          if (o) return o;
        }
        return undefined;
      },
      policies: [...this.policies.list()],
      namespaces: [...this.namespaces.list()],
      networkPolicies,
      serviceAccounts: [...this.defaultServiceAccounts.list(), ...this.managedServiceAccounts.list()],
      roles: managed(roles),
      roleBindings: managed(roleBindings),
      configMaps: [...this.configMaps.list()],
      // Unlabelled ones were judged on arrival; the operator's own children (an `extra` may open) here.
      wideningNetworkPolicies: [
        ...this.networkPolicySummaries.list().filter((o) => o.widens?.length),
        ...networkPolicies.map((o) => slimNetworkPolicy(o)).filter((o) => o.widens?.length),
      ],
      rbac: {
        clusterRoles: [...this.clusterRoles.list()],
        clusterRoleBindings: [...this.clusterRoleBindings.list()],
        roles: [...roles],
        roleBindings: [...roleBindings],
      },
      now,
    };
  }
}
