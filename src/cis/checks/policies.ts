/**
 * CIS 5.x (Kubernetes policies), judged from the API rather than a host: the operator's RBAC findings
 * mapped to 5.1.x, the namespaces' Pod Security Admission labels to 5.2.x, NetworkPolicies per namespace
 * to 5.3.2, Secrets in container env to 5.4.1 (only when asked: it needs every Pod), and what runs in the
 * `default` namespace to 5.7.4. Each result carries its CIS id; an input that was not read leaves its
 * checks Unknown with the reason, never Pass.
 */
import type { Finding } from "../../findings/finding.js";
import {
  RBAC_CLUSTER_ADMIN,
  RBAC_DEFAULT_SA,
  RBAC_ESCALATION,
  RBAC_NODES_PROXY,
  RBAC_SECRETS_READ,
  RBAC_WILDCARD,
} from "../../findings/rbac.js";
import type { SecretEnvScan } from "../parse/podenv.js";
import type { CheckOutcome, CheckResult, CisCheck } from "./check.js";
import { evaluateAll, fail, manual, pass, unknown } from "./check.js";

/** A namespace as the 5.x checks see it. */
export interface PolicyNamespace {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
}

/** What the 5.x checks read; `undefined` means "not read", with the reason in `missing`. */
export interface PolicyInputs {
  /** The RBAC findings over every binding in the cluster (src/findings/rbac.ts). */
  readonly rbacFindings?: readonly Finding[];
  readonly namespaces?: readonly PolicyNamespace[];
  /** Namespaces holding at least one NetworkPolicy (any owner). */
  readonly networkPolicyNamespaces?: ReadonlySet<string>;
  /** Objects users created in `default` (`Kind/name`), the `kubernetes` Service and its endpoints excluded. */
  readonly defaultNamespaceObjects?: readonly string[];
  /** The workloads whose containers take a Secret into env (a scan of every Pod); only when 5.4.1 is asked for. */
  readonly secretEnv?: SecretEnvScan;
  /** Why an input is absent, by input name. */
  readonly missing?: Readonly<Partial<Record<keyof Omit<PolicyInputs, "missing">, string>>>;
}

/** Namespaces Kubernetes itself runs in; Pod Security there is the platform's business (reported apart). */
const SYSTEM_NAMESPACES: ReadonlySet<string> = new Set(["kube-system", "kube-public", "kube-node-lease"]);

const PSA_LEVEL: Readonly<Record<string, number>> = { privileged: 0, baseline: 1, restricted: 2 };

function need<K extends keyof Omit<PolicyInputs, "missing">>(
  i: PolicyInputs,
  key: K,
): NonNullable<PolicyInputs[K]> | CheckOutcome {
  const v = i[key];
  return v === undefined ? unknown(i.missing?.[key] ?? `${key} was not read`) : v;
}
const isOutcome = (v: unknown): v is CheckOutcome =>
  typeof v === "object" && v !== null && "status" in v && "evidence" in v;

function listed(items: readonly string[], max = 10): string {
  return items.slice(0, max).join(", ") + (items.length > max ? ` and ${items.length - max} more` : "");
}

/** 5.1.x mapped from RBAC findings: Fail naming the objects, Pass when none. */
function fromRbac(findingId: string, what: string): (i: PolicyInputs) => CheckOutcome {
  return (i) => {
    const all = need(i, "rbacFindings");
    if (isOutcome(all)) return all;
    const hits = all.filter((f) => f.id === findingId);
    if (hits.length === 0)
      return pass(`no ${findingId} finding: ${what} is not granted beyond the allowed subjects`);
    return fail(`${hits.length} ${findingId} finding(s): ${listed(hits.map((f) => f.resource))}`);
  };
}

/** 5.1.x the RBAC analysis does not decide: a person reviews. */
const review = (what: string) => (): CheckOutcome =>
  manual(`review who can ${what}; the RBAC findings do not decide this one`);

