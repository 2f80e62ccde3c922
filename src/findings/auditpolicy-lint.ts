/**
 * Lints a rendered audit Policy the way the API server evaluates it (k8s.io/apiserver
 * pkg/audit/policy/checker.go: the first rule that matches a request decides its level; an empty list
 * matches anything; `namespaces`/`resources` restrict a rule to resource requests and `nonResourceURLs` to
 * non-resource requests). Mistakes in an audit policy are silent — a rule that never fires, a secret
 * written to a log file, a request nobody records — so they are reported as findings.
 */
import type {
  AuditGroupResources,
  AuditLevel,
  AuditPolicy,
  AuditPolicySpec,
  AuditRule,
} from "../desired/auditpolicy.js";
import { AUDIT_API_VERSION } from "../desired/auditpolicy.js";
import type { Finding, Severity } from "./finding.js";

export const AUDIT_AREA = "auditPolicy";
/** A rule that can never match: an earlier rule matches every request it would. */
export const AUDIT_SHADOWED_RULE = "AUDIT-SHADOWED-RULE";
/** Secrets, ConfigMaps, TokenReviews or serviceaccounts/token bodies written to the audit log. */
export const AUDIT_SECRETS_LOGGED = "AUDIT-SECRETS-LOGGED";
/** Some requests match no rule that logs them (no catch-all, or a catch-all at level None). */
export const AUDIT_NO_CATCH_ALL = "AUDIT-NO-CATCH-ALL";
/** The API server would refuse to load the policy (and, with --audit-policy-file, refuse to start). */
export const AUDIT_INVALID_POLICY = "AUDIT-INVALID-POLICY";
/** --audit-log-maxage below the desired minimum (CIS 1.2.17) or unset. */
export const AUDIT_LOG_MAXAGE = "AUDIT-LOG-MAXAGE";
/** --audit-log-maxbackup below the desired minimum (CIS 1.2.18) or unset. */
export const AUDIT_LOG_MAXBACKUP = "AUDIT-LOG-MAXBACKUP";
/** --audit-log-maxsize below the desired minimum (CIS 1.2.19) or unset. */
export const AUDIT_LOG_MAXSIZE = "AUDIT-LOG-MAXSIZE";

/** CIS Kubernetes Benchmark minimums, used when the policy does not state its own. */
export const CIS_AUDIT_LOG_ROTATION = { maxAge: 30, maxBackup: 10, maxSize: 100 } as const;

const LEVEL_RANK: Record<AuditLevel, number> = { None: 0, Metadata: 1, Request: 2, RequestResponse: 3 };

/**
 * Resources whose bodies carry credentials, and the verbs whose *request* body does (what `Request` logs;
 * `RequestResponse` also logs responses, so any verb leaks there). A serviceaccounts/token request is a
 * TokenRequest without a token, but its response holds one. ConfigMaps are included: they routinely hold
 * connection strings and passwords, and Kubernetes' own reference policies keep them at Metadata.
 */
interface SensitiveTarget {
  group: string;
  resource: string;
  label: string;
  requestBodyVerbs: string[];
  severity: Severity;
}
const SENSITIVE: readonly SensitiveTarget[] = [
  {
    group: "",
    resource: "secrets",
    label: "Secrets",
    requestBodyVerbs: ["create", "update", "patch"],
    severity: "High",
  },
  {
    group: "authentication.k8s.io",
    resource: "tokenreviews",
    label: "TokenReviews",
    requestBodyVerbs: ["create"],
    severity: "High",
  },
  {
    group: "",
    resource: "serviceaccounts/token",
    label: "serviceaccounts/token",
    requestBodyVerbs: [],
    severity: "High",
  },
  {
    group: "",
    resource: "configmaps",
    label: "ConfigMaps",
    requestBodyVerbs: ["create", "update", "patch"],
    severity: "Medium",
  },
];

const VALID_LEVELS = new Set<string>(["None", "Metadata", "Request", "RequestResponse"]);
const VALID_STAGES = new Set<string>(["RequestReceived", "ResponseStarted", "ResponseComplete", "Panic"]);
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

const isEmpty = (list: readonly unknown[] | undefined): boolean => list === undefined || list.length === 0;

/** `everything` when a list does not restrict; otherwise its members. */
function subsetOrAny(outer: readonly string[] | undefined, inner: readonly string[] | undefined): boolean {
  if (isEmpty(outer)) return true;
  if (isEmpty(inner)) return false;
  return inner!.every((x) => outer!.includes(x));
}

