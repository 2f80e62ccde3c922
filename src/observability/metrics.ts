import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import type { ClusterSecurityPolicy } from "../api/v1alpha1/policy.js";
import { DRIFT_REASONS as DRIFT_REASON_NAMES } from "../drift/checks.js";
import { accessRateBoard, type AccessRateBoard, type AccessRates } from "../hygiene/apiaccess.js";
import type { ControllerObserver } from "../runtime/controller.js";

/** The controller name in controller-runtime's labels (`controller`, workqueue `name`). */
export const CONTROLLER_NAME = "clustersecuritypolicy";
export const LEADER_ELECTION_NAME = "csp-operator-leader";

const SEVERITIES = ["Critical", "High", "Medium", "Low", "Info"] as const;
const AREAS = new Set([
  "networkPolicies",
  "podSecurity",
  "serviceAccounts",
  "rbac",
  "auditPolicy",
  "encryption",
  "controlPlane",
  "clusterVersion",
  "credentials",
  "nodeIsolation",
  "apiServerMonitoring",
]);
const ROTATION_PHASES = ["Stable", "NewKeyAdded", "NewKeyLoaded", "Promoted", "Rewritten"] as const;
const KINDS = new Set([
  "NetworkPolicy",
  "Namespace",
  "ServiceAccount",
  "Role",
  "RoleBinding",
  "ConfigMap",
  "Secret",
  "ClusterRole",
  "ClusterRoleBinding",
]);
/** The drift reasons corrections are counted by: drift/checks.ts names them. */
const DRIFT_REASONS: ReadonlySet<string> = new Set(DRIFT_REASON_NAMES);
/** controller-runtime's reconcile-time buckets (v0.15+). */
const RECONCILE_BUCKETS = [
  0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7, 0.8, 0.9, 1, 1.25, 1.5,
  1.75, 2, 2.5, 3, 3.5, 4, 4.5, 5, 6, 7, 8, 9, 10, 15, 20, 25, 30, 40, 50, 60,
];
/** client-go's workqueue buckets: 1 µs to 10 s, powers of ten. */
const QUEUE_BUCKETS = [1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 0.01, 0.1, 1, 10];

/** A label value from an open set, folded into a fixed one so cardinality stays bounded. */
function bounded(value: string | undefined, allowed: ReadonlySet<string>): string {
  return value !== undefined && allowed.has(value) ? value : "Other";
}

function seconds(time: string | Date | undefined): number | undefined {
  if (time === undefined) return undefined;
  const t = new Date(time).getTime();
  return Number.isFinite(t) ? t / 1000 : undefined;
}

/**
 * A policy's findings by severity and area: counted from the bounded status list, plus, per severity, what
 * the list leaves out (its true total in status.summary.findingsBySeverity) as area "unlisted". A severity
 * with no finding has area "all" at 0, so every severity is present.
 */
export function findingCounts(p: ClusterSecurityPolicy): Map<string, Map<string, number>> {
  const out = new Map<string, Map<string, number>>(SEVERITIES.map((s) => [s, new Map<string, number>()]));
  for (const f of p.status?.findings ?? []) {
    const byArea = out.get(f.severity);
    if (!byArea) continue;
    const area = bounded(f.area, AREAS);
    byArea.set(area, (byArea.get(area) ?? 0) + 1);
  }
  const totals = p.status?.summary?.findingsBySeverity ?? {};
  for (const [severity, byArea] of out) {
    const listed = [...byArea.values()].reduce((a, b) => a + b, 0);
    const total = totals[severity as keyof typeof totals] ?? 0;
    if (total > listed) byArea.set("unlisted", total - listed);
    if (byArea.size === 0) byArea.set("all", 0);
  }
  return out;
}

/** A policy's key-rotation state, as persisted in its key-ring Secret (times in RFC 3339). */
export interface RotationGauges {
  phase: string;
  phaseSince?: string | undefined;
  completedAt?: string | undefined;
}

