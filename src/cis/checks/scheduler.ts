/**
 * CIS 1.4.x: kube-scheduler. With `--config`, kube-scheduler ignores its deprecated `--profiling` flag and
 * reads `enableProfiling` from the KubeSchedulerConfiguration (default true), so 1.4.1 judges that file.
 */
import type { ComponentInputs } from "../gather/inputs.js";
import { stringFlag } from "../parse/flags.js";
import { parseConfigObject } from "../parse/yaml.js";
import type { CheckOutcome, CisCheck } from "./check.js";
import { fail, pass, unknown } from "./check.js";
import { bindsLoopback, profilingOff } from "./controllermanager.js";

const SCHEDULER_CONFIG_KINDS = [
  { apiVersion: "kubescheduler.config.k8s.io/v1", kind: "KubeSchedulerConfiguration" },
];

function schedulerProfiling(i: ComponentInputs): CheckOutcome {
  const config = stringFlag(i.flags, "config");
  if (!config.ok) return unknown(config.reason);
  if (config.value === "") return profilingOff(i);
  const file = i.files.config;
  if (file === undefined || !file.ok)
    return unknown(
      `${config.source}: kube-scheduler takes enableProfiling from it and ignores --profiling, but ${file?.reason ?? "it was not read"}`,
    );
  const parsed = parseConfigObject(file.text, SCHEDULER_CONFIG_KINDS);
  if (!parsed.ok) return unknown(`${file.path} ${parsed.reason}; kube-scheduler refuses to start with it`);
  const v = parsed.value.enableProfiling;
  if (v === undefined || v === null)
    return fail(
      `${file.path} does not set enableProfiling; the KubeSchedulerConfiguration default is true (--profiling is ignored with --config)`,
    );
  if (typeof v !== "boolean")
    return unknown(`${file.path}: enableProfiling is not a boolean; kube-scheduler rejects it`);
  return v ? fail(`${file.path}: enableProfiling: true`) : pass(`${file.path}: enableProfiling: false`);
}

/** The 1.4.x checks, in benchmark order. */
export const SCHEDULER_CHECKS: readonly CisCheck<ComponentInputs>[] = [
  {
    id: "1.4.1",
    title: "Ensure that the --profiling argument is set to false",
    severity: "Low",
    automated: true,
    reads: ["--profiling", "--config (enableProfiling)"],
    evaluate: schedulerProfiling,
  },
  {
    id: "1.4.2",
    title: "Ensure that the --bind-address argument is set to 127.0.0.1",
    severity: "Medium",
    automated: true,
    reads: ["--bind-address"],
    evaluate: bindsLoopback,
  },
];
