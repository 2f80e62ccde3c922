/**
 * An independent checker for fault tests: from what the API server holds (read with the admin kubectl), it
 * computes with its own small code (deliberately NOT src/desired or src/drift, so a bug there cannot hide
 * itself) what the Enforce-mode policies should own in the namespaces they select, and compares it with what
 * exists: NetworkPolicies by name, their labels, controller ownerReference and policyTypes, the Pod Security
 * labels (at least as strict as wanted) and the `default` ServiceAccount's automount flag. It also reports
 * managed NetworkPolicies that no policy should own (left behind in a namespace no longer selected).
 *
 * Scope: the namespaced areas a fault test exercises (networkPolicies, podSecurity, serviceAccounts); one
 * policy per namespace (two policies disagreeing about a namespace are convergence.test.ts's subject).
 */
import type { ControlPlane } from "../../controlplane/harness.js";

const MANAGED_BY = "app.kubernetes.io/managed-by";
const POLICY = "security.csp-operator.io/policy";
const DEFAULT_EXCLUDE = ["kube-system", "kube-public", "kube-node-lease"];
const LEVELS = ["privileged", "baseline", "restricted"];

interface Meta {
  name: string;
  namespace?: string;
  uid?: string;
  labels?: Record<string, string>;
  deletionTimestamp?: string;
  ownerReferences?: { kind: string; name: string; uid: string; controller?: boolean }[];
}
interface Obj {
  metadata: Meta;
  spec?: Record<string, unknown>;
  status?: { phase?: string };
  automountServiceAccountToken?: boolean;
}
interface Requirement {
  key: string;
  operator: string;
  values?: string[];
}
interface PolicySpec {
  mode?: string;
  namespaces?: {
    selector?: { matchLabels?: Record<string, string>; matchExpressions?: Requirement[] };
    exclude?: string[];
  };
  networkPolicies?: {
    defaultDenyIngress?: boolean;
    defaultDenyEgress?: boolean;
    allowDNS?: boolean;
    allowSameNamespace?: boolean;
    extra?: { name: string }[];
  };
  podSecurity?: { enforce?: string; audit?: string; warn?: string };
  serviceAccounts?: { automountDefaultToken?: boolean };
}

export interface CheckResult {
  /** One line per difference, e.g. `Missing NetworkPolicy team-a/csp-p-default-deny`; empty when all match. */
  readonly differences: string[];
  /** Expected NetworkPolicies, `namespace/name`, sorted. */
  readonly expectedNetworkPolicies: string[];
  readonly matches: boolean;
}

/** True when the namespace labels satisfy a metav1.LabelSelector (an empty selector selects everything). */
export function selects(
  selector: { matchLabels?: Record<string, string>; matchExpressions?: Requirement[] } | undefined,
  labels: Record<string, string>,
): boolean {
  for (const [k, v] of Object.entries(selector?.matchLabels ?? {})) if (labels[k] !== v) return false;
  for (const r of selector?.matchExpressions ?? []) {
    const has = Object.hasOwn(labels, r.key);
    const value = labels[r.key];
    const inValues = has && (r.values ?? []).includes(value!);
    const ok =
      r.operator === "In"
        ? inValues
        : r.operator === "NotIn"
          ? !inValues
          : r.operator === "Exists"
            ? has
            : r.operator === "DoesNotExist"
              ? !has
              : false;
    if (!ok) return false;
  }
  return true;
}

/** The NetworkPolicy names (and policyTypes) a policy's spec asks for in each namespace it selects. */
export function expectedNetworkPolicies(
  policyName: string,
  spec: PolicySpec,
): { name: string; policyTypes?: string[] }[] {
  const np = spec.networkPolicies ?? {};
  const ingress = np.defaultDenyIngress ?? true;
  const egress = np.defaultDenyEgress ?? true;
  const out: { name: string; policyTypes?: string[] }[] = [];
  const types = [...(ingress ? ["Ingress"] : []), ...(egress ? ["Egress"] : [])];
  if (types.length > 0) out.push({ name: `csp-${policyName}-default-deny`, policyTypes: types });
  if (egress && (np.allowDNS ?? true)) out.push({ name: `csp-${policyName}-allow-dns` });
  if (types.length > 0 && (np.allowSameNamespace ?? false))
    out.push({ name: `csp-${policyName}-allow-same-namespace` });
  for (const e of np.extra ?? []) out.push({ name: `csp-${policyName}.${e.name}` });
  return out;
}

