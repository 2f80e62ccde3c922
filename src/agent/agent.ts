import type { V1ConfigMap } from "@kubernetes/client-node";
import { relative } from "node:path";
import type { KubeConfig, KubernetesObject } from "@kubernetes/client-node";
import { AgentClient } from "../cluster/agentclient.js";
import { errorMessage } from "../cluster/client.js";
import { AUDIT_POLICY_KEY } from "../desired/auditpolicy.js";
import { ENCRYPTION_CONFIG_KEY, retiredFromAnnotations } from "../desired/encryption/secret.js";
import { OPERATOR_NAMESPACE, POLICY_LABEL } from "../desired/metadata.js";
import {
  agentReportConfigMap,
  agentReportName,
  contentHash,
  INTEGRITY_KEY,
  type IntegrityReport,
  fileReports,
  redactKeyMaterial,
  type AgentCheckKind,
  type AgentFile,
  type FileReport,
} from "../evidence/agentreports.js";
import type { Logger } from "../observability/logger.js";
import { Controller } from "../runtime/controller.js";
import { fileState, readDelivered, removeStaleTemps, writeFileAtomic } from "./files.js";
import { hostChecks } from "./hostchecks.js";
import { NodeHygiene } from "./hygiene.js";
import { IntegrityMonitor } from "./integrity.js";
import { decryptionKeys, overwriteRefusal, type Retired } from "./keyguard.js";
import type { CheckResult } from "../cis/checks/check.js";

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
   * and ownership checks there and reports the results (the controlPlane area turns them into findings),
   * and monitors the integrity of the critical control-plane files (src/agent/integrity.ts).
   */
  hostRoot?: string;
  /** Paths (on the host) the integrity monitor watches; default CRITICAL_PATHS. For tests. */
  integrityPaths?: readonly string[];
  /**
   * Called once, after the report saying so is written, when a single-file mount (the kubelet's
   * config.yaml, kubeadm-flags.env) shows a file the host replaced by a rename: only a new container sees
   * the host's file, so `csp-operator agent` exits and the kubelet starts it again with fresh mounts.
   */
  onStaleMount?: (paths: readonly string[]) => void;
  /** How long stop() waits for a sync in flight; default 10 s. */
  stopTimeoutMs?: number;
  /** /readyz fails when no sync completed for this long; default max(3 resyncs, 3 minutes). */
  staleAfterMs?: number;
}

interface Source {
  file: AgentFile;
  path: string;
  ref: string;
  content: string;
  /** What the operator declared no stored object needs any more (encryption config only). */
  retired?: Retired;
}

/** /healthz fails when one sync has been running this long (a host read that hangs): 10 minutes. */
export const SYNC_STUCK_MS = 10 * 60_000;

/**
 * Why a file could not be written, in one line naming the target path and the errno (`ENOSPC`, `EROFS`...):
 * never the temp file's random name, never content.
 */
export function writeError(path: string, err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  const code = typeof e?.code === "string" ? e.code : undefined;
  const msg = errorMessage(err)
    .replace(/,\s*\w+(\s+'[^']*'(\s*->\s*'[^']*')?)?$/, "") // node's ", open '<path>'" suffix
    .replace(/^[A-Z][A-Z0-9_]+:\s*/, "");
  return `cannot write ${path}: ${code ? `${code} (${msg})` : msg}`;
}

/**
 * `csp-operator agent`: runs on each control-plane node, copies the rendered audit Policy (ConfigMap)
 * and EncryptionConfiguration (Secret) from csp-system to the host paths kube-apiserver reads, and
 * reports what it wrote (path, hash, time, node — never content) in ConfigMap csp-system/csp-agent-<node>,
 * which the operator folds into the policy's status. It never deletes a file: a key the API server may
 * still need to read stored objects must not vanish because a Secret did. With a host root it also runs
 * the CIS file checks there and monitors the integrity of the critical files (src/agent/integrity.ts).
 */
