import type { KubeConfig } from "@kubernetes/client-node";
import type { ClusterSecurityPolicy } from "../api/v1alpha1/policy.js";
import { ApiError, RestClient } from "../cluster/rest.js";
import { FIELD_MANAGER, MANAGED_BY_LABEL, MANAGED_BY_VALUE, POLICY_LABEL } from "../desired/metadata.js";
import { ownerReference, ownershipLabels } from "../desired/metadata.js";
import { jsonEqual } from "../drift/normalize.js";
import {
  REPORT_APIS,
  describeKind,
  kindsInDiscovery,
  reportObject,
  reportPath,
  type ReportKind,
  type ReportObject,
} from "./kinds.js";
import { OMITTED_ANNOTATION, policyReports, reportName } from "./model.js";

/** A report at the name of one of ours that this policy does not own (no controller reference with its UID). */
export class ReportNotOwnedError extends Error {}

/** What one publish did. */
export interface PublishOutcome {
  /** Reports that exist for the policy now, over every kind. */
  reports: number;
  written: number;
  deleted: number;
}

interface Listed {
  metadata?: {
    name?: string;
    namespace?: string;
    uid?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    ownerReferences?: { uid?: string; controller?: boolean }[];
  };
  source?: unknown;
  summary?: unknown;
  results?: unknown;
}

/** The API server refused a namespaced write because the namespace does not exist. */
function namespaceMissing(err: unknown): boolean {
  const details =
    err instanceof ApiError ? (err.body as { details?: { kind?: string } } | undefined)?.details : undefined;
  return err instanceof ApiError && err.code === 404 && details?.kind === "namespaces";
}

function ownedBy(o: Listed, uid: string): boolean {
  return (o.metadata?.ownerReferences ?? []).some((r) => r.controller === true && r.uid === uid);
}

/** Whether the live report already says what `want` says (content, our labels, annotation, owner). */
export function sameReport(live: Listed, want: ReportObject): boolean {
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

/**
 * The only part of reports that talks to the API server: discovery of the report kinds, and the publish of
 * one policy's reports (server-side apply under the `csp-operator` field manager, only where the content
 * differs; stale reports of the policy deleted). Raw JSON (RestClient): client-node's models drop fields
 * of kinds they do not know.
 */
export class ReportWriter {
  private readonly rest: RestClient;

  constructor(kc: KubeConfig) {
    this.rest = new RestClient(kc, { defaultTimeoutMs: 15_000 });
  }

  /** The report kinds the API server serves now; a group version it does not serve (404) has none. */
  async detect(): Promise<ReportKind[]> {
    const out: ReportKind[] = [];
    for (const api of REPORT_APIS) {
      try {
        const list = await this.rest.request<{
          resources?: { name?: string; kind?: string; namespaced?: boolean }[];
        }>("GET", `/apis/${api.group}/${api.version}`);
        out.push(...kindsInDiscovery(api, list.resources ?? []));
      } catch (err) {
        if (err instanceof ApiError && err.code === 404) continue;
        throw err;
      }
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
    const outcome: PublishOutcome = { reports: 0, written: 0, deleted: 0 };
    const notOurs: string[] = [];
    for (const k of kinds) {
      const wanted = (k.scope === "cluster" ? [contents.cluster] : contents.namespaced).map((c) =>
        reportObject(k, c, meta),
      );
      const selector = `${MANAGED_BY_LABEL}=${MANAGED_BY_VALUE},${POLICY_LABEL}=${policy.metadata.name}`;
      const listed = await this.rest.request<{ items?: Listed[] }>("GET", reportPath(k), {
        query: { labelSelector: selector },
      });
      const live = new Map(
        (listed.items ?? []).map((o) => [`${o.metadata?.namespace ?? ""}/${o.metadata?.name}`, o]),
      );
      const keep = new Set<string>();
      for (const want of wanted) {
        const key = `${want.metadata.namespace ?? ""}/${want.metadata.name}`;
        keep.add(key);
        let current: Listed | undefined = live.get(key);
        // Not labelled as ours (or never written): look at the name itself before writing over it.
        current ??= await this.get(k, want.metadata.namespace, want.metadata.name);
        if (current && !ownedBy(current, uid)) {
          notOurs.push(`${describeKind(k)} ${key.replace(/^\//, "")}`);
          continue;
        }
        if (current && sameReport(current, want)) {
          outcome.reports++;
          continue;
        }
        try {
          await this.rest.request("PATCH", reportPath(k, want.metadata.namespace, want.metadata.name), {
            query: { fieldManager: FIELD_MANAGER, force: "true" },
            contentType: "application/apply-patch+yaml",
            body: want,
          });
        } catch (err) {
          // An exemption may name a namespace that does not exist (yet): no report there, not a failure.
          if (namespaceMissing(err)) continue;
          throw err;
        }
        outcome.reports++;
        outcome.written++;
      }
      for (const [key, o] of live) {
        if (keep.has(key) || !ownedBy(o, uid) || !o.metadata?.name) continue;
        try {
          await this.rest.request("DELETE", reportPath(k, o.metadata.namespace, o.metadata.name), {
            body: { preconditions: { uid: o.metadata.uid } },
          });
          outcome.deleted++;
        } catch (err) {
          if (!(err instanceof ApiError && (err.code === 404 || err.code === 409))) throw err;
        }
      }
    }
    if (notOurs.length)
      throw new ReportNotOwnedError(
        `${notOurs.slice(0, 5).join(", ")}${notOurs.length > 5 ? ` and ${notOurs.length - 5} more` : ""}: ` +
          `exists and is not this policy's (no controller reference to it); left unchanged`,
      );
    return outcome;
  }

  private async get(k: ReportKind, namespace: string | undefined, name: string): Promise<Listed | undefined> {
    try {
      return await this.rest.request<Listed>("GET", reportPath(k, namespace, name));
    } catch (err) {
      if (err instanceof ApiError && err.code === 404) return undefined;
      throw err;
    }
  }
}