type Scope = "all" | "resource" | "nonResource";
function scopeOf(rule: AuditRule): Scope {
  if (!isEmpty(rule.namespaces) || !isEmpty(rule.resources)) return "resource";
  if (!isEmpty(rule.nonResourceURLs)) return "nonResource";
  return "all";
}

/** Does the policy resource pattern `pattern` match every combined resource (`res` or `res/sub`) `inner` matches? */
function patternCovers(pattern: string, inner: string): boolean {
  if (pattern === "*" || pattern === inner) return true;
  if (inner.includes("*")) return false; // inner is a wildcard different from pattern; only "*" covers it
  const slash = inner.indexOf("/");
  const resource = slash < 0 ? inner : inner.slice(0, slash);
  const sub = slash < 0 ? "" : inner.slice(slash + 1);
  if (sub !== "" && pattern.startsWith("*/") && pattern.slice(2) === sub) return true;
  if (pattern.endsWith("/*") && pattern.slice(0, -2) === resource) return true;
  return false;
}

/** Does group entry list `outer` match every resource request the single entry `inner` matches? */
function groupResourceCovered(outer: readonly AuditGroupResources[], inner: AuditGroupResources): boolean {
  const groupMatches = (o: AuditGroupResources) => o.group === "*" || o.group === inner.group;
  if (isEmpty(inner.resources)) {
    return outer.some(
      (o) =>
        groupMatches(o) && (isEmpty(o.resources) || (o.resources!.includes("*") && isEmpty(o.resourceNames))),
    );
  }
  return inner.resources!.every((res) =>
    outer.some(
      (o) =>
        groupMatches(o) &&
        (isEmpty(o.resources) ||
          (subsetOrAny(o.resourceNames, inner.resourceNames) &&
            o.resources!.some((p) => patternCovers(p, res)))),
    ),
  );
}

function urlCovers(pattern: string, inner: string): boolean {
  if (pattern === "*" || pattern === inner) return true;
  return pattern.endsWith("*") && inner.startsWith(pattern.replace(/\*+$/, ""));
}

/** True when every request `inner` matches is also matched by `outer` (so `inner` after `outer` never fires). */
export function ruleCovers(outer: AuditRule, inner: AuditRule): boolean {
  if (!subsetOrAny(outer.users, inner.users)) return false;
  if (!subsetOrAny(outer.userGroups, inner.userGroups)) return false;
  if (!subsetOrAny(outer.verbs, inner.verbs)) return false;
  const outerScope = scopeOf(outer);
  const innerScope = scopeOf(inner);
  switch (outerScope) {
    case "all":
      return true;
    case "resource": {
      if (innerScope !== "resource") return false;
      if (!subsetOrAny(outer.namespaces, inner.namespaces)) return false;
      if (isEmpty(outer.resources)) return true;
      const innerResources: AuditGroupResources[] = isEmpty(inner.resources)
        ? [{ group: "*" }]
        : inner.resources!;
      return innerResources.every((gr) => groupResourceCovered(outer.resources!, gr));
    }
    case "nonResource":
      return (
        innerScope === "nonResource" &&
        inner.nonResourceURLs!.every((u) => outer.nonResourceURLs!.some((p) => urlCovers(p, u)))
      );
  }
}

/**
 * The part of `rule` that would write `target`'s data to the log, as a rule of its own, or undefined when
 * the rule cannot match such a request. Resource names a rule restricts to are kept.
 */
function leakingPart(rule: AuditRule, target: SensitiveTarget): AuditRule | undefined {
  if (rule.level !== "Request" && rule.level !== "RequestResponse") return undefined;
  const scope = scopeOf(rule);
  if (scope === "nonResource") return undefined;
  let names: string[] | undefined;
  if (!isEmpty(rule.resources)) {
    const probe: AuditGroupResources = { group: target.group, resources: [target.resource] };
    const matching = rule.resources!.filter((gr) =>
      groupResourceCovered([{ ...gr, resourceNames: [] }], probe),
    );
    if (matching.length === 0) return undefined;
    // Resource names only narrow the match when every matching entry restricts them.
    const unrestricted = matching.some((gr) => isEmpty(gr.resources) || isEmpty(gr.resourceNames));
    if (!unrestricted) names = [...new Set(matching.flatMap((gr) => gr.resourceNames ?? []))];
  }
  let verbs = rule.verbs ?? [];
  if (rule.level === "Request") {
    verbs = isEmpty(verbs)
      ? target.requestBodyVerbs
      : verbs.filter((v) => target.requestBodyVerbs.includes(v));
    if (verbs.length === 0) return undefined;
  }
  const part: AuditRule = {
    level: rule.level,
    resources: [
      { group: target.group, resources: [target.resource], ...(names ? { resourceNames: names } : {}) },
    ],
  };
  if (!isEmpty(rule.users)) part.users = rule.users!;
  if (!isEmpty(rule.userGroups)) part.userGroups = rule.userGroups!;
  if (verbs.length > 0) part.verbs = verbs;
  if (!isEmpty(rule.namespaces)) part.namespaces = rule.namespaces!;
  return part;
}

