import { errorMessage, statusCode } from "../cluster/client.js";
import { EncryptionClient, type RewriteResult, type StoredSecret } from "../cluster/encryption.js";
import { encryptionConfigHash, recordConfigYaml } from "../desired/encryption/render.js";
import {
  RotationStateError,
  EMPTY_RECORD,
  planEncryption,
  withRewriteDone,
  withRewriteProgress,
  type EncryptionRecord,
} from "../desired/encryption/rotation.js";
import type { EncryptionSpec } from "../desired/encryption/keys.js";
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
import type { AreaFactory, AreaInput, AreaReconciler, AreaReport } from "./areas.js";

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

/**
 * Encryption at rest: holds the key ring in a Secret in csp-system, drives the rotation state machine one
 * step per reconcile from evidence (what each API server reports having loaded), and rewrites stored
 * objects once a new key is primary everywhere. The node agent copies the configuration to disk.
 */
export class EncryptionArea implements AreaReconciler {
  readonly name = "encryption";
  /** The last config hash each API server reported, across scrapes (a scrape reaches one server). */
  private readonly seen = new Map<string, LoadedConfig>();

  constructor(private readonly client: EncryptionClient) {}

  inUse(spec: AreaInput["spec"]): boolean {
    return !!spec.encryption;
  }

  async reconcile(input: AreaInput): Promise<AreaReport> {
    const spec = input.spec.encryption!;
    const view = await this.metricsView();
    if (!input.enforce)
      return { conditions: [auditedEncryptionCondition(spec.resources ?? ["secrets"], view)] };

    const policyName = input.policy.metadata.name;
    const secretName = encryptionSecretName(policyName);
    const where = `Secret ${OPERATOR_NAMESPACE}/${secretName}`;
    const live = await this.client.readSecret(secretName);
    if (live && !isOwnedBy(live.metadata.labels, policyName)) {
      return this.failed(
        "Unowned",
        `${where} exists and was not created by csp-operator for this policy; left untouched`,
        false,
      );
    }
    if (!live) {
      const evidence = keyRingEvidence(
        `Secret/${OPERATOR_NAMESPACE}/${secretName}`,
        fileReports(input.snapshot.configMaps ?? []),
        view.ok ? view.metrics : undefined,
        spec.resources ?? ["secrets"],
      );
      if (evidence.length > 0) {
        // A condition, not a failure: the rest of the policy is reconciled, and EncryptionAtRest (hence
        // Compliant) says what is wrong and how to restore the Secret.
        const condition = keyRingMissingCondition(where, evidence);
        return {
          conditions: [condition],
          events: [{ type: "Warning", reason: "KeyRingMissing", message: condition.message }],
          requeueAfterMs: REQUEUE.keyRingMissing,
        };
      }
    }
    let record: EncryptionRecord;
    try {
      record = live ? parseEncryptionRecord(live.data) : EMPTY_RECORD;
    } catch (err) {
      if (err instanceof RotationStateError)
        return this.failed("InvalidEncryptionState", `${where}: ${err.message}`, false);
      throw err;
    }
    let hash: string;
    try {
      hash = encryptionConfigHash(recordConfigYaml(spec, record));
    } catch (err) {
      return this.failed("InvalidSpec", `spec.encryption: ${errorMessage(err)}`, false);
    }

    const expected = view.ok
      ? {
          identities: await this.client.apiServerIdentities(input.snapshot.now),
          endpoints: await this.client.apiServerEndpoints(),
        }
      : undefined;
    const nodes = expected ? undefined : await this.client.controlPlaneNodes();
    const judge = (h: string): LoadJudgement | undefined =>
      expected
        ? judgeLoaded(h, [...this.seen.values()], expected)
        : this.judgeFromAgents(input, secretName, h, nodes);
    const plan = planEncryption(
      spec,
      record,
      { allServersLoaded: judge(hash)?.allLoaded ?? false },
      input.snapshot.now,
    );

    // Persist first: a key is stored before any API server can be told about it.
    let current = plan.record;
    let resourceVersion = live?.metadata.resourceVersion;
    let storedState = live?.data?.[ENCRYPTION_STATE_KEY];
    const persist = async (r: EncryptionRecord) => {
      const secret = encryptionSecret(input.policy, spec, r);
      try {
        await this.client.writeSecret(secret, resourceVersion);
      } catch (err) {
        // The rewrite re-stores this very Secret (it is a Secret too), which bumps its resourceVersion
        // without changing it: retry once when what is stored is still what this reconcile last wrote.
        if (statusCode(err) !== 409) throw err;
        const fresh = await this.client.readSecret(secretName);
        if (!fresh || fresh.data?.[ENCRYPTION_STATE_KEY] !== storedState) throw err;
        await this.client.writeSecret(secret, fresh.metadata.resourceVersion);
      }
      storedState = secret.data[ENCRYPTION_STATE_KEY];
      resourceVersion = (await this.client.readSecret(secretName))?.metadata.resourceVersion;
    };
    // Key names only: plan messages never carry key material.
    const events: NonNullable<AreaReport["events"]> = plan.persist
      ? [{ type: "Normal", reason: "EncryptionStep", message: `${plan.record.phase}: ${plan.message}` }]
      : [];
    try {
      if (!live || plan.persist || !this.secretCurrent(live, spec, plan.record)) await persist(plan.record);
      if (plan.persist)
        input.log.info("encryption step", { phase: plan.record.phase, message: plan.message });
      if (plan.action === "RewriteObjects" && plan.rewrite) {
        const { resources, target } = plan.rewrite;
        const what = target.startsWith("drain:") ? "in plaintext" : `with key ${target}`;
        const start = current.rewrite?.target === target ? current.rewrite : { target, done: [] as string[] };
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
          return this.rewriteIncomplete(result, resources, what, events);
        }
        current = withRewriteDone(current);
        await persist(current);
        events.push({
          type: "Normal",
          reason: "EncryptionRewrite",
          message: `rewrote ${result.written} stored object(s) of ${resources.join(", ")} ${what}`,
        });
      }
    } catch (err) {
      if (statusCode(err) === 409)
        return { failure: { reason: "Conflict", message: `${where} changed meanwhile`, retryable: true } };
      if (statusCode(err) === 403 && plan.action === "RewriteObjects")
        // A new ClusterRoleBinding re-enqueues every policy, so no retry loop is needed to notice the fix.
        return this.failed(
          "RewriteForbidden",
          `the operator may not list ${(plan.rewrite?.resources ?? []).join(", ")} to rewrite them: apply ` +
            `config/encryption (kubectl apply -k config/encryption); every key is kept until the rewrite is ` +
            `done, which resumes where it stopped (${errorMessage(err)})`,
          false,
        );
      throw err;
    }

