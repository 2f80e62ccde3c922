import type { KubernetesObject } from "@kubernetes/client-node";
import type { ClusterSecurityPolicy } from "../api/v1alpha1/policy.js";
import { API_VERSIONS, type Child, type ChildKind } from "../desired/children.js";
import { objectKey, type Snapshot } from "../cluster/snapshot.js";
import { drain, SLICE, type Steps } from "../desired/slices.js";
import { areaOf, namespacesByName, type Drift } from "./checks.js";
import {
  hasControllerReference,
  isSharedObject,
  observedIndexSteps,
  rememberedChild,
  rememberedBy,
  uidMark,
  writtenByOperator,
} from "./ownership.js";

/**
 * Unlabelled orphans: children whose managed-by label was stripped (so the managed caches no longer hold
 * them) and that the policy no longer wants. The occupancy caches (NetworkPolicy summaries, ServiceAccount
 * metadata) and the RBAC caches (Roles and RoleBindings in full) hand the plan every unlabelled object
 * whose controller ownerReference names a policy (`Snapshot.controlledUnlabelled`); this module decides
 * which of them the policy may delete.
 *
 * Only one that is PROVABLY the policy's own, on all three identity marks at once:
 * - its controller ownerReference carries the policy's UID (what the garbage collector follows),
 * - csp-operator's `Apply` managedFields entry owns the fields that make it a child, and
 * - its UID is remembered in the policy's status.childUIDs (status is where namespace users cannot write),
 *   and in no other policy's.
 * A namespace user can forge the first two (an ownerReference to the policy's UID, a server-side apply as
 * `csp-operator`); not the third directly, which only the operator writes, for the objects it created,
 * repaired by UID or adopted. Adoption follows a controller ownerReference to the policy on an object at a
 * desired child's name, which an `edit` user can put on their own object: such an object is remembered and
 * may be pruned here once the policy stops wanting that name. That deletes only what its creator could
 * delete and the garbage collector deletes with the policy; a look-alike at a name the policy never wanted
 * is never remembered. Anything short of the proof is left alone (a finding at most, elsewhere).
 */

/** One unlabelled object whose controller ownerReference names a ClusterSecurityPolicy. */
export interface ControlledObject {
  kind: string;
  object: KubernetesObject;
}

/** The kinds an unlabelled orphan may be pruned from (the occupancy and RBAC caches hold them). */
export const ORPHAN_KINDS: readonly ChildKind[] = ["NetworkPolicy", "ServiceAccount", "Role", "RoleBinding"];

/** Which identity mark `obj` lacks to be provably `policy`'s own child; undefined when it has them all. */
export function missingProof(
  obj: KubernetesObject,
  kind: string,
  policy: ClusterSecurityPolicy,
  policies?: readonly ClusterSecurityPolicy[],
): "shared" | "controllerReference" | "operatorApply" | "rememberedUID" | "rememberedElsewhere" | undefined {
  if (isSharedObject(kind, obj.metadata?.name)) return "shared";
  if (!hasControllerReference(obj, policy)) return "controllerReference";
  if (!writtenByOperator(obj, kind)) return "operatorApply";
  if (!rememberedChild(obj, policy)) return "rememberedUID";
  // Another policy's status remembers it too: not provably this one's alone.
  if (policies && rememberedBy(obj, policies).some((p) => p.metadata.name !== policy.metadata.name))
    return "rememberedElsewhere";
  return undefined;
}

export interface UnlabelledOrphans {
  /** `Orphaned` drift with a delete repair (carrying the observed UID), one per provable orphan. */
  drift: Drift[];
  /**
   * The UID marks of those orphans: status.childUIDs keeps them until they are gone, so a delete that
   * failed (or Audit mode, which only reports) is proven again at the next reconcile.
   */
  remembered: string[];
}

/**
 * The unlabelled orphans `policy` may prune: provably its own (see above), not among `desired`, not
 * already judged by childDrift (`judged`: the allow-all NetworkPolicies it prunes on the garbage
 * collector's evidence), in a namespace the cache knows (an object in a namespace it does not is a LIST
 * that came back short, never evidence). Pure.
 */
export function unlabelledOrphans(
  policy: ClusterSecurityPolicy,
  desired: readonly Child[],
  snapshot: Snapshot,
  judged: readonly Drift[],
): UnlabelledOrphans {
  return drain(unlabelledOrphansSteps(policy, desired, snapshot, judged));
}

/** unlabelledOrphans in steps (see desired/slices.ts). */
export function* unlabelledOrphansSteps(
  policy: ClusterSecurityPolicy,
  desired: readonly Child[],
  snapshot: Snapshot,
  judged: readonly Drift[],
): Steps<UnlabelledOrphans> {
  const out: UnlabelledOrphans = { drift: [], remembered: [] };
  const uid = policy.metadata.uid;
  if (!uid || !snapshot.controlledUnlabelled) return out;
  const candidates = snapshot.controlledUnlabelled(uid);
  if (candidates.length === 0) return out;
  let n = 0;
  const wanted = new Set<string>();
  for (const c of desired) {
    wanted.add(objectKey(c.kind, c.metadata.namespace, c.metadata.name));
    if (++n % SLICE === 0) yield;
  }
  const done = new Set<string>();
  for (const d of judged) {
    done.add(objectKey(d.kind, d.namespace, d.name));
    if (++n % SLICE === 0) yield;
  }
  const labelled = yield* observedIndexSteps(snapshot);
  const namespaces = namespacesByName(snapshot.namespaces);
  for (const { kind, object } of candidates) {
    if (++n % SLICE === 0) yield;
    const name = object.metadata?.name;
    const namespace = object.metadata?.namespace;
    if (!name || !(ORPHAN_KINDS as readonly string[]).includes(kind)) continue;
    const key = objectKey(kind, namespace, name);
    if (wanted.has(key) || labelled.has(key)) continue;
    if (namespace !== undefined && !namespaces.has(namespace)) continue;
    if (missingProof(object, kind, policy, snapshot.policies) !== undefined) continue;
    out.remembered.push(uidMark(object.metadata!.uid!));
    if (done.has(key)) continue;
    out.drift.push({
      kind,
      ...(namespace !== undefined ? { namespace } : {}),
      name,
      area: areaOf(kind as ChildKind, name),
      reason: "Orphaned",
      message:
        "no longer wanted by the policy; its managed-by label was removed, and it is the policy's own (its controller ownerReference, csp-operator's apply and the UID the policy's status remembers)",
      // A metadata-only cache holds PartialObjectMetadata: the delete names the object's own kind.
      repair: {
        action: "delete",
        object: { ...object, apiVersion: API_VERSIONS[kind as ChildKind], kind },
      },
    });
  }
  return out;
}
