import { controlPlaneReport, evaluateControlPlane, withAgentResults } from "../cis/gather/incluster.js";
import type { ControlPlaneObservation } from "../cis/gather/incluster.js";
import { ControlPlaneReader, DEFAULT_KUBELET_LIMITS, type KubeletLimits } from "../cluster/controlplane.js";
import type { AreaFactory, AreaInput, AreaReconciler, AreaReport } from "./areas.js";
import type { PolicyInputs } from "../cis/checks/policies.js";
import { policyTargets } from "../cis/checks/policies.js";
import { MANAGED_BY_VALUE } from "../desired/metadata.js";
import { rbacFindings } from "../findings/rbac.js";

/**
 * How often the control-plane checks run again without a watch event: kubelet configuration is read
 * through configz, which cannot be watched, and a kube-apiserver restart with new flags shows up as a pod
 * change only when the mirror pod is recreated.
 */
export const CONTROL_PLANE_RECHECK_MS = 10 * 60_000;

/** Opt-ins of the control-plane area. */
export interface ControlPlaneAreaOptions {
  /**
   * Also run the CIS 5.x checks from the API (RBAC findings, Pod Security labels, NetworkPolicies per
   * namespace, the default namespace), reported on `Cluster/kubernetes`. Off by default: they overlap the
   * rbac/podSecurity/networkIsolation areas' own findings.
   */
  readonly cisPolicies?: boolean;
}

/** What the control-plane area reads from the cluster (ControlPlaneReader): the cluster side of a reconcile. */
export interface ControlPlaneGathered {
  /** Mirror pods per component (from the reader's cache) and the kubelets' configz, per the spec's toggles. */
  readonly observation: ControlPlaneObservation;
  /** The 5.x checks' extra lists; only read when those checks are on. */
  readonly policyObjects?: Awaited<ReturnType<ControlPlaneReader["policyObjects"]>>;
}

/** Whether the CIS 5.x checks run: the area's opt-in, else `spec.controlPlane.policies.enabled`. */
function cisPoliciesOn(spec: AreaInput["spec"], opts: ControlPlaneAreaOptions): boolean {
  return opts.cisPolicies ?? spec.controlPlane?.policies?.enabled === true;
}

/** Reads what the spec's toggles ask for (controllerManager / scheduler / etcd / kubelet on unless disabled). */
export async function gatherControlPlane(
  reader: ControlPlaneReader,
  spec: AreaInput["spec"],
  opts: ControlPlaneAreaOptions = {},
): Promise<ControlPlaneGathered> {
  const cp = spec.controlPlane ?? {};
  const obs: { -readonly [K in keyof ControlPlaneObservation]: ControlPlaneObservation[K] } = {};
  if (cp.apiServer?.enabled !== false) obs.apiServer = reader.apiServerPods();
  if (cp.controllerManager?.enabled !== false)
    obs.controllerManager = reader.componentPods("kube-controller-manager");
  if (cp.scheduler?.enabled !== false) obs.scheduler = reader.componentPods("kube-scheduler");
  if (cp.etcd?.enabled !== false) obs.etcd = reader.componentPods("etcd");
  if (cp.kubelet?.enabled !== false) obs.kubelet = await reader.kubelets();
  return cisPoliciesOn(spec, opts)
    ? {
        observation: obs,
        policyObjects: await reader.policyObjects({
          secretEnv: cp.policies?.secretEnvironmentVariables === true,
        }),
      }
    : { observation: obs };
}

/** The 5.x inputs from the snapshot and the reader's extra lists. */
function policyInputs(
  extra: NonNullable<ControlPlaneGathered["policyObjects"]>,
  spec: AreaInput["spec"],
  snapshot: AreaInput["snapshot"],
): PolicyInputs {
  const rbac = snapshot.rbac;
  return {
    ...(rbac
      ? { rbacFindings: rbacFindings(rbac, spec.rbac?.audit ?? {}, { ignoreManagedBy: MANAGED_BY_VALUE }) }
      : {}),
    namespaces: snapshot.namespaces.map((n) => ({
      name: n.metadata?.name ?? "",
      labels: n.metadata?.labels ?? {},
    })),
    ...(extra.networkPolicyNamespaces ? { networkPolicyNamespaces: extra.networkPolicyNamespaces } : {}),
    ...(extra.defaultNamespaceObjects ? { defaultNamespaceObjects: extra.defaultNamespaceObjects } : {}),
    ...(extra.secretEnv ? { secretEnv: extra.secretEnv } : {}),
    missing: {
      ...extra.missing,
      ...(rbac ? {} : { rbacFindings: "the cluster's RBAC is not watched (no policy sets spec.rbac.audit)" }),
    },
  };
}

/**
 * The control-plane area's plan: findings and ControlPlaneHardened from what was gathered, the node agents'
 * results (snapshot ConfigMaps) and the exemptions; it never writes. No I/O: it is async only because the
 * CIS gatherers it shares with `csp-operator check` take a file reader, here one that reads nothing
 * (IN_CLUSTER_READER).
 */
export async function planControlPlane(
  input: Pick<AreaInput, "spec" | "snapshot">,
  gathered: ControlPlaneGathered,
  recheckMs = CONTROL_PLANE_RECHECK_MS,
): Promise<AreaReport> {
  const { spec, snapshot } = input;
  const cp = spec.controlPlane ?? {};
  const evaluated = await evaluateControlPlane(gathered.observation);
  const evaluation = gathered.policyObjects
    ? {
        ...evaluated,
        targets: [
          ...evaluated.targets,
          ...policyTargets(policyInputs(gathered.policyObjects, spec, snapshot)),
        ],
      }
    : evaluated;
  const { findings, condition } = controlPlaneReport(
    withAgentResults(evaluation, snapshot.configMaps ?? [], cp.apiServer?.enabled !== false),
    spec.exemptions,
    snapshot.now,
  );
  return { findings, conditions: [condition], requeueAfterMs: recheckMs };
}

/**
 * `spec.controlPlane`: the CIS 1.2.x (kube-apiserver), 1.3.x (controller manager), 1.4.x (scheduler), 2.x
 * (etcd), 3.2.x (audit policy) and 4.2.x (kubelet) checks run in-cluster from mirror pods and configz, through the
 * same check code as `csp-operator check`. Reports findings and the ControlPlaneHardened condition; it
 * never changes the control plane: gatherControlPlane (cluster reads) -> planControlPlane (the report).
 */
export function controlPlaneArea(
  limits: KubeletLimits = DEFAULT_KUBELET_LIMITS,
  recheckMs = CONTROL_PLANE_RECHECK_MS,
  opts: ControlPlaneAreaOptions = {},
): AreaFactory {
  return ({ kc, log, enqueue }) => {
    const reader = new ControlPlaneReader(kc, log, () => enqueue(undefined), limits);
    const area: AreaReconciler = {
      name: "controlPlane",
      inUse: (spec) => spec.controlPlane !== undefined,
      async reconcile(input: AreaInput): Promise<AreaReport> {
        return planControlPlane(input, await gatherControlPlane(reader, input.spec, opts), recheckMs);
      },
      start: () => reader.start(),
      stop: () => reader.stop(),
    };
    return area;
  };
}
