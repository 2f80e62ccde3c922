import { errorMessage, statusCode } from "../cluster/client.js";
import { EncryptionClient, type RewriteResult, type StoredSecret } from "../cluster/encryption.js";
import type { EncryptionSpec } from "../desired/encryption/keys.js";
import { encryptionConfigHash, recordConfigYaml } from "../desired/encryption/render.js";
import {
  EMPTY_RECORD,
  planEncryption,
  RotationStateError,
  withRewriteDone,
  withRewriteProgress,
  type EncryptionPlan,
  type EncryptionRecord,
  type RewriteProgress,
} from "../desired/encryption/rotation.js";
import {
  ENCRYPTION_STATE_KEY,
  encryptionSecret,
  encryptionSecretName,
  parseEncryptionRecord,
  secretConfigYaml,
} from "../desired/encryption/secret.js";
import { isOwnedBy, OPERATOR_NAMESPACE } from "../desired/metadata.js";
import { fileReports, judgeDelivery } from "../evidence/agentreports.js";
import {
  encryptionMetrics,
  judgeLoaded,
  type ExpectedServers,
  type LoadedConfig,
  type LoadJudgement,
} from "../evidence/apiserver.js";
import {
  auditedEncryptionCondition,
  ENCRYPTION_AT_REST,
  enforcedEncryptionCondition,
  keyRingEvidence,
  keyRingMissingCondition,
  type MetricsView,
} from "../evidence/encryption.js";
import type { RotationGauges } from "../observability/metrics.js";
import {
  PlanOutdatedError,
  type AreaFactory,
  type AreaInput,
  type AreaObserver,
  type AreaReconciler,
  type AreaReport,
} from "./areas.js";

/** How soon to look again while something outside the API is expected to change. */
const REQUEUE = {
  afterWrite: 1_000,
  waitForReload: 5_000,
  configNotLoaded: 15_000,
  keyRingMissing: 60_000,
  rewriteForbidden: 60_000,
} as const;
/**
 * Without metrics, a file the agents report written counts as loaded after this long: kube-apiserver
 * polls its encryption config about once a minute with automatic reload (measured on v1.36.3: 59 s).
 */
const RELOAD_GRACE_MS = 90_000;

type AreaEvent = NonNullable<AreaReport["events"]>[number];

/** What the encryption area reads from the cluster before it decides (EncryptionArea.gather). */
export interface EncryptionGathered {
  /** The API server's /metrics, or why it could not be read. */
  view: MetricsView;
  /** The configuration each API server reported, accumulated across scrapes (a scrape reaches one server). */
  seen: readonly LoadedConfig[];
  /** Enforce mode: the key-ring Secret, undefined when there is none. Not read in Audit mode. */
  live?: StoredSecret | undefined;
  /** With metrics: the API servers expected to report a configuration. */
  expected?: ExpectedServers | undefined;
  /** Without metrics: the control-plane nodes whose agents must report the file. */
  nodes?: string[] | undefined;
}

/** The part of a reconcile the encryption plan reads: the policy, its mode and the snapshot's time and ConfigMaps. */
export interface EncryptionPlanInput {
  policy: string;
  spec: EncryptionSpec;
  enforce: boolean;
  now: Date;
  /** The node agents' report ConfigMaps (snapshot.configMaps). */
  configMaps: AreaInput["snapshot"]["configMaps"];
}

/**
 * What the encryption area decided, a value (printable, unit-tested): either a report with nothing to
 * write, or the writes of one step (the key-ring Secret first, then any rewrite of stored objects).
 * NOTE: `record` holds key material; print `describeKeyRing(record.ring)`, never the record itself.
 */
export type EncryptionAreaPlan =
  { kind: "Report"; report: AreaReport; rotation: RotationGauges | undefined } | EncryptionWrites;

