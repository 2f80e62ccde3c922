/**
 * Runs every CIS check whose component has inputs. The offline command and the in-cluster path both call
 * this, so a verdict never depends on how the inputs were collected.
 */
import { APISERVER_CHECKS } from "./apiserver.js";
import type { CheckResult } from "./check.js";
import { evaluateAll } from "./check.js";
import type { ParsedFlags } from "../parse/flags.js";
import type { CisInputs } from "../gather/inputs.js";
import { KUBELET_CHECKS } from "./kubelet.js";
import { quote } from "../output/text.js";

/** Results in benchmark order: 1.2.x when there are API server inputs, then 4.2.x for the kubelet. */
export function runCisChecks(inputs: CisInputs): CheckResult[] {
  return [
    ...(inputs.apiserver === undefined ? [] : evaluateAll(APISERVER_CHECKS, inputs.apiserver)),
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
    ...(inputs.kubelet === undefined ? [] : problemsOf(inputs.kubelet.flags)),
  ];
}
