/**
 * Reading files the checks judge, without trusting them. Inputs may be hostile: a FIFO that blocks the
 * reader forever, a 50 MB file, bytes that are not UTF-8, or — under `--host-root` — a symlink pointing out
 * of the mounted host filesystem. This module is the only place the CIS code opens files:
 *
 * - only regular files are read; the file is opened with O_NONBLOCK so that opening a FIFO cannot block,
 *   and its type is checked on the open descriptor (fstat), so a file swapped after a check is not read;
 * - at most {@link MAX_INPUT_BYTES} are read, and a larger file is an error naming it, never a truncation;
 * - content must be valid UTF-8 (a component decoding it would reject it too), never replaced characters;
 * - under a host root, every path is resolved component by component inside the root, as `chroot` would:
 *   an absolute symlink target starts again at the root, `..` stops at the root, and a file whose opened
 *   descriptor turns out to lie outside the root (a symlink swapped in during the check) is refused.
 *
 * Errors are {@link InputFileError}s: a code and a one-line message that never contains file content.
 */
import type { Dirent, Stats } from "node:fs";
import { constants } from "node:fs";
import { lstat, open, opendir, readlink, realpath } from "node:fs/promises";
import { join, posix } from "node:path";
import type { FileStat, StatReader } from "../checks/files.js";
import type { HostReader } from "./inputs.js";

/** The largest file (manifest, kubelet config, file named by a flag) the checks read: 1 MiB. */
export const MAX_INPUT_BYTES = 1024 * 1024;

/** The most entries listed under one directory tree (kubelet drop-ins, PKI, CNI). */
export const MAX_LISTED_ENTRIES = 10_000;

/**
 * Why a file could not be read. `code` is an errno name (`ENOENT`, `EACCES`, `ELOOP`, ...) or one of
 * `ENOTREG` (not a regular file), `EFBIG` (over the size limit), `EILSEQ` (not UTF-8), `EXDEV` (outside the
 * host root).
 */
export class InputFileError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = "InputFileError";
  }
}

function kindOf(st: Stats): string {
  if (st.isFIFO()) return "a FIFO";
  if (st.isDirectory()) return "a directory";
  if (st.isSocket()) return "a socket";
  if (st.isCharacterDevice()) return "a character device";
  if (st.isBlockDevice()) return "a block device";
  if (st.isSymbolicLink()) return "a symbolic link";
  return "not a regular file";
}

function sizeText(n: number): string {
  return n % (1024 * 1024) === 0 ? `${n / (1024 * 1024)} MiB` : `${n} bytes`;
}

function errnoError(e: unknown): InputFileError {
  if (e instanceof InputFileError) return e;
  const err = e as NodeJS.ErrnoException;
  // Only the code: Node's messages repeat the path, which the caller names itself.
  return new InputFileError(err.code ?? "EIO", err.code ?? "cannot be read");
}

const decoder = new TextDecoder("utf-8", { fatal: true });

/** Options of {@link readRegularFile}. */
export interface ReadOptions {
  readonly maxBytes?: number;
  /** Refuse a symlink as the last component (O_NOFOLLOW). */
  readonly noFollow?: boolean;
  /** Called with the open descriptor before reading; throws to refuse the file. */
  readonly verify?: (fd: number) => Promise<void>;
}

/**
 * Reads a regular file of at most `maxBytes` as UTF-8. Rejects with an {@link InputFileError} for anything
 * else (a FIFO, a device, a directory, a larger file, invalid UTF-8), without blocking and without reading
 * past the limit.
 */
export async function readRegularFile(path: string, opts: ReadOptions = {}): Promise<string> {
  const data = await readRegularBytes(path, opts);
  try {
    return decoder.decode(data);
  } catch {
    throw new InputFileError("EILSEQ", "is not valid UTF-8");
  }
}

/** {@link readRegularFile} without the UTF-8 decoding: the bytes (a DER certificate is binary). */
export async function readRegularBytes(path: string, opts: ReadOptions = {}): Promise<Buffer> {
  const max = opts.maxBytes ?? MAX_INPUT_BYTES;
  if (path.includes("\0")) throw new InputFileError("EINVAL", "the path contains a NUL byte");
  const flags =
    constants.O_RDONLY |
    constants.O_NONBLOCK |
    constants.O_NOCTTY |
    (opts.noFollow ? constants.O_NOFOLLOW : 0);
  let fh;
  try {
    fh = await open(path, flags);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === "ELOOP" && opts.noFollow) {
      throw new InputFileError("ELOOP", "ELOOP (it was replaced by a symbolic link while being checked)");
    }
    if (err.code === "ENXIO") throw new InputFileError("ENOTREG", "is a socket, not a regular file");
    throw errnoError(e);
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new InputFileError("ENOTREG", `is ${kindOf(st)}, not a regular file`);
    if (st.size > max) {
      throw new InputFileError("EFBIG", `is larger than ${sizeText(max)} (${st.size} bytes)`);
    }
    await opts.verify?.(fh.fd);
    // The size may change while reading (or be 0 for generated files): read until EOF, never past max.
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const chunk = Buffer.alloc(Math.min(256 * 1024, max + 1 - total));
      const { bytesRead } = await fh.read(chunk, 0, chunk.length, null);
      if (bytesRead === 0) break;
      chunks.push(chunk.subarray(0, bytesRead));
      total += bytesRead;
      if (total > max) throw new InputFileError("EFBIG", `is larger than ${sizeText(max)}`);
    }
    return Buffer.concat(chunks, total);
  } catch (e) {
    throw errnoError(e);
  } finally {
    await fh.close();
  }
}

/** Where a path resolved to inside a root, and whether it exists. */
interface Resolved {
  /** Absolute path relative to the root (`/etc/x`), symlinks resolved; for a missing path, up to the gap. */
  readonly path: string;
  readonly exists: boolean;
}

