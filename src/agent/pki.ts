import { X509Certificate } from "node:crypto";
import { parseDocument } from "yaml";
import { hostRootReader } from "../cis/gather/safefs.js";
import { oneLine } from "../evidence/safetext.js";
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
/** Certificates decoded at most per scan (a kubeadm node has about 25); the rest are counted, not decoded. */
export const MAX_DECODED_CERTIFICATES = 1000;

/** Unsafe characters out, length bounded: a subject is anyone's text who could issue the certificate. */
const clip = (text: string, max = 256) => oneLine(text, max);
/** A host path as reported: a file name is anyone's text who can create a file there. */
const clipPath = (path: string) => oneLine(path, 1024);

/** The certificate blocks of a file: PEM `CERTIFICATE` blocks, or the whole file when it is one DER certificate. */
function certificateBlocks(data: Buffer | string): (string | Buffer)[] {
  const text = typeof data === "string" ? data : data.toString("latin1");
  const pem = text.match(PEM_CERT);
  if (pem) return pem;
  // A DER certificate is an ASN.1 SEQUENCE (0x30) with a long-form length; anything else is not one.
  if (typeof data !== "string" && data.length > 4 && data[0] === 0x30 && (data[1]! & 0x80) !== 0)
    return [data];
  return [];
}

/** A decoding budget shared by one scan: certificates beyond it are counted, never decoded. */
export interface DecodeBudget {
  left: number;
  undecoded: number;
}

/**
 * The certificates of a PEM text (or a DER certificate), and nothing else: only CERTIFICATE blocks are
 * parsed, so the private key a kubelet `.pem` (or a kubeconfig) carries next to its certificate is never
 * decoded, kept or reported.
 */
export function certificatesOf(
  data: string | Buffer,
  path: string,
  budget: DecodeBudget = { left: MAX_DECODED_CERTIFICATES, undecoded: 0 },
): { certs: PkiCertificate[]; errors: { path: string; error: string }[] } {
  const certs: PkiCertificate[] = [];
  const errors: { path: string; error: string }[] = [];
  const where = clipPath(path);
  const blocks = certificateBlocks(data);
  if (blocks.length === 0) errors.push({ path: where, error: "no PEM or DER certificate in it" });
  for (const [i, b] of blocks.entries()) {
    if (budget.left <= 0) {
      budget.undecoded += blocks.length - i;
      break;
    }
    budget.left--;
    try {
      const c = new X509Certificate(b);
      certs.push({
        path: blocks.length > 1 ? `${where}[${i}]` : where,
        subject: clip(c.subject.replace(/\n/g, ", ")),
        notAfter: new Date(c.validTo).toISOString(),
      });
    } catch {
      // The parser's message is not repeated: only the position of the block that failed.
      errors.push({ path: where, error: `certificate ${i} is not a valid X.509 certificate` });
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
  budget?: DecodeBudget,
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
    // Never printed: a YAML warning (an unknown tag) goes to process.emitWarning with a code frame of the
    // source, which may quote client-key-data. Errors and warnings are not looked at, only their presence.
    const d = parseDocument(text, { logLevel: "silent", prettyErrors: false });
    if (d.errors.length > 0) throw new Error("not YAML");
    doc = d.toJS({ maxAliasCount: 10 });
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
      const r = certificatesOf(Buffer.from(data, "base64"), where, budget);
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
 *
 * Bounded: at most MAX_DECODED_CERTIFICATES are decoded, single certificates (kubeconfigs, the kubelet's,
 * each `*.crt` holding one) before bundles, smaller bundles first; the rest are counted in `undecoded`.
 * The report lists the MAX_PKI_CERTIFICATES that expire first (a CA bundle of hundreds of trust anchors
 * cannot push an expiring leaf out of it); `omitted` counts the others, all expiring no sooner.
 */
export async function scanPki(hostRoot: string, now: Date = new Date()): Promise<PkiReport> {
  const reader = hostRootReader(hostRoot);
  const certs: PkiCertificate[] = [];
  const errors: { path: string; error: string }[] = [];
  const budget: DecodeBudget = { left: MAX_DECODED_CERTIFICATES, undecoded: 0 };
  /** Files of several certificates, decoded once every single one is (bounded: never more blocks than the budget). */
  const bundles: { path: string; data: Buffer }[] = [];
  let bundled = 0;
  const absent = (e: unknown) => (e as { code?: string }).code === "ENOENT";
  const reason = (e: unknown) => clip((e as { code?: string }).code ?? "cannot be read", 64);
  const readCerts = async (path: string, namedBy?: string) => {
    try {
      const data = await reader.readBytes(path);
      const n = certificateBlocks(data).length;
      if (n > 1) {
        if (bundled >= MAX_DECODED_CERTIFICATES) budget.undecoded += n;
        else {
          bundled += n;
          bundles.push({ path, data });
        }
        return;
      }
      const r = certificatesOf(data, path, budget);
      certs.push(...r.certs);
      errors.push(...r.errors);
    } catch (e) {
      // Absent is normal for the well-known paths (not every node is a kubeadm node), but not for a file a
      // kubeconfig names: that one is in use and not visible here (not mounted into the agent, by default).
      if (!absent(e)) errors.push({ path: clipPath(path), error: reason(e) });
      else if (namedBy) errors.push({ path: clipPath(path), error: `absent here, named by ${namedBy}` });
    }
  };

  const named = new Map<string, string | undefined>(KUBELET_CERTS.map((p) => [p, undefined]));
  for (const path of KUBECONFIGS) {
    let text: string;
    try {
      text = await reader.readFile(path);
    } catch (e) {
      if (!absent(e)) errors.push({ path, error: reason(e) });
      continue;
    }
    const r = kubeconfigCertificates(text, path, budget);
    certs.push(...r.certs);
    errors.push(...r.errors);
    for (const f of r.files) named.set(f, path);
  }

  let pkiFiles: string[] = [];
  try {
    pkiFiles = (reader.listFiles ? await reader.listFiles(PKI_DIR) : [])
      .filter((f) => f.endsWith(".crt"))
      .sort();
  } catch (e) {
    if (!absent(e)) errors.push({ path: PKI_DIR, error: reason(e) });
  }
  const pkiPaths = new Set(pkiFiles.map((f) => `${PKI_DIR}/${f}`));
  for (const [path, by] of [...named].sort((a, b) => a[0].localeCompare(b[0])))
    if (!pkiPaths.has(path)) await readCerts(path, by);
  for (const path of pkiPaths) await readCerts(path);
  for (const b of bundles.sort((x, y) => x.data.length - y.data.length || x.path.localeCompare(y.path))) {
    const r = certificatesOf(b.data, b.path, budget);
    certs.push(...r.certs);
    errors.push(...r.errors);
  }

  // The soonest expiries first: what the report must never lose.
  certs.sort((a, b) => a.notAfter.localeCompare(b.notAfter) || a.path.localeCompare(b.path));
  const omitted = certs.length - MAX_PKI_CERTIFICATES;
  return {
    version: PKI_REPORT_VERSION,
    scannedAt: now.toISOString(),
    certificates: certs.slice(0, MAX_PKI_CERTIFICATES),
    ...(omitted > 0 ? { truncated: true, omitted } : {}),
    ...(budget.undecoded > 0 ? { undecoded: budget.undecoded } : {}),
    ...(errors.length > 0 ? { errors: errors.slice(0, 50) } : {}),
    ...(errors.length > 50 ? { omittedErrors: errors.length - 50 } : {}),
  };
}