export interface EncryptionWrites {
  kind: "Write";
  secretName: string;
  /** What is stored now: the Secret's resourceVersion and state, for the optimistic write. */
  stored: { resourceVersion?: string | undefined; state?: string | undefined } | undefined;
  /** Write `step.record` to the Secret before anything else (absent, changed, or stale rendering). */
  write: boolean;
  /** The workflow step: the record to act on, its action and message (planEncryption). */
  step: EncryptionPlan;
  /** RewriteObjects: what to rewrite, with which key (`what`), resuming from `start`. */
  rewrite?: { resources: string[]; target: string; what: string; start: RewriteProgress };
  events: AreaEvent[];
}

function failedReport(reason: string, message: string, retryable: boolean): AreaReport {
  return {
    conditions: [{ type: ENCRYPTION_AT_REST, status: "False", reason, message }],
    failure: { reason, message, retryable },
  };
}

/** The csp_encryption_rotation_* gauges of a persisted record. */
export function rotationGauges(record: EncryptionRecord): RotationGauges {
  return { phase: record.phase, phaseSince: record.phaseSince, completedAt: record.rotationCompletedAt };
}

/**
 * Without metrics: the agents' reports of the file they wrote, and the time the API server needs to
 * notice a changed file. Good enough to move a rotation on; never enough for EncryptionAtRest=True.
 */
function judgeFromAgents(
  input: EncryptionPlanInput,
  hash: string,
  nodes: string[] | undefined,
): LoadJudgement {
  const source = `Secret/${OPERATOR_NAMESPACE}/${encryptionSecretName(input.policy)}`;
  // Every control-plane node must report the file; when they cannot be listed, nothing is proven.
  const d = judgeDelivery(source, hash, fileReports(input.configMaps ?? []), nodes ?? []);
  const newest = Math.max(0, ...d.reports.map((r) => Date.parse(r.writtenAt) || 0));
  const settled = input.now.getTime() - newest >= RELOAD_GRACE_MS;
  return {
    allLoaded: d.delivered && settled,
    servers: d.reports.length,
    loaded: d.delivered && settled ? d.reports.length : 0,
    message: `agents: ${d.message}`,
  };
}

/** Whether every API server runs the configuration with this hash: from metrics, or the agents' word. */
function judge(input: EncryptionPlanInput, g: EncryptionGathered, hash: string): LoadJudgement {
  return g.expected ? judgeLoaded(hash, g.seen, g.expected) : judgeFromAgents(input, hash, g.nodes);
}

/**
 * The encryption area's plan, pure: from the gathered evidence, the Secret and the spec, what to report
 * or the step to take (planEncryption) with its writes. Audit mode only reports what metrics show.
 */
