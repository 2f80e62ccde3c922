/**
 * The kube-apiserver's audit Policy (`audit.k8s.io/v1`), rendered from `spec.auditPolicy`.
 *
 * The API server reads the policy from a file (`--audit-policy-file`); the operator delivers it as a
 * ConfigMap in csp-system and something on the control-plane nodes (or the integration harness) places it
 * there. Rendering is pure and deterministic — the same spec gives byte-identical YAML — so an unchanged
 * policy never causes a write, a restart of the API server or a drift report.
 */
import type { V1ConfigMap } from "@kubernetes/client-node";
import { stringify } from "yaml";
import type { ClusterSecurityPolicySpec } from "../api/v1alpha1/policy.js";
import { OPERATOR_NAMESPACE, ownershipLabels } from "../api/vocabulary.js";
import { childName } from "./metadata.js";

/** `spec.auditPolicy` of a ClusterSecurityPolicy. */
export type AuditPolicySpec = NonNullable<ClusterSecurityPolicySpec["auditPolicy"]>;
/** One rule of `spec.auditPolicy.rules`, as the user wrote it. */
export type AuditRuleSpec = NonNullable<AuditPolicySpec["rules"]>[number];
export type AuditLevel = AuditRuleSpec["level"];
export type AuditStage = NonNullable<AuditRuleSpec["omitStages"]>[number];

export const AUDIT_API_VERSION = "audit.k8s.io/v1";
/** The ConfigMap key holding the policy file. */
export const AUDIT_POLICY_KEY = "audit-policy.yaml";
/** Stages omitted for every rule when the spec does not say: RequestReceived doubles the log volume for no information. */
export const DEFAULT_OMIT_STAGES: readonly AuditStage[] = ["RequestReceived"];

/** An `audit.k8s.io/v1` GroupResources. `group` is always written; `""` is the core group. */
export interface AuditGroupResources {
  group: string;
  resources?: string[];
  resourceNames?: string[];
}

/**
 * An `audit.k8s.io/v1` PolicyRule. Empty lists are never written: for the API server an empty list and
 * an absent one both mean "any", and leaving them out keeps the file short and stable.
 */
export interface AuditRule {
  level: AuditLevel;
  users?: string[];
  userGroups?: string[];
  verbs?: string[];
  resources?: AuditGroupResources[];
  namespaces?: string[];
  nonResourceURLs?: string[];
  omitStages?: AuditStage[];
}

/** An `audit.k8s.io/v1` Policy, as written to the file the API server loads. */
export interface AuditPolicy {
  apiVersion: typeof AUDIT_API_VERSION;
  kind: "Policy";
  omitStages?: AuditStage[];
  omitManagedFields?: boolean;
  rules: AuditRule[];
}

const WRITE_VERBS = ["create", "update", "patch", "delete", "deletecollection"];

/**
 * The built-in `Default` profile, placed after the user's rules (first match wins). Order matters:
 * 1. Drop high-volume, low-value noise (kube-proxy watches — under its legacy user name and kubeadm's
 *    ServiceAccount —, health and version probes, lease renewals by nodes and leader-electing components). These rules never match Secrets, ConfigMaps or tokens.
 * 2. Secrets, ConfigMaps, TokenReviews and serviceaccounts/token at Metadata only: their request and
 *    response bodies carry credentials (a TokenReview's request body *is* a bearer token), and an audit
 *    log is read by far more people and systems than etcd.
 * 3. Changes to RBAC, admission configuration and ClusterSecurityPolicies at RequestResponse: these are
 *    the changes an investigator needs in full (who granted what), and none of them carries secret data.
 * 4. pods/exec, pods/attach and pods/portforward at Metadata, deliberately not higher: they are streaming
 *    connections with no request or response object to log, the command is already in `requestURI` at
 *    Metadata, and a higher level would only add risk if that ever changed. The rule pins the level so
 *    interactive access stays logged even if the catch-all is changed.
 * 5. A catch-all at Metadata, so every other request is logged with who, what and when.
 */
