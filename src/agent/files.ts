import { randomBytes } from "node:crypto";
import { chmod, mkdir, open, readFile, rename, rm, stat } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { contentHash } from "../evidence/agentreports.js";

/**
 * Writes `content` to `path` so that a reader (kube-apiserver polling its config) sees either the old
 * file or the new one, never a partial one: a temp file in the same directory, created 0600, fsynced,
 * then renamed over the target. Returns the hash of what is on disk. Never logs the content.
 */
export async function writeFileAtomic(path: string, content: string): Promise<string> {
  const dir = dirname(path);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const tmp = join(dir, `.${basename(path)}.${randomBytes(6).toString("hex")}.tmp`);
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

/** The hash and modification time of a file, or undefined when it does not exist. */
export async function fileState(path: string): Promise<{ sha256: string; mtime: Date } | undefined> {
  try {
    const [bytes, st] = await Promise.all([readFile(path), stat(path)]);
    return { sha256: contentHash(bytes), mtime: st.mtime };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
}
