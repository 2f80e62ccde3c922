/**
 * CIS 2.x: etcd served only over mutual TLS, judged from its effective settings (command line, `ETCD_*`
 * env, or `--config-file`), and 2.7 by comparing the certificates of etcd's trusted CA with the cluster CA.
 */
import { X509Certificate } from "node:crypto";
import type { ComponentInputs, FileResult } from "../gather/inputs.js";
import { boolFlag, stringFlag } from "../parse/flags.js";
import type { CheckOutcome, CisCheck } from "./check.js";
import { fail, pass, unknown, withValue } from "./check.js";

/** etcd's default listeners when the flags are absent: plain http on localhost. */
const DEFAULT_URLS = { client: "http://localhost:2379", peer: "http://localhost:2380" } as const;

/**
 * Pass when cert and key are set and no listener of the kind is plain http (etcd serves an `http://`
 * listener without TLS even when a certificate is configured). For clients that includes
 * `--listen-client-http-urls` (etcd 3.5+: extra listeners serving only HTTP, gRPC gateway included).
 */
function tlsIdentity(kind: "client" | "peer"): (i: ComponentInputs) => CheckOutcome {
  const p = kind === "peer" ? "peer-" : "";
  return (i) => {
    const cert = stringFlag(i.flags, `${p}cert-file`);
    const key = stringFlag(i.flags, `${p}key-file`);
    const urls = stringFlag(
      i.flags,
      `listen-${kind}-urls`,
      DEFAULT_URLS[kind],
      `--listen-${kind}-urls is not set; the etcd default is ${DEFAULT_URLS[kind]}`,
    );
    if (!cert.ok) return unknown(cert.reason);
    if (!key.ok) return unknown(key.reason);
    if (!urls.ok) return unknown(urls.reason);
    const missing = [cert, key].filter((e) => e.value === "").map((e) => e.source);
    if (missing.length > 0) return fail(`${missing.join("; ")}: etcd has no ${kind} TLS identity`);
    const plainOf = (v: string) =>
      v
        .split(",")
        .map((u) => u.trim())
        .filter((u) => u.toLowerCase().startsWith("http://") || u.toLowerCase().startsWith("unix://"));
    const lists = [urls];
    if (kind === "client") {
      const http = stringFlag(i.flags, "listen-client-http-urls");
      if (!http.ok) return unknown(http.reason);
      if (http.value !== "") lists.push(http);
    }
    for (const l of lists) {
      const plain = plainOf(l.value);
      if (plain.length > 0)
        return fail(
          `${cert.source}; ${key.source}; but ${l.source}: ${plain.join(", ")} is served without TLS`,
        );
    }
    return pass([cert.source, key.source, ...lists.map((l) => l.source)].join("; "));
  };
}

function mustBe(flag: string, want: boolean, failWhy: string): (i: ComponentInputs) => CheckOutcome {
  return (i) =>
    withValue(boolFlag(i.flags, flag, false), (v, src) =>
      v === want ? pass(src) : fail(`${src}: ${failWhy}`),
    );
}

/** The DER of every certificate in a PEM bundle, or why the file is not one. */
function certificates(
  file: FileResult,
): { der: Buffer[]; subject: string[]; certs: X509Certificate[] } | string {
  if (!file.ok) return file.reason;
  const blocks = file.text.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) return `${file.path} holds no PEM certificate`;
  const der: Buffer[] = [];
  const subject: string[] = [];
  const certs: X509Certificate[] = [];
  for (const b of blocks) {
    try {
      const c = new X509Certificate(b);
      der.push(c.raw);
      subject.push(c.subject.replaceAll("\n", ", "));
      certs.push(c);
    } catch {
      return `${file.path} holds a certificate that does not parse`;
    }
  }
  return { der, subject, certs };
}

/**
 * The certificate of `trust` that `cert` chains to (directly or through other certificates of `pool`),
 * checked by signature: a cluster CA that is an intermediate under etcd's trusted root makes every
 * certificate it signs valid for etcd too.
 */
