/**
 * CIS 5.4.1 input from Pod objects: which workloads take a Secret into a container's environment
 * (`env[].valueFrom.secretKeyRef`, `envFrom[].secretRef`). Only names leave this module — namespace,
 * workload, container, variable, Secret and key — never a value: a literal `env[].value` is not even read.
 *
 * Pods are folded into workloads as they come (a paged LIST hands them over page by page), so what is
 * held between pages is the finding data only, bounded by {@link MAX_SECRET_ENV_WORKLOADS} (at most
 * {@link MAX_SECRET_ENV_WORKLOADS_PER_NAMESPACE} per namespace) and {@link MAX_USES_PER_WORKLOAD}.
 */
import { safeText } from "../output/text.js";

/** Workloads kept with their details; more are counted. */
export const MAX_SECRET_ENV_WORKLOADS = 1000;
/**
 * Workloads kept per namespace; more are counted. Slots are taken first come, so without it one namespace
 * (a user with `edit` creating 1000 pods) could take all of them and leave other namespaces' workloads
 * unnamed.
 */
export const MAX_SECRET_ENV_WORKLOADS_PER_NAMESPACE = 100;
/** Uses (container + variable) kept per workload; more are counted. */
export const MAX_USES_PER_WORKLOAD = 20;
/** A name from a Pod spec is cut to this many characters in evidence. */
const MAX_NAME_CHARS = 253;

/** One workload whose containers take Secrets into their environment. */
export interface SecretEnvWorkload {
  /** `Kind/namespace/name`: the controlling workload (a Deployment for its ReplicaSets' pods), else the Pod. */
  readonly resource: string;
  /** Pods of this workload seen with such env. */
  readonly pods: number;
  /** `container c: env VAR from Secret s key k` or `container c: envFrom Secret s`, sorted, at most {@link MAX_USES_PER_WORKLOAD}. */
  readonly uses: readonly string[];
  /** Whether more uses were seen than kept. */
  readonly truncated: boolean;
}

/** What a scan of every Pod found for 5.4.1. */
export interface SecretEnvScan {
  /** Sorted by resource; at most {@link MAX_SECRET_ENV_WORKLOADS}. */
  readonly workloads: readonly SecretEnvWorkload[];
  /** Pods with such env in workloads beyond the kept ones (counted, not named). */
  readonly morePods: number;
  /** Pods looked at. */
  readonly podsScanned: number;
}

const rec = (v: unknown): Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const str = (v: unknown): string | undefined => (typeof v === "string" && v !== "" ? v : undefined);
const name = (v: unknown, fallback = "?") => safeText(str(v) ?? fallback, MAX_NAME_CHARS);

/**
 * The workload a Pod belongs to: its controller's `Kind/namespace/name`; a ReplicaSet made by a Deployment
 * (the `pod-template-hash` label, which only the Deployment controller sets, is the name's suffix) is
 * reported as that Deployment, so its pods of every rollout are one finding. A Pod without a controller
 * (or a static Pod, controlled by its Node) is itself.
 */
export function workloadOf(pod: unknown): string {
  const meta = rec(rec(pod).metadata);
  const ns = name(meta.namespace, "default");
  const owner = arr(meta.ownerReferences)
    .map(rec)
    .find((o) => o.controller === true);
  const kind = str(owner?.kind);
  const ownerName = str(owner?.name);
  if (!kind || !ownerName || kind === "Node") return `Pod/${ns}/${name(meta.name)}`;
  const hash = str(rec(meta.labels)["pod-template-hash"]);
  if (kind === "ReplicaSet" && hash && ownerName.endsWith(`-${hash}`))
    return `Deployment/${ns}/${name(ownerName.slice(0, -hash.length - 1))}`;
  return `${name(kind)}/${ns}/${name(ownerName)}`;
}

/** The Secret uses of one Pod's containers (regular, init and ephemeral), as evidence phrases. */
export function secretEnvUses(pod: unknown): string[] {
  const spec = rec(rec(pod).spec);
  const out: string[] = [];
  for (const c of [...arr(spec.initContainers), ...arr(spec.containers), ...arr(spec.ephemeralContainers)]) {
    const container = name(rec(c).name);
    for (const e of arr(rec(c).env)) {
      const ref = rec(rec(rec(e).valueFrom).secretKeyRef);
      if (ref.name === undefined && ref.key === undefined) continue;
      out.push(
        `container ${container}: env ${name(rec(e).name)} from Secret ${name(ref.name)} key ${name(ref.key)}`,
      );
    }
    for (const e of arr(rec(c).envFrom)) {
      const ref = rec(e).secretRef;
      if (ref === undefined) continue;
      const prefix = str(rec(e).prefix);
      out.push(
        `container ${container}: envFrom Secret ${name(rec(ref).name)} (every key${prefix ? `, prefix ${name(prefix)}` : ""})`,
      );
    }
  }
  return out;
}

/** Folds Pods, page by page, into the 5.4.1 finding data (never the Pods themselves). */
export class SecretEnvCollector {
  private readonly byWorkload = new Map<string, { pods: number; uses: Set<string>; truncated: boolean }>();
  private readonly perNamespace = new Map<string, number>();
  private more = 0;
  private scanned = 0;

  add(pod: unknown): void {
    this.scanned++;
    const uses = secretEnvUses(pod);
    if (uses.length === 0) return;
    const resource = workloadOf(pod);
    let w = this.byWorkload.get(resource);
    if (w === undefined) {
      const ns = name(rec(rec(pod).metadata).namespace, "default");
      const inNamespace = this.perNamespace.get(ns) ?? 0;
      if (
        this.byWorkload.size >= MAX_SECRET_ENV_WORKLOADS ||
        inNamespace >= MAX_SECRET_ENV_WORKLOADS_PER_NAMESPACE
      ) {
        this.more++;
        return;
      }
      this.perNamespace.set(ns, inNamespace + 1);
      w = { pods: 0, uses: new Set(), truncated: false };
      this.byWorkload.set(resource, w);
    }
    w.pods++;
    for (const u of uses) {
      if (w.uses.has(u)) continue;
      if (w.uses.size >= MAX_USES_PER_WORKLOAD) w.truncated = true;
      else w.uses.add(u);
    }
  }

  result(): SecretEnvScan {
    const workloads = [...this.byWorkload.entries()]
      .map(([resource, w]) => ({ resource, pods: w.pods, uses: [...w.uses].sort(), truncated: w.truncated }))
      .sort((a, b) => a.resource.localeCompare(b.resource));
    return { workloads, morePods: this.more, podsScanned: this.scanned };
  }
}

/** The 5.4.1 scan of a list of Pod objects (tests and small inputs; the cluster layer folds pages). */
export function scanSecretEnv(pods: Iterable<unknown>): SecretEnvScan {
  const c = new SecretEnvCollector();
  for (const p of pods) c.add(p);
  return c.result();
}
