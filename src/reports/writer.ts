import type { KubeConfig } from "@kubernetes/client-node";
import type { ClusterSecurityPolicy } from "../api/v1alpha1/policy.js";
import { MANAGED_BY_LABEL, MANAGED_BY_VALUE, POLICY_LABEL } from "../api/vocabulary.js";
import { statusCode } from "../cluster/client.js";
import { ReportClient, type LiveReport } from "../cluster/reports.js";
import { ownerReference, ownershipLabels } from "../desired/metadata.js";
import { jsonEqual } from "../drift/normalize.js";
import {
  REPORT_APIS,
  describeKind,
  kindsInDiscovery,
  reportObject,
  type ReportKind,
  type ReportObject,
} from "./kinds.js";
import { OMITTED_ANNOTATION, policyReports, reportName } from "./model.js";

/** A report at the name of one of ours that this policy does not own (no controller reference with its UID). */
export class ReportNotOwnedError extends Error {}

/**
 * Some report writes of a publish failed (the others were done); `errors` are their errors, in order, and
 * `code` their HTTP status when they all share one (a 403 for each: the operator's RBAC).
 */
export class ReportWritesFailedError extends Error {
  readonly code: number | undefined;
  constructor(
    message: string,
    readonly errors: unknown[],
  ) {
    super(message);
    const codes = new Set(errors.map((e) => statusCode(e)));
    this.code = codes.size === 1 ? [...codes][0] : undefined;
  }
}

/** What one publish did. */
export interface PublishOutcome {
  /** Reports that exist for the policy now, over every kind. */
  reports: number;
  written: number;
  deleted: number;
}

function ownedBy(o: LiveReport, uid: string): boolean {
  return (o.metadata?.ownerReferences ?? []).some((r) => r.controller === true && r.uid === uid);
}

/** Whether the live report already says what `want` says (content, our labels, annotation, owner). */
export function sameReport(live: LiveReport, want: ReportObject): boolean {
  const labels = live.metadata?.labels ?? {};
  return (
    jsonEqual(live.results ?? [], want.results) &&
    jsonEqual(live.summary, want.summary) &&
    (want.source === undefined || live.source === want.source) &&
    Object.entries(want.metadata.labels).every(([k, v]) => labels[k] === v) &&
    live.metadata?.annotations?.[OMITTED_ANNOTATION] === want.metadata.annotations?.[OMITTED_ANNOTATION] &&
    ownedBy(live, want.metadata.ownerReferences[0]!.uid)
  );
}

/** What one kind of a policy's reports needs: written, deleted, left alone. */
export interface KindPlan {
  /** Reports whose content differs from the live one (or that do not exist). */
  apply: ReportObject[];
  /** Reports of this policy (its controller reference) no longer wanted. */
  delete: LiveReport[];
  /** Wanted reports already as wanted. */
  unchanged: number;
  /** `Kind ns/name` of wanted names held by a report that is not this policy's: left alone. */
  notOurs: string[];
}

const keyOf = (namespace: string | undefined, name: string | undefined) => `${namespace ?? ""}/${name}`;

/**
 * PURE: what one kind of the policy's reports needs, from the `wanted` reports and what the cluster holds
 * (`live`: the policy's labelled reports plus whatever was read at a wanted name the list did not hold).
 */
export function planKind(
  k: ReportKind,
  wanted: readonly ReportObject[],
  live: readonly LiveReport[],
  uid: string,
): KindPlan {
  const byKey = new Map(live.map((o) => [keyOf(o.metadata?.namespace, o.metadata?.name), o]));
  const plan: KindPlan = { apply: [], delete: [], unchanged: 0, notOurs: [] };
  const keep = new Set<string>();
  for (const want of wanted) {
    const key = keyOf(want.metadata.namespace, want.metadata.name);
    keep.add(key);
    const current = byKey.get(key);
    if (current && !ownedBy(current, uid)) plan.notOurs.push(`${describeKind(k)} ${key.replace(/^\//, "")}`);
    else if (current && sameReport(current, want)) plan.unchanged++;
    else plan.apply.push(want);
  }
  for (const [key, o] of byKey)
    if (!keep.has(key) && ownedBy(o, uid) && o.metadata?.name) plan.delete.push(o);
  return plan;
}

/**
 * Publishes policy reports: gathers what the cluster holds (ReportClient, src/cluster/reports.ts), plans
 * each kind (planKind, pure), and applies the plan: server-side apply under the `csp-operator` field manager
 * only where the content differs, stale reports of the policy deleted.
 */
export class ReportWriter {
  private readonly client: ReportClient;