export function planEncryptionArea(input: EncryptionPlanInput, g: EncryptionGathered): EncryptionAreaPlan {
  const { spec, view } = { spec: input.spec, view: g.view };
  const report = (r: AreaReport, record?: EncryptionRecord): EncryptionAreaPlan => ({
    kind: "Report",
    report: r,
    rotation: record ? rotationGauges(record) : undefined,
  });
  if (!input.enforce)
    return report({ conditions: [auditedEncryptionCondition(spec.resources ?? ["secrets"], view)] });

  const secretName = encryptionSecretName(input.policy);
  const where = `Secret ${OPERATOR_NAMESPACE}/${secretName}`;
  const live = g.live;
  if (live && !isOwnedBy(live.metadata.labels, input.policy))
    return report(
      failedReport(
        "Unowned",
        `${where} exists and was not created by csp-operator for this policy; left untouched`,
        false,
      ),
    );
  if (!live) {
    const evidence = keyRingEvidence(
      `Secret/${OPERATOR_NAMESPACE}/${secretName}`,
      fileReports(input.configMaps ?? []),
      view.ok ? view.metrics : undefined,
      spec.resources ?? ["secrets"],
    );
    if (evidence.length > 0) {
      // A condition, not a failure: the rest of the policy is reconciled, and EncryptionAtRest (hence
      // Compliant) says what is wrong and how to restore the Secret.
      const condition = keyRingMissingCondition(where, evidence);
      return report({
        conditions: [condition],
        events: [{ type: "Warning", reason: "KeyRingMissing", message: condition.message }],
        requeueAfterMs: REQUEUE.keyRingMissing,
      });
    }
  }
  let record: EncryptionRecord;
  try {
    record = live ? parseEncryptionRecord(live.data, input.now) : EMPTY_RECORD;
  } catch (err) {
    if (err instanceof RotationStateError)
      return report(failedReport("InvalidEncryptionState", `${where}: ${err.message}`, false));
    throw err;
  }
  let hash: string;
  try {
    hash = encryptionConfigHash(recordConfigYaml(spec, record));
  } catch (err) {
    return report(failedReport("InvalidSpec", `spec.encryption: ${errorMessage(err)}`, false), record);
  }
  const step = planEncryption(spec, record, { allServersLoaded: judge(input, g, hash).allLoaded }, input.now);
  // The Secret holds what this record and spec render (spec.encryption.resources may have changed).
  const current = live !== undefined && secretConfigYaml(live.data) === recordConfigYaml(spec, step.record);
  let rewrite: EncryptionWrites["rewrite"];
  if (step.action === "RewriteObjects" && step.rewrite) {
    const { resources, target } = step.rewrite;
    rewrite = {
      resources,
      target,
      what: target.startsWith("drain:") ? "in plaintext" : `with key ${target}`,
      start: step.record.rewrite?.target === target ? step.record.rewrite : { target, done: [] },
    };
  }
  return {
    kind: "Write",
    secretName,
    stored: live
      ? { resourceVersion: live.metadata.resourceVersion, state: live.data?.[ENCRYPTION_STATE_KEY] }
      : undefined,
    write: !live || step.persist || !current,
    step,
    ...(rewrite ? { rewrite } : {}),
    // Key names only: plan messages never carry key material.
    events: step.persist
      ? [{ type: "Normal", reason: "EncryptionStep", message: `${step.record.phase}: ${step.message}` }]
      : [],
  };
}

/** What the writes of a step achieved, as the executor saw them. */
export type EncryptionOutcome =
  | { kind: "Done"; record: EncryptionRecord; rewritten?: number }
  | { kind: "RewriteIncomplete"; record: EncryptionRecord; result: RewriteResult }
  | { kind: "Failed"; record: EncryptionRecord; status: number | undefined; message: string };

/**
 * The report after the writes, pure: EncryptionAtRest from the record now stored (metrics only: the
 * agents' word moves a rotation on, it proves nothing), the step's Events, and when to look again.
 */
export function encryptionReport(
  input: EncryptionPlanInput,
  g: EncryptionGathered,
  plan: EncryptionWrites,
  outcome: EncryptionOutcome,
): AreaReport {
  const events = [...plan.events];
  if (outcome.kind === "Failed") {
    if (outcome.status === 409)
      return {
        failure: {
          reason: "Conflict",
          message: `Secret ${OPERATOR_NAMESPACE}/${plan.secretName} changed meanwhile`,
          retryable: true,
        },
      };
    // A binding granting the operator re-enqueues every policy (cluster/rbacevents.ts), so no retry loop
    // is needed to notice the fix.
    return failedReport(
      "RewriteForbidden",
      `the operator may not list ${(plan.rewrite?.resources ?? []).join(", ")} to rewrite them: apply ` +
        `config/encryption (kubectl apply -k config/encryption); every key is kept until the rewrite is ` +
        `done, which resumes where it stopped (${outcome.message})`,
      false,
    );
  }
  if (outcome.kind === "RewriteIncomplete") return rewriteIncomplete(outcome.result, plan, events);
  if (plan.rewrite && outcome.rewritten !== undefined)
    events.push({
      type: "Normal",
      reason: "EncryptionRewrite",
      message: `rewrote ${outcome.rewritten} stored object(s) of ${plan.rewrite.resources.join(", ")} ${plan.rewrite.what}`,
    });
  const action = plan.step.action;
  const loaded = judge(input, g, encryptionConfigHash(recordConfigYaml(input.spec, outcome.record)));
  const condition = enforcedEncryptionCondition(
    outcome.record,
    g.view,
    g.view.ok ? loaded : undefined,
    plan.step.message,
  );
  const requeueAfterMs =
    action === "Apply" || action === "RewriteObjects"
      ? REQUEUE.afterWrite
      : action === "WaitForAPIServers"
        ? REQUEUE.waitForReload
        : loaded.allLoaded
          ? undefined
          : REQUEUE.configNotLoaded;
  return { conditions: [condition], events, ...(requeueAfterMs === undefined ? {} : { requeueAfterMs }) };
}

