import type { KubernetesObject } from "@kubernetes/client-node";
import type { ClusterSecurityPolicy, ClusterSecurityPolicySpec } from "../api/v1alpha1/policy.js";
import { errorMessage, statusCode } from "../cluster/client.js";
import { withTypeMeta, type Child, type ChildKind } from "../desired/children.js";
import { desiredState } from "../desired/index.js";
import { ungrantableRoles } from "../desired/rbac.js";
import { sharedNamespaceStates } from "../desired/namespacestate.js";
import { effectiveSpec, isDeleting } from "../desired/spec.js";
import { childDrift, ownedFieldDiff, sharedDrift, type Drift } from "../drift/checks.js";
import { observedIndex, ownershipOf } from "../drift/ownership.js";
import { bindingsOnForeignObjects } from "../drift/bindings.js";
import { sharedWrites } from "../drift/shared.js";
import { applyExemptions } from "../findings/exemptions.js";
import type { Finding } from "../findings/finding.js";
import type { Logger } from "../observability/logger.js";
import { objectKey, type Snapshot } from "../snapshot.js";
import { computeStatus, statusChanged, type AreaCondition } from "../status/status.js";
import type { ReconcileResult } from "../runtime/controller.js";
import { runAreas, type AreaReconciler, type AreaReport } from "./areas.js";
import { policyFindings } from "./findings.js";

/** What reconcile needs from the cluster layer; the real ones are ClusterCache and Applier. */
export interface ReconcileDeps {
  snapshot(): Snapshot;
  writer: {
    /** Server-side apply with force, as the operator's field manager unless another is given. */
    apply<T extends KubernetesObject>(obj: T, fieldManager?: string): Promise<T>;
    replaceOwned(child: Child): Promise<void>;
    delete(obj: KubernetesObject): Promise<void>;
    read(
      apiVersion: string,
      kind: string,
      namespace: string | undefined,
      name: string,
    ): Promise<KubernetesObject | undefined>;
    patchStatus(name: string, status: NonNullable<ClusterSecurityPolicy["status"]>): Promise<void>;
    event(
      policy: ClusterSecurityPolicy,
      type: "Normal" | "Warning",
      reason: string,
      message: string,
    ): Promise<void>;
  };
  log: Logger;
  /** Areas beyond namespaced children (encryption, control plane, hygiene); see areas.ts. */
  areas?: readonly AreaReconciler[];
}

/** How soon a child blocked by an object the operator may not write is looked at again. */
export const BLOCKED_RECHECK_MS = 30_000;

/** A failure worth retrying with backoff (the queue does the waiting). */
export class RetryableError extends Error {}

interface WriteFailure {
  reason: string;
  message: string;
  /** A failure that retrying cannot fix (a spec the API server rejects): no backoff loop. */
  terminal?: boolean;
}

/** The API server's RBAC escalation check refused a Role or binding: the operator does not hold it. */
const NOT_GRANTABLE = /attempting to grant RBAC permissions not currently held:?\s*([\s\S]*)/;

/** The ClusterRole that bounds what generated Roles may grant (config/rbac/grantable_cluster_role.yaml). */
export const GRANTABLE_CLUSTER_ROLE = "csp-operator-grantable";

/** A Role beyond what the operator may grant, found by the operator itself or by the API server. */
function notGrantableFailure(object: string, field: string | undefined, missing: string): WriteFailure {
  missing = missing.replace(/\s+/g, " ").trim().slice(0, 600);
  return {
    reason: "RoleNotGrantable",
    message:
      `${field ? `${field} (${object})` : object}: the operator may not grant ${missing || "these permissions"}; ` +
      `what generated Roles may grant is bounded by ClusterRole ${GRANTABLE_CLUSTER_ROLE} (extend it with a ` +
      `ClusterRole labelled security.csp-operator.io/aggregate-to-grantable=true)`,
    // A change to any ClusterRole re-enqueues every policy: no backoff loop is needed to notice the fix.
    terminal: true,
  };
}

/**
 * Why a write failed, in words a user can act on. `object` is `Kind/namespace/name`; `field` is the spec
 * entry the object comes from, when there is one, so the message points at what to fix in the policy.
 */
function classify(err: unknown, object: string, field?: string): WriteFailure {
  const code = statusCode(err);
  const text = errorMessage(err);
  const notGrantable = code === 403 ? NOT_GRANTABLE.exec(text) : null;
  if (notGrantable) return notGrantableFailure(object, field, notGrantable[1] ?? "");
  const reason = code === 422 || code === 400 ? "InvalidSpec" : code === 403 ? "Forbidden" : "ApplyFailed";
  return { reason, message: `${(reason === "InvalidSpec" && field) || object}: ${text}` };
}