export class Agent {
  private readonly client: AgentClient;
  private readonly reports = new Map<AgentFile, FileReport>();
  private lastReport = "";
  /**
   * The sync loop: runtime/Controller with one worker and one key (this node), so the agent gets what the
   * operator's loop has: events collapse, an event during a sync runs one more after it, a failed sync is
   * retried with exponential backoff (0.5 s doubling to 60 s) that no event cuts short, and every key is
   * resynced each `resyncMs` (the floor when a watch or inotify misses something).
   */
  private readonly controller: Controller;
  private readonly key: string;
  private idleWaiters: (() => void)[] = [];
  private stopped = false;
  /**
   * False until start() has read back what this node's agent reported before (its files, its integrity
   * baseline): the watches fire while the caches fill, and a sync before that would take a new baseline.
   */
  private ready = false;
  private nodeUid: string | undefined;
  private uidWarned = false;
  private readonly integrity: IntegrityMonitor | undefined;
  private noteLogged = false;
  private integrityErrors = "";
  private readonly hygiene: NodeHygiene | undefined;
  private staleReported = false;
  private stayLogged = false;
  /** When the last sync completed (files delivered or reported, report applied); undefined before one. */
  private lastSyncAt: number | undefined;
  private lastSyncError: string | undefined;
  private syncStartedAt: number | undefined;

  constructor(
    kc: KubeConfig,
    private readonly opts: AgentOptions,
    private readonly log: Logger,
  ) {
    this.client = new AgentClient(kc, log, () => this.kick());
    this.key = `node/${opts.node}`;
    this.controller = new Controller(
      () => this.syncOnce(),
      () => (this.ready && !this.stopped ? [this.key] : []),
      { workers: 1, resyncMs: opts.resyncMs ?? 60_000 },
      log,
    );
    if (opts.hostRoot !== undefined)
      this.integrity = new IntegrityMonitor(opts.hostRoot, () => this.kick(), opts.integrityPaths);
    if (opts.hostRoot !== undefined) this.hygiene = new NodeHygiene(opts.hostRoot);
  }