/**
 * A rewrite that left objects behind: RewriteForbidden when the API server refused an update (403),
 * RewriteFailed otherwise, with the count and the first objects named. Its progress is saved, so the
 * retry resumes instead of starting over; every key stays until the rewrite is complete.
 */
function rewriteIncomplete(result: RewriteResult, plan: EncryptionWrites, events: AreaEvent[]): AreaReport {
  const { resources, what } = plan.rewrite!;
  const reason = result.forbidden ? "RewriteForbidden" : "RewriteFailed";
  const first = result.failures
    .map((f) => `${f.resource} ${f.object} (${f.code ?? "no status"}: ${f.message})`)
    .join("; ");
  const fix = result.forbidden ? "grant update on them (kubectl apply -k config/encryption); " : "";
  const message =
    `rewriting ${resources.join(", ")} ${what}: ${result.failed} object(s) could not be rewritten ` +
    `(first: ${first}); ${fix}every key is kept until each stored object is rewritten, and the retry ` +
    `resumes with what is left (${result.written} written in this attempt)`;
  // The failure becomes a Warning event on the policy (reconcile records one per failure).
  return {
    conditions: [{ type: ENCRYPTION_AT_REST, status: "False", reason, message }],
    events,
    failure: { reason, message, retryable: !result.forbidden },
    // A namespace-scoped grant re-enqueues nothing: look again now and then.
    ...(result.forbidden ? { requeueAfterMs: REQUEUE.rewriteForbidden } : {}),
  };
}

/**
 * Encryption at rest: holds the key ring in a Secret in csp-system, drives the rotation state machine one
 * step per reconcile from evidence (what each API server reports having loaded), and rewrites stored
 * objects once a new key is primary everywhere. The node agent copies the configuration to disk.
 *
 * gather (metrics, the Secret, which API servers exist) -> planEncryptionArea (pure) -> execute (the
 * Secret first, then the rewrite, saving progress after every page) -> encryptionReport (pure). Every
 * reconcile also reports the persisted rotation state to the metrics (csp_encryption_rotation_*).
 */
export class EncryptionArea implements AreaReconciler {
  readonly name = "encryption";
  /** The last config hash each API server reported, across scrapes (a scrape reaches one server). */
  private readonly seen = new Map<string, LoadedConfig>();

  constructor(
    private readonly client: EncryptionClient,
    private readonly observer?: AreaObserver,
  ) {}

  inUse(spec: AreaInput["spec"]): boolean {
    return !!spec.encryption;
  }

  async reconcile(input: AreaInput): Promise<AreaReport> {
    const planInput: EncryptionPlanInput = {
      policy: input.policy.metadata.name,
      spec: input.spec.encryption!,
      enforce: input.enforce,
      now: input.snapshot.now,
      configMaps: input.snapshot.configMaps,
    };
    const gathered = await this.gather(input);
    const plan = planEncryptionArea(planInput, gathered);
    if (plan.kind === "Report") {
      this.observer?.rotation(planInput.policy, plan.rotation);
      return plan.report;
    }
    const outcome = await this.execute(input, plan);
    this.observer?.rotation(planInput.policy, rotationGauges(outcome.record));
    return encryptionReport(planInput, gathered, plan, outcome);
  }

