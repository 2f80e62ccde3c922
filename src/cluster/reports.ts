/**
 * The API calls of the policy reports (src/reports): discovery of the report kinds, the LIST of one
 * policy's reports, a GET at one name, the server-side apply of a report and the delete of a stale one.
 * Report kinds are CRDs the REST mapping of rest.ts does not know, so their paths come from reports/kinds.ts.
 * Raw JSON (RestClient): client-node's models drop fields of kinds they do not know.
 */
import type { KubeConfig } from "@kubernetes/client-node";
import { FIELD_MANAGER } from "../api/vocabulary.js";
import { reportPath, type ReportApi, type ReportKind, type ReportObject } from "../reports/kinds.js";
import { CREATE_ONLY_RESOURCE_VERSION } from "./applier.js";
import { ConflictError, ForbiddenError, NotFoundError, RestClient } from "./rest.js";

/** Report writes and reads give up after this: a stalled API server must not hold the reports worker. */
export const REPORTS_TIMEOUT_MS = 15_000;

/** A report as listed or read: only what the comparison and the ownership check need. */
export interface LiveReport {
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

/** What one resource of a discovery document says. */
export interface DiscoveredResource {
  name?: string;
  kind?: string;
  namespaced?: boolean;
}

/**
 * The API server refused a namespaced write because the namespace does not exist, or is being deleted
 * (NamespaceLifecycle: 403 Forbidden with a `NamespaceTerminating` cause): nothing to write there either way.
 */
export function namespaceGone(err: unknown): boolean {
  if (err instanceof NotFoundError)
    return (err.body as { details?: { kind?: string } } | undefined)?.details?.kind === "namespaces";
  if (err instanceof ForbiddenError) {
    // A StatusCause's type is `reason` in JSON.
    const causes = (err.body as { details?: { causes?: { reason?: string }[] } } | undefined)?.details
      ?.causes;
    return Array.isArray(causes) && causes.some((c) => c?.reason === "NamespaceTerminating");
  }
  return false;
}

/** What one report write did. */
export type ApplyOutcome = "written" | "namespaceGone" | "exists";

export class ReportClient {
  private readonly rest: RestClient;

  constructor(kcOrRest: KubeConfig | RestClient) {
    this.rest =
      kcOrRest instanceof RestClient
        ? kcOrRest
        : new RestClient(kcOrRest, { defaultTimeoutMs: REPORTS_TIMEOUT_MS });
  }

  /** The resources of one report API's group version; undefined when the API server does not serve it (404). */
  async discover(api: ReportApi): Promise<DiscoveredResource[] | undefined> {
    try {
      const list = await this.rest.request<{ resources?: DiscoveredResource[] }>(
        "GET",
        `/apis/${api.group}/${api.version}`,
      );
      return list.resources ?? [];
    } catch (err) {
      if (err instanceof NotFoundError) return undefined;
      throw err;
    }
  }

  /** The reports of one kind, over all namespaces, that the label selector selects. */
  async list(k: ReportKind, labelSelector: string): Promise<LiveReport[]> {
    const listed = await this.rest.request<{ items?: LiveReport[] | null }>("GET", reportPath(k), {
      query: { labelSelector },
    });
    return listed.items ?? [];
  }

  /** The report at one name; undefined when there is none. */
  async get(k: ReportKind, namespace: string | undefined, name: string): Promise<LiveReport | undefined> {
    try {
      return await this.rest.request<LiveReport>("GET", reportPath(k, namespace, name));
    } catch (err) {
      if (err instanceof NotFoundError) return undefined;
      throw err;
    }
  }

  /**
   * Server-side apply (force) under the operator's field manager. "namespaceGone" when the report's namespace
   * does not exist or is terminating: an exemption may name a namespace that does not exist (yet), which is
   * not a failure. With `createOnly` (a report observed missing) the apply carries the create-only
   * precondition (see Applier.create): "exists" when anything was put at the name meanwhile, never taken over.
   */
  async apply(k: ReportKind, report: ReportObject, createOnly = false): Promise<ApplyOutcome> {
    const body = createOnly
      ? { ...report, metadata: { ...report.metadata, resourceVersion: CREATE_ONLY_RESOURCE_VERSION } }
      : report;
    try {
      await this.rest.request("PATCH", reportPath(k, report.metadata.namespace, report.metadata.name), {
        query: { fieldManager: FIELD_MANAGER, force: "true" },
        contentType: "application/apply-patch+yaml",
        body,
      });
      return "written";
    } catch (err) {
      if (namespaceGone(err)) return "namespaceGone";
      if (createOnly && err instanceof ConflictError) return "exists";
      throw err;
    }
  }

  /**
   * Deletes the exact report that was listed (uid precondition). False when it is gone already or was
   * replaced by a namesake meanwhile (never deleted then).
   */
  async delete(k: ReportKind, report: LiveReport): Promise<boolean> {
    const name = report.metadata?.name;
    if (!name) return false;
    try {
      await this.rest.request("DELETE", reportPath(k, report.metadata?.namespace, name), {
        body: { preconditions: { uid: report.metadata?.uid } },
      });
      return true;
    } catch (err) {
      if (err instanceof NotFoundError || err instanceof ConflictError) return false;
      throw err;
    }
  }
}