async function getJson<T>(cp: ControlPlane, args: string[]): Promise<T> {
  const r = await cp.kubectl([...args, "-o", "json"]);
  if (r.code !== 0) throw new Error(`checker: kubectl ${args.join(" ")}: ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}

/** Reads the cluster through the admin kubeconfig and compares the policies' wanted objects with what exists. */
export async function check(cp: ControlPlane): Promise<CheckResult> {
  const [policies, namespaces, nps, sas] = await Promise.all([
    getJson<{ items: (Obj & { spec?: PolicySpec })[] }>(cp, ["get", "csp"]),
    getJson<{ items: Obj[] }>(cp, ["get", "namespaces"]),
    getJson<{ items: Obj[] }>(cp, ["get", "networkpolicies", "-A", "-l", `${MANAGED_BY}=csp-operator`]),
    getJson<{ items: Obj[] }>(cp, [
      "get",
      "serviceaccounts",
      "-A",
      "--field-selector",
      "metadata.name=default",
    ]),
  ]);
  const differences: string[] = [];
  const expected = new Map<string, { policy: string; uid: string; policyTypes?: string[] }>();
  const nsByName = new Map(namespaces.items.map((n) => [n.metadata.name, n]));
  const saByNs = new Map(sas.items.map((s) => [s.metadata.namespace!, s]));

  for (const p of policies.items) {
    const spec = p.spec ?? {};
    if ((spec.mode ?? "Enforce") !== "Enforce") continue;
    const exclude = new Set([...(spec.namespaces?.exclude ?? DEFAULT_EXCLUDE), "csp-system"]);
    for (const ns of namespaces.items) {
      const name = ns.metadata.name;
      if (exclude.has(name) || ns.metadata.deletionTimestamp || ns.status?.phase === "Terminating") continue;
      if (!selects(spec.namespaces?.selector, ns.metadata.labels ?? {})) continue;
      for (const want of expectedNetworkPolicies(p.metadata.name, spec))
        expected.set(`${name}/${want.name}`, {
          policy: p.metadata.name,
          uid: p.metadata.uid!,
          ...(want.policyTypes ? { policyTypes: want.policyTypes } : {}),
        });
      const labels = nsByName.get(name)?.metadata.labels ?? {};
      for (const mode of ["enforce", "audit", "warn"] as const) {
        const want = spec.podSecurity?.[mode];
        if (want === undefined) continue;
        const have = labels[`pod-security.kubernetes.io/${mode}`];
        if (have === undefined || LEVELS.indexOf(have) < LEVELS.indexOf(want))
          differences.push(
            `Modified Namespace ${name}: pod-security ${mode}=${have ?? "<unset>"}, want ${want}`,
          );
      }
      if (spec.serviceAccounts?.automountDefaultToken === false) {
        const sa = saByNs.get(name);
        if (sa && sa.automountServiceAccountToken !== false)
          differences.push(
            `Modified ServiceAccount ${name}/default: automountServiceAccountToken is not false`,
          );
      }
    }
  }

  const live = new Map(nps.items.map((n) => [`${n.metadata.namespace}/${n.metadata.name}`, n]));
  for (const [key, want] of expected) {
    const have = live.get(key);
    if (!have) {
      differences.push(`Missing NetworkPolicy ${key}`);
      continue;
    }
    if (have.metadata.labels?.[POLICY] !== want.policy)
      differences.push(`Modified NetworkPolicy ${key}: label ${POLICY}=${have.metadata.labels?.[POLICY]}`);
    const owner = (have.metadata.ownerReferences ?? []).find((o) => o.controller);
    if (owner?.uid !== want.uid)
      differences.push(`Modified NetworkPolicy ${key}: controller owner is not the policy`);
    if (want.policyTypes) {
      const got = [...((have.spec?.["policyTypes"] as string[] | undefined) ?? [])].sort().join(",");
      if (got !== [...want.policyTypes].sort().join(","))
        differences.push(
          `Modified NetworkPolicy ${key}: policyTypes ${got}, want ${want.policyTypes.join(",")}`,
        );
      const podSelector = JSON.stringify(have.spec?.["podSelector"] ?? {});
      if (podSelector !== "{}") differences.push(`Modified NetworkPolicy ${key}: podSelector ${podSelector}`);
      for (const dir of ["ingress", "egress"])
        if (((have.spec?.[dir] as unknown[] | undefined) ?? []).length > 0)
          differences.push(`Modified NetworkPolicy ${key}: a default-deny with ${dir} rules`);
    }
  }
  for (const key of live.keys()) if (!expected.has(key)) differences.push(`Unexpected NetworkPolicy ${key}`);
  return {
    differences: differences.sort(),
    expectedNetworkPolicies: [...expected.keys()].sort(),
    matches: differences.length === 0,
  };
}