  /** The cluster side before the plan: metrics, the key-ring Secret, the API servers (or nodes) expected. */
  async gather(input: AreaInput): Promise<EncryptionGathered> {
    const view = await this.metricsView();
    const seen = [...this.seen.values()];
    if (!input.enforce) return { view, seen };
    const name = input.policy.metadata.name;
    const live = await this.client.readSecret(encryptionSecretName(name));
    if (live && !isOwnedBy(live.metadata.labels, name)) return { view, seen, live };
    if (view.ok) {
      const [identities, endpoints] = await Promise.all([
        this.client.apiServerIdentities(input.snapshot.now),
        this.client.apiServerEndpoints(),
      ]);
      return { view, seen, live, expected: { identities, endpoints } };
    }
    return { view, seen, live, nodes: await this.client.controlPlaneNodes() };
  }

  /**
   * The writes of a step: the Secret first (a key is stored before any API server can be told about it),
   * then the rewrite, persisting its progress after every page. Returns what was achieved; a 409, or a 403
   * while rewriting, is an outcome, anything else throws (the area fails, retryably).
   */
  async execute(input: AreaInput, plan: EncryptionWrites): Promise<EncryptionOutcome> {
    const spec = input.spec.encryption!;
    let current = plan.step.record;
    let resourceVersion = plan.stored?.resourceVersion;
    let storedState = plan.stored?.state;
    const persist = async (r: EncryptionRecord) => {
      // Progress is persisted page by page: a rewrite stopped here resumes from it.
      if (input.proceed && !input.proceed()) throw new PlanOutdatedError();
      const secret = encryptionSecret(input.policy, spec, r);
      try {
        await this.client.writeSecret(secret, resourceVersion);
      } catch (err) {
        // The rewrite re-stores this very Secret (it is a Secret too), which bumps its resourceVersion
        // without changing it: retry once when what is stored is still what this reconcile last wrote.
        if (statusCode(err) !== 409) throw err;
        const fresh = await this.client.readSecret(plan.secretName);
        if (!fresh || fresh.data?.[ENCRYPTION_STATE_KEY] !== storedState) throw err;
        await this.client.writeSecret(secret, fresh.metadata.resourceVersion);
      }
      storedState = secret.data[ENCRYPTION_STATE_KEY];
      resourceVersion = (await this.client.readSecret(plan.secretName))?.metadata.resourceVersion;
    };
    try {
      if (plan.write) await persist(current);
      if (plan.step.persist)
        input.log.info("encryption step", { phase: current.phase, message: plan.step.message });
      if (!plan.rewrite) return { kind: "Done", record: current };
      const { resources, target, start } = plan.rewrite;
      const result = await this.client.rewrite(resources, start, async (progress) => {
        current = withRewriteProgress(current, progress);
        await persist(current);
      });
      input.log.info("stored objects rewritten", {
        objects: result.written,
        failed: result.failed,
        complete: result.complete,
        target,
      });
      if (!result.complete) {
        current = withRewriteProgress(current, result.progress);
        await persist(current);
        return { kind: "RewriteIncomplete", record: current, result };
      }
      current = withRewriteDone(current);
      await persist(current);
      return { kind: "Done", record: current, rewritten: result.written };
    } catch (err) {
      const status = statusCode(err);
      if (status === 409 || (status === 403 && plan.rewrite))
        return { kind: "Failed", record: current, status, message: errorMessage(err) };
      throw err;
    }
  }

  /** Scrapes /metrics, remembering what each API server reported; the reason when that is not allowed. */
  private async metricsView(): Promise<MetricsView> {
    try {
      const metrics = encryptionMetrics(await this.client.metrics());
      for (const l of metrics.loaded) this.seen.set(l.apiServerIdHash, l);
      return { ok: true, metrics };
    } catch (err) {
      const code = statusCode(err);
      const why =
        code === 403
          ? "the operator may not read the API server's /metrics (grant get on nonResourceURLs /metrics)"
          : `reading the API server's /metrics failed: ${errorMessage(err)}`;
      return { ok: false, why };
    }
  }
}

/** Registered in registry.ts. */
export const encryptionArea: AreaFactory = ({ kc, observer }) =>
  new EncryptionArea(new EncryptionClient(kc), observer);
