import type { KubeConfig, V1Namespace } from "@kubernetes/client-node";
import type { ClusterSecurityPolicy, ClusterSecurityPolicySpec } from "../api/v1alpha1/policy.js";
import type { Finding } from "../findings/finding.js";
import type { Logger } from "../observability/logger.js";
import type { RotationGauges } from "../observability/metrics.js";
import type { Snapshot } from "../cluster/snapshot.js";
import type { AreaCondition } from "../status/status.js";

/** What an area reconciler is given: the same immutable view every other part of a reconcile sees. */
export interface AreaInput {
  policy: ClusterSecurityPolicy;
  spec: ClusterSecurityPolicySpec;
  snapshot: Snapshot;
  /** Enforce mode: the area may write what it owns. Audit mode: it only observes and reports. */
  enforce: boolean;
  log: Logger;
  /**
   * False once the policy in the cache is not the one this reconcile planned for (switched to Audit,
   * changed, deleted): an area asks it before each write and stops writing (its report is not used).
   */
  proceed?: () => boolean;
}

/** Thrown by an area that stopped writing because its reconcile's plan is outdated (see AreaInput.proceed). */
export class PlanOutdatedError extends Error {
  constructor() {
    super("the policy changed while its areas were written: stopped");
  }
}

/** What an area learned. Everything is optional: an area that found nothing returns `{}`. */
export interface AreaReport {
  findings?: Finding[];
  /** Conditions decided from the area's own evidence; they replace the computed ones of the same type. */
  conditions?: AreaCondition[];
  /** The area could not do its part: Ready=False with this reason (unless a worse failure exists). */
  failure?: { reason: string; message: string; retryable: boolean };
  /** Run the policy again after this long (waiting on something outside the API: a file, a reload). */
  requeueAfterMs?: number;
  /** Kubernetes Events to record on the policy (a step taken, e.g. a key rotation phase). */
  events?: { type: "Normal" | "Warning"; reason: string; message: string }[];
}

/**
 * A part of the policy that is more than "children in namespaces": control-plane files and their keys,
 * CIS checks, cluster hygiene. Each area is its own file and plugs in here; reconcile calls every area in
 * use after the children are handled and folds the reports into one status.
 *
 * An area has reconcile's shape: `gather` (the cluster side: the snapshot plus the reads it needs through
 * the clients it was built with), a pure `plan(input, gathered)` that returns a value (what to report,
 * what to write; unit-tested without a server), and a cluster-side executor that makes the plan's writes
 * and reports. See encryption.ts (writes) and controlplane.ts (reads only).
 */
export interface AreaReconciler {
  /** The spec field it serves, e.g. `encryption`; used in logs. */
  readonly name: string;
  inUse(spec: ClusterSecurityPolicySpec): boolean;
  reconcile(input: AreaInput): Promise<AreaReport>;
  /**
   * Policy `name` is gone (or being deleted): release what the area set for it on shared objects, which
   * no ownerReference removes. Called on every reconcile of a name that has no live policy (its delete
   * event, a retry); throws to be retried with the queue's backoff. No finalizer: deletion never waits.
   */
  release?(input: { name: string; snapshot: Snapshot; log: Logger }): Promise<void>;
  /**
   * Names of policies that no longer exist but whose leftovers the area still sees on these namespaces
   * (deleted while no operator ran: no delete event will come). Asked on every resync — at start, on the
   * period, after a cache recovers — with the whole snapshot, and on each namespace event with that
   * namespace; each name is reconciled, so its `release` runs until nothing is left. Pure.
   */
  orphans?(input: {
    namespaces: readonly V1Namespace[];
    policies: readonly ClusterSecurityPolicy[];
  }): string[];
  /** Watches of its own (informers), started before the workers and stopped on shutdown. */
  start?(): Promise<void>;
  stop?(): Promise<void>;
}

/** What an area reports beyond its AreaReport, for the operator's metrics (OperatorMetrics implements it). */
export interface AreaObserver {
  /** A policy's key-rotation state as persisted (undefined: none known), on every reconcile. */
  rotation(policy: string, state: RotationGauges | undefined): void;
}

/**
 * How the operator builds its areas: with the cluster's KubeConfig, a logger, `enqueue`, which an area's
 * watch calls with a policy name (or undefined for every policy) when something it reads changed, and the
 * metrics' observer when metrics are on.
 */
export type AreaFactory = (ctx: {
  kc: KubeConfig;
  log: Logger;
  enqueue: (policy: string | undefined) => void;
  observer?: AreaObserver;
}) => AreaReconciler;

/** Runs every area in use; an area that throws becomes a retryable failure of that area, never a crash. */
export async function runAreas(
  areas: readonly AreaReconciler[],
  input: AreaInput,
): Promise<{ name: string; report: AreaReport }[]> {
  const out: { name: string; report: AreaReport }[] = [];
  for (const area of areas) {
    if (!area.inUse(input.spec)) continue;
    // An outdated plan: the areas left are not run (reconcile writes no status for it).
    if (input.proceed && !input.proceed()) break;
    try {
      out.push({ name: area.name, report: await area.reconcile(input) });
    } catch (err) {
      const message = `${area.name}: ${err instanceof Error ? err.message : String(err)}`;
      out.push({ name: area.name, report: { failure: { reason: "AreaFailed", message, retryable: true } } });
    }
  }
  return out;
}

/** Runs every area's release for a policy that is gone; returns the failures (never throws). */
export async function releaseAreas(
  areas: readonly AreaReconciler[],
  input: { name: string; snapshot: Snapshot; log: Logger },
): Promise<string[]> {
  const failures: string[] = [];
  for (const area of areas) {
    if (!area.release) continue;
    try {
      await area.release(input);
    } catch (err) {
      failures.push(`${area.name}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  return failures;
}
