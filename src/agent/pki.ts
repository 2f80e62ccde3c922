import { X509Certificate } from "node:crypto";
import { parse } from "yaml";
import { hostRootReader } from "../cis/gather/safefs.js";
import type { PkiCertificate, PkiReport } from "../evidence/agentreports.js";
import { MAX_PKI_CERTIFICATES, PKI_REPORT_VERSION } from "../evidence/agentreports.js";

/** kubeadm's PKI directory: every `*.crt` under it (etcd/ included) is read. */
export const PKI_DIR = "/etc/kubernetes/pki";
/** The kubeconfigs kubeadm writes, whose users embed (or name) a client certificate. */
export const KUBECONFIGS = [
  "/etc/kubernetes/admin.conf",
  "/etc/kubernetes/controller-manager.conf",
  "/etc/kubernetes/kubelet.conf",
  "/etc/kubernetes/scheduler.conf",
  "/etc/kubernetes/super-admin.conf",
] as const;
/**
 * The kubelet's certificates in use: its serving certificate (self-signed `kubelet.crt`, or the rotated
 * `kubelet-server-current.pem`) and its client certificate. Only the `-current` links: the dated files
 * they point to stay behind after a rotation and would be reported expired although nothing uses them.
 */
export const KUBELET_CERTS = [
  "/var/lib/kubelet/pki/kubelet.crt",
  "/var/lib/kubelet/pki/kubelet-client-current.pem",
  "/var/lib/kubelet/pki/kubelet-server-current.pem",
] as const;

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;

/** Control characters out, length bounded: a subject is anyone's text who could issue the certificate. */
function clip(text: string, max = 256): string {
  const one = [...text]
    .map((ch) => (ch.charCodeAt(0) < 0x20 || ch.charCodeAt(0) === 0x7f ? " " : ch))
    .join("");
  return one.length <= max ? one : `${one.slice(0, max - 3)}...`;
}

/**
 * The certificates of a PEM text, and nothing else: only CERTIFICATE blocks are parsed, so the private key
 * a kubelet `.pem` (or a kubeconfig) carries next to its certificate is never decoded, kept or reported.
 */
export function certificatesOf(
  pem: string,
  path: string,
): { certs: PkiCertificate[]; errors: { path: string; error: string }[] } {
  const certs: PkiCertificate[] = [];
  const errors: { path: string; error: string }[] = [];
  const blocks = pem.match(PEM_CERT) ?? [];
  if (blocks.length === 0) errors.push({ path, error: "no PEM certificate in it" });
  for (const [i, b] of blocks.entries()) {
    try {
      const c = new X509Certificate(b);
      certs.push({
        path: blocks.length > 1 ? `${path}[${i}]` : path,
        subject: clip(c.subject.replace(/\n/g, ", ")),
        notAfter: new Date(c.validTo).toISOString(),
      });
    } catch {
      // The parser's message is not repeated: only the position of the block that failed.
      errors.push({ path, error: `certificate ${i} is not a valid X.509 certificate` });
    }
  }
  return { certs, errors };
}

/**
 * The client certificates of a kubeconfig's users: `client-certificate-data` (embedded, base64 PEM) as
 * `<file>#users[<name>]`, and the host paths of `client-certificate` files (read by the caller). The
 * `client-key-data` next to it is never looked at.
 */
export function kubeconfigCertificates(
  text: string,
  path: string,
): {
  certs: PkiCertificate[];
  files: string[];
  errors: { path: string; error: string }[];
} {
  const certs: PkiCertificate[] = [];
  const files: string[] = [];
  const errors: { path: string; error: string }[] = [];
  let doc: unknown;
  try {
    doc = parse(text, { maxAliasCount: 10 });
  } catch {
    // The YAML parser quotes the source around an error, which may be key material: position only.
    return { certs, files, errors: [{ path, error: "not a YAML kubeconfig" }] };
  }
  const users = (doc as { users?: unknown } | null)?.users;
  if (!Array.isArray(users)) return { certs, files, errors };
  for (const [i, u] of users.entries()) {
    const entry = (u ?? {}) as { name?: unknown; user?: Record<string, unknown> | null };
    const name = typeof entry.name === "string" ? clip(entry.name, 64) : String(i);
    const data = entry.user?.["client-certificate-data"];
    const file = entry.user?.["client-certificate"];
    if (typeof data === "string") {
      const where = `${path}#users[${name}]`;
      const r = certificatesOf(Buffer.from(data, "base64").toString("utf8"), where);
      certs.push(...r.certs);
      errors.push(...r.errors);
    } else if (typeof file === "string" && file.startsWith("/")) files.push(file);
  }
  return { certs, files, errors };
}

/**
 * Reads the control-plane PKI on a node (inside `hostRoot`, as if it were `/`): certificates only, their
 * path, subject and expiry. Absent files are skipped silently (not every node is a kubeadm control-plane
 * node); unreadable or malformed ones are listed in `errors` with the reason, never their content.
 */
export async function scanPki(hostRoot: string, now: Date = new Date()): Promise<PkiReport> {
  const reader = hostRootReader(hostRoot);
  const certs: PkiCertificate[] = [];
  const errors: { path: string; error: string }[] = [];
  const absent = (e: unknown) => (e as { code?: string }).code === "ENOENT";
  const reason = (e: unknown) => clip((e as { code?: string }).code ?? "cannot be read", 64);
  const readCerts = async (path: string, namedBy?: string) => {
    try {
      const r = certificatesOf(await reader.readFile(path), path);
      certs.push(...r.certs);
      errors.push(...r.errors);
    } catch (e) {
      // Absent is normal for the well-known paths (not every node is a kubeadm node), but not for a file a
      // kubeconfig names: that one is in use and not visible here (not mounted into the agent, by default).
      if (!absent(e)) errors.push({ path, error: reason(e) });
      else if (namedBy) errors.push({ path, error: `absent here, named by ${namedBy}` });
    }
  };

  let pkiFiles: string[] = [];
  try {
    pkiFiles = (reader.listFiles ? await reader.listFiles(PKI_DIR) : [])
      .filter((f) => f.endsWith(".crt"))
      .sort();
  } catch (e) {
    if (!absent(e)) errors.push({ path: PKI_DIR, error: reason(e) });
  }
  for (const f of pkiFiles) await readCerts(`${PKI_DIR}/${f}`);

  const named = new Map<string, string | undefined>(KUBELET_CERTS.map((p) => [p, undefined]));
  for (const path of KUBECONFIGS) {
    let text: string;
    try {
      text = await reader.readFile(path);
    } catch (e) {
      if (!absent(e)) errors.push({ path, error: reason(e) });
      continue;
    }
    const r = kubeconfigCertificates(text, path);
    certs.push(...r.certs);
    errors.push(...r.errors);
    for (const f of r.files) named.set(f, path);
  }
  const seen = new Set(certs.map((c) => c.path.replace(/\[\d+\]$/, "")));
  for (const [path, by] of [...named].sort((a, b) => a[0].localeCompare(b[0])))
    if (!seen.has(path)) await readCerts(path, by);

  certs.sort((a, b) => a.path.localeCompare(b.path));
  return {
    version: PKI_REPORT_VERSION,
    scannedAt: now.toISOString(),
    certificates: certs.slice(0, MAX_PKI_CERTIFICATES),
    ...(certs.length > MAX_PKI_CERTIFICATES ? { truncated: true } : {}),
    ...(errors.length > 0 ? { errors: errors.slice(0, 50) } : {}),
  };
}