    const currentHash = encryptionConfigHash(recordConfigYaml(spec, current));
    const loaded = judge(currentHash);
    // EncryptionAtRest rests on metrics only; the agents' word moves a rotation on, it proves nothing.
    const condition = enforcedEncryptionCondition(current, view, view.ok ? loaded : undefined, plan.message);
    const requeueAfterMs =
      plan.action === "Apply" || plan.action === "RewriteObjects"
        ? REQUEUE.afterWrite
        : plan.action === "WaitForAPIServers"
          ? REQUEUE.waitForReload
          : loaded?.allLoaded
            ? undefined
            : REQUEUE.configNotLoaded;
    return {
      conditions: [condition],
      events,
      ...(requeueAfterMs === undefined ? {} : { requeueAfterMs }),
    };
  }

  /** The Secret holds what this record and spec render (spec.encryption.resources may have changed). */
  private secretCurrent(live: StoredSecret, spec: EncryptionSpec, record: EncryptionRecord): boolean {
    return secretConfigYaml(live.data) === recordConfigYaml(spec, record);
  }

  /**
   * A rewrite that left objects behind: RewriteForbidden when the API server refused an update (403),
   * RewriteFailed otherwise, with the count and the first objects named. Its progress is saved, so the
   * retry resumes instead of starting over; every key stays until the rewrite is complete.
   */
  private rewriteIncomplete(
    result: RewriteResult,
    resources: readonly string[],
    what: string,
    events: NonNullable<AreaReport["events"]>,
  ): AreaReport {
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

  private failed(reason: string, message: string, retryable: boolean): AreaReport {
    return {
      conditions: [{ type: ENCRYPTION_AT_REST, status: "False", reason, message }],
      failure: { reason, message, retryable },
    };
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

  /**
   * Without metrics: the agents' reports of the file they wrote, and the time the API server needs to
   * notice a changed file. Good enough to move a rotation on; never enough for EncryptionAtRest=True.
   */
  private judgeFromAgents(
    input: AreaInput,
    secretName: string,
    hash: string,
    controlPlaneNodes: string[] | undefined,
  ): LoadJudgement {
    const source = `Secret/${OPERATOR_NAMESPACE}/${secretName}`;
    // Every control-plane node must report the file; when they cannot be listed, nothing is proven.
    const d = judgeDelivery(
      source,
      hash,
      fileReports(input.snapshot.configMaps ?? []),
      controlPlaneNodes ?? [],
    );
    const newest = Math.max(0, ...d.reports.map((r) => Date.parse(r.writtenAt) || 0));
    const settled = input.snapshot.now.getTime() - newest >= RELOAD_GRACE_MS;
    return {
      allLoaded: d.delivered && settled,
      servers: d.reports.length,
      loaded: d.delivered && settled ? d.reports.length : 0,
      message: `agents: ${d.message}`,
    };
  }
}

/** Registered in registry.ts. */
export const encryptionArea: AreaFactory = ({ kc }) => new EncryptionArea(new EncryptionClient(kc));
