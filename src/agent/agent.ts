import { readFile } from "node:fs/promises";
import type { KubeConfig, KubernetesObject } from "@kubernetes/client-node";
import { AgentClient } from "../cluster/agentclient.js";
import { errorMessage } from "../cluster/client.js";
import { AUDIT_POLICY_KEY } from "../desired/auditpolicy.js";
import { ENCRYPTION_CONFIG_KEY } from "../desired/encryptionstate.js";
import { OPERATOR_NAMESPACE, POLICY_LABEL } from "../desired/metadata.js";
import {
  agentReportConfigMap,
  contentHash,
  fileReports,
  type AgentCheckKind,
  type AgentFile,
  type FileReport,
} from "../evidence/agentreports.js";
import type { Logger } from "../observability/logger.js";
import { fileState, writeFileAtomic } from "./files.js";
import { hostChecks } from "./hostchecks.js";
import { keysDropped } from "./keyguard.js";
import type { CheckResult } from "../cis/check.js";

export interface AgentOptions {
  /** The node this agent runs on (the DaemonSet passes spec.nodeName). */
  node: string;
  /** Where kube-apiserver reads --audit-policy-file; unset: the audit policy is not delivered. */
  auditPolicyPath?: string;
  /** Where kube-apiserver reads --encryption-provider-config; unset: not delivered. */
  encryptionConfigPath?: string;
  /** Deliver only this policy's files (needed when several policies render one). */
  policy?: string;
  /** Re-check files on disk this often, restoring one changed by hand. */
  resyncMs?: number;
  /**
   * Where the host's root is mounted: when set, the agent also runs the CIS 1.1.x/4.1.x file permission
   * and ownership checks there and reports the results (the controlPlane area turns them into findings).
   */
  hostRoot?: string;
}

interface Source {
  file: AgentFile;
  path: string;
  ref: string;
  content: string;
}

/**
 * `csp-operator agent`: runs on each control-plane node, copies the rendered audit Policy (ConfigMap)
 * and EncryptionConfiguration (Secret) from csp-system to the host paths kube-apiserver reads, and
 * reports what it wrote (path, hash, time, node — never content) in ConfigMap csp-system/csp-agent-<node>,
 * which the operator folds into the policy's status. It never deletes a file: a key the API server may
 * still need to read stored objects must not vanish because a Secret did.
 */
export class Agent {
  private readonly client: AgentClient;
  private readonly reports = new Map<AgentFile, FileReport>();
  private lastReport = "";
  private running: Promise<void> | undefined;
  private again = false;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private nodeUid: string | undefined;

  constructor(
    kc: KubeConfig,
    private readonly opts: AgentOptions,
    private readonly log: Logger,
  ) {
    this.client = new AgentClient(kc, log, () => this.kick());
  }

  async start(): Promise<void> {
    this.stopped = false;
    await this.client.start();
    this.nodeUid = await this.readNodeUid();
    // What this node's agent wrote before a restart: a file with that hash is its own, not a foreign one.
    for (const r of fileReports(this.client.configMapList()))
      if (r.node === this.opts.node && !r.error && !this.reports.has(r.file)) this.reports.set(r.file, r);
    this.kick();
    this.timer = setInterval(() => this.kick(), this.opts.resyncMs ?? 60_000);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await this.client.stop();
    await this.running;
  }

  /** Resolves once every change seen so far is on disk and reported. */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  /** Runs one sync at a time; a change during a sync runs another one after it. */
  private kick(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.syncLoop().finally(() => (this.running = undefined));
  }

  private async syncLoop(): Promise<void> {
    do {
      this.again = false;
      try {
        await this.sync();
      } catch (err) {
        this.log.warn("agent sync failed", { error: errorMessage(err) });
      }
    } while (this.again && !this.stopped);
  }

  private pick<T extends KubernetesObject & { data?: Record<string, string> }>(
    file: AgentFile,
    path: string | undefined,
    objs: readonly T[],
    kind: string,
    key: string,
    decode: (v: string) => string,
  ): Source | { error: string; file: AgentFile; path: string } | undefined {
    if (!path) return undefined;
    const candidates = objs
      .filter((o) => o.data?.[key] !== undefined && o.metadata?.labels?.[POLICY_LABEL])
      .filter((o) => !this.opts.policy || o.metadata?.labels?.[POLICY_LABEL] === this.opts.policy)
      .sort((a, b) => (a.metadata?.name ?? "").localeCompare(b.metadata?.name ?? ""));
    if (candidates.length === 0) return undefined;
    if (candidates.length > 1) {
      const names = candidates.map((c) => c.metadata?.labels?.[POLICY_LABEL]).join(", ");
      return {
        file,
        path,
        error: `several policies render ${file} (${names}); start the agent with --policy`,
      };
    }
    const o = candidates[0]!;
    return {
      file,
      path,
      ref: `${kind}/${OPERATOR_NAMESPACE}/${o.metadata!.name!}`,
      content: decode(o.data![key]!),
    };
  }