/**
 * The Kubernetes minor version an `enforce-version` label pins (`v1.24` -> 24), Infinity for `latest`, an
 * absent label, or a value Pod Security admission does not parse (it then evaluates at latest).
 */
export function psaMinor(label: string | undefined): number {
  const m = /^v1\.(0|[1-9][0-9]*)$/.exec(label ?? "latest");
  return m ? Number(m[1]) : Infinity;
}

/**
 * 5.2.x from the PSA `enforce` label: Fail naming non-system namespaces enforcing less than `level`, or
 * pinning with `enforce-version` a version older than `sinceMinor` (the Pod Security version whose policy
 * first holds the control: allowPrivilegeEscalation is checked by restricted from v1.8, capabilities from
 * v1.22; the baseline controls and runAsNonRoot from v1.0).
 */
function psa(
  level: "baseline" | "restricted",
  what: string,
  sinceMinor = 0,
): (i: PolicyInputs) => CheckOutcome {
  return (i) => {
    const nss = need(i, "namespaces");
    if (isOutcome(nss)) return nss;
    const weak = nss
      .filter((n) => !SYSTEM_NAMESPACES.has(n.name))
      .filter(
        (n) =>
          (PSA_LEVEL[n.labels["pod-security.kubernetes.io/enforce"] ?? "privileged"] ?? 0) <
            PSA_LEVEL[level]! ||
          psaMinor(n.labels["pod-security.kubernetes.io/enforce-version"]) < sinceMinor,
      )
      .map((n) => {
        const enforce = n.labels["pod-security.kubernetes.io/enforce"] ?? "no enforce label";
        const version = n.labels["pod-security.kubernetes.io/enforce-version"];
        return `${n.name} (${enforce}${version !== undefined && psaMinor(version) < sinceMinor ? ` at ${version}, before v1.${sinceMinor}` : ""})`;
      });
    return weak.length === 0
      ? pass(
          `every namespace outside ${[...SYSTEM_NAMESPACES].join(", ")} enforces Pod Security ${level} or stricter, which refuses ${what}`,
        )
      : fail(
          `${weak.length} namespace(s) enforce less than Pod Security ${level}${sinceMinor > 0 ? ` v1.${sinceMinor}` : ""} and admit ${what}: ${listed(weak)}`,
        );
  };
}

const check = (
  id: string,
  title: string,
  severity: CisCheck<PolicyInputs>["severity"],
  reads: string[],
  evaluate: (i: PolicyInputs) => CheckOutcome,
): CisCheck<PolicyInputs> => ({ id, title, severity, automated: false, reads, evaluate });

const RBAC = ["RBAC findings (all bindings)"];
const PSA = ["namespace labels pod-security.kubernetes.io/enforce"];

