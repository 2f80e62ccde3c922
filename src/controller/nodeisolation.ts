import { NodeIsolationReader } from "../cluster/nodeisolation.js";
import { ApiError } from "../cluster/rest.js";
import { selectNamespaces } from "../desired/namespaces.js";
import type { Finding } from "../findings/finding.js";
import { bound, hygieneCondition } from "../hygiene/common.js";
import type { V1Namespace } from "@kubernetes/client-node";
import { isDeleting } from "../desired/spec.js";
import type { Snapshot } from "../cluster/snapshot.js";
import {
  AREA,
  invalidIsolationSpec,
  ISOLATION_ANNOTATION,
  matches,
  NODE_SELECTOR_ANNOTATION,
  nodeIsolationManager,
  placementFindings,
  policyOfManager,
  selectorAnnotation,
  type PodPlacement,
} from "../hygiene/nodeisolation.js";
import {
  PlanOutdatedError,
  type AreaFactory,
  type AreaInput,
  type AreaReconciler,
  type AreaReport,
} from "./areas.js";
import { errorText, readFailureReason } from "./clusterversion.js";

export const CONDITION = "NodesIsolated";
/** Pods come and go without an event this area watches: placement is read again this often. */
export const NODE_ISOLATION_RECHECK_MS = 60_000;

/** The field managers that own the node-selector annotation of a namespace (from its managedFields). */
export function annotationOwners(ns: V1Namespace | undefined): string[] {
  return (ns?.metadata?.managedFields ?? [])
    .filter((e) => {
      const f = e.fieldsV1 as Record<string, Record<string, Record<string, unknown>>> | undefined;
      return f?.["f:metadata"]?.["f:annotations"]?.[`f:${NODE_SELECTOR_ANNOTATION}`] !== undefined;
    })
    .map((e) => e.manager ?? "");
}

/**
 * What a policy's reconcile releases (an apply of nothing under that manager): its own annotation on
 * namespaces it no longer selects (or on every namespace once it no longer uses spec.nodeIsolation), and
 * what the managers of deleted policies and the shared manager of earlier releases still own. Pure.
 */
export function releases(
  policy: string,
  keep: ReadonlySet<string>,
  namespaces: readonly V1Namespace[],
  livePolicies: ReadonlySet<string>,
): { namespace: string; manager: string }[] {
  const out: { namespace: string; manager: string }[] = [];
  const own = nodeIsolationManager(policy);
  for (const ns of namespaces) {
    const name = ns.metadata?.name;
    if (!name) continue;
    for (const manager of annotationOwners(ns)) {
      const owner = policyOfManager(manager);
      if (owner === undefined) continue;
      if (manager === own ? !keep.has(name) : owner === "" || !livePolicies.has(owner))
        out.push({ namespace: name, manager });
    }
  }
  return out;
}

/**
 * The policies whose node-isolation manager still owns an annotation although no live policy has that
 * name (deleted while no operator ran): reconciled on every resync, and its reconcile releases it.
 */
export function orphanedOwners(
  namespaces: readonly V1Namespace[],
  livePolicies: ReadonlySet<string>,
): string[] {
  const out = new Set<string>();
  for (const ns of namespaces)
    for (const manager of annotationOwners(ns)) {
      const owner = policyOfManager(manager);
      if (owner && !livePolicies.has(owner)) out.add(owner);
    }
  return [...out].sort();
}

/** The names of the policies that are not being deleted. */
const livePolicies = (snapshot: Pick<Snapshot, "policies">) =>
  new Set(snapshot.policies.filter((p) => !isDeleting(p)).map((p) => p.metadata.name));

/**
 * `spec.nodeIsolation`: sets the PodNodeSelector annotation on the selected namespaces (Enforce) and
 * reports pods placed against the isolation. Pods are read only while a policy uses this area.
 */