  private async sync(): Promise<void> {
    const sources = [
      this.pick(
        "audit-policy",
        this.opts.auditPolicyPath,
        this.client.renderedAuditPolicies(),
        "ConfigMap",
        AUDIT_POLICY_KEY,
        (v) => v,
      ),
      this.pick(
        "encryption-config",
        this.opts.encryptionConfigPath,
        this.client.secretList(),
        "Secret",
        ENCRYPTION_CONFIG_KEY,
        (v) => Buffer.from(v, "base64").toString("utf8"),
      ),
    ];
    for (const s of sources) {
      if (!s) continue;
      if ("error" in s) {
        this.reports.set(s.file, this.notWritten(s.file, s.path, "", await fileState(s.path), s.error));
        continue;
      }
      const want = contentHash(s.content);
      const on = await fileState(s.path);
      const refusal = on && on.sha256 !== want ? await this.refuseOverwrite(s, on.sha256) : undefined;
      if (refusal) {
        this.reports.set(s.file, this.notWritten(s.file, s.path, s.ref, on, refusal));
        continue;
      }
      let writtenAt = on?.mtime ?? new Date();
      const prev = this.reports.get(s.file);
      if (on?.sha256 !== want) {
        await writeFileAtomic(s.path, s.content);
        writtenAt = new Date();
        this.log.info("file written", { file: s.file, path: s.path, sha256: want, source: s.ref });
      } else if (prev && prev.sha256 === want && prev.source === s.ref) {
        writtenAt = new Date(prev.writtenAt);
      }
      this.reports.set(s.file, {
        file: s.file,
        source: s.ref,
        path: s.path,
        sha256: want,
        writtenAt: writtenAt.toISOString(),
        node: this.opts.node,
      });
    }
    let checks: Partial<Record<AgentCheckKind, readonly CheckResult[]>> = {};
    if (this.opts.hostRoot !== undefined) {
      const host = await hostChecks(this.opts.hostRoot);
      if (host.problem) this.log.warn("kube-apiserver manifest not checked", { problem: host.problem });
      checks = host.checks;
    }
    await this.report(checks);
  }

  /**
   * An EncryptionConfiguration on disk that this agent did not write (its hash is not the one last
   * reported for this path) is replaced only if the replacement keeps every key it holds: those keys may
   * be all that can read objects stored before the operator arrived. Returns why not, for the report.
   */
  private async refuseOverwrite(s: Source, onDisk: string): Promise<string | undefined> {
    if (s.file !== "encryption-config") return undefined;
    const mine = this.reports.get(s.file);
    if (mine && !mine.error && mine.sha256 === onDisk) return undefined;
    let existing: string;
    try {
      existing = await readFile(s.path, "utf8");
    } catch (err) {
      return `cannot read the existing file to check its keys: ${errorMessage(err)}`;
    }
    const dropped = keysDropped(existing, s.content);
    if (dropped.length === 0) return undefined;
    return (
      `not overwriting ${s.path}: it was not written by csp-operator and holds keys the rendered configuration ` +
      `lacks (${dropped.join(", ")}); objects stored with them would become unreadable. Rewrite the stored ` +
      `objects with a key the operator manages first, or move the file aside if those keys are unused`
    );
  }

  /** A report of a file not written: what is on disk (if anything) stays, with the reason. */
  private notWritten(
    file: AgentFile,
    path: string,
    source: string,
    on: { sha256: string; mtime: Date } | undefined,
    error: string,
  ): FileReport {
    this.log.warn("file not written", { file, path, error });
    return {
      file,
      source,
      path,
      sha256: on?.sha256 ?? "",
      writtenAt: (on?.mtime ?? new Date(0)).toISOString(),
      node: this.opts.node,
      error,
    };
  }

  /** The uid of this agent's Node, which owns its report; undefined (with a warning) when it cannot be read. */
  private async readNodeUid(): Promise<string | undefined> {
    try {
      return await this.client.nodeUid(this.opts.node);
    } catch (err) {
      this.log.warn("the node's report will not be removed with the node", {
        node: this.opts.node,
        error: errorMessage(err),
      });
      return undefined;
    }
  }

  /** Applies the node's report when it changed (server-side apply, the agent's own field manager). */
  private async report(checks: Partial<Record<AgentCheckKind, readonly CheckResult[]>>): Promise<void> {
    const cm = agentReportConfigMap(this.opts.node, [...this.reports.values()], checks, this.nodeUid);
    const text = JSON.stringify(cm);
    if (text === this.lastReport) return;
    await this.client.applyReport(cm);
    this.lastReport = text;
  }
}
