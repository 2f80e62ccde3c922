/**
 * File integrity monitoring on a control-plane node: a baseline of the critical files under the host root
 * (static Pod manifests, kubeconfigs, PKI certificates and keys, kubelet config and unit files, the
 * EncryptionConfiguration and audit policy) — sha256, mode, owner, size, mtime, never contents — and the
 * changes of the files on disk against it. The baseline lives in the node's report ConfigMap
 * (`integrity.json`) and is read back when the agent starts, so a restart neither forgets a change nor
 * accepts one made while the agent was down.
 *
 * Symlinks are never followed: a symlink is recorded as one (its target's hash), so a file replaced by a
 * symlink is a change; a start path whose parent directory is a symlink is treated as absent.
 */
import { createHash } from "node:crypto";
import { constants, watch, type Dirent, type FSWatcher } from "node:fs";
import { lstat, open, opendir, readlink, realpath } from "node:fs/promises";
import { join, posix } from "node:path";
import {
  INTEGRITY_HEARTBEAT_MS,
  INTEGRITY_REPORT_VERSION,
  MAX_REMOUNT_RECORDS,
  parseIntegrityReport,
  type IntegrityChange,
  type IntegrityEntry,
  type IntegrityReport,
} from "../evidence/agentreports.js";

/**
 * What the agent watches, as paths on the host. Directories are walked (without following symlinks);
 * a path that does not exist is watched for appearing. /etc/kubernetes holds the static Pod manifests, the
 * kubeconfigs, the PKI, and the files the operator delivers (csp-operator/); the kubelet's config and its
 * systemd unit and drop-ins in the three usual unit directories. These are the paths the DaemonSet mounts.
 */
export const CRITICAL_PATHS: readonly string[] = [
  "/etc/kubernetes",
  "/var/lib/kubelet/config.yaml",
  // kubeadm's flags for the kubelet (KUBELET_KUBEADM_ARGS in its systemd drop-in): --node-ip, the
  // container runtime endpoint, and whatever `kubeadm upgrade` or a hand edit puts there.
  "/var/lib/kubelet/kubeadm-flags.env",
  // The kubelet's EnvironmentFile= (kubeadm's drop-in reads KUBELET_EXTRA_ARGS from one of these).
  "/etc/default/kubelet",
  "/etc/sysconfig/kubelet",
  "/etc/systemd/system/kubelet.service",
  "/etc/systemd/system/kubelet.service.d",
  "/usr/lib/systemd/system/kubelet.service",
  "/usr/lib/systemd/system/kubelet.service.d",
  "/lib/systemd/system/kubelet.service",
  "/lib/systemd/system/kubelet.service.d",
];

/** The most files in one baseline: keeps the report far below the ConfigMap size limit (~250 bytes each). */
export const MAX_INTEGRITY_FILES = 1000;

/** The most changes listed in one report (the rest are counted): keeps integrity.json under 512 KiB. */
export const MAX_REPORTED_CHANGES = 200;

/**
 * Byte budgets that keep integrity.json under the admission policy's 512 KiB whatever the path lengths:
 * the baseline stops growing (truncated) past {@link BASELINE_BUDGET}, the listed changes past
 * {@link CHANGES_BUDGET} (the rest counted). An entry costs its path plus at most ~220 bytes of JSON.
 */
export const BASELINE_BUDGET = 360_000;
export const CHANGES_BUDGET = 120_000;
const ENTRY_BYTES = 220;
/**
 * The most bytes integrity.json may have: the admission policy allows 524,288 characters; the report is cut
 * (listed changes first, counted in omittedChanges; then baseline entries, marked truncated) to fit below.
 */
export const MAX_INTEGRITY_JSON = 500_000;

/** What a path costs in the report: its JSON form (a control character is escaped as 6 bytes), in bytes. */
export function jsonBytes(s: string): number {
  return Buffer.byteLength(JSON.stringify(s));
}

/**
 * A file's state as the baseline compares it; mtime and size are informative (the hash decides). A
 * missing hard-link count is 1 (a baseline taken before counts were recorded gets them on the first scan
 * after restore, see IntegrityMonitor.scan; what was not the same then keeps none, and a link is a change).
 */
