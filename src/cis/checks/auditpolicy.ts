/**
 * CIS 3.2.x: the API server's audit policy (the file `--audit-policy-file` names, read under `--host-root`
 * or by the node agent), judged with the operator's audit-policy lint (src/findings/auditpolicy-lint.ts):
 * the first rule that matches a request decides its level, as in the API server.
 */
import type { AuditGroupResources, AuditPolicy, AuditRule } from "../../desired/auditpolicy.js";
import {
  AUDIT_SECRETS_LOGGED,
  lintAuditPolicy,
  ruleCovers,
  validateAuditPolicy,
} from "../../findings/auditpolicy-lint.js";
import type { ComponentInputs } from "../gather/inputs.js";
import { stringFlag } from "../parse/flags.js";
import { isRecord, parseConfigObject } from "../parse/yaml.js";
import type { CheckOutcome, CisCheck } from "./check.js";
import { fail, pass, unknown } from "./check.js";

const strings = (v: unknown): string[] | undefined | null =>
  v === undefined || v === null
    ? undefined
    : Array.isArray(v) && v.every((x) => typeof x === "string")
      ? v
      : null;

/** The policy decoded to the lint's types, or why it does not decode (the API server would refuse it). */
function decodePolicy(data: Readonly<Record<string, unknown>>): AuditPolicy | string {
  if (!Array.isArray(data.rules)) return "has no rules list";
  const rules: AuditRule[] = [];
  for (const [i, r] of data.rules.entries()) {
    if (!isRecord(r) || typeof r.level !== "string") return `rules[${i}] has no level`;
    const rule: Record<string, unknown> = { level: r.level };
    for (const k of ["users", "userGroups", "verbs", "namespaces", "nonResourceURLs", "omitStages"]) {
      const v = strings(r[k]);
      if (v === null) return `rules[${i}].${k} is not a list of strings`;
      if (v !== undefined) rule[k] = v;
    }
    if (r.resources !== undefined && r.resources !== null) {
      if (!Array.isArray(r.resources)) return `rules[${i}].resources is not a list`;
      const grs: AuditGroupResources[] = [];
      for (const g of r.resources) {
        if (!isRecord(g)) return `rules[${i}].resources has an entry that is not an object`;
        const resources = strings(g.resources);
        const resourceNames = strings(g.resourceNames);
        if (resources === null || resourceNames === null)
          return `rules[${i}].resources has a list that is not of strings`;
        grs.push({
          group: typeof g.group === "string" ? g.group : "",
          ...(resources === undefined ? {} : { resources }),
          ...(resourceNames === undefined ? {} : { resourceNames }),
        });
      }
      rule.resources = grs;
    }
    rules.push(rule as unknown as AuditRule);
  }
  const omitStages = strings(data.omitStages);
  if (omitStages === null) return "omitStages is not a list of strings";
  return {
    apiVersion: "audit.k8s.io/v1",
    kind: "Policy",
    rules,
    ...(omitStages === undefined ? {} : { omitStages: omitStages as NonNullable<AuditPolicy["omitStages"]> }),
  };
}

/** The policy in effect, or the outcome that ends the check (no policy: Fail; unreadable: Unknown). */
function loadPolicy(i: ComponentInputs): { policy: AuditPolicy; path: string } | CheckOutcome {
  const flag = stringFlag(i.flags, "audit-policy-file");
  if (!flag.ok) return unknown(flag.reason);
  if (flag.value === "")
    return fail(`${flag.source}: the API server has no audit policy and records no events`);
  const file = i.files["audit-policy-file"];
  if (file === undefined || !file.ok) return unknown(file?.reason ?? `${flag.source} was not read`);
  const parsed = parseConfigObject(file.text, [{ apiVersion: "audit.k8s.io/v1", kind: "Policy" }]);
  if (!parsed.ok) return unknown(`${file.path} ${parsed.reason}; kube-apiserver refuses to start with it`);
  const policy = decodePolicy(parsed.value);
  if (typeof policy === "string") return unknown(`${file.path} ${policy}; kube-apiserver refuses to load it`);
  const errors = validateAuditPolicy(policy);
  if (errors.length > 0)
    return unknown(`${file.path}: kube-apiserver refuses to load it: ${errors.slice(0, 3).join("; ")}`);
  return { policy, path: file.path };
}

/** Requests whose audit the benchmark names: logged at Metadata (at least, and at most for Secrets). */
const KEY_CONCERNS: readonly { label: string; group: string; resource: string }[] = [
  { label: "Secrets", group: "", resource: "secrets" },
  { label: "ConfigMaps", group: "", resource: "configmaps" },
  { label: "TokenReviews", group: "authentication.k8s.io", resource: "tokenreviews" },
];

/**
 * Whether `rule` can match some request for `resource` in `group` (the API server's ruleMatches): any users,
 * groups, verbs and namespaces it names match some request; a rule for non-resource URLs only matches none.
 */
