import type { ClusterSecurityPolicySpec } from "../api/v1alpha1/policy.js";
import { HygieneReader } from "../cluster/hygiene.js";
import { ApiError } from "../cluster/rest.js";
import { OPERATOR_NAMESPACE } from "../desired/metadata.js";
import { bound, hygieneCondition } from "../hygiene/common.js";
import { KUBERNETES_RELEASES, type ReleaseTable } from "../hygiene/kubernetes-releases.js";
import { exempts, isActive } from "../findings/exemptions.js";
import {
  DEFAULT_WARN_DAYS,
  NOT_JUDGED_IDS,
  parseReleaseTable,
  parseVersion,
  quoteVersion,
  versionFindings,
} from "../hygiene/versions.js";
import type { AreaFactory, AreaInput, AreaReconciler, AreaReport } from "./areas.js";

export const CONDITION = "ClusterVersionSupported";
/** The key of `spec.clusterVersion.tableConfigMap` that holds the replacement table. */
export const TABLE_KEY = "releases.json";
/** Versions change on upgrades, which no watch here sees: read them again this often. */
export const CLUSTER_VERSION_RECHECK_MS = 10 * 60_000;

/** Why a read failed, as a condition reason: Forbidden for 401/403, otherwise ReadFailed. */
export function readFailureReason(err: unknown): string {
  return err instanceof ApiError && (err.code === 401 || err.code === 403) ? "Forbidden" : "ReadFailed";
}

export function errorText(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split("\n")[0]!.slice(0, 300);
}

export function warnDaysOf(spec: ClusterSecurityPolicySpec): number {
  return spec.clusterVersion?.warnDays ?? spec.clusterVersion?.warnBeforeEndOfLifeDays ?? DEFAULT_WARN_DAYS;
}

/**
 * `spec.clusterVersion`: the API server's and every kubelet's version against the table of Kubernetes
 * releases (shipped in src/hygiene/kubernetes-releases.ts, or a ConfigMap's replacement). Reports only.
 */
export function clusterVersionArea(recheckMs = CLUSTER_VERSION_RECHECK_MS): AreaFactory {
  return ({ kc }) => {
    const reader = new HygieneReader(kc);
    const unknown = (reason: string, message: string): AreaReport => ({
      conditions: [{ type: CONDITION, status: "Unknown", reason, message: bound(message) }],
      requeueAfterMs: recheckMs,
    });
    const area: AreaReconciler = {
      name: "clusterVersion",
      inUse: (spec) => spec.clusterVersion !== undefined,
      async reconcile({ spec, snapshot }: AreaInput): Promise<AreaReport> {
        const cv = spec.clusterVersion ?? {};
        let table: ReleaseTable = KUBERNETES_RELEASES;
        if (cv.tableConfigMap) {
          const where = `ConfigMap ${OPERATOR_NAMESPACE}/${cv.tableConfigMap}`;
          let data: Record<string, string> | undefined;
          try {
            data = await reader.configMapData(OPERATOR_NAMESPACE, cv.tableConfigMap);
          } catch (err) {
            return unknown(
              readFailureReason(err),
              `spec.clusterVersion.tableConfigMap: ${where}: ${errorText(err)}`,
            );
          }
          if (data === undefined)
            return unknown(
              "ReleaseTableNotFound",
              `spec.clusterVersion.tableConfigMap: ${where} does not exist`,
            );
          const text = data[TABLE_KEY];
          if (text === undefined)
            return unknown(
              "ReleaseTableInvalid",
              `spec.clusterVersion.tableConfigMap: ${where} has no key ${TABLE_KEY}`,
            );
          let raw: unknown;
          try {
            raw = JSON.parse(text);
          } catch (err) {
            return unknown(
              "ReleaseTableInvalid",
              `spec.clusterVersion.tableConfigMap: ${where} key ${TABLE_KEY} is not JSON: ${errorText(err)}`,
            );
          }
          const parsed = parseReleaseTable(raw, snapshot.now);
          if ("error" in parsed)
            return unknown(
              "ReleaseTableInvalid",
              `spec.clusterVersion.tableConfigMap: ${where} key ${TABLE_KEY}: ${parsed.error}`,
            );
          table = parsed.table;
        }
        let apiServer: string;
        try {
          apiServer = await reader.apiServerVersion();
        } catch (err) {
          return unknown(
            readFailureReason(err),
            `the API server's /version could not be read: ${errorText(err)}`,
          );
        }
        let kubelets: { node: string; version: string }[] = [];
        let kubeletProblem: { reason: string; message: string } | undefined;
        try {
          kubelets = await reader.kubeletVersions();
        } catch (err) {
          kubeletProblem = {
            reason: readFailureReason(err),
            message: `Nodes could not be listed, so no kubelet was judged: ${errorText(err)}`,
          };
        }
        const warnDays = warnDaysOf(spec);
        const findings = versionFindings({ apiServer, kubelets }, table, snapshot.now, warnDays);
        const minor = parseVersion(apiServer);
        const rel = minor && table.releases.find((r) => r.minor === `${minor.major}.${minor.minor}`);
        const notJudged = findings.filter((f) => NOT_JUDGED_IDS.has(f.id));
        const judgedKubelets = kubelets.filter(
          (k) => !notJudged.some((f) => f.resource === `Node/${k.node}`),
        ).length;
        const okMessage = [
          `API server ${quoteVersion(apiServer)}${rel ? ` (${rel.minor} supported until ${rel.endOfLife})` : ""} and ${judgedKubelets} kubelet(s) on supported versions`,
          `release table of ${table.lastUpdated}${cv.tableConfigMap ? ` from ConfigMap ${OPERATOR_NAMESPACE}/${cv.tableConfigMap}` : ""}`,
        ].join("; ");
        let condition = hygieneCondition(CONDITION, findings, spec.exemptions, snapshot.now, {
          failReason: "UnsupportedVersions",
          okReason: "Supported",
          okMessage,
        });
        // A version seen but not judged (unparseable, a minor the table does not know) is not "supported":
        // Unknown, unless an active exemption accepts that finding.
        const active = (spec.exemptions ?? []).filter((e) => isActive(e, snapshot.now));
        const unjudged = notJudged.filter((f) => !active.some((e) => exempts(e, f)));
        if (condition.status === "True" && unjudged.length > 0)
          condition = {
            type: CONDITION,
            status: "Unknown",
            reason: "VersionsNotJudged",
            message: bound(
              `${unjudged.length} version(s) not judged: ${unjudged
                .slice(0, 10)
                .map((f) => `${f.id} on ${f.resource}`)
                .join(", ")}${unjudged.length > 10 ? ", ..." : ""}`,
            ),
          };
        if (condition.status === "True" && kubeletProblem)
          condition = { type: CONDITION, status: "Unknown", ...kubeletProblem };
        return { findings, conditions: [condition], requeueAfterMs: recheckMs };
      },
    };
    return area;
  };
}