/**
 * What the API server would reject when loading the policy (k8s.io/apiserver pkg/apis/audit/validation
 * and pkg/audit/policy/reader.go). The CRD schema does not enforce these, so they are checked here before
 * the policy is delivered: a policy file the API server cannot load keeps it from starting.
 */
export function validateAuditPolicy(policy: AuditPolicy): string[] {
  const errors: string[] = [];
  if (policy.apiVersion !== AUDIT_API_VERSION || policy.kind !== "Policy") {
    errors.push(`apiVersion/kind must be ${AUDIT_API_VERSION} Policy`);
  }
  if (policy.rules.length === 0)
    errors.push("the policy has no rules; the API server refuses a policy with 0 rules");
  for (const stage of policy.omitStages ?? []) {
    if (!VALID_STAGES.has(stage)) errors.push(`omitStages: unknown stage ${stage}`);
  }
  policy.rules.forEach((rule, i) => {
    const at = `rules[${i}]`;
    if (!VALID_LEVELS.has(rule.level)) errors.push(`${at}.level: unknown level ${String(rule.level)}`);
    for (const stage of rule.omitStages ?? []) {
      if (!VALID_STAGES.has(stage)) errors.push(`${at}.omitStages: unknown stage ${stage}`);
    }
    for (const url of rule.nonResourceURLs ?? []) {
      if (url === "*") continue;
      if (!url.startsWith("/")) errors.push(`${at}.nonResourceURLs: ${url} must begin with '/'`);
      if (url.slice(0, -1).includes("*"))
        errors.push(`${at}.nonResourceURLs: in ${url}, '*' may only be the last character`);
    }
    for (const gr of rule.resources ?? []) {
      if (gr.group !== "" && gr.group !== "*" && (gr.group.length > 253 || !DNS_SUBDOMAIN.test(gr.group))) {
        errors.push(
          `${at}.resources: group ${gr.group} is not a DNS subdomain (write the group without a version)`,
        );
      }
      if (!isEmpty(gr.resourceNames) && isEmpty(gr.resources)) {
        errors.push(`${at}.resources: resourceNames need at least one resource`);
      }
    }
    if (!isEmpty(rule.nonResourceURLs) && (!isEmpty(rule.resources) || !isEmpty(rule.namespaces))) {
      errors.push(`${at}: a rule cannot apply to both resources/namespaces and nonResourceURLs`);
    }
  });
  return errors;
}

/**
 * Lints a rendered audit Policy. `rules[i]` in messages is the index in the rendered policy; user rules
 * come first, so for them it equals the index in `spec.auditPolicy.rules`.
 * - AUDIT-INVALID-POLICY (High): the API server would not load it.
 * - AUDIT-SHADOWED-RULE (Medium): a single earlier rule matches every request the rule would (a union of
 *   several earlier rules is not considered, so only certain shadowing is reported).
 * - AUDIT-SECRETS-LOGGED (High; Medium for ConfigMaps): a rule at Request/RequestResponse is the first to
 *   match requests whose logged bodies hold credentials. A rule without `resources` matches Secrets too.
 *   A leaking part counts as handled when one earlier rule matches all of it (conservative: covering it
 *   with several earlier rules still reports).
 * - AUDIT-NO-CATCH-ALL (Medium): some resource or non-resource requests reach no rule that logs them —
 *   the API server logs unmatched requests at None.
 */