function mayMatchResource(rule: AuditRule, group: string, resource: string): boolean {
  const hasResources = (rule.resources?.length ?? 0) > 0;
  if (!hasResources && (rule.namespaces?.length ?? 0) === 0) return (rule.nonResourceURLs?.length ?? 0) === 0;
  if (!hasResources) return true;
  return rule.resources!.some(
    (gr) =>
      (gr.group === group || gr.group === "*") &&
      ((gr.resources?.length ?? 0) === 0 ||
        gr.resources!.some(
          (r) => r === "*" || r === resource || r === `${resource}/*` || r.startsWith("*/"),
        )),
  );
}

/** What a rule narrows to, for a message: its users, groups, verbs and namespaces. */
function scopeText(rule: AuditRule): string {
  const parts = (
    [
      ["users", rule.users],
      ["userGroups", rule.userGroups],
      ["verbs", rule.verbs],
      ["namespaces", rule.namespaces],
    ] as const
  )
    .filter(([, v]) => (v?.length ?? 0) > 0)
    .map(([k, v]) => `${k} ${v!.join(",")}`);
  return parts.length > 0 ? ` for ${parts.join(", ")}` : "";
}

/** Stages whose omission means a request's outcome is never recorded. */
const OUTCOME_STAGES = ["ResponseStarted", "ResponseComplete"] as const;
const ALL_STAGES = ["RequestReceived", "ResponseStarted", "ResponseComplete", "Panic"] as const;

/** The stages a rule omits: its own and the policy's (the API server takes their union). */
function omitted(policy: AuditPolicy, rule: AuditRule): Set<string> {
  return new Set([...(policy.omitStages ?? []), ...(rule.omitStages ?? [])]);
}

function keyConcerns(i: ComponentInputs): CheckOutcome {
  const loaded = loadPolicy(i);
  if ("status" in loaded) return loaded;
  const { policy, path } = loaded;
  const problems: string[] = [];
  for (const c of KEY_CONCERNS) {
    const probe: AuditRule = { level: "Metadata", resources: [{ group: c.group, resources: [c.resource] }] };
    const at = policy.rules.findIndex((r) => ruleCovers(r, probe));
    const rule = policy.rules[at];
    if (rule === undefined)
      problems.push(`no rule matches every request for ${c.label}: some are not logged`);
    else if (rule.level === "None") problems.push(`${c.label} are not logged (rules[${at}] is level None)`);
    else {
      const gone = omitted(policy, rule);
      if (OUTCOME_STAGES.every((s) => gone.has(s)))
        problems.push(
          `requests for ${c.label} are never recorded with their outcome (rules[${at}] with the policy's omitStages omits ${OUTCOME_STAGES.join(" and ")})`,
        );
    }
    // An earlier None rule that matches only some of them (a verb, a user, a namespace) drops those.
    const before = rule === undefined ? policy.rules.length : at;
    for (const [k, r] of policy.rules.slice(0, before).entries())
      if (r.level === "None" && mayMatchResource(r, c.group, c.resource))
        problems.push(
          `some requests for ${c.label} are not logged (rules[${k}] is level None${scopeText(r)})`,
        );
  }
  for (const f of lintAuditPolicy(policy, path)) if (f.id === AUDIT_SECRETS_LOGGED) problems.push(f.message);
  return problems.length > 0
    ? fail(`${path}: ${problems.join("; ")}`)
    : pass(
        `${path} logs Secrets, ConfigMaps and TokenReviews at Metadata and no credentials in request bodies`,
      );
}

/** The 3.2.x checks, in benchmark order. */
export const AUDIT_POLICY_CHECKS: readonly CisCheck<ComponentInputs>[] = [
  {
    id: "3.2.1",
    title: "Ensure that a minimal audit policy is created",
    severity: "Medium",
    automated: false,
    reads: ["--audit-policy-file", "the audit policy file"],
    evaluate: (i) => {
      const loaded = loadPolicy(i);
      if ("status" in loaded) return loaded;
      const { policy, path } = loaded;
      const logs = policy.rules.some((r) => r.level !== "None");
      if (!logs) return fail(`${path}: every rule is level None, nothing is recorded`);
      const recording = policy.rules.some(
        (r) => r.level !== "None" && !ALL_STAGES.every((s) => omitted(policy, r).has(s)),
      );
      return recording
        ? pass(`${path}: ${policy.rules.length} rule(s)`)
        : fail(`${path}: omitStages omit every stage of every rule that logs: nothing is recorded`);
    },
  },
  {
    id: "3.2.2",
    title: "Ensure that the audit policy covers key security concerns",
    severity: "Medium",
    automated: false,
    reads: ["--audit-policy-file", "the audit policy file"],
    evaluate: keyConcerns,
  },
];