export function nodeIsolationArea(recheckMs = NODE_ISOLATION_RECHECK_MS): AreaFactory {
  return ({ kc }) => {
    const reader = new NodeIsolationReader(kc);
    const area: AreaReconciler = {
      name: "nodeIsolation",
      /**
       * A policy deleted while no operator ran gets no delete event: what its manager still owns is found in
       * the synced namespace cache on every resync (at start, on the period, on each namespace event) and
       * its name reconciled, so `release` (below) frees it even when no other policy is left to do so, and
       * a failed LIST at start only delays it until the caches sync.
       */
      orphans: (input) => orphanedOwners(input.namespaces, livePolicies(input)),
      /**
       * The policy is gone or being deleted: its annotation goes from every namespace (unless another
       * manager owns it too), with what other deleted policies' managers still own. A failure is retried
       * with backoff; the policy's deletion never waits for it (no finalizer).
       */
      async release({ name, snapshot }) {
        const failures: string[] = [];
        for (const r of releases(name, new Set(), snapshot.namespaces, livePolicies(snapshot))) {
          try {
            await reader.releaseNodeSelector(r.namespace, r.manager);
          } catch (err) {
            failures.push(`annotation of Namespace/${r.namespace} not released: ${errorText(err)}`);
          }
        }
        if (failures.length) throw new Error(failures.join("; "));
      },
      // Every policy: one that stopped using the area (or selecting a namespace) releases what it set.
      // Deciding that reads only the snapshot, so a policy without spec.nodeIsolation costs no request.
      inUse: () => true,
      async reconcile({ policy, spec, snapshot, enforce, proceed }: AreaInput): Promise<AreaReport> {
        const manager = nodeIsolationManager(policy.metadata.name);
        const ni = spec.nodeIsolation;
        const selector = ni?.nodeSelector ?? {};
        const invalid = ni ? invalidIsolationSpec(selector, ni.tolerations ?? []) : undefined;
        const keep =
          ni && Object.keys(selector).length > 0
            ? new Set(selectNamespaces(spec, snapshot.namespaces))
            : new Set<string>();
        const failures: string[] = [];
        const live = livePolicies(snapshot);
        // Audit mode writes nothing of its own, and an invalid spec is not a reason to take isolation
        // away; what deleted policies left is released by any policy's reconcile.
        const releaseOwn = enforce && !invalid;
        const toRelease = releases(policy.metadata.name, keep, snapshot.namespaces, live).filter(
          (r) => releaseOwn || r.manager !== manager,
        );
        for (const r of toRelease) {
          if (proceed && !proceed()) throw new PlanOutdatedError();
          try {
            await reader.releaseNodeSelector(r.namespace, r.manager);
          } catch (err) {
            failures.push(`annotation of Namespace/${r.namespace} not released: ${errorText(err)}`);
          }
        }
        const released: AreaReport = failures.length
          ? { failure: { reason: "WriteFailed", message: failures.join("; "), retryable: true } }
          : {};
        if (!ni) return released;
        const unknown = (reason: string, message: string): AreaReport => ({
          ...released,
          conditions: [{ type: CONDITION, status: "Unknown", reason, message: bound(message) }],
          requeueAfterMs: recheckMs,
        });
        if (invalid)
          return {
            ...unknown("InvalidSpec", invalid),
            failure: { reason: "InvalidSpec", message: bound(invalid), retryable: false },
          };
        if (Object.keys(selector).length === 0)
          return unknown("NoNodeSelector", "spec.nodeIsolation.nodeSelector is empty: no node is isolated");
        const want = selectorAnnotation(selector);
        const selected = selectNamespaces(spec, snapshot.namespaces);
        const findings: Finding[] = [];
        for (const name of selected) {
          const ns = snapshot.namespaces.find((n) => n.metadata?.name === name);
          const have = ns?.metadata?.annotations?.[NODE_SELECTOR_ANNOTATION];
          // Applied once under this policy's manager even when the value is already there, so the policy
          // co-owns it and another owner's release does not take it away.
          if (have === want && (!enforce || annotationOwners(ns).includes(manager))) continue;
          if (!enforce) {
            findings.push({
              id: ISOLATION_ANNOTATION,
              severity: "Medium",
              area: AREA,
              resource: `Namespace/${name}`,
              message: `annotation ${NODE_SELECTOR_ANNOTATION} is ${have === undefined ? "not set" : JSON.stringify(have)}, not ${JSON.stringify(want)} (Audit mode: not written)`,
            });
            continue;
          }
          if (proceed && !proceed()) throw new PlanOutdatedError();
          try {
            await reader.setNodeSelector(name, want, manager);
          } catch (err) {
            const conflict = err instanceof ApiError && err.code === 409;
            const others = annotationOwners(ns)
              .filter((m) => m !== manager)
              .map((m) => {
                const p = policyOfManager(m);
                return p ? `policy ${p}` : `field manager ${m}`;
              });
            findings.push({
              id: ISOLATION_ANNOTATION,
              severity: "High",
              area: AREA,
              resource: `Namespace/${name}`,
              message: conflict
                ? `annotation ${NODE_SELECTOR_ANNOTATION} is ${JSON.stringify(have)}, set by ${others.length ? others.join(", ") : "another manager"}; not overwritten with ${JSON.stringify(want)}: two policies (or a policy and a person) isolate this namespace to different nodes`
                : `annotation ${NODE_SELECTOR_ANNOTATION} could not be set: ${errorText(err)}`,
            });
            if (!conflict) failures.push(errorText(err));
          }
        }
        let nodes;
        const pods: PodPlacement[] = [];
        try {
          nodes = await reader.nodes();
          for (const ns of selected) pods.push(...(await reader.podsInNamespace(ns)));
          const isolated = nodes.filter((n) => matches(selector, n.labels));
          for (const n of isolated) pods.push(...(await reader.podsOnNode(n)));
        } catch (err) {
          return {
            findings,
            ...unknown(readFailureReason(err), `nodes or pods could not be read: ${errorText(err)}`),
          };
        }
        findings.push(
          ...placementFindings({
            selector,
            tolerations: ni.tolerations ?? [],
            selected: new Set(selected),
            nodes,
            pods,
          }),
        );
        let enforced: boolean | undefined;
        try {
          enforced = await reader.podNodeSelectorEnabled();
        } catch {
          enforced = undefined;
        }
        const how =
          enforced === true
            ? "enforced by the PodNodeSelector admission plugin"
            : enforced === false
              ? "reported but NOT enforced: the API server does not enable the PodNodeSelector admission plugin"
              : "reported but not known to be enforced: whether the API server enables the PodNodeSelector admission plugin is unknown";
        const condition = hygieneCondition(CONDITION, findings, spec.exemptions, snapshot.now, {
          failReason: "PlacementViolations",
          okReason: enforced === true ? "Enforced" : "ReportedNotEnforced",
          okMessage: `${selected.length} namespace(s) isolated to nodes ${want}; ${how}`,
        });
        if (condition.status === "False" && enforced !== true)
          condition.message = bound(`${condition.message}; ${how}`);
        return {
          findings,
          conditions: [condition],
          requeueAfterMs: recheckMs,
          ...(failures.length
            ? { failure: { reason: "WriteFailed", message: failures.join("; "), retryable: true } }
            : {}),
        };
      },
    };
    return area;
  };
}