/** What the metrics need from the running operator at scrape time. */
export interface MetricsSource {
  /** The policies in the cache (status included); empty while it has not synced. */
  policies(): readonly ClusterSecurityPolicy[];
  queueDepth(): number;
  runningFor(): number[];
  activeWorkers(): number;
  maxConcurrentReconciles(): number;
  isLeader(): boolean;
  /** Every informer cache synced since its last failure. */
  cacheSynced(): boolean;
}

/**
 * Every metric the operator exports, in one registry: controller-runtime's names and labels (so existing
 * dashboards work), client-go's workqueue and REST client metrics, Node's process metrics, and the
 * product's own `csp_*` ones. Product labels are bounded: policy x fixed sets (severity, area, condition
 * type, kind, reason); never a namespace or object name.
 *
 * Per-policy gauges are computed at scrape time from the policies' status in the informer cache, so a
 * deleted policy disappears from the next scrape and a follower reports the same picture as the leader.
 */
export class OperatorMetrics {
  readonly registry = new Registry();
  private source: MetricsSource | undefined;
  private readonly lastSuccess = new Map<string, number>();
  /** Each policy's key-rotation state as its last reconcile read it from the key-ring Secret. */
  private readonly rotationState = new Map<string, RotationGauges>();
  /** The csp_corrections_total label sets of each policy, so a deleted policy's series can be removed. */
  private readonly correctionLabels = new Map<string, Map<string, { kind: string; reason: string }>>();
  readonly reconcileTotal: Counter<"controller" | "result">;
  readonly reconcileErrors: Counter<"controller">;
  readonly reconcileTime: Histogram<"controller">;
  readonly restRequests: Counter<"code" | "method" | "host">;
  readonly corrections: Counter<"policy" | "kind" | "reason">;
  private readonly queueAdds: Counter<"name" | "controller">;
  private readonly queueRetries: Counter<"name" | "controller">;
  private readonly queueDuration: Histogram<"name" | "controller">;
  private readonly workDuration: Histogram<"name" | "controller">;