function chainsTo(
  cert: X509Certificate,
  trust: readonly X509Certificate[],
  pool: readonly X509Certificate[],
) {
  const signedBy = (c: X509Certificate, issuer: X509Certificate) => {
    try {
      return c.checkIssued(issuer) && c.verify(issuer.publicKey);
    } catch {
      return false;
    }
  };
  const seen = new Set<X509Certificate>();
  const walk = (c: X509Certificate, depth: number): X509Certificate | undefined => {
    if (depth > 8 || seen.has(c)) return undefined;
    seen.add(c);
    const anchor = trust.find((t) => signedBy(c, t));
    if (anchor) return anchor;
    for (const p of pool) if (p !== c && signedBy(c, p)) return walk(p, depth + 1);
    return undefined;
  };
  return walk(cert, 0);
}

/** 2.7: etcd's client CA must not be the cluster CA (else any cluster-signed client cert reaches etcd). */
function uniqueCa(i: ComponentInputs): CheckOutcome {
  const flag = stringFlag(i.flags, "trusted-ca-file");
  if (!flag.ok) return unknown(flag.reason);
  if (flag.value === "")
    return fail(`${flag.source}: etcd verifies client certificates against no dedicated CA (see 2.2)`);
  const etcdCa = i.files["trusted-ca-file"];
  const clusterCa = i.files["cluster-ca"];
  if (etcdCa === undefined) return unknown(`${flag.source} was not read`);
  if (clusterCa === undefined) return unknown("the cluster CA was not read");
  const e = certificates(etcdCa);
  if (typeof e === "string") return unknown(`cannot compare CAs: ${e}`);
  const c = certificates(clusterCa);
  if (typeof c === "string") return unknown(`cannot compare CAs: ${c}`);
  const shared = e.der.findIndex((d) => c.der.some((x) => x.equals(d)));
  if (shared >= 0)
    return fail(
      `${flag.source} trusts the cluster CA ${clusterCa.path} (${e.subject[shared]}): any client certificate the cluster CA signs is accepted by etcd`,
    );
  for (const [n, cc] of c.certs.entries()) {
    const anchor = chainsTo(cc, e.certs, c.certs);
    if (anchor)
      return fail(
        `the cluster CA ${clusterCa.path} (${c.subject[n]}) is signed by ${anchor.subject.replaceAll("\n", ", ")}, which ${flag.source} trusts: any client certificate the cluster CA signs is accepted by etcd`,
      );
  }
  return pass(`${flag.source} shares no certificate with the cluster CA ${clusterCa.path}`);
}

/** The 2.x checks, in benchmark order. */
export const ETCD_CHECKS: readonly CisCheck<ComponentInputs>[] = [
  {
    id: "2.1",
    title: "Ensure that the --cert-file and --key-file arguments are set as appropriate",
    severity: "High",
    automated: true,
    reads: ["--cert-file", "--key-file", "--listen-client-urls"],
    evaluate: tlsIdentity("client"),
  },
  {
    id: "2.2",
    title: "Ensure that the --client-cert-auth argument is set to true",
    severity: "Critical",
    automated: true,
    reads: ["--client-cert-auth"],
    evaluate: mustBe("client-cert-auth", true, "any client that reaches etcd reads and writes every Secret"),
  },
  {
    id: "2.3",
    title: "Ensure that the --auto-tls argument is not set to true",
    severity: "Medium",
    automated: true,
    reads: ["--auto-tls"],
    evaluate: mustBe("auto-tls", false, "etcd serves clients a self-signed certificate nobody can verify"),
  },
  {
    id: "2.4",
    title: "Ensure that the --peer-cert-file and --peer-key-file arguments are set as appropriate",
    severity: "High",
    automated: true,
    reads: ["--peer-cert-file", "--peer-key-file", "--listen-peer-urls"],
    evaluate: tlsIdentity("peer"),
  },
  {
    id: "2.5",
    title: "Ensure that the --peer-client-cert-auth argument is set to true",
    severity: "High",
    automated: true,
    reads: ["--peer-client-cert-auth"],
    evaluate: mustBe(
      "peer-client-cert-auth",
      true,
      "any host that reaches the peer port can join the cluster",
    ),
  },
  {
    id: "2.6",
    title: "Ensure that the --peer-auto-tls argument is not set to true",
    severity: "Medium",
    automated: true,
    reads: ["--peer-auto-tls"],
    evaluate: mustBe("peer-auto-tls", false, "peers use self-signed certificates nobody can verify"),
  },
  {
    id: "2.7",
    title: "Ensure that a unique Certificate Authority is used for etcd",
    severity: "High",
    automated: false,
    reads: ["--trusted-ca-file", "cluster CA file (kube-apiserver --client-ca-file)"],
    evaluate: uniqueCa,
  },
];
