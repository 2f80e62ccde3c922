import { controlPlaneReport, evaluateControlPlane, withAgentResults } from "../cis/gather/incluster.js";
import type { ControlPlaneObservation } from "../cis/gather/incluster.js";
import { ControlPlaneReader, DEFAULT_KUBELET_LIMITS, type KubeletLimits } from "../cluster/controlplane.js";
import type { AreaFactory, AreaInput, AreaReconciler, AreaReport } from "./areas.js";

/**
 * How often the control-plane checks run again without a watch event: kubelet configuration is read
 * through configz, which cannot be watched, and a kube-apiserver restart with new flags shows up as a pod
 * change only when the mirror pod is recreated.
 */
export const CONTROL_PLANE_RECHECK_MS = 10 * 60_000;

/**
 * `spec.controlPlane`: the CIS 1.2.x (kube-apiserver), 1.3.x (controller manager), 1.4.x (scheduler), 2.x
 * (etcd), 3.2.x (audit policy) and 4.2.x (kubelet) checks run in-cluster from mirror pods and configz, through the
 * same check code as `csp-operator check`. Reports findings and the ControlPlaneHardened condition; it
 * never changes the control plane.
 */
export function controlPlaneArea(
  limits: KubeletLimits = DEFAULT_KUBELET_LIMITS,
  recheckMs = CONTROL_PLANE_RECHECK_MS,
): AreaFactory {
  return ({ kc, log, enqueue }) => {
    const reader = new ControlPlaneReader(kc, log, () => enqueue(undefined), limits);
    const area: AreaReconciler = {
      name: "controlPlane",
      inUse: (spec) => spec.controlPlane !== undefined,
      async reconcile({ spec, snapshot }: AreaInput): Promise<AreaReport> {
        const cp = spec.controlPlane ?? {};
        const obs: { -readonly [K in keyof ControlPlaneObservation]: ControlPlaneObservation[K] } = {};
        if (cp.apiServer?.enabled !== false) obs.apiServer = reader.apiServerPods();
        // controllerManager / scheduler / etcd toggles (API.md); on unless the spec says enabled: false.
        const toggles = cp as Partial<
          Record<"controllerManager" | "scheduler" | "etcd", { enabled?: boolean }>
        >;
        if (toggles.controllerManager?.enabled !== false)
          obs.controllerManager = reader.componentPods("kube-controller-manager");
        if (toggles.scheduler?.enabled !== false) obs.scheduler = reader.componentPods("kube-scheduler");
        if (toggles.etcd?.enabled !== false) obs.etcd = reader.componentPods("etcd");
        if (cp.kubelet?.enabled !== false) obs.kubelet = await reader.kubelets();
        const evaluation = await evaluateControlPlane(obs);
        const { findings, condition } = controlPlaneReport(
          withAgentResults(evaluation, snapshot.configMaps ?? [], cp.apiServer?.enabled !== false),
          spec.exemptions,
          snapshot.now,
        );
        return { findings, conditions: [condition], requeueAfterMs: recheckMs };
      },
      start: () => reader.start(),
      stop: () => reader.stop(),
    };
    return area;
  };
}