/** The 5.x checks, in benchmark order. */
export const POLICY_CHECKS: readonly CisCheck<PolicyInputs>[] = [
  check(
    "5.1.1",
    "Ensure that the cluster-admin role is only used where required",
    "Critical",
    RBAC,
    fromRbac(RBAC_CLUSTER_ADMIN, "cluster-admin"),
  ),
  check("5.1.2", "Minimize access to secrets", "High", RBAC, fromRbac(RBAC_SECRETS_READ, "reading Secrets")),
  check(
    "5.1.3",
    "Minimize wildcard use in Roles and ClusterRoles",
    "Medium",
    RBAC,
    fromRbac(RBAC_WILDCARD, "a wildcard rule"),
  ),
  check("5.1.4", "Minimize access to create pods", "Medium", RBAC, review("create pods")),
  check(
    "5.1.5",
    "Ensure that default service accounts are not actively used",
    "Medium",
    RBAC,
    fromRbac(RBAC_DEFAULT_SA, "a right for a default ServiceAccount"),
  ),
  check(
    "5.1.6",
    "Ensure that Service Account Tokens are only mounted where necessary",
    "Low",
    ["pods"],
    review("mount service account tokens (automountServiceAccountToken)"),
  ),
  check(
    "5.1.7",
    "Avoid use of system:masters group",
    "High",
    ["client certificates"],
    review("hold certificates in system:masters"),
  ),
  check(
    "5.1.8",
    "Limit use of the Bind, Impersonate and Escalate permissions in the Kubernetes cluster",
    "High",
    RBAC,
    fromRbac(RBAC_ESCALATION, "bind, escalate or impersonate"),
  ),
  check(
    "5.1.9",
    "Minimize access to create persistent volumes",
    "Medium",
    RBAC,
    review("create PersistentVolumes"),
  ),
  check(
    "5.1.10",
    "Minimize access to the proxy sub-resource of nodes",
    "High",
    RBAC,
    fromRbac(RBAC_NODES_PROXY, "nodes/proxy"),
  ),
  check(
    "5.1.11",
    "Minimize access to the approval sub-resource of certificatesigningrequests objects",
    "High",
    RBAC,
    review("approve CertificateSigningRequests"),
  ),
  check(
    "5.1.12",
    "Minimize access to webhook configuration objects",
    "High",
    RBAC,
    review("change admission webhook configurations"),
  ),
  check(
    "5.1.13",
    "Minimize access to the service account token creation",
    "Medium",
    RBAC,
    review("create serviceaccounts/token"),
  ),
  check(
    "5.2.1",
    "Ensure that the cluster has at least one active policy control mechanism in place",
    "High",
    PSA,
    (i) => {
      const nss = need(i, "namespaces");
      if (isOutcome(nss)) return nss;
      const enforced = nss.filter(
        (n) => (PSA_LEVEL[n.labels["pod-security.kubernetes.io/enforce"] ?? "privileged"] ?? 0) > 0,
      );
      return enforced.length > 0
        ? pass(`Pod Security Admission enforces in ${enforced.length} namespace(s)`)
        : manual(
            "no namespace enforces Pod Security Admission above privileged; if another admission controller (a policy engine) enforces pod policy, record it",
          );
    },
  ),
  check(
    "5.2.2",
    "Minimize the admission of privileged containers",
    "High",
    PSA,
    psa("baseline", "privileged containers"),
  ),
  check(
    "5.2.3",
    "Minimize the admission of containers wishing to share the host process ID namespace",
    "High",
    PSA,
    psa("baseline", "hostPID"),
  ),
  check(
    "5.2.4",
    "Minimize the admission of containers wishing to share the host IPC namespace",
    "High",
    PSA,
    psa("baseline", "hostIPC"),
  ),
  check(
    "5.2.5",
    "Minimize the admission of containers wishing to share the host network namespace",
    "High",
    PSA,
    psa("baseline", "hostNetwork"),
  ),
  check(
    "5.2.6",
    "Minimize the admission of containers with allowPrivilegeEscalation",
    "Medium",
    PSA,
    psa("restricted", "allowPrivilegeEscalation", 8),
  ),
  check(
    "5.2.7",
    "Minimize the admission of root containers",
    "Medium",
    PSA,
    psa("restricted", "containers running as root"),
  ),
  check(
    "5.2.8",
    "Minimize the admission of containers with the NET_RAW capability",
    "Medium",
    PSA,
    psa("restricted", "NET_RAW", 22),
  ),
  check(
    "5.2.9",
    "Minimize the admission of containers with added capabilities",
    "Medium",
    PSA,
    psa("restricted", "added capabilities", 22),
  ),
  check(
    "5.2.10",
    "Minimize the admission of containers with capabilities assigned",
    "Low",
    PSA,
    psa("restricted", "capabilities not dropped", 22),
  ),
  check(
    "5.2.11",
    "Minimize the admission of Windows HostProcess Containers",
    "High",
    PSA,
    psa("baseline", "Windows HostProcess containers"),
  ),
  check(
    "5.2.12",
    "Minimize the admission of HostPath volumes",
    "High",
    PSA,
    psa("baseline", "hostPath volumes"),
  ),
  check(
    "5.2.13",
    "Minimize the admission of containers which use HostPorts",
    "Medium",
    PSA,
    psa("baseline", "hostPorts"),
  ),
  check(
    "5.3.2",
    "Ensure that all Namespaces have Network Policies defined",
    "Medium",
    ["namespaces", "NetworkPolicies (all)"],
    (i) => {
      const nss = need(i, "namespaces");
      if (isOutcome(nss)) return nss;
      const nps = need(i, "networkPolicyNamespaces");
      if (isOutcome(nps)) return nps;
      const bare = nss.map((n) => n.name).filter((n) => !nps.has(n));
      return bare.length === 0
        ? pass(`all ${nss.length} namespaces have at least one NetworkPolicy`)
        : fail(`${bare.length} namespace(s) without any NetworkPolicy: ${listed(bare)}`);
    },
  ),
  check(
    "5.4.1",
    "Prefer using Secrets as files over Secrets as environment variables",
    "Low",
    ["pods (env valueFrom.secretKeyRef, envFrom.secretRef)"],
    (i) => {
      const scan = need(i, "secretEnv");
      if (isOutcome(scan)) return scan;
      const { workloads, morePods, podsScanned } = scan;
      if (workloads.length === 0 && morePods === 0)
        return pass(`none of ${podsScanned} pod(s) takes a Secret into a container's environment`);
      const pods = workloads.reduce((n, w) => n + w.pods, morePods);
      return fail(
        `${pods} of ${podsScanned} pod(s) take Secrets into environment variables, in ${listed(workloads.map((w) => w.resource))}${morePods > 0 ? ` and ${morePods} pod(s) of workloads not listed` : ""}; mount them as files instead`,
      );
    },
  ),
  check(
    "5.7.4",
    "The default namespace should not be used",
    "Low",
    ["objects in the default namespace"],
    (i) => {
      const objs = need(i, "defaultNamespaceObjects");
      if (isOutcome(objs)) return objs;
      return objs.length === 0
        ? pass("the default namespace holds only the kubernetes Service")
        : fail(`the default namespace is in use: ${listed([...objs])}`);
    },
  ),
];