/** The spec entry a child comes from, so a message names what to fix; undefined for fixed children. */
function specFieldOf(child: Child, spec: ClusterSecurityPolicySpec): string | undefined {
  const extra = (spec.networkPolicies?.extra ?? []).find((e) => child.metadata.name.endsWith(`.${e.name}`));
  if (child.kind === "NetworkPolicy" && extra) return `spec.networkPolicies.extra[name=${extra.name}].spec`;
  if (child.kind === "Role" || child.kind === "RoleBinding")
    return `spec.rbac.roles[name=${child.metadata.name}]`;
  return undefined;
}

/**
 * Reconciles one policy: gather (snapshot of the caches) -> compute (desired state, drift, findings;
 * pure) -> apply (Enforce only, only what drifted) -> report (status written only when it changed).
 * Every call recomputes everything (level-triggered); there is no shortcut on observedGeneration, which is
 * how deleted children would otherwise wait for a restart.
 */
export async function reconcile(name: string, deps: ReconcileDeps): Promise<ReconcileResult | void> {
  const { writer, log } = deps;
  let snapshot = deps.snapshot();

  // Shared objects (namespace labels, default ServiceAccounts) carry the union of all enforcing policies.
  const states = sharedNamespaceStates(snapshot);
  const sharedDone = new Set<string>();
  const failures: WriteFailure[] = [];
  const sharedFailed = new Set<string>();
  for (const w of sharedWrites(snapshot, states)) {
    const what = objectKey(w.object.kind!, w.object.metadata?.namespace, w.object.metadata!.name!);
    // Writes to one object run in order: after a failed give-back, releasing the label would delete it.
    if (sharedFailed.has(what)) continue;
    try {
      await (w.manager ? writer.apply(w.object, w.manager) : writer.apply(w.object));
      sharedDone.add(what);
      log.info("shared object written", { object: what, change: w.reason });
    } catch (err) {
      sharedFailed.add(what);
      sharedDone.delete(what);
      failures.push(classify(err, what));
    }
  }

  const policy = snapshot.policies.find((p) => p.metadata.name === name);
  if (!policy || isDeleting(policy)) {
    // Children go with the policy through their ownerReferences; shared fields were released above.
    if (failures.length) throw new RetryableError(failures.map((f) => f.message).join("; "));
    return;
  }
  const spec = effectiveSpec(policy);
  const enforce = spec.mode !== "Audit";
  const desired = desiredState(policy, snapshot);
  for (const message of desired.invalid) failures.push({ reason: "InvalidSpec", message, terminal: true });
  // Roles beyond csp-operator-grantable are never applied, however much more the operator itself holds.
  const ungrantable = ungrantableRoles(
    spec.rbac?.roles ?? [],
    snapshot.rbac?.clusterRoles ?? [],
    GRANTABLE_CLUSTER_ROLE,
  );
  for (const [name, missing] of ungrantable) {
    const roles = desired.children.filter((c) => c.kind === "Role" && c.metadata.name === name);
    const more = roles.length > 1 ? ` and ${roles.length - 1} more` : "";
    const first = roles[0] && objectKey("Role", roles[0].metadata.namespace, name) + more;
    if (first) failures.push(notGrantableFailure(first, `spec.rbac.roles[name=${name}]`, missing));
  }

  // The caches only hold labelled objects (and every default ServiceAccount): look up what sits at the
  // name of each desired child they do not hold, whatever its labels say. ownership.ts judges it.
  const cached = observedIndex(snapshot);
  const occupied = new Map<string, KubernetesObject>();
  for (const c of desired.children) {
    const key = objectKey(c.kind, c.metadata.namespace, c.metadata.name);
    if (cached.has(key)) continue;
    const live = await writer.read(c.apiVersion, c.kind, c.metadata.namespace, c.metadata.name);
    if (live) occupied.set(key, live);
  }
  snapshot = { ...snapshot, occupied };

  const drift = [
    ...childDrift(policy, desired.children, snapshot),
    ...sharedDrift(policy, desired.namespaces, snapshot, states),
  ];
  const remaining: Drift[] = [];
  const corrected: Drift[] = [];
  // A binding to a Role or ServiceAccount that is not this policy's is neither created nor kept.
  const foreignBindings = bindingsOnForeignObjects(desired.children, drift);
  for (const key of foreignBindings) {
    const live = cached.get(key) ?? occupied.get(key);
    if (!enforce || !live || ownershipOf(live, "RoleBinding", policy).kind !== "ours") continue;
    try {
      await writer.delete(withTypeMeta("RoleBinding", live));
      log.info("binding to an object that is not the policy's removed", { object: key });
    } catch (err) {
      failures.push(classify(err, key));
    }
  }
  for (const d of drift) {
    if (!enforce || d.reason === "Conflict" || d.reason === "Unowned") {
      remaining.push(d);
      continue;
    }
    if (!d.repair) {
      // Shared objects: repaired by the union write above when it succeeded.
      const key = objectKey(d.kind, d.namespace, d.name);
      (sharedDone.has(key) ? corrected : remaining).push(d);
      continue;
    }
    if (d.kind === "RoleBinding" && foreignBindings.has(objectKey(d.kind, d.namespace, d.name))) {
      remaining.push({
        ...d,
        message: `${d.message}; not applied: its Role or ServiceAccount at the generated name is not this policy's`,
      });
      continue;
    }
    if (d.repair.action === "apply" && /^Role(Binding)?$/.test(d.kind) && ungrantable.has(d.name)) {
      remaining.push({ ...d, message: `${d.message}; not applied: beyond ${GRANTABLE_CLUSTER_ROLE}` });
      continue;
    }
    try {
      if (d.repair.action === "delete")
        await writer.delete(withTypeMeta(d.kind as ChildKind, d.repair.object));
      else {
        const result = await writer.apply(d.repair.object);
        // Fields another manager added survive an apply; replace them when they are still there.
        if (ownedFieldDiff(d.repair.object, result).length > 0) await writer.replaceOwned(d.repair.object);
      }
      corrected.push(d);
    } catch (err) {
      const field = d.repair.action === "apply" ? specFieldOf(d.repair.object, spec) : undefined;
      const f = classify(err, objectKey(d.kind, d.namespace, d.name), field);
      failures.push(f);
      remaining.push({ ...d, message: `${d.message}; write failed: ${errorMessage(err)}` });
    }
  }

  const raw: Finding[] = policyFindings(policy, spec, snapshot);
  const areaConditions: AreaCondition[] = [];
  const areaEvents: NonNullable<AreaReport["events"]> = [];
  let requeueAfterMs: number | undefined;
  for (const { report } of await runAreas(deps.areas ?? [], { policy, spec, snapshot, enforce, log })) {
    raw.push(...(report.findings ?? []));
    areaEvents.push(...(report.events ?? []));
    areaConditions.push(...(report.conditions ?? []));
    if (report.failure) failures.push({ ...report.failure, terminal: !report.failure.retryable });
    if (report.requeueAfterMs !== undefined)
      requeueAfterMs = Math.min(requeueAfterMs ?? Infinity, report.requeueAfterMs);
  }
  const { counted } = applyExemptions(raw, spec.exemptions, snapshot.now, policy.metadata.name);

  const failure =
    failures.find((f) => f.reason === "InvalidSpec") ??
    failures.find((f) => f.reason === "RoleNotGrantable") ??
    failures.find((f) => f.reason === "Forbidden") ??
    failures[0];
  const status = computeStatus(
    {
      policy,
      spec,
      namespaces: desired.namespaces.length,
      managedObjects: desired.children.length,
      drift: remaining,
      corrected,
      findings: counted,
      areaConditions,
      ...(failure
        ? {
            error: {
              reason: failure.reason,
              message: failures
                .map((f) => f.message)
                .join("; ")
                .slice(0, 2000),
            },
          }
        : {}),
      now: snapshot.now,
    },
    policy.status,
  );
  if (statusChanged(policy.status, status)) await writer.patchStatus(name, status);

  if (corrected.length > 0) {
    // One entry per object and reason: six Pod Security labels restored on one namespace read as one.
    const counts = new Map<string, number>();
    for (const d of corrected) {
      const key = `${d.kind} ${d.namespace ? `${d.namespace}/` : ""}${d.name} (${d.reason})`;
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    const list = [...counts].map(([key, n]) => (n > 1 ? `${key} x${n}` : key));
    log.info("drift corrected", { corrected: list });
    const more = list.length > 10 ? `, and ${list.length - 10} more` : "";
    await writer.event(
      policy,
      "Normal",
      "DriftCorrected",
      `Corrected ${list.length} object(s): ${list.slice(0, 10).join(", ")}${more}`,
    );
  }
  for (const e of areaEvents) await writer.event(policy, e.type, e.reason, e.message);
  if (failure) {
    log.warn("reconcile incomplete", { reason: failure.reason, failures: failures.map((f) => f.message) });
    await writer.event(policy, "Warning", failure.reason, failure.message);
    if (failure.reason !== "InvalidSpec" && !failure.terminal) throw new RetryableError(failure.message);
  }
  log.debug("reconciled", {
    namespaces: desired.namespaces.length,
    drift: remaining.length,
    corrected: corrected.length,
  });
  // An exemption that expires changes the desired state then: come back at that moment, not at resync.
  for (const e of spec.exemptions ?? []) {
    const left = e.expires ? Date.parse(e.expires) - snapshot.now.getTime() : NaN;
    // Capped: timers beyond ~24.8 days fire at once in Node, and the periodic resync covers long waits.
    if (left > 0) requeueAfterMs = Math.min(requeueAfterMs ?? Infinity, left + 1000, 6 * 3_600_000);
  }
  // An object blocking a child (Unowned, Conflict) is outside the caches: no event says when it goes.
  if (remaining.some((d) => d.repair === undefined && (d.reason === "Unowned" || d.reason === "Conflict")))
    requeueAfterMs = Math.min(requeueAfterMs ?? Infinity, BLOCKED_RECHECK_MS);
  return requeueAfterMs === undefined ? undefined : { requeueAfterMs };
}