export function sameState(a: IntegrityEntry | undefined, b: IntegrityEntry | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return sameIgnoringLinks(a, b) && (a.nlink ?? 1) === (b.nlink ?? 1);
}

function sameIgnoringLinks(a: IntegrityEntry, b: IntegrityEntry): boolean {
  return (
    a.type === b.type && a.sha256 === b.sha256 && a.mode === b.mode && a.uid === b.uid && a.gid === b.gid
  );
}

/**
 * The content hash of an open regular file, or for one over {@link MAX_HASHED_BYTES} (a huge sparse file
 * would stall every scan) a hash of `too-large:<size>/<inode>/<ctime>` without reading it: any write to it
 * moves its ctime, so a change is still a change.
 */
async function hashContent(
  fh: Awaited<ReturnType<typeof open>>,
  st: { size: number; ino: number; ctimeMs: number },
): Promise<string> {
  const h = createHash("sha256");
  if (st.size > MAX_HASHED_BYTES) return hashOf(h.update(`too-large:${st.size}/${st.ino}/${st.ctimeMs}`));
  const buf = Buffer.alloc(256 * 1024);
  let total = 0;
  for (;;) {
    const { bytesRead } = await fh.read(buf, 0, buf.length, null);
    if (bytesRead === 0) break;
    h.update(buf.subarray(0, bytesRead));
    total += bytesRead;
    // Grown while being read: stop at the cap; its new ctime makes the next scan read it again.
    if (total > MAX_HASHED_BYTES) break;
  }
  return hashOf(h);
}

/** `sha256:<hex>`: the form of every hash the agent reports. */
function hashOf(h: ReturnType<typeof createHash>): string {
  return `sha256:${h.digest("hex")}`;
}

function octal(mode: number): string {
  return `0${(mode & 0o7777).toString(8).padStart(3, "0")}`;
}

interface Cached {
  key: string;
  entry: IntegrityEntry;
}

/** The result of one scan of the host: every critical file's state, and whether the cap was hit. */
export interface Scan {
  files: Map<string, IntegrityEntry>;
  /** Directories seen (host paths), to watch. */
  dirs: string[];
  /** `dev:ino` of every path seen: a watch is set again when the directory at its path is another one. */
  ids: Map<string, string>;
  truncated: boolean;
  /** Files that could not be read, with why (never content). */
  errors: string[];
  /**
   * Single-file mounts showing a file the host replaced by a rename (the mount still holds the old, deleted
   * inode): only a new mount (the agent's container restarted) shows the file the host has now.
   */
  stale: string[];
}

/**
 * Reads the state of the critical files under `hostRoot`. A regular file is opened with O_NOFOLLOW and
 * O_NONBLOCK (a FIFO cannot block the scan), its type, mode and owner taken from the open descriptor, and
 * the descriptor's real path checked to lie where it was expected (a directory swapped for a symlink during
 * the walk is not read through). Hashes are reused while (inode, size, mtime, ctime) are unchanged: ctime
 * cannot be set back by a chmod/write without changing the clock.
 */
export class HostScanner {
  private readonly cache = new Map<string, Cached>();
  /** Paths the last scan could not read or list, with the errno (never content). */
  lastErrors: readonly string[] = [];
  /** Single-file mounts the last scan found stale (see {@link Scan.stale}). */
  lastStale: readonly string[] = [];
  private realRoot: Promise<string | undefined> | undefined;

  constructor(
    private readonly hostRoot: string,
    private readonly paths: readonly string[] = CRITICAL_PATHS,
    private readonly maxFiles = MAX_INTEGRITY_FILES,
  ) {}