/**
 * Resolves `path` inside `root` the way the kernel would after `chroot(root)`: component by component,
 * `..` never above `/`, an absolute symlink target restarting at the root, a relative one at the link's
 * directory. The result contains no symlink; it never names anything outside the root.
 */
export async function resolveInRoot(root: string, path: string): Promise<Resolved> {
  if (path.includes("\0")) throw new InputFileError("EINVAL", "the path contains a NUL byte");
  const todo = path.split("/");
  let done = "/";
  let hops = 0;
  while (todo.length > 0) {
    const part = todo.shift() as string;
    if (part === "" || part === ".") continue;
    if (part === "..") {
      done = posix.dirname(done);
      continue;
    }
    const next = posix.join(done, part);
    let st: Stats;
    try {
      st = await lstat(join(root, next));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") {
        return { path: posix.join(next, ...todo.filter((p) => p !== "" && p !== ".")), exists: false };
      }
      throw errnoError(e);
    }
    if (!st.isSymbolicLink()) {
      if (todo.some((p) => p !== "" && p !== ".") && !st.isDirectory()) {
        throw new InputFileError("ENOTDIR", "ENOTDIR");
      }
      done = next;
      continue;
    }
    if (++hops > 40) throw new InputFileError("ELOOP", "ELOOP (too many levels of symbolic links)");
    let target: string;
    try {
      target = await readlink(join(root, next));
    } catch (e) {
      throw errnoError(e);
    }
    todo.unshift(...target.split("/"));
    if (target.startsWith("/")) done = "/";
  }
  return { path: done, exists: true };
}

function statOf(s: Stats): FileStat {
  return {
    type: s.isFile() ? "file" : s.isDirectory() ? "directory" : "other",
    mode: s.mode & 0o7777,
    uid: s.uid,
    gid: s.gid,
  };
}

/**
 * Lists a directory tree without following symlinks, stopping after `limit` entries: paths relative to
 * `base`, directories included unless `filesOnly`.
 */
async function walk(base: string, filesOnly: boolean, limit: number): Promise<string[]> {
  const out: string[] = [];
  const dirs = [""];
  while (dirs.length > 0) {
    const rel = dirs.shift() as string;
    const dir = await opendir(rel === "" ? base : join(base, rel));
    try {
      for await (const e of dir as AsyncIterable<Dirent>) {
        const p = rel === "" ? e.name : `${rel}/${e.name}`;
        if (e.isDirectory()) dirs.push(p);
        if (!filesOnly || !e.isDirectory()) out.push(p);
        if (out.length > limit) {
          throw new InputFileError("E2BIG", `holds more than ${limit} entries`);
        }
      }
    } catch (e) {
      throw errnoError(e);
    }
  }
  return out;
}

/**
 * Reads host files under `root`, as if `root` were `/`: `/etc/kubernetes/x.yaml` is
 * `<root>/etc/kubernetes/x.yaml`, symlinks resolve inside `root` (see {@link resolveInRoot}), and nothing
 * outside `root` is ever opened, stat'ed or listed. Reads are {@link readRegularFile}s.
 */
export function hostRootReader(
  root: string,
): HostReader & StatReader & { readBytes(p: string): Promise<Buffer> } {
  let realRoot: Promise<string | undefined> | undefined;
  const onHost = (p: string) => join(root, p);
  const resolved = async (p: string): Promise<string> => {
    const r = await resolveInRoot(root, p);
    if (!r.exists) throw new InputFileError("ENOENT", `ENOENT (read as ${onHost(r.path)})`);
    return r.path;
  };
  const withPath = (e: unknown, hostPath: string) => {
    const err = errnoError(e);
    return err.message.includes("(read as ")
      ? err
      : new InputFileError(err.code, `${err.message} (read as ${hostPath})`);
  };
  // A descriptor must name a file inside the root: catches a path component swapped for a symlink
  // between resolution and open. Skipped where /proc is not mounted.
  const insideRoot = async (fd: number) => {
    realRoot ??= realpath(root).catch(() => undefined);
    const base = await realRoot;
    const actual = await readlink(`/proc/self/fd/${fd}`).catch(() => undefined);
    if (base === undefined || actual === undefined) return;
    if (actual !== base && !actual.startsWith(base === "/" ? "/" : `${base}/`)) {
      throw new InputFileError("EXDEV", "resolves outside the host root while being read; not read");
    }
  };
  return {
    stat: async (p) => {
      const r = await resolveInRoot(root, p);
      if (!r.exists) return undefined;
      try {
        return statOf(await lstat(onHost(r.path)));
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
        throw withPath(e, onHost(r.path));
      }
    },
    listAll: async (dir) => {
      const base = onHost(await resolved(dir));
      try {
        return await walk(base, false, MAX_LISTED_ENTRIES);
      } catch (e) {
        throw withPath(e, base);
      }
    },
    readFile: async (p) => {
      let hostPath = onHost(posix.resolve("/", p));
      try {
        hostPath = onHost(await resolved(p));
        return await readRegularFile(hostPath, { noFollow: true, verify: insideRoot });
      } catch (e) {
        throw withPath(e, hostPath);
      }
    },
    readBytes: async (p: string) => {
      let hostPath = onHost(posix.resolve("/", p));
      try {
        hostPath = onHost(await resolved(p));
        return await readRegularBytes(hostPath, { noFollow: true, verify: insideRoot });
      } catch (e) {
        throw withPath(e, hostPath);
      }
    },
    listFiles: async (dir) => {
      const base = onHost(await resolved(dir));
      try {
        return await walk(base, true, MAX_LISTED_ENTRIES);
      } catch (e) {
        throw withPath(e, base);
      }
    },
  };
}