  constructor(kcOrClient: KubeConfig | ReportClient) {
    this.client = kcOrClient instanceof ReportClient ? kcOrClient : new ReportClient(kcOrClient);
  }

  /** The report kinds the API server serves now; a group version it does not serve (404) has none. */
  async detect(): Promise<ReportKind[]> {
    const out: ReportKind[] = [];
    for (const api of REPORT_APIS) {
      const resources = await this.client.discover(api);
      if (resources) out.push(...kindsInDiscovery(api, resources));
    }
    return out;
  }

  /**
   * Brings the policy's reports of every given kind to what its status says. A report is written only when
   * its content differs from the live one (an unchanged policy costs one LIST per kind and no write); a
   * report of this policy (its controller reference) that is no longer wanted is deleted. A report at one of
   * our names that is not this policy's is left alone and reported (ReportNotOwnedError) after the rest.
   */
  async publish(
    policy: ClusterSecurityPolicy,
    kinds: readonly ReportKind[],
    now: Date,
  ): Promise<PublishOutcome> {
    const uid = policy.metadata.uid;
    if (!uid) throw new Error(`policy ${policy.metadata.name} has no UID yet`);
    const contents = policyReports(policy, now);
    const name = reportName(policy.metadata.name);
    const meta = { name, labels: ownershipLabels(policy.metadata.name), owner: ownerReference(policy) };
    const selector = `${MANAGED_BY_LABEL}=${MANAGED_BY_VALUE},${POLICY_LABEL}=${policy.metadata.name}`;
    const outcome: PublishOutcome = { reports: 0, written: 0, deleted: 0 };
    const notOurs: string[] = [];
    const failures: { what: string; err: unknown }[] = [];
    for (const k of kinds) {
      const wanted = (k.scope === "cluster" ? [contents.cluster] : contents.namespaced).map((c) =>
        reportObject(k, c, meta),
      );
      // Gather: the policy's labelled reports, and whatever sits at a wanted name they do not hold (a
      // report not labelled as ours, or never written) so it is never written over unseen.
      const live = await this.client.list(k, selector);
      const present = new Set(live.map((o) => keyOf(o.metadata?.namespace, o.metadata?.name)));
      for (const want of wanted) {
        if (present.has(keyOf(want.metadata.namespace, want.metadata.name))) continue;
        const found = await this.client.get(k, want.metadata.namespace, want.metadata.name);
        if (found) {
          live.push(found);
          present.add(keyOf(found.metadata?.namespace, found.metadata?.name));
        }
      }
      const plan = planKind(k, wanted, live, uid);
      notOurs.push(...plan.notOurs);
      outcome.reports += plan.unchanged;
      // One report failing (a namespace in a bad state, a webhook) does not keep the others from being
      // written: the errors are collected and thrown once at the end.
      for (const want of plan.apply) {
        const key = keyOf(want.metadata.namespace, want.metadata.name);
        const what = `${describeKind(k)} ${key.replace(/^\//, "")}`;
        try {
          // A report seen nowhere is created only: one put there meanwhile is never taken over.
          const done = await this.client.apply(k, want, !present.has(key));
          if (done === "written") {
            outcome.reports++;
            outcome.written++;
          } else if (done === "exists") notOurs.push(`${what} (created meanwhile)`);
        } catch (err) {
          failures.push({ what, err });
        }
      }
      for (const o of plan.delete) {
        try {
          if (await this.client.delete(k, o)) outcome.deleted++;
        } catch (err) {
          const key = keyOf(o.metadata?.namespace, o.metadata?.name).replace(/^\//, "");
          failures.push({ what: `${describeKind(k)} ${key} (delete)`, err });
        }
      }
    }
    if (failures.length) {
      const list = failures
        .slice(0, 5)
        .map((f) => `${f.what}: ${f.err instanceof Error ? f.err.message : String(f.err)}`)
        .join("; ");
      const more = failures.length > 5 ? ` and ${failures.length - 5} more` : "";
      const others = notOurs.length
        ? `; also ${notOurs.length} report(s) not this policy's left unchanged`
        : "";
      throw new ReportWritesFailedError(
        `${failures.length} report write(s) failed: ${list}${more}${others}`,
        failures.map((f) => f.err),
      );
    }
    if (notOurs.length)
      throw new ReportNotOwnedError(
        `${notOurs.slice(0, 5).join(", ")}${notOurs.length > 5 ? ` and ${notOurs.length - 5} more` : ""}: ` +
          `exists and is not this policy's (no controller reference to it); left unchanged`,
      );
    return outcome;
  }
}