export const DEFAULT_PROFILE_RULES: readonly AuditRule[] = [
  {
    level: "None",
    users: ["system:kube-proxy", "system:serviceaccount:kube-system:kube-proxy"],
    verbs: ["watch"],
    resources: [
      { group: "", resources: ["endpoints", "services", "services/status"] },
      { group: "discovery.k8s.io", resources: ["endpointslices"] },
    ],
  },
  { level: "None", nonResourceURLs: ["/healthz*", "/livez*", "/readyz*", "/version"] },
  {
    level: "None",
    userGroups: ["system:nodes"],
    verbs: ["get", "update"],
    resources: [{ group: "coordination.k8s.io", resources: ["leases"] }],
    namespaces: ["kube-node-lease"],
  },
  {
    level: "None",
    users: ["system:kube-controller-manager", "system:kube-scheduler"],
    verbs: ["get", "update"],
    resources: [{ group: "coordination.k8s.io", resources: ["leases"] }],
    namespaces: ["kube-system"],
  },
  {
    level: "Metadata",
    resources: [
      { group: "", resources: ["secrets", "configmaps", "serviceaccounts/token"] },
      { group: "authentication.k8s.io", resources: ["tokenreviews"] },
    ],
  },
  {
    level: "RequestResponse",
    verbs: WRITE_VERBS,
    resources: [
      {
        group: "rbac.authorization.k8s.io",
        resources: ["roles", "rolebindings", "clusterroles", "clusterrolebindings"],
      },
      {
        group: "admissionregistration.k8s.io",
        resources: [
          "mutatingwebhookconfigurations",
          "validatingwebhookconfigurations",
          "validatingadmissionpolicies",
          "validatingadmissionpolicybindings",
          "mutatingadmissionpolicies",
          "mutatingadmissionpolicybindings",
        ],
      },
      { group: "security.csp-operator.io", resources: ["clustersecuritypolicies"] },
    ],
  },
  {
    level: "Metadata",
    resources: [{ group: "", resources: ["pods/exec", "pods/attach", "pods/portforward"] }],
  },
  { level: "Metadata" },
];

function nonEmpty<T>(list: readonly T[] | undefined): list is readonly T[] {
  return list !== undefined && list.length > 0;
}

/** Copies a user rule into the canonical shape: fixed key order, explicit group, no empty lists. */
function normalizeRule(rule: AuditRuleSpec | AuditRule): AuditRule {
  const out: AuditRule = { level: rule.level };
  if (nonEmpty(rule.users)) out.users = [...rule.users];
  if (nonEmpty(rule.userGroups)) out.userGroups = [...rule.userGroups];
  if (nonEmpty(rule.verbs)) out.verbs = [...rule.verbs];
  if (nonEmpty(rule.resources)) {
    out.resources = rule.resources.map((gr) => {
      const r: AuditGroupResources = { group: gr.group ?? "" };
      if (nonEmpty(gr.resources)) r.resources = [...gr.resources];
      if (nonEmpty(gr.resourceNames)) r.resourceNames = [...gr.resourceNames];
      return r;
    });
  }
  if (nonEmpty(rule.namespaces)) out.namespaces = [...rule.namespaces];
  if (nonEmpty(rule.nonResourceURLs)) out.nonResourceURLs = [...rule.nonResourceURLs];
  if (nonEmpty(rule.omitStages)) out.omitStages = [...rule.omitStages];
  return out;
}

/**
 * Renders the audit Policy: the user's rules first (so they can override the profile: first match wins),
 * then the `Default` profile's rules unless the profile is `Custom`. Policy-level `omitStages` default to
 * RequestReceived and `omitManagedFields` to true (managedFields are noise in an audit trail). A `Custom`
 * profile without rules renders a policy the API server refuses to load; `lintAuditPolicy` reports it.
 */
export function renderAuditPolicy(spec: AuditPolicySpec): AuditPolicy {
  const rules = (spec.rules ?? []).map(normalizeRule);
  if ((spec.profile ?? "Default") === "Default") rules.push(...DEFAULT_PROFILE_RULES.map(normalizeRule));
  const omitStages = spec.omitStages ?? DEFAULT_OMIT_STAGES;
  return {
    apiVersion: AUDIT_API_VERSION,
    kind: "Policy",
    ...(omitStages.length > 0 ? { omitStages: [...omitStages] } : {}),
    omitManagedFields: spec.omitManagedFields ?? true,
    rules,
  };
}

/** The policy file's text. Deterministic: fixed key order, no timestamps, no line folding. */
export function renderAuditPolicyYaml(specOrPolicy: AuditPolicySpec | AuditPolicy): string {
  const policy = "kind" in specOrPolicy ? specOrPolicy : renderAuditPolicy(specOrPolicy);
  return stringify(policy, { lineWidth: 0 });
}

/**
 * The ConfigMap in csp-system that carries the policy file to the control plane. No ownerReferences: the
 * caller adds them (it knows the owning policy's uid).
 */
export function auditPolicyConfigMap(policyName: string, yaml: string): V1ConfigMap {
  return {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: {
      name: childName(policyName, "audit-policy"),
      namespace: OPERATOR_NAMESPACE,
      labels: ownershipLabels(policyName),
    },
    data: { [AUDIT_POLICY_KEY]: yaml },
  };
}
