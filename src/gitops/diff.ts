/**
 * `diff`: what applying a policy would change in a live cluster, like `kubectl diff`: each object the
 * controller's plan would write is sent as a server-side apply DRY RUN (dryRun=All) under the operator's
 * field manager, and the API server's answer is compared with the live object. Nothing is written: the
 * cluster is only read and dry-run (cluster/livereader.ts makes the calls). Also lists what would be pruned and previews the traffic a
 * default-deny would cut.
 */
import type { KubernetesObject, V1NetworkPolicy } from "@kubernetes/client-node";
import { createTwoFilesPatch } from "diff";
import { stringify } from "yaml";
import type { ClusterSecurityPolicy } from "../api/v1alpha1/policy.js";
import type { LiveReader } from "../cluster/livereader.js";
import { settleBounded } from "../controller/bounded.js";
import { desiredState } from "../desired/index.js";
import { selectNamespaces } from "../desired/namespaces.js";
import { effectiveSpec } from "../desired/spec.js";
import { objectKey } from "../cluster/snapshot.js";
import { gatherLive, gatherTraffic } from "./gather.js";
import { egressImpact, trafficImpact, type TrafficImpact } from "./impact.js";
import { renderedKey, renderPolicy, type RenderedObject } from "./render.js";

/** The exit codes of `diff`, as `kubectl diff` has them: CI gates on 1. */
export const DIFF_EXIT = { same: 0, changed: 1, error: 2 } as const;

/** Objects read and dry-run at once. */
const DRY_RUNS_IN_FLIGHT = 8;

/** One object the apply would change. */
export interface ObjectChange {
  key: string;
  action: "create" | "update";
  manager: string;
  /** Unified diff of the live object and the dry-run result (server-set metadata left out). */
  diff: string;
}

/** Everything `diff` found for one policy. */
export interface PolicyDiff {
  policy: string;
  changes: ObjectChange[];
  /** Keys of objects the apply would delete. */
  prunes: string[];
  impact: TrafficImpact[];
  /** Failures the controller would report (InvalidSpec, not grantable): not applied, not diffed. */
  failures: string[];
}

/** Fields the API server sets on every object: they say nothing about what the apply changes. */
function comparable(o: KubernetesObject | undefined): string {
  if (!o) return "";
  const copy = structuredClone(o) as KubernetesObject & { metadata?: Record<string, unknown> };
  for (const f of ["managedFields", "resourceVersion", "generation", "uid", "creationTimestamp"])
    delete copy.metadata?.[f];
  return stringify(copy, { lineWidth: 0, sortMapEntries: true });
}

/** The file name kubectl diff gives an object: `<group.version>.<Kind>.<namespace>.<name>`. */
function fileName(o: KubernetesObject): string {
  return `${o.apiVersion!.replace("/", ".")}.${o.kind}.${o.metadata?.namespace ?? ""}.${o.metadata?.name}`;
}

/** A unified diff of two texts as `diff -u -N live/... merged/...` prints it; "" when equal. */
export function unifiedDiff(name: string, live: string, merged: string): string {
  if (live === merged) return "";
  const patch = createTwoFilesPatch(`live/${name}`, `merged/${name}`, live, merged, "", "", { context: 3 });
  return `diff -u -N live/${name} merged/${name}\n${patch.replace(/^=+\n/, "")}`;
}

/** The NetworkPolicies of the namespaces once the plan is applied: ours replaced, others kept. */
function networkPoliciesAfter(
  live: readonly V1NetworkPolicy[],
  desired: readonly KubernetesObject[],
  prunes: ReadonlySet<string>,
): V1NetworkPolicy[] {
  const key = (o: KubernetesObject) => objectKey("NetworkPolicy", o.metadata?.namespace, o.metadata!.name!);
  const wanted = new Map(desired.filter((o) => o.kind === "NetworkPolicy").map((o) => [key(o), o]));
  const kept = live.filter((o) => !wanted.has(key(o)) && !prunes.has(key(o)));
  return [...kept, ...([...wanted.values()] as V1NetworkPolicy[])];
}

