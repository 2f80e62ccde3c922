import { expect } from "chai";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stringify } from "yaml";
import { X509Certificate } from "node:crypto";
import {
  MAX_DECODED_CERTIFICATES,
  certificatesOf,
  kubeconfigCertificates,
  scanPki,
} from "../../../src/agent/pki.js";
import { parsePkiReport } from "../../../src/evidence/agentreports.js";
import { certificate } from "../../support/certs.js";

const DAY = 86_400_000;

const kubeconfig = (user: string, cert: string, key: string) =>
  stringify({
    apiVersion: "v1",
    kind: "Config",
    users: [
      {
        name: user,
        user: {
          "client-certificate-data": Buffer.from(cert).toString("base64"),
          "client-key-data": Buffer.from(key).toString("base64"),
        },
      },
    ],
  });

describe("agent PKI scan (certificates generated in the test, temp host root)", function () {
  this.timeout(30_000);
  let root = "";
  const put = (path: string, text: string) => {
    mkdirSync(join(root, path, ".."), { recursive: true });
    writeFileSync(join(root, path), text, { mode: 0o600 });
  };
  beforeEach(() => (root = mkdtempSync(join(tmpdir(), "csp-pki-"))));
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it("reports path, subject and expiry of every PKI certificate, kubeconfig and kubelet certificate; never a key", async () => {
    const ca = await certificate("kubernetes", 3650);
    const apiserver = await certificate("kube-apiserver", 3);
    const etcd = await certificate("etcd-server", 200);
    const admin = await certificate("kubernetes-admin", 20);
    const kubeletClient = await certificate("system:node:cp-1", 40);
    const oldClient = await certificate("system:node:cp-1-old", -30);
    const serving = await certificate("cp-1@1700000000", 300);
    put("etc/kubernetes/pki/ca.crt", ca.cert);
    put("etc/kubernetes/pki/ca.key", ca.key);
    put("etc/kubernetes/pki/apiserver.crt", apiserver.cert);
    put("etc/kubernetes/pki/apiserver.key", apiserver.key);
    put("etc/kubernetes/pki/etcd/server.crt", etcd.cert);
    put("etc/kubernetes/pki/broken.crt", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n");
    put("etc/kubernetes/admin.conf", kubeconfig("kubernetes-admin", admin.cert, admin.key));
    // kubeadm's kubelet.conf names the rotated client certificate (key and certificate in one file).
    put(
      "etc/kubernetes/kubelet.conf",
      stringify({
        users: [
          {
            name: "default-auth",
            user: {
              "client-certificate": "/var/lib/kubelet/pki/kubelet-client-current.pem",
              "client-key": "/var/lib/kubelet/pki/kubelet-client-current.pem",
            },
          },
        ],
      }),
    );
    put("var/lib/kubelet/pki/kubelet-client-2026-01-01.pem", kubeletClient.cert + kubeletClient.key);
    // A client certificate left behind by an earlier rotation: expired, used by nothing, not reported.
    put("var/lib/kubelet/pki/kubelet-client-2025-01-01.pem", oldClient.cert + oldClient.key);
    symlinkSync(
      "/var/lib/kubelet/pki/kubelet-client-2026-01-01.pem",
      join(root, "var/lib/kubelet/pki/kubelet-client-current.pem"),
    );
    put("var/lib/kubelet/pki/kubelet.crt", serving.cert);

    const now = new Date();
    const report = await scanPki(root, now);
    const text = JSON.stringify(report);
    for (const k of [ca, apiserver, etcd, admin, kubeletClient, serving])
      expect(text).to.not.include(k.key.split("\n")[1]!);
    expect(text).to.not.include("PRIVATE KEY").and.not.include("BEGIN CERTIFICATE");
    // Soonest expiry first.
    expect(report.certificates.map((c) => `${c.path} ${c.subject}`)).to.deep.equal([
      "/etc/kubernetes/pki/apiserver.crt CN=kube-apiserver",
      "/etc/kubernetes/admin.conf#users[kubernetes-admin] CN=kubernetes-admin",
      "/var/lib/kubelet/pki/kubelet-client-current.pem CN=system:node:cp-1",
      "/etc/kubernetes/pki/etcd/server.crt CN=etcd-server",
      "/var/lib/kubelet/pki/kubelet.crt CN=cp-1@1700000000",
      "/etc/kubernetes/pki/ca.crt CN=kubernetes",
    ]);
    const apiserverEntry = report.certificates.find((c) => c.path.endsWith("apiserver.crt"))!;
    const left = (Date.parse(apiserverEntry.notAfter) - now.getTime()) / DAY;
    expect(left).to.be.within(2.9, 3.1);
    expect(report.errors).to.deep.equal([
      { path: "/etc/kubernetes/pki/broken.crt", error: "certificate 0 is not a valid X.509 certificate" },
    ]);
    // What the agent publishes parses back as it was.
    const parsed = parsePkiReport(text);
    expect(parsed.ok && parsed.value).to.deep.equal(report);
  });

  it("a node without kubeadm's layout reports nothing and no error; a certificate a kubeconfig names but the agent cannot see is said", async () => {
    const report = await scanPki(root);
    expect(report.certificates).to.deep.equal([]);
    expect(report.errors).to.equal(undefined);
    // The DaemonSet does not mount /var/lib/kubelet/pki by default (it holds the kubelet's key).
    put(
      "etc/kubernetes/kubelet.conf",
      "users: [{name: default-auth, user: {client-certificate: /var/lib/kubelet/pki/kubelet-client-current.pem}}]\n",
    );
    expect((await scanPki(root)).errors).to.deep.equal([
      {
        path: "/var/lib/kubelet/pki/kubelet-client-current.pem",
        error: "absent here, named by /etc/kubernetes/kubelet.conf",
      },
    ]);
  });

  it("a symlink out of the host root is read inside it, never outside", async () => {
    const outside = mkdtempSync(join(tmpdir(), "csp-pki-outside-"));
    try {
      const c = await certificate("outside", 1);
      writeFileSync(join(outside, "x.crt"), c.cert);
      mkdirSync(join(root, "etc/kubernetes/pki"), { recursive: true });
      symlinkSync(join(outside, "x.crt"), join(root, "etc/kubernetes/pki/evil.crt"));
      const report = await scanPki(root);
      expect(report.certificates).to.deep.equal([]);
    } finally {
      rmSync(outside, { recursive: true, force: true });
    }
  });

  it("garbage is an error naming the file, never a crash, never its content", () => {
    expect(certificatesOf("hello", "/x.crt").errors).to.deep.equal([
      { path: "/x.crt", error: "no PEM or DER certificate in it" },
    ]);
    const secret = "c2VjcmV0LWtleS1tYXRlcmlhbC10aGF0LW11c3Qtbm90LWxlYWs=";
    const r = kubeconfigCertificates(`users: [ {name: a, user: {client-key-data: ${secret}`, "/k.conf");
    expect(JSON.stringify(r)).to.not.include(secret);
    expect(r.errors).to.deep.equal([{ path: "/k.conf", error: "not a YAML kubeconfig" }]);
    expect(kubeconfigCertificates("users: 3", "/k.conf")).to.deep.equal({ certs: [], files: [], errors: [] });
  });

  it("a report that is not one is refused whole", () => {
    const good = { version: 1, scannedAt: new Date().toISOString(), certificates: [] };
    expect(parsePkiReport(JSON.stringify(good)).ok).to.equal(true);
    for (const bad of [
      "nope",
      JSON.stringify({ ...good, version: 2 }),
      JSON.stringify({
        ...good,
        certificates: [{ path: "relative", subject: "", notAfter: good.scannedAt }],
      }),
      JSON.stringify({ ...good, certificates: [{ path: "/a", subject: "", notAfter: "soon" }] }),
    ])
      expect(parsePkiReport(bad).ok, bad).to.equal(false);
  });

  it("a large CA bundle never pushes an expiring leaf out of the report: the soonest expiries are listed", async () => {
    const ca = await certificate("corp-ca", 3650);
    const etcd = await certificate("kube-etcd", 2);
    const kubelet = await certificate("system:node:cp-1", -1);
    put("etc/kubernetes/pki/ca.crt", ca.cert.repeat(250));
    put("etc/kubernetes/pki/etcd/server.crt", etcd.cert);
    put("var/lib/kubelet/pki/kubelet-client-current.pem", kubelet.cert + kubelet.key);
    const report = await scanPki(root);
    expect(report.certificates).to.have.length(200);
    expect(report.certificates.slice(0, 2).map((c) => c.path)).to.deep.equal([
      "/var/lib/kubelet/pki/kubelet-client-current.pem",
      "/etc/kubernetes/pki/etcd/server.crt",
    ]);
    expect(report).to.include({ truncated: true, omitted: 52 });
    expect(report.undecoded).to.equal(undefined);
    const parsed = parsePkiReport(JSON.stringify(report));
    expect(parsed.ok && parsed.value).to.deep.equal(report);
  });

  it("decodes at most its budget, single certificates before bundles, and counts the rest", async () => {
    const ca = await certificate("bundle", 3650);
    const leaf = await certificate("zz-leaf", 5);
    put("etc/kubernetes/pki/a-bundle.crt", ca.cert.repeat(700));
    put("etc/kubernetes/pki/b-bundle.crt", ca.cert.repeat(600));
    put("etc/kubernetes/pki/zz-leaf.crt", leaf.cert);
    const report = await scanPki(root);
    expect(report.undecoded).to.equal(700 + 600 + 1 - MAX_DECODED_CERTIFICATES);
    expect(report.certificates[0]!.path).to.equal("/etc/kubernetes/pki/zz-leaf.crt");
  });

  it("reads a DER-encoded .crt", async () => {
    const c = await certificate("der-cert", 4);
    mkdirSync(join(root, "etc/kubernetes/pki"), { recursive: true });
    writeFileSync(join(root, "etc/kubernetes/pki/der.crt"), new X509Certificate(c.cert).raw);
    const report = await scanPki(root);
    expect(report.certificates.map((x) => `${x.path} ${x.subject}`)).to.deep.equal([
      "/etc/kubernetes/pki/der.crt CN=der-cert",
    ]);
    expect(report.errors).to.equal(undefined);
  });

  it("a file name or user name that forges lines or reorders text is cleaned in the report", async () => {
    const c = await certificate("x", 4);
    put("etc/kubernetes/pki/a\u202eb\u0085c\u2028d.crt", c.cert);
    const r = kubeconfigCertificates(
      `users: [{name: "u\\u2066v", user: {client-certificate-data: ${Buffer.from(c.cert).toString("base64")}}}]`,
      "/etc/kubernetes/admin.conf",
    );
    expect(r.certs.map((x) => x.path)).to.deep.equal(["/etc/kubernetes/admin.conf#users[u?v]"]);
    const report = await scanPki(root);
    expect(report.certificates.map((x) => x.path)).to.deep.equal(["/etc/kubernetes/pki/a?b?c?d.crt"]);
  });

  it("a kubeconfig YAML warning (an unknown tag) is never printed: it would quote client-key-data", async () => {
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(`${w.name}: ${w.message}`);
    process.on("warning", onWarning);
    try {
      const secret = "LS0tLS1CRUdJTiBQUklWQVRFIEtFWS0tLS0tCk1JSUV2UUlCQURBTkJna3Foa2lHOXcwQkFRRUZB";
      kubeconfigCertificates(
        `users:\n- name: admin\n  user:\n    client-key-data: !secret ${secret}\n`,
        "/etc/kubernetes/admin.conf",
      );
      await new Promise((r) => setImmediate(r));
      expect(warnings).to.deep.equal([]);
    } finally {
      process.off("warning", onWarning);
    }
  });
});
