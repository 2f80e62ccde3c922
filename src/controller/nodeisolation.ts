import { NodeIsolationReader } from "../cluster/nodeisolation.js";
import { ApiError } from "../cluster/rest.js";
import { selectNamespaces } from "../desired/namespaces.js";
import type { Finding } from "../findings/finding.js";
import { bound, hygieneCondition } from "../hygiene/common.js";
import {
  AREA,
  ISOLATION_ANNOTATION,
  NODE_SELECTOR_ANNOTATION,
  placementFindings,
  selectorAnnotation,
  type PodPlacement,
} from "../hygiene/nodeisolation.js";
import type { AreaFactory, AreaInput, AreaReconciler, AreaReport } from "./areas.js";
import { errorText, readFailureReason } from "./clusterversion.js";

export const CONDITION = "NodesIsolated";
/** Pods come and go without an event this area watches: placement is read again this often. */
export const NODE_ISOLATION_RECHECK_MS = 60_000;

/**
 * `spec.nodeIsolation`: sets the PodNodeSelector annotation on the selected namespaces (Enforce) and
 * reports pods placed against the isolation. Pods are read only while a policy uses this area.
 */
export function nodeIsolationArea(recheckMs = NODE_ISOLATION_RECHECK_MS): AreaFactory {
  return ({ kc }) => {
    const reader = new NodeIsolationReader(kc);
    const area: AreaReconciler = {
      name: "nodeIsolation",
      inUse: (spec) => spec.nodeIsolation !== undefined,
      async reconcile({ spec, snapshot, enforce }: AreaInput): Promise<AreaReport> {
        const ni = spec.nodeIsolation ?? {};
        const selector = ni.nodeSelector ?? {};
        const unknown = (reason: string, message: string): AreaReport => ({
          conditions: [{ type: CONDITION, status: "Unknown", reason, message: bound(message) }],
          requeueAfterMs: recheckMs,
        });
        if (Object.keys(selector).length === 0)
          return unknown("NoNodeSelector", "spec.nodeIsolation.nodeSelector is empty: no node is isolated");
        const want = selectorAnnotation(selector);
        const selected = selectNamespaces(spec, snapshot.namespaces);
        const findings: Finding[] = [];
        const failures: string[] = [];
        for (const name of selected) {
          const ns = snapshot.namespaces.find((n) => n.metadata?.name === name);
          const have = ns?.metadata?.annotations?.[NODE_SELECTOR_ANNOTATION];
          if (have === want) continue;
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
          try {
            await reader.setNodeSelector(name, want);
          } catch (err) {
            const conflict = err instanceof ApiError && err.code === 409;
            findings.push({
              id: ISOLATION_ANNOTATION,
              severity: "High",
              area: AREA,
              resource: `Namespace/${name}`,
              message: conflict
                ? `annotation ${NODE_SELECTOR_ANNOTATION} is ${JSON.stringify(have)}, set by another manager; not overwritten with ${JSON.stringify(want)}`
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
          const isolated = nodes.filter((n) => Object.entries(selector).every(([k, v]) => n.labels[k] === v));
          for (const n of isolated) pods.push(...(await reader.podsOnNode(n.name)));
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
