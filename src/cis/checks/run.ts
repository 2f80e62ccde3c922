/**
 * Runs every CIS check whose component has inputs. The offline command and the in-cluster path both call
 * this, so a verdict never depends on how the inputs were collected.
 */
import { APISERVER_CHECKS } from "./apiserver.js";
import { AUDIT_POLICY_CHECKS } from "./auditpolicy.js";
import type { CheckResult, CisCheck } from "./check.js";
import { evaluateAll, unknown } from "./check.js";
import { CONTROLLER_MANAGER_CHECKS } from "./controllermanager.js";
import { ETCD_CHECKS } from "./etcd.js";
import { SCHEDULER_CHECKS } from "./scheduler.js";
import type { ParsedFlags } from "../parse/flags.js";
import type { CisInputs, ComponentInputs } from "../gather/inputs.js";
import { KUBELET_CHECKS } from "./kubelet.js";
import { quote } from "../output/text.js";

/** Benchmark order of two check ids (`1.2.10` after `1.2.9`, `2.7` before `3.2.1`). */
export function compareCheckIds(a: string, b: string): number {
  const pa = a.split(".").map(Number);
  const pb = b.split(".").map(Number);
  for (let k = 0; k < Math.max(pa.length, pb.length); k++) {
    const d = (pa[k] ?? -1) - (pb[k] ?? -1);
    if (d !== 0) return Number.isNaN(d) ? a.localeCompare(b) : d;
  }
  return 0;
}

/** Results sorted into benchmark order (stable). */
export function inBenchmarkOrder(results: readonly CheckResult[]): CheckResult[] {
  return [...results].sort((x, y) => compareCheckIds(x.id, y.id));
}

/** Evaluates a component's checks; all Unknown with the reason when its settings cannot be known at all. */
function component(checks: readonly CisCheck<ComponentInputs>[], i: ComponentInputs): CheckResult[] {
  if (i.unavailable === undefined) return evaluateAll(checks, i);
  const reason = i.unavailable;
  return evaluateAll(
    checks.map((c) => ({ ...c, evaluate: () => unknown(reason) })),
    i,
  );
}

/**
 * Results in benchmark order: 1.2.x (API server), 1.3.x (controller manager), 1.4.x (scheduler), 2.x
 * (etcd), 3.2.x (the API server's audit policy), 4.2.x (kubelet), for each component that has inputs.
 */
export function runCisChecks(inputs: CisInputs): CheckResult[] {
  const a = inputs.apiserver;
  return [
    ...(a === undefined ? [] : evaluateAll(APISERVER_CHECKS, a)),
    ...(inputs.controllerManager === undefined
      ? []
      : component(CONTROLLER_MANAGER_CHECKS, inputs.controllerManager)),
    ...(inputs.scheduler === undefined ? [] : component(SCHEDULER_CHECKS, inputs.scheduler)),
    ...(inputs.etcd === undefined ? [] : component(ETCD_CHECKS, inputs.etcd)),
    ...(a === undefined ? [] : evaluateAll(AUDIT_POLICY_CHECKS, a)),
    ...(inputs.kubelet === undefined ? [] : evaluateAll(KUBELET_CHECKS, inputs.kubelet)),
  ];
}

function problemsOf(flags: ParsedFlags): string[] {
  const out = [...flags.errors];
  for (const p of flags.positional) {
    if (flags.grammar.component === "kube-apiserver" && p.text === "") continue; // it ignores empty args
    out.push(`stray argument ${quote(p.text)} at position ${p.index}`);
  }
  return out.map(
    (m) => `${flags.grammar.component}: ${m} (the ${flags.grammar.component} would refuse to start)`,
  );
}

/**
 * Command-line problems that make a component refuse to start (missing flag values, stray arguments such
 * as the `false` in `--anonymous-auth false`). Checks still judge the flags as parsed; callers surface these
 * as warnings.
 */
export function commandLineProblems(inputs: CisInputs): string[] {
  return [
    ...(inputs.apiserver === undefined ? [] : problemsOf(inputs.apiserver.flags)),
    ...(inputs.controllerManager === undefined ? [] : problemsOf(inputs.controllerManager.flags)),
    ...(inputs.scheduler === undefined ? [] : problemsOf(inputs.scheduler.flags)),
    ...(inputs.etcd === undefined ? [] : problemsOf(inputs.etcd.flags)),
    ...(inputs.kubelet === undefined ? [] : problemsOf(inputs.kubelet.flags)),
  ];
}