  /** Resolves true once started; false when stop() came first (the watches never synced). */
  async start(): Promise<boolean> {
    this.stopped = false;
    this.ready = false;
    // Temp files a killed write left behind (they may hold key material): nothing else writes them.
    for (const path of [this.opts.auditPolicyPath, this.opts.encryptionConfigPath])
      if (path) {
        const removed = await removeStaleTemps(path);
        if (removed.length > 0)
          this.log.info("removed temp files a killed write left", { path, removed: removed.length });
      }
    // False when stop() came first (SIGTERM while the API server is unreachable): nothing to start.
    if (!(await this.client.start()) || this.stopped) return false;
    this.nodeUid = await this.readNodeUid();
    // What this node's agent wrote before a restart: a file with that hash is its own, not a foreign one.
    for (const r of fileReports(this.client.configMapList()))
      if (r.node === this.opts.node && !r.error && !this.reports.has(r.file)) this.reports.set(r.file, r);
    // The integrity baseline survives a restart: it is read back from this node's last report.
    const own = this.client
      .configMapList()
      .find((cm) => cm.metadata?.name === agentReportName(this.opts.node));
    this.integrity?.restore(own?.data?.[INTEGRITY_KEY]);
    if (this.stopped) return false; // stop() came while this read: no timer may outlive it
    this.ready = true;
    this.controller.start();
    this.kick();
    return true;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.integrity?.close();
    await this.client.stop();
    // Lets a sync in flight finish, but not forever (a host read that hangs must not keep SIGTERM waiting).
    let timer: NodeJS.Timeout | undefined;
    const limit = this.opts.stopTimeoutMs ?? 10_000;
    const timedOut = await Promise.race([
      this.controller.stop().then(() => false),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), limit))),
    ]);
    clearTimeout(timer);
    if (timedOut)
      this.log.warn("stopping without waiting for the sync in flight", { waitedSeconds: limit / 1000 });
    this.wake();
  }

  /**
   * Why the agent is not ready (the /readyz body), or undefined: it has not read its watches yet, no sync
   * has completed yet, or none for {@link AgentOptions.staleAfterMs} (its report is out of date: the API
   * server refuses it, the host cannot be read...), with the last error.
   */
  notReadyReason(now = Date.now()): string | undefined {
    if (!this.ready) return "the watches of csp-system have not synced yet";
    const last = this.lastSyncError ? ` (last error: ${this.lastSyncError})` : "";
    if (this.lastSyncAt === undefined) return `no sync has completed yet${last}`;
    const limit = this.opts.staleAfterMs ?? Math.max(3 * (this.opts.resyncMs ?? 60_000), 180_000);
    const age = now - this.lastSyncAt;
    if (age > limit)
      return `no sync has completed for ${Math.round(age / 1000)} s (limit ${Math.round(limit / 1000)} s)${last}`;
    return undefined;
  }

  /**
   * Resolves once every change seen so far is on disk and reported: no sync queued or running (a failed
   * one waiting out its retry delay counts as done).
   */
  async idle(): Promise<void> {
    const q = this.controller.queue;
    while (!this.stopped && (q.length > 0 || q.inFlight > 0)) {
      await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
      // The controller marks the key done (and queues it again if an event came) after the sync resolved.
      await new Promise((resolve) => setImmediate(resolve));
    }
  }

  private wake(): void {
    for (const w of this.idleWaiters.splice(0)) w();
  }

  /** A change (a watch event, inotify, the resync): one sync runs, or one more after the running one. */
  private kick(): void {
    if (this.stopped || !this.ready) return;
    this.controller.queue.add(this.key);
  }

  /** How long the sync in flight has been running (ms), or undefined when none is. */
  syncRunningFor(now = Date.now()): number | undefined {
    return this.syncStartedAt === undefined ? undefined : now - this.syncStartedAt;
  }

  /** Why the agent is not live (the /healthz check): one sync has run for more than {@link SYNC_STUCK_MS}. */
  stuckReason(now = Date.now()): string | undefined {
    const ms = this.syncRunningFor(now);
    return ms !== undefined && ms > SYNC_STUCK_MS
      ? `a sync has been running for ${Math.round(ms / 1000)} s (limit ${SYNC_STUCK_MS / 1000} s)`
      : undefined;
  }

  /** One sync, as the controller's reconcile; its error (redacted: never key material) makes it retry. */
  private async syncOnce(): Promise<void> {
    this.syncStartedAt = Date.now();
    try {
      await this.sync();
      this.lastSyncAt = Date.now();
      this.lastSyncError = undefined;
    } catch (err) {
      this.lastSyncError = redactKeyMaterial(errorMessage(err));
      throw new Error(`agent sync failed: ${this.lastSyncError}`, { cause: err });
    } finally {
      this.syncStartedAt = undefined;
      this.wake();
    }
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
      retired: retiredFromAnnotations(o.metadata?.annotations),
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
      try {
        await this.deliver(s);
      } catch (err) {
        // A write that fails (EROFS, ENOSPC, EACCES...) is reported like a refused one: the node's report
        // names the path and the errno, what is on disk stays, and the next sync tries again.
        const on = await fileState(s.path).catch(() => undefined);
        this.reports.set(
          s.file,
          this.notWritten(s.file, s.path, "ref" in s ? s.ref : "", on, writeError(s.path, err)),
        );
      }
    }
    let checks: Partial<Record<AgentCheckKind, readonly CheckResult[]>> = {};
    if (this.opts.hostRoot !== undefined) {
      const host = await hostChecks(this.opts.hostRoot);
      this.integrity?.setNamedFiles(host.namedFiles ?? []);
      if (host.problem)
        this.log.warn("kube-apiserver manifest not checked", { problem: redactKeyMaterial(host.problem) });
      checks = host.checks;
    }
    await this.report(checks, await this.scanIntegrity());
    this.restartIfStale();
  }

  /** Once the report names them: a stale single-file mount needs a new container (see onStaleMount). */
  private restartIfStale(): void {
    const stale = this.integrity?.staleMounts() ?? [];
    if (stale.length === 0 || this.staleReported) return;
    if (this.integrity?.remountDecision() === "stay") {
      if (this.stayLogged) return;
      this.stayLogged = true;
      // Renames in a loop (content-neutral or not) must not keep the agent restarting: it stays up and the
      // report names the stale mount (an unreadable file: a change); the monitor allows a restart again an
      // hour after the oldest of the recent ones (or the Pod is restarted by hand).
      this.log.error(
        "a single-file mount shows a file the host replaced, again: the agent restarted for it too often " +
          "within the hour and stays up; restart its Pod to see the host's file",
        { paths: stale.join(", ") },
      );
      return;
    }
    this.staleReported = true;
    this.log.error("a single-file mount shows a file the host replaced: the container must restart", {
      paths: stale.join(", "),
    });
    this.opts.onStaleMount?.(stale);
  }

  /** Puts one rendered file on disk (unless refused) and records what the node's report says about it. */
  private async deliver(s: Source | { error: string; file: AgentFile; path: string }): Promise<void> {
    if ("error" in s) {
      this.reports.set(s.file, this.notWritten(s.file, s.path, "", await fileState(s.path), s.error));
      return;
    }
    const want = contentHash(s.content);
    const on = await fileState(s.path);
    const refusal = on && on.sha256 !== want ? await this.refuseOverwrite(s, on) : undefined;
    if (refusal) {
      const report = this.notWritten(s.file, s.path, s.ref, on, refusal);
      const keys = await this.keysOnDisk(s.file, s.path);
      this.reports.set(s.file, keys ? { ...report, keys } : report);
      return;
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
    const keys = s.file === "encryption-config" ? [...decryptionKeys(s.content)].sort() : undefined;
    this.reports.set(s.file, {
      file: s.file,
      source: s.ref,
      path: s.path,
      sha256: want,
      writtenAt: writtenAt.toISOString(),
      node: this.opts.node,
      ...(keys ? { keys } : {}),
    });
  }

  /**
   * Scans the critical files; the files this agent wrote from the operator's rendered objects (at the hash
   * it wrote) move the baseline. New changes are logged (path, hashes, modes: never content).
   */
  private async scanIntegrity(): Promise<IntegrityReport | undefined> {
    if (!this.integrity || this.opts.hostRoot === undefined) return undefined;
    const own = new Map<string, string>();
    // Only the paths this agent is configured to write: a files.json entry read back from a report (which
    // whoever can patch the report could forge) never names another file to accept.
    const configured: Record<AgentFile, string | undefined> = {
      "audit-policy": this.opts.auditPolicyPath,
      "encryption-config": this.opts.encryptionConfigPath,
    };
    for (const r of this.reports.values()) {
      if (configured[r.file] === undefined || configured[r.file] !== r.path) continue;
      const rel = relative(this.opts.hostRoot, r.path);
      if (!r.error && r.sha256 && !rel.startsWith("..")) own.set(`/${rel}`, r.sha256);
    }
    const now = new Date();
    const report = await this.integrity.scan(own, now);
    const errors = this.integrity.errors().join(", ");
    if (errors !== this.integrityErrors && errors)
      this.log.warn("critical files not readable (reported as absent)", { files: errors });
    this.integrityErrors = errors;
    if (report.note && !this.noteLogged)
      this.log.warn("file integrity baseline retaken", { note: report.note });
    this.noteLogged = report.note !== undefined;
    for (const c of report.changes)
      if (c.seenAt === now.toISOString())
        this.log.warn("critical file changed", {
          path: c.path,
          oldSha256: c.old?.sha256 ?? "absent",
          newSha256: c.new?.sha256 ?? "absent",
          oldMode: c.old?.mode ?? "",
          newMode: c.new?.mode ?? "",
        });
    return report;
  }

  /**
   * An EncryptionConfiguration on disk is replaced only if, for every resource, whatever could decrypt its
   * stored objects before still can afterwards, except what the operator declared retired after rewriting
   * them. This holds for files this agent wrote itself too: a key ring started afresh (its Secret deleted)
   * or a resource dropped from the policy would otherwise make stored objects unreadable. Returns why not.
   */
  private async refuseOverwrite(s: Source, on: { notRegular?: string }): Promise<string | undefined> {
    if (s.file !== "encryption-config") return undefined;
    // Never read through (a FIFO would block, a symlink leads elsewhere): its keys cannot be checked.
    if (on.notRegular)
      return (
        `not overwriting ${s.path}: it ${on.notRegular} (ENOTREG), so the keys it holds cannot be checked; ` +
        `move it aside once no stored object needs its keys`
      );
    let existing: string;
    try {
      existing = (await readDelivered(s.path)).toString("utf8");
    } catch (err) {
      return `cannot read the existing file to check its keys: ${redactKeyMaterial(errorMessage(err))}`;
    }
    return overwriteRefusal(s.path, existing, s.content, s.retired);
  }

  /** `<provider>/<name>` of the keys in the EncryptionConfiguration at `path` (names only, never secrets). */
  private async keysOnDisk(file: AgentFile, path: string): Promise<string[] | undefined> {
    if (file !== "encryption-config") return undefined;
    try {
      return [...decryptionKeys((await readDelivered(path)).toString("utf8"))].sort();
    } catch {
      return undefined;
    }
  }

  /** A report of a file not written: what is on disk (if anything) stays, with the reason. */
  private notWritten(
    file: AgentFile,
    path: string,
    source: string,
    on: { sha256: string; mtime: Date } | undefined,
    error: string,
  ): FileReport {
    const safe = redactKeyMaterial(error);
    this.log.warn("file not written", { file, path, error: safe });
    return {
      file,
      source,
      path,
      sha256: on?.sha256 ?? "",
      writtenAt: (on?.mtime ?? new Date(0)).toISOString(),
      node: this.opts.node,
      error: safe,
    };
  }

  /**
   * The uid of this agent's Node, which owns its report; undefined (with a warning, once until it can be
   * read again) when it cannot be read.
   */
  private async readNodeUid(): Promise<string | undefined> {
    try {
      const uid = await this.client.nodeUid(this.opts.node);
      this.uidWarned = false;
      return uid;
    } catch (err) {
      if (!this.uidWarned)
        this.log.warn("the node's report will not be removed with the node", {
          node: this.opts.node,
          error: errorMessage(err),
        });
      this.uidWarned = true;
      return undefined;
    }
  }

  /** Applies the node's report when it changed (server-side apply, the agent's own field manager). */
  private async report(
    checks: Partial<Record<AgentCheckKind, readonly CheckResult[]>>,
    integrity: IntegrityReport | undefined,
  ): Promise<void> {
    const present = this.reportPresent();
    if (!present && this.lastReport !== "") {
      // Deleted since the last write: by hand, or by the garbage collector because the Node re-registered
      // under a new uid (the ownerReference named the old one). Read the uid again and write it back.
      this.log.warn("the node's report is gone; writing it again", { node: this.opts.node });
      this.nodeUid = await this.readNodeUid();
    } else if (this.nodeUid === undefined) {
      // Written without an owner (the Node could not be read, or was re-registering): try again, so the
      // report is owned by the Node as soon as it can be.
      this.nodeUid = await this.readNodeUid();
    }
    const cm = agentReportConfigMap(
      this.opts.node,
      [...this.reports.values()],
      checks,
      this.nodeUid,
      integrity,
      await this.hygiene?.collect(),
    );
    if (JSON.stringify(cm) === this.lastReport && present) return;
    return this.applyReportText(cm);
  }

  private async applyReportText(cm: V1ConfigMap): Promise<void> {
    const text = JSON.stringify(cm);
    await this.client.applyReport(cm);
    this.lastReport = text;
  }

  /** Whether the agent's watch still sees its report (true when the cache cannot tell). */
  private reportPresent(): boolean {
    try {
      const name = agentReportName(this.opts.node);
      return this.client.configMapList().some((c) => c.metadata?.name === name);
    } catch {
      return true;
    }
  }
}