/** Runs the 5.x checks; 5.4.1 only when its input (a read of every Pod) was asked for and given. */
export function runPolicyChecks(inputs: PolicyInputs): CheckResult[] {
  const asked = inputs.secretEnv !== undefined || inputs.missing?.secretEnv !== undefined;
  return evaluateAll(
    POLICY_CHECKS.filter((c) => c.id !== "5.4.1" || asked),
    inputs,
  );
}

/** Results of one object, as the in-cluster report takes them (see src/cis/gather/incluster.ts). */
export interface PolicyTarget {
  readonly resource: string;
  readonly results: readonly CheckResult[];
}

/**
 * The 5.x results as the in-cluster report shows them: every result on `cluster` (default
 * `Cluster/kubernetes`), except a failing 5.4.1, which becomes one result per workload (so one finding per
 * workload, exemptible by namespace or resource), each naming its containers, variables and Secrets.
 */
export function policyTargets(inputs: PolicyInputs, cluster = "Cluster/kubernetes"): PolicyTarget[] {
  const results = runPolicyChecks(inputs);
  const secretEnv = results.find((r) => r.id === "5.4.1");
  const scan = inputs.secretEnv;
  if (secretEnv?.status !== "Fail" || scan === undefined || scan.workloads.length === 0)
    return [{ resource: cluster, results }];
  const perWorkload = scan.workloads.map((w) => ({
    resource: w.resource,
    results: [
      {
        ...secretEnv,
        evidence: `${w.pods} pod(s) take Secrets into environment variables: ${w.uses.join("; ")}${w.truncated ? "; and more" : ""}; mount them as files instead`,
      },
    ],
  }));
  // Workloads beyond the bound are counted on the cluster: still a finding, never silently dropped.
  const rest = results.filter((r) => r.id !== "5.4.1" || scan.morePods > 0);
  return [{ resource: cluster, results: rest }, ...perWorkload];
}