export function lintAuditPolicy(policy: AuditPolicy, resourceRef: string): Finding[] {
  const findings: Finding[] = [];
  const add = (id: string, severity: Severity, message: string) =>
    findings.push({ id, severity, resource: resourceRef, message, area: AUDIT_AREA });

  for (const error of validateAuditPolicy(policy)) {
    add(AUDIT_INVALID_POLICY, "High", `The API server would refuse this audit policy: ${error}.`);
  }

  const rules = policy.rules;
  rules.forEach((rule, j) => {
    const shadowing = rules.slice(0, j).findIndex((earlier) => ruleCovers(earlier, rule));
    if (shadowing >= 0) {
      add(
        AUDIT_SHADOWED_RULE,
        "Medium",
        `Audit rule rules[${j}] (level ${rule.level}) never matches: rules[${shadowing}] (level ${rules[shadowing]!.level}) matches every request it would; move it earlier or narrow the earlier rule.`,
      );
      return; // a rule that never matches logs nothing, so it cannot leak either
    }
    const leaked = SENSITIVE.filter((target) => {
      const part = leakingPart(rule, target);
      return part !== undefined && !rules.slice(0, j).some((earlier) => ruleCovers(earlier, part));
    });
    if (leaked.length > 0) {
      const severity: Severity = leaked.some((t) => t.severity === "High") ? "High" : "Medium";
      add(
        AUDIT_SECRETS_LOGGED,
        severity,
        `Audit rule rules[${j}] logs ${leaked.map((t) => t.label).join(", ")} at level ${rule.level}, writing credentials into the audit log; add an earlier rule that logs them at Metadata or narrow this rule.`,
      );
    }
  });

  const gaps: string[] = [];
  const probes: [string, AuditRule][] = [
    ["resource requests", { level: "Metadata", resources: [{ group: "*" }] }],
    ["non-resource requests", { level: "Metadata", nonResourceURLs: ["*"] }],
  ];
  for (const [what, probe] of probes) {
    const catchAll = rules.find((rule) => ruleCovers(rule, probe));
    if (!catchAll) gaps.push(`no rule matches all ${what}`);
    else if (LEVEL_RANK[catchAll.level] === 0)
      gaps.push(`the first rule matching all ${what} is at level None`);
  }
  if (gaps.length > 0) {
    add(
      AUDIT_NO_CATCH_ALL,
      "Medium",
      `The audit policy has no catch-all rule (${gaps.join("; ")}): requests that match no rule are not logged. End it with {level: Metadata}.`,
    );
  }
  return findings;
}

/** The kube-apiserver's effective --audit-log-* rotation flags; undefined when the flag is not set. */
export interface AuditLogRotationFlags {
  maxAge?: number | undefined;
  maxBackup?: number | undefined;
  maxSize?: number | undefined;
}

/**
 * Compares the API server's effective rotation flags with the policy's minimums (`spec.auditPolicy.logRotation`,
 * falling back to the CIS values 30 days / 10 files / 100 MB). An unset flag is a finding too: the
 * defaults (0) mean no rotation by size or no retention policy at all, which CIS rejects.
 */
export function checkAuditLogRotation(
  flags: AuditLogRotationFlags,
  desired: AuditPolicySpec["logRotation"],
  resourceRef = "Component/kube-apiserver",
): Finding[] {
  const checks = [
    {
      id: AUDIT_LOG_MAXAGE,
      flag: "--audit-log-maxage",
      unit: "days",
      value: flags.maxAge,
      min: desired?.maxAge ?? CIS_AUDIT_LOG_ROTATION.maxAge,
    },
    {
      id: AUDIT_LOG_MAXBACKUP,
      flag: "--audit-log-maxbackup",
      unit: "files",
      value: flags.maxBackup,
      min: desired?.maxBackup ?? CIS_AUDIT_LOG_ROTATION.maxBackup,
    },
    {
      id: AUDIT_LOG_MAXSIZE,
      flag: "--audit-log-maxsize",
      unit: "MB",
      value: flags.maxSize,
      min: desired?.maxSize ?? CIS_AUDIT_LOG_ROTATION.maxSize,
    },
  ];
  const findings: Finding[] = [];
  for (const c of checks) {
    if (c.value !== undefined && c.value >= c.min) continue;
    const actual = c.value === undefined ? "is not set" : `is ${c.value}`;
    findings.push({
      id: c.id,
      severity: "Medium",
      resource: resourceRef,
      message: `kube-apiserver ${c.flag} ${actual}; the policy requires at least ${c.min} ${c.unit}.`,
      area: AUDIT_AREA,
    });
  }
  return findings;
}