/**
 * Diffs one policy (from a file) against the cluster. Throws on a failed read or a dry run the API
 * server refuses (the caller exits with DIFF_EXIT.error).
 */
export async function diffPolicy(
  reader: LiveReader,
  policy: ClusterSecurityPolicy,
  now: Date,
): Promise<PolicyDiff> {
  const { snapshot } = await gatherLive(reader, policy, now);
  const rendered = renderPolicy(policy.metadata.name, snapshot);
  const p = rendered.plan;
  const mine = snapshot.policies.find((x) => x.metadata.name === policy.metadata.name)!;
  // The plan's writes, plus every other child the policy owns: the dry run confirms what it left alone.
  const blocked = new Set(p.remaining.map((d) => objectKey(d.kind, d.namespace, d.name)));
  const writing = new Set(rendered.objects.map((o) => renderedKey(o.object)));
  const objects: RenderedObject[] = rendered.objects.filter((o) => o.role !== "file");
  if (p.enforce)
    for (const c of desiredState(mine, snapshot).children) {
      const key = objectKey(c.kind, c.metadata.namespace, c.metadata.name);
      if (writing.has(key) || blocked.has(key) || p.failures.some((f) => f.message.includes(key))) continue;
      objects.push({ object: c, role: "child", manager: "csp-operator", reason: "unchanged" });
    }
  const settled = await settleBounded(
    objects,
    DRY_RUNS_IN_FLIGHT,
    async (o): Promise<ObjectChange | undefined> => {
      const live = await reader.read(
        o.object.apiVersion!,
        o.object.kind!,
        o.object.metadata?.namespace,
        o.object.metadata!.name!,
      );
      const merged = await reader.dryRunApply(o.object, o.manager);
      const diff = unifiedDiff(fileName(o.object), comparable(live), comparable(merged));
      return diff
        ? { key: renderedKey(o.object), action: live ? "update" : "create", manager: o.manager, diff }
        : undefined;
    },
  );
  const changes: ObjectChange[] = [];
  for (const r of settled) {
    if (r.status === "rejected") throw r.reason;
    if (r.value) changes.push(r.value);
  }
  // Prunes, dry-run too so a refusal (RBAC, a finalizer policy) shows now rather than at apply time.
  const pruneObjects = [
    ...p.deletes.map((d) => ({
      key: d.key,
      object: { ...d.object, apiVersion: "rbac.authorization.k8s.io/v1", kind: "RoleBinding" },
    })),
    ...p.writes.filter((w) => w.action === "delete").map((w) => ({ key: w.key, object: w.object })),
  ];
  for (const d of pruneObjects) await reader.dryRunDelete(d.object);

  // Traffic preview, only where the policy changes NetworkPolicies.
  const namespaces = selectNamespaces(effectiveSpec(mine), snapshot.namespaces);
  const touched = namespaces.filter(
    (ns) =>
      changes.some((c) => c.key.startsWith(`NetworkPolicy/${ns}/`)) ||
      pruneObjects.some((d) => d.key.startsWith(`NetworkPolicy/${ns}/`)),
  );
  let impact: TrafficImpact[] = [];
  if (touched.length > 0) {
    const traffic = await gatherTraffic(reader, touched);
    const desired = p.enforce ? desiredState(mine, snapshot).children : [];
    const after = networkPoliciesAfter(
      traffic.networkPolicies,
      desired.filter((c) => !blocked.has(objectKey(c.kind, c.metadata.namespace, c.metadata.name))),
      new Set(pruneObjects.map((d) => d.key)),
    );
    const scope = { namespaces: touched, pods: traffic.pods, before: traffic.networkPolicies, after };
    impact = [...trafficImpact({ ...scope, services: traffic.services }), ...egressImpact(scope)];
  }
  return {
    policy: policy.metadata.name,
    changes: changes.sort((a, b) => a.key.localeCompare(b.key)),
    prunes: pruneObjects.map((d) => d.key).sort(),
    impact,
    failures: rendered.failures,
  };
}
