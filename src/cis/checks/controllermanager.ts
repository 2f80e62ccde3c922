/**
 * CIS 1.3.x: kube-controller-manager, judged by the effective value of each flag (last occurrence wins,
 * defaults of v1.36 when absent) from its static Pod manifest or mirror pod.
 */
import type { ComponentInputs } from "../gather/inputs.js";
import { boolFlag, boolMapFlag, intFlag, stringFlag } from "../parse/flags.js";
import type { CheckOutcome, CisCheck } from "./check.js";
import { fail, manual, pass, withValue } from "./check.js";

/** Pass when the flag is set to a non-empty value; empty counts as unset, as the component reads it. */
export function requireNonEmpty(flag: string, why: string): (i: ComponentInputs) => CheckOutcome {
  return (i) =>
    withValue(stringFlag(i.flags, flag), (v, src) =>
      v !== ""
        ? pass(src)
        : fail(`${src}${src.includes("not set") ? "" : " (empty, read as not set)"}: ${why}`),
    );
}

/** Pass when `--profiling` is false (default true: /debug/pprof exposes internals to any authorized caller). */
export function profilingOff(i: ComponentInputs): CheckOutcome {
  return withValue(boolFlag(i.flags, "profiling", true), (on, src) =>
    on ? fail(`${src}: profiling endpoints are served`) : pass(src),
  );
}

/** Pass when the secure port binds only to loopback (default 0.0.0.0: every interface). */
export function bindsLoopback(i: ComponentInputs): CheckOutcome {
  return withValue(stringFlag(i.flags, "bind-address", "0.0.0.0"), (v, src) => {
    if (v === "127.0.0.1" || v === "::1") return pass(src);
    if (v === "" || v === "0.0.0.0" || v === "::")
      return fail(`${src}: the secure port listens on every interface`);
    return fail(`${src}: the secure port listens on ${v}, not on loopback only`);
  });
}

/** The 1.3.x checks, in benchmark order. */
export const CONTROLLER_MANAGER_CHECKS: readonly CisCheck<ComponentInputs>[] = [
  {
    id: "1.3.1",
    title: "Ensure that the --terminated-pod-gc-threshold argument is set as appropriate",
    severity: "Low",
    automated: false,
    reads: ["--terminated-pod-gc-threshold"],
    evaluate: (i) =>
      withValue(intFlag(i.flags, "terminated-pod-gc-threshold", 32, 12500), (n, src) =>
        n <= 0
          ? fail(`${src}: terminated pods are never garbage-collected`)
          : manual(`${src}; whether ${n} terminated pods is appropriate depends on the cluster`),
      ),
  },
  {
    id: "1.3.2",
    title: "Ensure that the --profiling argument is set to false",
    severity: "Low",
    automated: true,
    reads: ["--profiling"],
    evaluate: profilingOff,
  },
  {
    id: "1.3.3",
    title: "Ensure that the --use-service-account-credentials argument is set to true",
    severity: "High",
    automated: true,
    reads: ["--use-service-account-credentials"],
    evaluate: (i) =>
      withValue(boolFlag(i.flags, "use-service-account-credentials", false), (on, src) =>
        on
          ? pass(src)
          : fail(`${src}: every controller acts with the controller manager's own, broadest credentials`),
      ),
  },
  {
    id: "1.3.4",
    title: "Ensure that the --service-account-private-key-file argument is set as appropriate",
    severity: "Medium",
    automated: true,
    reads: ["--service-account-private-key-file"],
    evaluate: requireNonEmpty("service-account-private-key-file", "service account tokens cannot be signed"),
  },
  {
    id: "1.3.5",
    title: "Ensure that the --root-ca-file argument is set as appropriate",
    severity: "Medium",
    automated: true,
    reads: ["--root-ca-file"],
    evaluate: requireNonEmpty(
      "root-ca-file",
      "pods get no CA bundle to verify the API server's serving certificate",
    ),
  },
  {
    id: "1.3.6",
    title: "Ensure that the RotateKubeletServerCertificate argument is set to true",
    severity: "Low",
    automated: false,
    reads: ["--feature-gates"],
    evaluate: (i) =>
      withValue(boolMapFlag(i.flags, "feature-gates"), (gates, src) => {
        const v = gates.RotateKubeletServerCertificate;
        if (v === false) return fail(`${src}: RotateKubeletServerCertificate=false`);
        return pass(
          v === true
            ? src
            : `${src === "--feature-gates is not set" ? src : `${src} does not name it`}; RotateKubeletServerCertificate is on by default`,
        );
      }),
  },
  {
    id: "1.3.7",
    title: "Ensure that the --bind-address argument is set to 127.0.0.1",
    severity: "Medium",
    automated: true,
    reads: ["--bind-address"],
    evaluate: bindsLoopback,
  },
];