  async scan(): Promise<Scan> {
    const out: Scan = {
      files: new Map(),
      dirs: [],
      ids: new Map(),
      truncated: false,
      errors: [],
      stale: [],
    };
    this.lastErrors = out.errors;
    this.lastStale = out.stale;
    const seen = new Set<string>();
    let bytes = 0;
    const full = (p: string) => {
      const cost = jsonBytes(p) + ENTRY_BYTES;
      if (out.files.size >= this.maxFiles || bytes + cost > BASELINE_BUDGET) {
        out.truncated = true;
        return true;
      }
      bytes += cost;
      return false;
    };
    for (const start of this.paths) {
      if (!(await this.parentsAreDirectories(start))) continue;
      const queue = [posix.normalize(start)];
      while (queue.length > 0) {
        const p = queue.shift()!;
        let st;
        try {
          st = await lstat(join(this.hostRoot, p));
        } catch (e) {
          const code = (e as NodeJS.ErrnoException).code;
          if (code !== "ENOENT" && code !== "ENOTDIR") out.errors.push(`${p}: ${code ?? "cannot be read"}`);
          continue;
        }
        out.ids.set(p, `${st.dev}:${st.ino}`);
        if (st.isDirectory()) {
          out.dirs.push(p);
          if (full(p)) break;
          // Its mode and owner: a manifests directory anyone may write to is a way to run a static Pod.
          out.files.set(p, {
            type: "directory",
            sha256: "",
            mode: octal(Number(st.mode)),
            uid: Number(st.uid),
            gid: Number(st.gid),
            size: 0,
            mtime: st.mtime.toISOString(),
          });
          try {
            const dir = await opendir(join(this.hostRoot, p));
            const names: string[] = [];
            for await (const e of dir as AsyncIterable<Dirent>) names.push(e.name);
            queue.push(...names.sort().map((n) => posix.join(p, n)));
          } catch (e) {
            out.errors.push(`${p}: ${(e as NodeJS.ErrnoException).code ?? "cannot be listed"}`);
            // What it holds is unknown (a new static Pod manifest could be in it): never "unchanged".
            out.files.set(p, { ...out.files.get(p)!, type: "unreadable" });
          }
          continue;
        }
        if (seen.has(p)) continue;
        if (full(p)) break;
        seen.add(p);
        try {
          const entry = await this.entry(p, st);
          if (entry) out.files.set(p, entry);
        } catch (e) {
          out.errors.push(`${p}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
          if ((e as { staleMount?: boolean }).staleMount) out.stale.push(p);
          // It exists but its content cannot be read (EACCES, EXDEV...): recorded from lstat with no hash, so
          // a file made unreadable is a change, never "absent", and a new unreadable file is an added one.
          out.files.set(p, {
            type: "unreadable",
            sha256: "",
            mode: octal(Number(st.mode)),
            uid: Number(st.uid),
            gid: Number(st.gid),
            size: Number(st.size),
            mtime: st.mtime.toISOString(),
          });
        }
      }
    }
    for (const p of this.cache.keys()) if (!out.files.has(p)) this.cache.delete(p);
    return out;
  }

  /** True when every directory above `start` (inside the host root) is a directory, not a symlink. */
  private async parentsAreDirectories(start: string): Promise<boolean> {
    let p = posix.dirname(posix.normalize(start));
    while (p !== "/") {
      try {
        if (!(await lstat(join(this.hostRoot, p))).isDirectory()) return false;
      } catch {
        return false;
      }
      p = posix.dirname(p);
    }
    return true;
  }

  private async entry(p: string, st: Awaited<ReturnType<typeof lstat>>): Promise<IntegrityEntry | undefined> {
    const base = {
      mode: octal(Number(st.mode)),
      uid: Number(st.uid),
      gid: Number(st.gid),
      size: Number(st.size),
      mtime: st.mtime.toISOString(),
    };
    if (st.isSymbolicLink()) {
      const target = await readlink(join(this.hostRoot, p));
      // The target's content counts too (resolved inside the host root, never the agent's own files): a
      // rewrite of /opt/certs/ca.crt behind pki/ca.crt -> /opt/certs/ca.crt is a change of pki/ca.crt.
      const content = await this.targetHash(p, target);
      const h = createHash("sha256").update(`symlink:${target}`);
      if (content !== undefined) h.update(`\0${content}`);
      return { type: "symlink", sha256: hashOf(h), ...base };
    }
    if (!st.isFile()) return { type: "other", sha256: "", ...base };
    const key = `${st.ino}/${st.size}/${st.mtimeMs}/${st.ctimeMs}/${st.mode}/${st.uid}/${st.gid}/${st.nlink}`;
    const cached = this.cache.get(p);
    if (cached && cached.key === key) return cached.entry;
    const fh = await open(
      join(this.hostRoot, p),
      constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK | constants.O_NOCTTY,
    );
    try {
      const fst = await fh.stat();
      if (!fst.isFile()) return undefined; // swapped between lstat and open: the next scan sees what it is
      // A file mounted on its own (the kubelet config) that the host replaced by a rename (sed -i, an
      // editor) is the old, deleted inode here: what the host runs is not what is seen. Unreadable, so it
      // is reported (never "unchanged"); restarting the agent's Pod mounts the new file.
      if (fst.nlink === 0) {
        // The path still names that very inode, with no link left: a mount of a deleted file (a file
        // deleted while being opened is gone from the path, or another file is there: seen next scan).
        const again = await lstat(join(this.hostRoot, p)).catch(() => undefined);
        if (!again || again.ino !== fst.ino || again.dev !== fst.dev || Number(again.nlink) !== 0)
          return undefined;
        throw Object.assign(new Error("replaced on the host"), {
          code: "ESTALE (replaced on the host; this single-file mount shows the deleted file: restart the agent's Pod)",
          staleMount: true,
        });
      }
      await this.verifyInside(fh.fd, p);
      const entry: IntegrityEntry = {
        type: "file",
        sha256: await hashContent(fh, fst),
        mode: octal(fst.mode),
        uid: fst.uid,
        gid: fst.gid,
        size: fst.size,
        mtime: fst.mtime.toISOString(),
        nlink: fst.nlink,
      };
      this.cache.set(p, {
        key: `${fst.ino}/${fst.size}/${fst.mtimeMs}/${fst.ctimeMs}/${fst.mode}/${fst.uid}/${fst.gid}/${fst.nlink}`,
        entry,
      });
      return entry;
    } finally {
      await fh.close();
    }
  }

  /**
   * The content hash of what the symlink at `p` points to, following at most 8 links, each resolved inside
   * the host root; undefined when it does not resolve to a regular file there (dangling, a directory, or
   * outside what the agent can see).
   */
  private async targetHash(p: string, target: string): Promise<string | undefined> {
    let cur = posix.resolve(posix.dirname(p), target);
    for (let hop = 0; hop < 8; hop++) {
      let st;
      try {
        st = await lstat(join(this.hostRoot, cur));
      } catch {
        return undefined;
      }
      if (st.isSymbolicLink()) {
        const next = await readlink(join(this.hostRoot, cur)).catch(() => undefined);
        if (next === undefined) return undefined;
        cur = posix.resolve(posix.dirname(cur), next);
        continue;
      }
      if (!st.isFile()) return undefined;
      try {
        const fh = await open(
          join(this.hostRoot, cur),
          constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK | constants.O_NOCTTY,
        );
        try {
          const tst = await fh.stat();
          if (!tst.isFile()) return undefined;
          await this.verifyInside(fh.fd, cur);
          return await hashContent(fh, tst);
        } finally {
          await fh.close();
        }
      } catch {
        return undefined;
      }
    }
    return undefined;
  }

  /** The open descriptor must be the file at `p` under the root; skipped where /proc is not mounted. */
  private async verifyInside(fd: number, p: string): Promise<void> {
    this.realRoot ??= realpath(this.hostRoot).catch(() => undefined);
    const root = await this.realRoot;
    const actual = await readlink(`/proc/self/fd/${fd}`).catch(() => undefined);
    if (root === undefined || actual === undefined) return;
    if (actual !== join(root, p)) throw new Error(`EXDEV (opened ${p} somewhere else)`);
  }
}

/** The baseline and what changed against it. */
export interface IntegrityState {
  baselineAt: string;
  baseline: Map<string, IntegrityEntry>;
  /** Why the baseline was (re)taken when that is news: a stored baseline that could not be read back. */
  note?: string;
  changes: IntegrityChange[];
  truncated: boolean;
}

/**
 * The changes of `current` against `baseline`, sorted by path; a change already known keeps the time it was
 * first seen. Only type, content, mode and owner count: a file deleted and recreated with the same content
 * and mode is no change; a touch (mtime only) is none either.
 */
export function diffAgainstBaseline(
  baseline: ReadonlyMap<string, IntegrityEntry>,
  current: ReadonlyMap<string, IntegrityEntry>,
  previous: readonly IntegrityChange[],
  now: Date,
): IntegrityChange[] {
  const known = new Map(previous.map((c) => [c.path, c]));
  const out: IntegrityChange[] = [];
  for (const path of [...new Set([...baseline.keys(), ...current.keys()])].sort()) {
    const old = baseline.get(path);
    const cur = current.get(path);
    // An unreadable file's content is unknown: it is a change even when the baseline says unreadable too.
    if (sameState(old, cur) && cur?.type !== "unreadable") continue;
    const before = known.get(path);
    const seenAt = before && sameState(before.new, cur) ? before.seenAt : now.toISOString();
    out.push({ path, ...(old ? { old } : {}), ...(cur ? { new: cur } : {}), seenAt });
  }
  return out;
}

/**
 * The largest file whose content the scan hashes: 16 MiB. A larger one is recorded by a hash of
 * `too-large:<size>/<inode>/<ctime>`, so a change is still a change without reading it.
 */
export const MAX_HASHED_BYTES = 16 * 1024 * 1024;

/** Restarts for stale single-file mounts allowed within an hour; past them the agent stays up and reports. */
export const MAX_REMOUNTS_PER_HOUR = 3;

/**
 * The agent's file integrity monitor: restores its baseline from the last report, scans, compares and
 * watches. `ownWrites` (host path -> hash) are the files the agent itself wrote from what the operator
 * rendered: such a file at exactly that hash, a regular file of mode 0600 owned by root or by the agent's
 * own uid:gid, moves the baseline instead of being a change (the operator's own writes are accepted because
 * it knows their hashes). A chown of such a file is a change like any other.
 */
export class IntegrityMonitor {
  private readonly scanner: HostScanner;
  private state: IntegrityState | undefined;
  private restored: { report?: IntegrityReport; problem?: string } = {};
  private readonly watchers = new Map<string, { watcher: FSWatcher; id: string | undefined }>();
  private debounce: NodeJS.Timeout | undefined;
  /** The last report's scannedAt and its content without it: scannedAt moves on a change or a heartbeat. */
  private published: { at: string; body: string } | undefined;
  private readonly owner = { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };
  private unmonitored: string[] = [];
  /** Restarts made for stale single-file mounts (restored from the last report, the last few kept). */
  private remounts: { at: string; paths: string[] }[] = [];
  private remount: "restart" | "stay" | undefined;

  constructor(
    private readonly hostRoot: string,
    private readonly onEvent: () => void = () => {},
    private readonly paths: readonly string[] = CRITICAL_PATHS,
    maxFiles = MAX_INTEGRITY_FILES,
    private readonly debounceMs = 200,
  ) {
    this.scanner = new HostScanner(hostRoot, paths, maxFiles);
  }

  /**
   * What the node's last report held (`integrity.json`, undefined when there was none). A report that
   * cannot be read back is not trusted: the next scan takes a new baseline and the report says so.
   */
  restore(raw: string | undefined): void {
    if (raw === undefined) {
      this.restored = {};
      return;
    }
    const parsed = parseIntegrityReport(raw);
    this.restored = parsed.ok ? { report: parsed.value } : { problem: parsed.reason };
  }

  /** Owned by root or by the agent's own uid:gid: what the agent's writes create. */
  private owns(e: IntegrityEntry): boolean {
    return (e.uid === 0 && e.gid === 0) || (e.uid === this.owner.uid && e.gid === this.owner.gid);
  }

  /**
   * Files named elsewhere (the kube-apiserver's flags) that the monitor should say it does not watch: those
   * outside every monitored path are listed in the report (at most 50).
   */
  setNamedFiles(paths: readonly string[]): void {
    const roots = this.paths.map((p) => posix.normalize(p));
    this.unmonitored = [...new Set(paths)]
      .filter((p) => !roots.some((r) => p === r || p.startsWith(`${r}/`)))
      .sort()
      .slice(0, 50);
  }

  /** Scans the host and returns the report to publish. */
  async scan(ownWrites: ReadonlyMap<string, string> = new Map(), now = new Date()): Promise<IntegrityReport> {
    const scan = await this.scanner.scan();
    let restoredNow = false;
    if (!this.state) {
      const r = this.restored.report;
      if (r) {
        restoredNow = true;
        this.remounts = r.remounts ?? [];
        this.state = {
          baselineAt: r.baselineAt,
          baseline: new Map(Object.entries(r.baseline)),
          changes: r.changes,
          truncated: scan.truncated,
          ...(r.note !== undefined ? { note: r.note } : {}),
        };
      } else {
        this.state = {
          baselineAt: now.toISOString(),
          baseline: new Map(scan.files),
          changes: [],
          truncated: scan.truncated,
          ...(this.restored.problem !== undefined
            ? {
                note: `the stored baseline could not be read back (${this.restored.problem}); a new baseline was taken at ${now.toISOString()}: changes made before it are not seen`,
              }
            : {}),
        };
      }
    }
    const st = this.state;
    // A baseline taken before link counts were recorded gets them for the files that are otherwise as
    // they were, on the first scan after restore() only: later, a missing count is 1, so a hard link added
    // while the agent runs is a change (never absorbed into the baseline).
    if (restoredNow)
      for (const [path, cur] of scan.files) {
        const was = st.baseline.get(path);
        if (was && was.nlink === undefined && cur.nlink !== undefined && sameIgnoringLinks(was, cur))
          st.baseline.set(path, { ...was, nlink: cur.nlink });
      }
    for (const [path, hash] of ownWrites) {
      const cur = scan.files.get(path);
      // The directory the agent created for it (writeFileAtomic makes it 0700) when it did not exist.
      const dir = posix.dirname(path);
      const created = scan.files.get(dir);
      if (
        !st.baseline.has(dir) &&
        created?.type === "directory" &&
        created.mode === "0700" &&
        this.owns(created)
      )
        st.baseline.set(dir, created);
      // Only a file with no other name: a hard link to a delivered key file (made to copy it out) is a change.
      if (
        cur &&
        this.owns(cur) &&
        cur.type === "file" &&
        cur.sha256 === hash &&
        cur.mode === "0600" &&
        (cur.nlink === undefined || cur.nlink === 1)
      )
        st.baseline.set(path, cur);
    }
    // A stale single-file mount: restart for a fresh one, unless that was done MAX_REMOUNTS_PER_HOUR times
    // within the hour (renames in a loop): then stay up, the mount reported as unreadable (a change), and
    // decide again at the next scan (one restart is allowed again an hour after the oldest).
    if (scan.stale.length > 0 && this.remount !== "restart") {
      const recent = this.remounts.filter((r) => now.getTime() - Date.parse(r.at) < 3_600_000).length;
      this.remount = recent < MAX_REMOUNTS_PER_HOUR ? "restart" : "stay";
      if (this.remount === "restart")
        this.remounts = [...this.remounts, { at: now.toISOString(), paths: [...scan.stale] }].slice(
          -MAX_REMOUNT_RECORDS,
        );
    }
    st.truncated = scan.truncated;
    st.changes = diffAgainstBaseline(st.baseline, scan.files, st.changes, now);
    this.rewatch(scan.dirs, [...scan.files.keys()], scan.ids);
    const { scannedAt: _, ...rest } = this.report();
    const body = JSON.stringify(rest);
    const prev = this.published;
    if (!prev || prev.body !== body || now.getTime() - Date.parse(prev.at) >= INTEGRITY_HEARTBEAT_MS)
      this.published = { at: now.toISOString(), body };
    return this.report();
  }

  /**
   * The current report (after at least one scan). It always fits {@link MAX_INTEGRITY_JSON}, counted on its
   * JSON text: listed changes are dropped first (counted in omittedChanges, which the operator reports),
   * then baseline entries (marked truncated).
   */
  report(): IntegrityReport {
    const st = this.state!;
    const baseline = [...st.baseline].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    let truncated = st.truncated;
    const head = (omitted: number, trunc: boolean, base: [string, IntegrityEntry][]): IntegrityReport => ({
      version: INTEGRITY_REPORT_VERSION,
      baselineAt: st.baselineAt,
      ...(this.published ? { scannedAt: this.published.at } : {}),
      ...(st.note !== undefined ? { note: st.note } : {}),
      ...(this.unmonitored.length > 0 ? { unmonitored: this.unmonitored } : {}),
      ...(this.remounts.length > 0 ? { remounts: this.remounts } : {}),
      ...(trunc ? { truncated: true } : {}),
      ...(omitted > 0 ? { omittedChanges: omitted } : {}),
      baseline: Object.fromEntries(base),
      changes: [],
    });
    // Fixed part: every field but the changes, with the longest omittedChanges it can have.
    let size = Buffer.byteLength(JSON.stringify(head(Number.MAX_SAFE_INTEGER, true, baseline)));
    while (size > MAX_INTEGRITY_JSON && baseline.length > 0) {
      const [p, e] = baseline.pop()!;
      size -= jsonBytes(p) + Buffer.byteLength(JSON.stringify(e)) + 2;
      truncated = true;
    }
    // The cheapest changes are listed first: a flood of long hostile paths cannot crowd out the edit of
    // /etc/kubernetes/manifests/kube-apiserver.yaml made at the same time. The list stays sorted by path.
    const costed = st.changes.map((c) => ({ c, cost: Buffer.byteLength(JSON.stringify(c)) + 1 }));
    const picked = new Set<IntegrityChange>();
    let bytes = 0;
    for (const { c, cost } of [...costed].sort((a, b) => a.cost - b.cost)) {
      bytes += jsonBytes(c.path) + 2 * ENTRY_BYTES;
      if (picked.size >= MAX_REPORTED_CHANGES || bytes > CHANGES_BUDGET || size + cost > MAX_INTEGRITY_JSON)
        break;
      size += cost;
      picked.add(c);
    }
    const listed = st.changes.filter((c) => picked.has(c));
    return { ...head(st.changes.length - listed.length, truncated, baseline), changes: listed };
  }

  /**
   * Watches every directory seen and the start paths' parents (inotify on Linux; one watch per directory,
   * not recursive), so a change is rescanned within `debounceMs`. Where a watch cannot be set (no inotify
   * on the mount, out of watches) the periodic rescan remains the floor.
   */
  private rewatch(dirs: readonly string[], files: readonly string[], ids: ReadonlyMap<string, string>): void {
    const want = new Set(dirs);
    // A single file (the kubelet config is mounted as one) is watched itself.
    for (const f of files) if (!dirs.some((d) => f.startsWith(`${d}/`))) want.add(f);
    // A watch follows an inode: `mv manifests manifests.old; mkdir manifests` leaves it on the old
    // directory, so a path now naming another inode is watched again.
    for (const [p, w] of this.watchers)
      if (!want.has(p) || w.id !== ids.get(p)) {
        w.watcher.close();
        this.watchers.delete(p);
      }
    for (const p of want) {
      if (this.watchers.has(p)) continue;
      try {
        const watcher = watch(join(this.hostRoot, p), { persistent: false }, () => this.fire());
        watcher.on("error", () => {
          watcher.close();
          if (this.watchers.get(p)?.watcher === watcher) this.watchers.delete(p);
        });
        this.watchers.set(p, { watcher, id: ids.get(p) });
      } catch {
        // no watch here: the periodic rescan still sees the change
      }
    }
  }

  private fire(): void {
    if (this.debounce) return;
    this.debounce = setTimeout(() => {
      this.debounce = undefined;
      this.onEvent();
    }, this.debounceMs);
  }

  /** Paths the last scan could not read or list (errno only); they count as absent. */
  errors(): readonly string[] {
    return this.scanner.lastErrors;
  }

  /**
   * Single-file mounts the last scan found showing a file the host has replaced by a rename (ESTALE): the
   * agent reports them and then exits so the kubelet starts its container again with fresh mounts.
   */
  staleMounts(): readonly string[] {
    return this.scanner.lastStale;
  }

  /**
   * What to do about the stale mounts: `restart` (recorded in the report's remounts, which survive the
   * restart), or `stay` when the agent already restarted {@link MAX_REMOUNTS_PER_HOUR} times within the
   * hour; undefined while no mount went stale.
   */
  remountDecision(): "restart" | "stay" | undefined {
    return this.remount;
  }

  /** How many paths are watched (for tests and logs). */
  watchCount(): number {
    return this.watchers.size;
  }

  close(): void {
    clearTimeout(this.debounce);
    this.debounce = undefined;
    for (const w of this.watchers.values()) w.watcher.close();
    this.watchers.clear();
  }
}
