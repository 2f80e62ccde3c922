import { randomBytes } from "node:crypto";
import { chmod, lstat, mkdir, open, readdir, rename, rm, unlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { readRegularBytes } from "../cis/gather/safefs.js";
import { contentHash } from "../evidence/agentreports.js";

/** The largest file the agent reads back at a path it delivers to (what it writes is at most 1 MiB). */
export const MAX_DELIVERED_BYTES = 4 * 1024 * 1024;

/**
 * Reads what is at a path the agent delivers to without trusting it: a regular file only (a FIFO, a
 * device or a symlink there is an InputFileError `ENOTREG`/`ELOOP`, never a read that blocks or follows
 * it), at most {@link MAX_DELIVERED_BYTES} (`EFBIG`).
 */
export function readDelivered(path: string): Promise<Buffer> {
  return readRegularBytes(path, { noFollow: true, maxBytes: MAX_DELIVERED_BYTES });
}

/** Random bytes in a temp file's name (`.<name>.<hex>.tmp`). */
const TEMP_RANDOM_BYTES = 6;

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/**
 * Removes the temp files {@link writeFileAtomic} left next to `path` when the process was killed between
 * creating one and renaming it (SIGKILL, a node crash): regular files named `.<name>.<12 hex>.tmp`, which
 * may hold key material. Returns the names removed; a directory that cannot be listed removes nothing.
 */
export async function removeStaleTemps(path: string): Promise<string[]> {
  const dir = dirname(path);
  const re = new RegExp(`^\\.${escapeRegExp(basename(path))}\\.[0-9a-f]{${2 * TEMP_RANDOM_BYTES}}\\.tmp$`);
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const n of names.filter((n) => re.test(n))) {
    try {
      if (!(await lstat(join(dir, n))).isFile()) continue;
      await unlink(join(dir, n));
      removed.push(n);
    } catch {
      // gone already, or not ours to remove: the next start tries again
    }
  }
  return removed;
}

/**
 * Writes `content` to `path` so that a reader (kube-apiserver polling its config) sees either the old
 * file or the new one, never a partial one: a temp file in the same directory, created 0600, fsynced,
 * then renamed over the target. Returns the hash of what is on disk. Never logs the content.
 */
export async function writeFileAtomic(path: string, content: string): Promise<string> {
  const dir = dirname(path);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const tmp = join(dir, `.${basename(path)}.${randomBytes(TEMP_RANDOM_BYTES).toString("hex")}.tmp`);
  const fh = await open(tmp, "wx", 0o600);
  // A failed write (a full disk) or rename leaves no partial temp file behind.
  try {
    try {
      await fh.writeFile(content, "utf8");
      await fh.chmod(0o600); // the process umask cannot widen it, but an inherited ACL default might
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  await chmod(path, 0o600);
  const dh = await open(dir, "r");
  try {
    await dh.sync();
  } catch {
    // some filesystems refuse fsync on a directory; the rename is still atomic
  } finally {
    await dh.close();
  }
  return contentHash(content);
}

/**
 * The hash and modification time of a file, or undefined when it does not exist. Anything but a regular
 * file at the path (a FIFO, a device, a symlink) is never read or followed: `sha256` is empty and
 * `notRegular` says what it is (a rename replaces it; the EncryptionConfiguration's key check refuses it).
 */
export async function fileState(
  path: string,
): Promise<{ sha256: string; mtime: Date; notRegular?: string } | undefined> {
  try {
    const st = await lstat(path);
    if (!st.isFile()) {
      const kind = st.isSymbolicLink()
        ? "a symbolic link"
        : st.isFIFO()
          ? "a FIFO"
          : st.isDirectory()
            ? "a directory"
            : "a device or socket";
      return { sha256: "", mtime: st.mtime, notRegular: `is ${kind}, not a regular file` };
    }
    return { sha256: contentHash(await readDelivered(path)), mtime: st.mtime };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
}
