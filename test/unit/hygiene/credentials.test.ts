import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "chai";
import {
  certificateFinding,
  CRED_SERVING_CERT_EXPIRY,
  legacyTokenFindings,
  parsePemBundle,
  pkiFindings,
  pkiIncomplete,
} from "../../../src/hygiene/credentials.js";
import type { PkiReport } from "../../../src/evidence/agentreports.js";

const now = new Date("2026-12-05T12:00:00Z");
const cert = (days: number) => ({
  subject: "CN=kube-apiserver",
  notAfter: new Date(now.getTime() + days * 86_400_000),
});

describe("hygiene: credentials", () => {
  it("a legacy token Secret is a Medium finding naming its ServiceAccount and use; invalidated ones are Low", () => {
    const f = legacyTokenFindings([
      {
        namespace: "b",
        name: "old",
        annotations: { "kubernetes.io/service-account.name": "ci" },
        labels: { "kubernetes.io/legacy-token-last-used": "2026-11-30" },
      },
      {
        namespace: "a",
        name: "dead",
        annotations: { "kubernetes.io/service-account.name": "bot" },
        labels: { "kubernetes.io/legacy-token-invalid-since": "2026-10-01" },
      },
    ]);
    expect(f.map((x) => `${x.severity} ${x.resource}`)).to.deep.equal([
      "Low Secret/a/dead",
      "Medium Secret/b/old",
    ]);
    expect(f[1]!.message).to.include('"ci"').and.include("last used 2026-11-30");
    expect(f[0]!.message).to.include("invalid since 2026-10-01").and.include("no recorded use");
  });

  it("certificate expiry: none beyond warnDays, Medium within, High within 7 days or expired, with the exact date", () => {
    const f = (days: number) =>
      certificateFinding(CRED_SERVING_CERT_EXPIRY, "the cert", "APIServer/x", cert(days), now, 30);
    expect(f(31)).to.equal(undefined);
    expect(f(20)).to.include({ severity: "Medium" });
    expect(f(20)!.message).to.include("2026-12-25T12:00:00.000Z").and.include("in 20 day(s)");
    expect(f(5)).to.include({ severity: "High" });
    const expired = f(-2)!;
    expect(expired.severity).to.equal("High");
    expect(expired.message).to.include("expired at 2026-12-03").and.include("2 day(s) ago");
  });

  it("reads every certificate of a PEM bundle and reports garbage instead of throwing", function () {
    this.timeout(20_000);
    const dir = mkdtempSync(join(tmpdir(), "csp-pem-"));
    try {
      const make = (name: string, days: number) => {
        execFileSync(
          "openssl",
          [
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            join(dir, `${name}.key`),
            "-out",
            join(dir, `${name}.crt`),
            "-days",
            String(days),
            "-subj",
            `/CN=${name}`,
          ],
          { stdio: "ignore" },
        );
        return readFileSync(join(dir, `${name}.crt`), "utf8");
      };
      const { certs, errors } = parsePemBundle(make("one", 3) + make("two", 400));
      expect(errors).to.deep.equal([]);
      expect(certs.map((c) => c.subject)).to.deep.equal(["CN=one", "CN=two"]);
      const left = (certs[0]!.notAfter.getTime() - Date.now()) / 86_400_000;
      expect(left).to.be.within(2.9, 3.1);
      expect(parsePemBundle("not a pem").errors).to.deep.equal(["no PEM certificate found"]);
      expect(
        parsePemBundle("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----").errors[0],
      ).to.match(/^certificate 0:/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("control-plane PKI from the node agents: findings name node, path and date; unreadable files are Info", () => {
    const at = (days: number) => new Date(now.getTime() + days * 86_400_000).toISOString();
    const f = pkiFindings(
      [
        {
          node: "cp-1",
          value: {
            version: 1,
            scannedAt: now.toISOString(),
            certificates: [
              { path: "/etc/kubernetes/pki/apiserver.crt", subject: "CN=kube-apiserver", notAfter: at(3) },
              {
                path: "/etc/kubernetes/admin.conf#users[kubernetes-admin]",
                subject: "CN=kubernetes-admin",
                notAfter: at(20),
              },
              { path: "/etc/kubernetes/pki/ca.crt", subject: "CN=kubernetes", notAfter: at(3000) },
              { path: "/var/lib/kubelet/pki/kubelet.crt", subject: "CN=cp-1", notAfter: at(-2) },
            ],
            errors: [
              {
                path: "/etc/kubernetes/pki/broken.crt",
                error: "certificate 0 is not a valid X.509 certificate",
              },
            ],
          },
        },
        { node: "cp-2", problem: "not JSON" },
      ],
      now,
      30,
    );
    expect(f.map((x) => `${x.severity} ${x.id} ${x.resource}`)).to.deep.equal([
      "High CRED-PKI-CERT-EXPIRY Node/cp-1/etc/kubernetes/pki/apiserver.crt",
      "Medium CRED-PKI-CERT-EXPIRY Node/cp-1/etc/kubernetes/admin.conf#users[kubernetes-admin]",
      "High CRED-PKI-CERT-EXPIRY Node/cp-1/var/lib/kubelet/pki/kubelet.crt",
      "Info CRED-CERT-UNREADABLE Node/cp-1",
      "Info CRED-CERT-UNREADABLE Node/cp-2",
    ]);
    expect(f[0]!.message)
      .to.include("/etc/kubernetes/pki/apiserver.crt on node cp-1")
      .and.include(at(3).slice(0, 10))
      .and.include("in 3 day(s)");
    expect(f[2]!.message).to.include("expired");
    expect(f[3]!.message).to.include("broken.crt");
    expect(f[4]!.message).to.include("not JSON");
  });

  it("a PKI report that is stale, truncated within the window, partly unread or undecoded never counts as complete", () => {
    const at = (days: number) => new Date(now.getTime() + days * 86_400_000).toISOString();
    const report = (o: Partial<PkiReport> = {}): PkiReport => ({
      version: 1,
      scannedAt: now.toISOString(),
      certificates: [{ path: "/etc/kubernetes/pki/apiserver.crt", subject: "CN=a", notAfter: at(300) }],
      ...o,
    });
    expect(pkiIncomplete("cp-1", report(), now, 30)).to.equal(undefined);
    expect(pkiFindings([{ node: "cp-1", value: report() }], now, 30)).to.deep.equal([]);
    // The agent stopped 23 months ago: what it said then is not current.
    const stale = report({ scannedAt: "2025-01-01T00:00:00Z" });
    expect(pkiIncomplete("cp-1", stale, now, 30)).to.deep.include({ reason: "PkiReportStale" });
    expect(pkiIncomplete("cp-1", stale, now, 30)!.message)
      .to.include("node cp-1")
      .and.include("2025-01-01");
    expect(
      pkiFindings([{ node: "cp-1", value: stale }], now, 30).map((f) => `${f.severity} ${f.id}`),
    ).to.deep.equal(["Info CRED-CERT-UNREADABLE"]);
    // Truncated: the rest expire no sooner than the last listed; fine only when that one is beyond the window
    // and the agent said how many it left out (an older agent cut by path).
    expect(pkiIncomplete("cp-1", report({ truncated: true, omitted: 3 }), now, 30)).to.equal(undefined);
    expect(pkiIncomplete("cp-1", report({ truncated: true }), now, 30)?.message).to.include(
      "more certificates than the report holds",
    );
    const soon = report({
      truncated: true,
      omitted: 3,
      certificates: [{ path: "/etc/kubernetes/pki/ca.crt[199]", subject: "CN=a", notAfter: at(10) }],
    });
    expect(pkiIncomplete("cp-1", soon, now, 30)?.reason).to.equal("CertificateUnreadable");
    expect(pkiIncomplete("cp-1", report({ undecoded: 5 }), now, 30)?.message).to.include(
      "5 certificate(s) not decoded",
    );
    const unread = pkiIncomplete(
      "cp-1",
      report({ errors: [{ path: "/etc/kubernetes/pki/x.crt", error: "EACCES" }], omittedErrors: 2 }),
      now,
      30,
    );
    expect(unread?.message).to.include("3 certificate file(s) not read");
    // A truncated report with no unread file does not say "0 file(s) not read".
    const msg = pkiFindings([{ node: "cp-1", value: report({ truncated: true }) }], now, 30)[0]!.message;
    expect(msg).to.not.match(/0 certificate file|not read: ;/);
  });
});