  constructor(opts: { defaultMetrics?: boolean; accessRates?: AccessRateBoard } = {}) {
    const registers = [this.registry];
    const c = { controller: CONTROLLER_NAME };
    const q = { name: CONTROLLER_NAME, controller: CONTROLLER_NAME };
    if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry });
    const src = () => this.source;

    this.reconcileTotal = new Counter({
      name: "controller_runtime_reconcile_total",
      help: "Total number of reconciliations per controller",
      labelNames: ["controller", "result"],
      registers,
    });
    for (const result of ["success", "error", "requeue", "requeue_after"])
      this.reconcileTotal.inc({ ...c, result }, 0);
    this.reconcileErrors = new Counter({
      name: "controller_runtime_reconcile_errors_total",
      help: "Total number of reconciliation errors per controller",
      labelNames: ["controller"],
      registers,
    });
    this.reconcileErrors.inc(c, 0);
    this.reconcileTime = new Histogram({
      name: "controller_runtime_reconcile_time_seconds",
      help: "Length of time per reconciliation per controller",
      labelNames: ["controller"],
      buckets: RECONCILE_BUCKETS,
      registers,
    });
    new Gauge({
      name: "controller_runtime_max_concurrent_reconciles",
      help: "Maximum number of concurrent reconciles per controller",
      labelNames: ["controller"],
      registers,
      collect() {
        this.set(c, src()?.maxConcurrentReconciles() ?? 0);
      },
    });
    new Gauge({
      name: "controller_runtime_active_workers",
      help: "Number of currently used workers per controller",
      labelNames: ["controller"],
      registers,
      collect() {
        this.set(c, src()?.activeWorkers() ?? 0);
      },
    });
    new Gauge({
      name: "workqueue_depth",
      help: "Current depth of workqueue",
      labelNames: ["name", "controller"],
      registers,
      collect() {
        this.set(q, src()?.queueDepth() ?? 0);
      },
    });
    this.queueAdds = new Counter({
      name: "workqueue_adds_total",
      help: "Total number of adds handled by workqueue",
      labelNames: ["name", "controller"],
      registers,
    });
    this.queueAdds.inc(q, 0);
    this.queueRetries = new Counter({
      name: "workqueue_retries_total",
      help: "Total number of retries handled by workqueue",
      labelNames: ["name", "controller"],
      registers,
    });
    this.queueRetries.inc(q, 0);
    this.queueDuration = new Histogram({
      name: "workqueue_queue_duration_seconds",
      help: "How long in seconds an item stays in workqueue before being requested",
      labelNames: ["name", "controller"],
      buckets: QUEUE_BUCKETS,
      registers,
    });
    this.workDuration = new Histogram({
      name: "workqueue_work_duration_seconds",
      help: "How long in seconds processing an item from workqueue takes",
      labelNames: ["name", "controller"],
      buckets: QUEUE_BUCKETS,
      registers,
    });
    new Gauge({
      name: "workqueue_unfinished_work_seconds",
      help: "How many seconds of work has been done that is in progress and hasn't been observed by work_duration",
      labelNames: ["name", "controller"],
      registers,
      collect() {
        this.set(q, (src()?.runningFor() ?? []).reduce((a, b) => a + b, 0) / 1000);
      },
    });
    new Gauge({
      name: "workqueue_longest_running_processor_seconds",
      help: "How many seconds has the longest running processor for workqueue been running",
      labelNames: ["name", "controller"],
      registers,
      collect() {
        this.set(q, Math.max(0, ...(src()?.runningFor() ?? [])) / 1000);
      },
    });
    this.restRequests = new Counter({
      name: "rest_client_requests_total",
      help: "Number of HTTP requests, partitioned by status code, method, and host",
      labelNames: ["code", "method", "host"],
      registers,
    });
    new Gauge({
      name: "leader_election_master_status",
      help: "Gauge of if the reporting system is master of the relevant lease, 0 indicates backup, 1 indicates master",
      labelNames: ["name"],
      registers,
      collect() {
        this.set({ name: LEADER_ELECTION_NAME }, src()?.isLeader() ? 1 : 0);
      },
    });

    // ---- the product's own ----
    new Gauge({
      name: "csp_cache_synced",
      help: "1 when every informer cache has synced since its last list/watch failure, else 0",
      registers,
      collect() {
        this.set(src()?.cacheSynced() ? 1 : 0);
      },
    });
    const perPolicy = (
      name: string,
      help: string,
      labelNames: string[],
      fill: (g: Gauge<string>, p: ClusterSecurityPolicy) => void,
    ) =>
      new Gauge({
        name,
        help,
        labelNames,
        registers,
        collect() {
          this.reset();
          for (const p of src()?.policies() ?? []) fill(this, p);
        },
      });
    perPolicy("csp_policy_info", "1 per policy, with its mode", ["policy", "mode"], (g, p) =>
      g.set({ policy: p.metadata.name, mode: p.spec?.mode === "Audit" ? "Audit" : "Enforce" }, 1),
    );
    perPolicy(
      "csp_policy_drifted_objects",
      "Differences between the policy and the cluster (status.summary.drifted)",
      ["policy"],
      (g, p) => g.set({ policy: p.metadata.name }, p.status?.summary?.drifted ?? 0),
    );
    perPolicy("csp_policy_managed_objects", "Objects the policy manages", ["policy"], (g, p) =>
      g.set({ policy: p.metadata.name }, p.status?.summary?.managedObjects ?? 0),
    );
    perPolicy(
      "csp_policy_findings",
      "Open (not exempted) findings per policy, severity and area: the bounded status list by area, and the " +
        'findings past it (status.summary.findingsBySeverity) as area="unlisted"',
      ["policy", "severity", "area"],
      (g, p) => {
        for (const [severity, byArea] of findingCounts(p))
          for (const [area, n] of byArea) g.set({ policy: p.metadata.name, severity, area }, n);
      },
    );
    perPolicy(
      "csp_policy_condition",
      "Condition status per policy and type: 1 for the current status, 0 for the others",
      ["policy", "type", "status"],
      (g, p) => {
        for (const cond of p.status?.conditions ?? [])
          for (const status of ["True", "False", "Unknown"])
            g.set({ policy: p.metadata.name, type: cond.type, status }, cond.status === status ? 1 : 0);
      },
    );
    perPolicy(
      "csp_exemption_expiry_timestamp_seconds",
      "When each exemption of a policy expires (Unix seconds), by its index in spec.exemptions",
      ["policy", "exemption", "area"],
      (g, p) => {
        (p.spec?.exemptions ?? []).forEach((e, i) => {
          const at = seconds(e.expires);
          if (at !== undefined)
            g.set({ policy: p.metadata.name, exemption: String(i), area: e.area ?? "" }, at);
        });
      },
    );
    perPolicy(
      "csp_policy_last_successful_reconcile_timestamp_seconds",
      "When this process last reconciled the policy without error (Unix seconds)",
      ["policy"],
      (g, p) => {
        const t = this.lastSuccess.get(p.metadata.name);
        if (t !== undefined) g.set({ policy: p.metadata.name }, t / 1000);
      },
    );
    // From the rotation state the key-ring Secret persists, reported by the encryption area on every
    // reconcile: a new leader exports the same values after its first reconcile. A follower exports none
    // (what it read while it led would go stale), nor a policy that no longer uses spec.encryption.
    const rotationOf = (p: ClusterSecurityPolicy) =>
      p.spec?.encryption !== undefined && src()?.isLeader()
        ? this.rotationState.get(p.metadata.name)
        : undefined;
    perPolicy(
      "csp_encryption_rotation_phase",
      "The key-rotation phase a policy's encryption is in: 1 for the current phase",
      ["policy", "phase"],
      (g, p) => {
        const r = rotationOf(p);
        if (r)
          for (const phase of ROTATION_PHASES)
            g.set({ policy: p.metadata.name, phase }, r.phase === phase ? 1 : 0);
      },
    );
    perPolicy(
      "csp_encryption_rotation_phase_since_timestamp_seconds",
      "When the current key-rotation phase began (Unix seconds), as persisted in the key-ring Secret",
      ["policy"],
      (g, p) => {
        const since = seconds(rotationOf(p)?.phaseSince);
        if (since !== undefined) g.set({ policy: p.metadata.name }, since);
      },
    );
    perPolicy(
      "csp_encryption_last_rotation_completed_timestamp_seconds",
      "When the last key rotation completed (Unix seconds), as persisted in the key-ring Secret",
      ["policy"],
      (g, p) => {
        const completed = seconds(rotationOf(p)?.completedAt);
        if (completed !== undefined) g.set({ policy: p.metadata.name }, completed);
      },
    );
    const prune = () => this.pruneDeleted();
    // spec.apiServerMonitoring's rates, per policy and API server (host:port of the endpoint): what the
    // area computed on its last reconcile. Only policies in the cache that use the area are exported, and
    // only by the leader.
    const board = opts.accessRates ?? accessRateBoard;
    const accessGauge = (name: string, help: string, pick: (r: AccessRates) => number) =>
      new Gauge({
        name,
        help,
        labelNames: ["policy", "server"],
        registers,
        collect() {
          this.reset();
          const using = new Set(
            (src()?.policies() ?? [])
              .filter((p) => p.spec?.apiServerMonitoring !== undefined)
              .map((p) => p.metadata.name),
          );
          if (src()?.cacheSynced()) board.retain(using);
          // A replica that lost the Lease no longer reconciles: what it computed before would go stale.
          if (!src()?.isLeader()) return;
          for (const policy of using)
            for (const [server, rates] of board.get(policy)) this.set({ policy, server }, pick(rates));
        },
      });
    accessGauge(
      "csp_apiserver_auth_failures_per_minute",
      "Failed authentications per minute over spec.apiServerMonitoring.window, per policy and API server",
      (r) => r.authFailuresPerMinute,
    );
    accessGauge(
      "csp_apiserver_forbidden_per_minute",
      "403 responses per minute over spec.apiServerMonitoring.window (as the API server's request metrics count them), per policy and API server",
      (r) => r.forbiddenPerMinute,
    );
    this.corrections = new Counter({
      name: "csp_corrections_total",
      help: "Drifted objects the operator corrected, by policy, kind and drift reason",
      labelNames: ["policy", "kind", "reason"],
      registers,
      collect() {
        prune();
      },
    });
  }

  /** Connects the scrape-time gauges to the running operator. */
  attach(source: MetricsSource): void {
    this.source = source;
  }

  /** Feeds controller_runtime_* and workqueue_* from the controller and its queue. */
  controllerObserver(name: string = CONTROLLER_NAME): ControllerObserver {
    const q = { name, controller: name };
    const c = { controller: name };
    return {
      queue: {
        added: () => this.queueAdds.inc(q),
        retried: () => this.queueRetries.inc(q),
        started: (ms) => this.queueDuration.observe(q, ms / 1000),
        finished: (ms) => this.workDuration.observe(q, ms / 1000),
      },
      reconciled: (key, result, ms) => {
        this.reconcileTotal.inc({ ...c, result });
        this.reconcileTime.observe(c, ms / 1000);
        if (result === "error") this.reconcileErrors.inc(c);
        // Keys of other controllers (the repair lane's `policy/namespace`) are not policies.
        else if (name === CONTROLLER_NAME) this.lastSuccess.set(key, Date.now());
      },
    };
  }

  /** One request answered (`code` is the HTTP status, or "<error>" when none came back). */
  request(method: string, host: string, code: string): void {
    this.restRequests.inc({ code, method: method.toUpperCase(), host });
  }

  /** An event the operator recorded: corrections are counted from these. */
  event(policy: string, reason: string, message: string): void {
    if (reason === "DriftCorrected") {
      // "Corrected N object(s): Kind ns/name (Reason) xK, ..., and M more"
      for (const m of message.matchAll(/(\w+) \S+ \((\w+)\)(?: x(\d+))?/g))
        this.countCorrection(policy, bounded(m[1], KINDS), bounded(m[2], DRIFT_REASONS), Number(m[3] ?? 1));
      const more = /and (\d+) more$/.exec(message);
      if (more) this.countCorrection(policy, "Other", "Other", Number(more[1]));
    }
  }

  /**
   * The key-rotation state a reconcile read (or just persisted) for a policy; undefined when it has none
   * (Audit mode, no key ring yet, an unreadable one). Set on every reconcile of a policy with
   * spec.encryption, so the csp_encryption_rotation_* gauges follow the persisted state, not events.
   */
  rotation(policy: string, state: RotationGauges | undefined): void {
    if (state) this.rotationState.set(policy, state);
    else this.rotationState.delete(policy);
  }

  /** Forgets per-policy state of a deleted policy, its csp_corrections_total series included. */
  forget(policy: string): void {
    this.lastSuccess.delete(policy);
    this.rotationState.delete(policy);
    for (const l of this.correctionLabels.get(policy)?.values() ?? [])
      this.corrections.remove({ policy, kind: l.kind, reason: l.reason });
    this.correctionLabels.delete(policy);
  }

  /**
   * At scrape time, with a synced cache: forgets every policy that is no longer there (deleted while this
   * process ran, whichever replica reconciled it), so deleted policies leave no series and no state behind.
   */
  private pruneDeleted(): void {
    const source = this.source;
    if (!source?.cacheSynced()) return;
    const present = new Set(source.policies().map((p) => p.metadata.name));
    for (const policy of new Set([
      ...this.lastSuccess.keys(),
      ...this.rotationState.keys(),
      ...this.correctionLabels.keys(),
    ]))
      if (!present.has(policy)) this.forget(policy);
  }

  private countCorrection(policy: string, kind: string, reason: string, n: number): void {
    this.corrections.inc({ policy, kind, reason }, n);
    let sets = this.correctionLabels.get(policy);
    if (!sets) {
      sets = new Map<string, { kind: string; reason: string }>();
      this.correctionLabels.set(policy, sets);
    }
    sets.set(`${kind}\0${reason}`, { kind, reason });
  }
}
