/**
 * Every check definition of the benchmark this tool implements, by id: what `--list`-style tooling,
 * findings (severity of results that crossed a wire) and documentation read.
 */
import { APISERVER_CHECKS } from "./apiserver.js";
import type { CisCheck } from "./check.js";
import { MASTER_FILE_CHECKS, NODE_FILE_CHECKS } from "./files.js";
import { AUDIT_POLICY_CHECKS } from "./auditpolicy.js";
import { CONTROLLER_MANAGER_CHECKS } from "./controllermanager.js";
import { ETCD_CHECKS } from "./etcd.js";
import { KUBELET_CHECKS } from "./kubelet.js";
import { POLICY_CHECKS } from "./policies.js";
import { SCHEDULER_CHECKS } from "./scheduler.js";

/** All definitions, in benchmark order. */
export const ALL_CHECKS: readonly CisCheck<never>[] = [
  ...MASTER_FILE_CHECKS,
  ...APISERVER_CHECKS,
  ...CONTROLLER_MANAGER_CHECKS,
  ...SCHEDULER_CHECKS,
  ...ETCD_CHECKS,
  ...AUDIT_POLICY_CHECKS,
  ...NODE_FILE_CHECKS,
  ...KUBELET_CHECKS,
  ...POLICY_CHECKS,
] as readonly CisCheck<never>[];

const BY_ID = new Map(ALL_CHECKS.map((c) => [c.id, c]));

/** The definition of a check, or undefined when no check has that id. */
export function checkDefinition(id: string): CisCheck<never> | undefined {
  return BY_ID.get(id);
}
