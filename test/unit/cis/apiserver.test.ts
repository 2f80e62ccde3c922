import { expect } from "chai";
import { APISERVER_CHECKS, DEFAULT_ON_ADMISSION_PLUGINS } from "../../../src/cis/checks/apiserver.js";
import { api, apiCheck } from "./helpers.js";

const AUTHZ_CONFIG = (types: string[]) =>
  `apiVersion: apiserver.config.k8s.io/v1
kind: AuthorizationConfiguration
authorizers:
${types.map((t) => (t === "Webhook" ? `  - type: Webhook\n    name: hook\n    webhook: {}` : `  - type: ${t}\n    name: ${t.toLowerCase()}`)).join("\n")}
`;

const AUDIT_POLICY = `apiVersion: audit.k8s.io/v1
kind: Policy
rules:
  - level: None
    users: ["system:kube-proxy"]
  - level: Metadata
`;

const ENCRYPTION = (resources: string, first: string) => `apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
  - resources: [${resources}]
    providers:
      - ${first}: {}
      - identity: {}
`;

const status = (o: { status: string }) => o.status;

describe("cis/apiserver: check list", () => {
  it("covers 1.2.1 to 1.2.30 in order", () => {
    expect(APISERVER_CHECKS.map((c) => c.id)).to.deep.equal(
      Array.from({ length: 30 }, (_, i) => `1.2.${i + 1}`),
    );
    expect(APISERVER_CHECKS.filter((c) => !c.automated).map((c) => c.id)).to.deep.equal([
      "1.2.1",
      "1.2.3",
      "1.2.9",
      "1.2.11",
      "1.2.20",
      "1.2.27",
      "1.2.28",
      "1.2.29",
    ]);
  });

  it("knows the v1.36 default-on admission plugins (NodeRestriction off, ServiceAccount on)", () => {
    expect(DEFAULT_ON_ADMISSION_PLUGINS.has("NodeRestriction")).to.equal(false);
    expect(DEFAULT_ON_ADMISSION_PLUGINS.has("ServiceAccount")).to.equal(true);
    expect(DEFAULT_ON_ADMISSION_PLUGINS.has("AlwaysAdmit")).to.equal(false);
    expect(DEFAULT_ON_ADMISSION_PLUGINS.size).to.equal(27);
  });
});

describe("cis/apiserver 1.2.1 anonymous auth", () => {
  it("passes with --anonymous-auth=false in any ParseBool spelling", () => {
    for (const v of ["false", "0", "f", "F", "FALSE", "False"]) {
      expect(status(apiCheck("1.2.1", [`--anonymous-auth=${v}`, "--authorization-mode=RBAC"])), v).to.equal(
        "Pass",
      );
    }
  });
  it("fails when unset (default true)", () => {
    const r = apiCheck("1.2.1", ["--authorization-mode=Node,RBAC"]);
    expect(r).to.deep.equal({
      status: "Fail",
      evidence:
        "--anonymous-auth is not set; the kube-apiserver default is true: anonymous requests reach every endpoint as system:anonymous",
    });
  });
  it("fails when given twice and the last value is true", () => {
    const r = apiCheck("1.2.1", [
      "--anonymous-auth=false",
      "--authorization-mode=RBAC",
      "--anonymous-auth=true",
    ]);
    expect(r.status).to.equal("Fail");
    expect(r.evidence).to.contain("the last one wins over --anonymous-auth=false");
  });
  it("fails on `--anonymous-auth false` (two items): the bool flag does not take the next item", () => {
    const r = apiCheck("1.2.1", ["--anonymous-auth", "false", "--authorization-mode=RBAC"]);
    expect(r.status).to.equal("Fail");
    expect(r.evidence).to.contain('"false" after it is a stray argument');
  });
  it("is Unknown for a value ParseBool rejects", () => {
    const r = apiCheck("1.2.1", ["--anonymous-auth=no", "--authorization-mode=RBAC"]);
    expect(r.status).to.equal("Unknown");
    expect(r.evidence).to.contain("--anonymous-auth=no is not a valid boolean");
  });
  it("passes when anonymous auth is reset by the AlwaysAllow authorizer, pointing at 1.2.6", () => {
    const r = apiCheck("1.2.1", ["--authorization-mode=AlwaysAllow"]);
    expect(r.status).to.equal("Pass");
    expect(r.evidence).to.contain("resets anonymous auth to false");
  });
  it("reads anonymous from --authentication-config when it configures it", () => {
    const file = (body: string) => ({
      "authentication-config": `apiVersion: apiserver.config.k8s.io/v1\nkind: AuthenticationConfiguration\n${body}`,
    });
    const argv = ["--authentication-config=/etc/kubernetes/authn.yaml", "--authorization-mode=RBAC"];
    expect(status(apiCheck("1.2.1", argv, file("anonymous:\n  enabled: false\n")))).to.equal("Pass");
    expect(status(apiCheck("1.2.1", argv, file("anonymous:\n  enabled: true\n")))).to.equal("Fail");
    const limited = apiCheck(
      "1.2.1",
      argv,
      file("anonymous:\n  enabled: true\n  conditions:\n  - path: /livez\n  - path: /readyz\n"),
    );
    expect(limited).to.deep.equal({
      status: "Manual",
      evidence:
        "anonymous.enabled=true for paths /livez, /readyz in --authentication-config=/etc/kubernetes/authn.yaml: anonymous requests are limited to these paths; confirm they expose nothing sensitive",
    });
    // No anonymous section: the flag (default true) decides.
    expect(status(apiCheck("1.2.1", argv, file("jwt: []\n")))).to.equal("Fail");
    // Both the file and the flag: kube-apiserver refuses to start.
    expect(
      status(apiCheck("1.2.1", [...argv, "--anonymous-auth=false"], file("anonymous:\n  enabled: false\n"))),
    ).to.equal("Unknown");
  });
  it("is Unknown when the --authentication-config file cannot be read", () => {
    const r = apiCheck("1.2.1", ["--authentication-config=/etc/kubernetes/authn.yaml"], {
      "authentication-config": null,
    });
    expect(r.status).to.equal("Unknown");
    expect(r.evidence).to.contain("cannot read");
  });
});

describe("cis/apiserver 1.2.2 token auth file", () => {
  it("passes when unset or empty, fails when set", () => {
    expect(status(apiCheck("1.2.2", []))).to.equal("Pass");
    expect(status(apiCheck("1.2.2", ["--token-auth-file="]))).to.equal("Pass");
    expect(apiCheck("1.2.2", ["--token-auth-file", "/etc/tokens.csv"])).to.deep.equal({
      status: "Fail",
      evidence: "--token-auth-file /etc/tokens.csv: static bearer tokens are accepted",
    });
  });
  it("is Unknown when the value comes from a runtime-only env var", () => {
    expect(status(apiCheck("1.2.2", [{ text: "--token-auth-file=$(T)", unresolved: "valueFrom" }]))).to.equal(
      "Unknown",
    );
  });
});

describe("cis/apiserver admission plugins (1.2.3, 1.2.9-1.2.14)", () => {
  it("1.2.3 passes when DenyServiceExternalIPs is enabled, is Manual otherwise", () => {
    expect(status(apiCheck("1.2.3", ["--enable-admission-plugins=DenyServiceExternalIPs"]))).to.equal("Pass");
    expect(status(apiCheck("1.2.3", []))).to.equal("Manual");
  });
  it("1.2.9 EventRateLimit and 1.2.11 AlwaysPullImages: Pass when on, Manual when off", () => {
    expect(status(apiCheck("1.2.9", ["--enable-admission-plugins=EventRateLimit"]))).to.equal("Pass");
    expect(status(apiCheck("1.2.9", ["--enable-admission-plugins=NodeRestriction"]))).to.equal("Manual");
    expect(
      status(
        apiCheck("1.2.11", [
          "--enable-admission-plugins=NodeRestriction",
          "--enable-admission-plugins=AlwaysPullImages",
        ]),
      ),
    ).to.equal("Pass");
    expect(status(apiCheck("1.2.11", []))).to.equal("Manual");
  });
  it("1.2.10 fails when AlwaysAdmit is enabled, passes by default", () => {
    expect(status(apiCheck("1.2.10", []))).to.equal("Pass");
    expect(status(apiCheck("1.2.10", ["--enable-admission-plugins=NodeRestriction,AlwaysAdmit"]))).to.equal(
      "Fail",
    );
    expect(status(apiCheck("1.2.10", ["--admission-control=AlwaysAdmit"]))).to.equal("Fail");
  });
  it("1.2.12 ServiceAccount: on by default, fails when disabled in a second --disable-admission-plugins", () => {
    expect(apiCheck("1.2.12", ["--enable-admission-plugins=NodeRestriction"])).to.deep.equal({
      status: "Pass",
      evidence:
        "ServiceAccount is on by default in kube-apiserver v1.36 and not disabled (--enable-admission-plugins=NodeRestriction)",
    });
    const r = apiCheck("1.2.12", [
      "--disable-admission-plugins=DefaultStorageClass",
      "--disable-admission-plugins",
      "ServiceAccount",
    ]);
    expect(r).to.deep.equal({
      status: "Fail",
      evidence:
        "ServiceAccount is disabled by --disable-admission-plugins=DefaultStorageClass --disable-admission-plugins ServiceAccount (given 2 times; the lists append)",
    });
  });
  it("1.2.12 fails with the deprecated --admission-control listing plugins without ServiceAccount", () => {
    const r = apiCheck("1.2.12", ["--admission-control=NamespaceLifecycle,NodeRestriction"]);
    expect(r.status).to.equal("Fail");
    expect(r.evidence).to.contain("exactly the listed plugins run");
  });
  it("1.2.13 NamespaceLifecycle passes by default and fails when disabled", () => {
    expect(status(apiCheck("1.2.13", []))).to.equal("Pass");
    expect(status(apiCheck("1.2.13", ["--disable-admission-plugins=NamespaceLifecycle"]))).to.equal("Fail");
  });
  it("1.2.14 NodeRestriction is not on by default: fails unless enabled, also across split enable lists", () => {
    expect(apiCheck("1.2.14", [])).to.deep.equal({
      status: "Fail",
      evidence:
        "NodeRestriction is not on by default in kube-apiserver v1.36 and not enabled (--enable-admission-plugins is not set)",
    });
    expect(
      status(
        apiCheck("1.2.14", [
          "--enable-admission-plugins=PodNodeSelector",
          "--enable-admission-plugins=NodeRestriction",
        ]),
      ),
    ).to.equal("Pass");
  });
  it("is Unknown for combinations kube-apiserver refuses to start with", () => {
    const overlap = apiCheck("1.2.14", [
      "--enable-admission-plugins=NodeRestriction",
      "--disable-admission-plugins=NodeRestriction",
    ]);
    expect(overlap).to.deep.equal({
      status: "Unknown",
      evidence:
        "NodeRestriction in both --enable-admission-plugins and --disable-admission-plugins; kube-apiserver refuses to start",
    });
    expect(
      status(
        apiCheck("1.2.12", [
          "--admission-control=ServiceAccount",
          "--enable-admission-plugins=NodeRestriction",
        ]),
      ),
    ).to.equal("Unknown");
    const typo = apiCheck("1.2.14", ["--enable-admission-plugins=NodeRestrictoin"]);
    expect(typo.status).to.equal("Unknown");
    expect(typo.evidence).to.contain(
      '"NodeRestrictoin", which is not a kube-apiserver v1.36 admission plugin',
    );
  });
});

describe("cis/apiserver 1.2.4, 1.2.5, 1.2.23-1.2.26 required files", () => {
  it("1.2.4 needs both the kubelet client certificate and key", () => {
    expect(
      status(
        apiCheck("1.2.4", ["--kubelet-client-certificate=/pki/c.crt", "--kubelet-client-key=/pki/c.key"]),
      ),
    ).to.equal("Pass");
    expect(apiCheck("1.2.4", ["--kubelet-client-certificate=/pki/c.crt"])).to.deep.equal({
      status: "Fail",
      evidence: "--kubelet-client-key is not set; --kubelet-client-certificate=/pki/c.crt",
    });
    expect(
      apiCheck("1.2.4", ["--kubelet-client-certificate=/pki/c.crt", "--kubelet-client-key="]).evidence,
    ).to.equal(
      "--kubelet-client-key= is empty, which kube-apiserver treats as not set; --kubelet-client-certificate=/pki/c.crt",
    );
  });
  it("1.2.5 kubelet certificate authority", () => {
    expect(status(apiCheck("1.2.5", ["--kubelet-certificate-authority", "/pki/ca.crt"]))).to.equal("Pass");
    expect(status(apiCheck("1.2.5", []))).to.equal("Fail");
    expect(
      status(apiCheck("1.2.5", [{ text: "--kubelet-certificate-authority=$(CA)", unresolved: "valueFrom" }])),
    ).to.equal("Unknown");
  });
  it("1.2.23 etcd client cert/key, 1.2.24 serving cert/key, 1.2.25 client CA, 1.2.26 etcd CA", () => {
    expect(status(apiCheck("1.2.23", ["--etcd-certfile=/a", "--etcd-keyfile=/b"]))).to.equal("Pass");
    expect(status(apiCheck("1.2.23", ["--etcd-keyfile=/b"]))).to.equal("Fail");
    expect(status(apiCheck("1.2.24", ["--tls-cert-file=/a", "--tls-private-key-file=/b"]))).to.equal("Pass");
    expect(status(apiCheck("1.2.24", ["--tls-cert-file=/a"]))).to.equal("Fail");
    expect(status(apiCheck("1.2.25", ["--client-ca-file=/ca"]))).to.equal("Pass");
    expect(status(apiCheck("1.2.25", []))).to.equal("Fail");
    expect(status(apiCheck("1.2.26", ["--etcd-cafile=/ca"]))).to.equal("Pass");
    expect(status(apiCheck("1.2.26", ["--etcd-cafile="]))).to.equal("Fail");
  });
});

describe("cis/apiserver 1.2.6-1.2.8 authorizers", () => {
  it("pass with Node,RBAC", () => {
    for (const id of ["1.2.6", "1.2.7", "1.2.8"]) {
      expect(apiCheck(id, ["--authorization-mode=Node,RBAC"])).to.deep.equal({
        status: "Pass",
        evidence: "--authorization-mode=Node,RBAC (effective: Node, RBAC)",
      });
    }
  });
  it("append --authorization-mode given twice (as kube-apiserver v1.36 does)", () => {
    const argv = ["--authorization-mode=Node", "--authorization-mode=RBAC"];
    expect(status(apiCheck("1.2.7", argv))).to.equal("Pass");
    expect(status(apiCheck("1.2.8", argv))).to.equal("Pass");
    expect(
      status(apiCheck("1.2.6", ["--authorization-mode=RBAC", "--authorization-mode", "AlwaysAllow"])),
    ).to.equal("Fail");
  });
  it("fail when unset or empty: kube-apiserver falls back to AlwaysAllow", () => {
    expect(apiCheck("1.2.6", [])).to.deep.equal({
      status: "Fail",
      evidence:
        "neither --authorization-mode nor --authorization-config is set; the kube-apiserver default is AlwaysAllow: AlwaysAllow authorizes every request",
    });
    expect(status(apiCheck("1.2.6", ["--authorization-mode="]))).to.equal("Fail");
    expect(status(apiCheck("1.2.8", ["--authorization-mode="]))).to.equal("Fail");
  });
  it("1.2.7 fails without Node, 1.2.8 fails without RBAC", () => {
    expect(status(apiCheck("1.2.7", ["--authorization-mode", "RBAC"]))).to.equal("Fail");
    expect(
      status(
        apiCheck("1.2.8", ["--authorization-mode=Node,Webhook", "--authorization-webhook-config-file=/w"]),
      ),
    ).to.equal("Fail");
  });
  it("are Unknown for modes kube-apiserver rejects (repeated, unknown, spaces kept by CSV)", () => {
    expect(
      status(apiCheck("1.2.6", ["--authorization-mode=Node,RBAC", "--authorization-mode=RBAC"])),
    ).to.equal("Unknown");
    expect(status(apiCheck("1.2.6", ["--authorization-mode=Node,rbac"]))).to.equal("Unknown");
    expect(apiCheck("1.2.8", ["--authorization-mode=Node, RBAC"]).evidence).to.contain(
      '" RBAC" is not a valid authorization mode',
    );
  });
  it("read the authorizer chain from --authorization-config", () => {
    const argv = ["--authorization-config=/etc/kubernetes/authz.yaml"];
    const ok = { "authorization-config": AUTHZ_CONFIG(["Node", "RBAC", "Webhook"]) };
    expect(apiCheck("1.2.6", argv, ok)).to.deep.equal({
      status: "Pass",
      evidence: "authorizers in --authorization-config=/etc/kubernetes/authz.yaml: [Node, RBAC, Webhook]",
    });
    expect(status(apiCheck("1.2.7", argv, ok))).to.equal("Pass");
    expect(
      status(apiCheck("1.2.8", argv, { "authorization-config": AUTHZ_CONFIG(["Node", "Webhook"]) })),
    ).to.equal("Fail");
    expect(
      status(apiCheck("1.2.6", argv, { "authorization-config": AUTHZ_CONFIG(["RBAC", "AlwaysAllow"]) })),
    ).to.equal("Fail");
  });
  it("are Unknown when the --authorization-config file is unreadable, invalid, or combined with --authorization-mode", () => {
    const argv = ["--authorization-config=/etc/kubernetes/authz.yaml"];
    const unreadable = apiCheck("1.2.6", argv, { "authorization-config": null });
    expect(unreadable.status).to.equal("Unknown");
    expect(unreadable.evidence).to.equal(
      "--authorization-config=/etc/kubernetes/authz.yaml: cannot read /etc/kubernetes/authz.yaml: ENOENT",
    );
    expect(status(apiCheck("1.2.6", argv, { "authorization-config": "kind: Policy\n" }))).to.equal("Unknown");
    expect(
      status(apiCheck("1.2.6", argv, { "authorization-config": AUTHZ_CONFIG(["RBAC", "RBAC"]) })),
    ).to.equal("Unknown");
    expect(
      status(
        apiCheck("1.2.6", [...argv, "--authorization-mode=Node,RBAC"], {
          "authorization-config": AUTHZ_CONFIG(["Node", "RBAC"]),
        }),
      ),
    ).to.equal("Unknown");
  });
});

describe("cis/apiserver 1.2.15 profiling, 1.2.21 service account lookup, 1.2.30 token expiration", () => {
  it("1.2.15", () => {
    expect(status(apiCheck("1.2.15", ["--profiling=false"]))).to.equal("Pass");
    expect(status(apiCheck("1.2.15", []))).to.equal("Fail");
    expect(status(apiCheck("1.2.15", ["--profiling=false", "--profiling"]))).to.equal("Fail");
    expect(status(apiCheck("1.2.15", ["--profiling=off"]))).to.equal("Unknown");
  });
  it("1.2.21", () => {
    expect(status(apiCheck("1.2.21", []))).to.equal("Pass");
    expect(status(apiCheck("1.2.21", ["--service-account-lookup=t"]))).to.equal("Pass");
    expect(status(apiCheck("1.2.21", ["--service-account-lookup=0"]))).to.equal("Fail");
    expect(status(apiCheck("1.2.21", ["--service-account-lookup=nope"]))).to.equal("Unknown");
  });
  it("1.2.30", () => {
    expect(status(apiCheck("1.2.30", ["--service-account-extend-token-expiration=false"]))).to.equal("Pass");
    expect(apiCheck("1.2.30", [])).to.deep.equal({
      status: "Fail",
      evidence:
        "--service-account-extend-token-expiration is not set; the kube-apiserver default is true: admission-injected tokens are valid for up to a year",
    });
  });
});

describe("cis/apiserver 1.2.16-1.2.19 audit log", () => {
  const withPolicy = [
    "--audit-log-path=/var/log/audit.log",
    "--audit-policy-file=/etc/kubernetes/audit.yaml",
  ];
  it("1.2.16 passes with a log path and a policy that records something", () => {
    expect(apiCheck("1.2.16", withPolicy, { "audit-policy-file": AUDIT_POLICY })).to.deep.equal({
      status: "Pass",
      evidence: "--audit-log-path=/var/log/audit.log with audit policy /etc/kubernetes/audit.yaml",
    });
  });
  it("1.2.16 fails without a log path, or with a path but no policy (nothing is recorded)", () => {
    expect(status(apiCheck("1.2.16", []))).to.equal("Fail");
    expect(apiCheck("1.2.16", ["--audit-log-path=/var/log/audit.log"])).to.deep.equal({
      status: "Fail",
      evidence:
        "--audit-log-path=/var/log/audit.log but --audit-policy-file is not set: without an audit policy kube-apiserver records no events to the log",
    });
  });
  it("1.2.16 fails when the policy's first catch-all rule is level None", () => {
    const policy =
      "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n  - level: None\n  - level: Metadata\n";
    expect(status(apiCheck("1.2.16", withPolicy, { "audit-policy-file": policy }))).to.equal("Fail");
  });
  it("1.2.16 is Unknown when the policy cannot be read or has no rules", () => {
    expect(status(apiCheck("1.2.16", withPolicy, { "audit-policy-file": null }))).to.equal("Unknown");
    expect(
      status(
        apiCheck("1.2.16", withPolicy, {
          "audit-policy-file": "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules: []\n",
        }),
      ),
    ).to.equal("Unknown");
  });
  it("1.2.17 max age: 30 passes, 030 (octal 24) fails, default 366 passes, 0 keeps logs", () => {
    const p = ["--audit-log-path=/var/log/audit.log"];
    expect(status(apiCheck("1.2.17", [...p, "--audit-log-maxage=30"]))).to.equal("Pass");
    expect(apiCheck("1.2.17", [...p, "--audit-log-maxage=030"])).to.deep.equal({
      status: "Fail",
      evidence: "--audit-log-maxage=030 (Go reads 030 as 24): below 30",
    });
    expect(status(apiCheck("1.2.17", [...p, "--audit-log-maxage", "0x1e"]))).to.equal("Pass");
    expect(apiCheck("1.2.17", p).evidence).to.equal(
      "--audit-log-maxage is not set; the kube-apiserver default is 366",
    );
    expect(status(apiCheck("1.2.17", [...p, "--audit-log-maxage=0"]))).to.equal("Pass");
    expect(status(apiCheck("1.2.17", [...p, "--audit-log-maxage=thirty"]))).to.equal("Unknown");
    expect(status(apiCheck("1.2.17", [...p, "--audit-log-maxage=-1"]))).to.equal("Unknown");
  });
  it("1.2.17-1.2.19 fail with the reason when no audit log is written at all", () => {
    for (const id of ["1.2.17", "1.2.18", "1.2.19"]) {
      const r = apiCheck(id, []);
      expect(r.status, id).to.equal("Fail");
      expect(r.evidence, id).to.contain("--audit-log-path is not set").and.contain("1.2.16");
    }
    expect(status(apiCheck("1.2.18", ["--audit-log-path="]))).to.equal("Fail");
  });
  it("1.2.17-1.2.19 do not apply when logging to stdout (rotation flags have no effect)", () => {
    expect(status(apiCheck("1.2.19", ["--audit-log-path=-"]))).to.equal("NotApplicable");
    expect(status(apiCheck("1.2.17", ["--audit-log-path", "-"]))).to.equal("NotApplicable");
  });
  it("1.2.18 max backup and 1.2.19 max size", () => {
    const p = ["--audit-log-path=/var/log/audit.log"];
    expect(status(apiCheck("1.2.18", [...p, "--audit-log-maxbackup=10"]))).to.equal("Pass");
    expect(status(apiCheck("1.2.18", [...p, "--audit-log-maxbackup=5"]))).to.equal("Fail");
    expect(
      status(apiCheck("1.2.18", [...p, "--audit-log-maxbackup=10", "--audit-log-maxbackup=5"])),
    ).to.equal("Fail");
    expect(status(apiCheck("1.2.19", [...p]))).to.equal("Pass");
    expect(status(apiCheck("1.2.19", [...p, "--audit-log-maxsize=50"]))).to.equal("Fail");
    expect(apiCheck("1.2.19", [...p, "--audit-log-maxsize=0"]).evidence).to.contain("0 disables rotation");
  });
});

describe("cis/apiserver 1.2.20 request timeout, 1.2.22 service account keys", () => {
  it("1.2.20 reports the effective timeout for a human to judge", () => {
    expect(apiCheck("1.2.20", [])).to.deep.equal({
      status: "Manual",
      evidence:
        "--request-timeout is not set; the kube-apiserver default is 1m0s (effective 1m0s); whether this is appropriate depends on the cluster",
    });
    expect(apiCheck("1.2.20", ["--request-timeout", "300s"]).evidence).to.contain("effective 5m0s");
    expect(status(apiCheck("1.2.20", ["--request-timeout=5 minutes"]))).to.equal("Unknown");
  });
  it("1.2.22 needs an explicit key file", () => {
    expect(status(apiCheck("1.2.22", ["--service-account-key-file=/pki/sa.pub"]))).to.equal("Pass");
    expect(status(apiCheck("1.2.22", []))).to.equal("Fail");
    expect(status(apiCheck("1.2.22", ["--service-account-signing-endpoint=/run/signer.sock"]))).to.equal(
      "Manual",
    );
  });
});

describe("cis/apiserver 1.2.27-1.2.28 encryption at rest", () => {
  const argv = ["--encryption-provider-config=/etc/kubernetes/enc.yaml"];
  it("1.2.27 passes when set, fails when not", () => {
    expect(status(apiCheck("1.2.27", argv))).to.equal("Pass");
    expect(status(apiCheck("1.2.27", []))).to.equal("Fail");
  });
  it("1.2.28 passes when secrets are written with aescbc, kms or secretbox", () => {
    expect(
      apiCheck("1.2.28", argv, { "encryption-provider-config": ENCRYPTION("secrets", "aescbc") }),
    ).to.deep.equal({
      status: "Pass",
      evidence: "secrets are written with the aescbc provider (/etc/kubernetes/enc.yaml)",
    });
    expect(
      status(apiCheck("1.2.28", argv, { "encryption-provider-config": ENCRYPTION('"*."', "kms") })),
    ).to.equal("Pass");
  });
  it("1.2.28 fails for identity or aesgcm first, secrets not covered, or no config", () => {
    expect(
      status(apiCheck("1.2.28", argv, { "encryption-provider-config": ENCRYPTION("secrets", "identity") })),
    ).to.equal("Fail");
    expect(
      status(apiCheck("1.2.28", argv, { "encryption-provider-config": ENCRYPTION("secrets", "aesgcm") })),
    ).to.equal("Fail");
    expect(
      status(apiCheck("1.2.28", argv, { "encryption-provider-config": ENCRYPTION("configmaps", "aescbc") })),
    ).to.equal("Fail");
    expect(status(apiCheck("1.2.28", []))).to.equal("Fail");
  });
  it("1.2.28 is Unknown when the file cannot be read or is not an EncryptionConfiguration", () => {
    expect(status(apiCheck("1.2.28", argv, { "encryption-provider-config": null }))).to.equal("Unknown");
    expect(status(apiCheck("1.2.28", argv, { "encryption-provider-config": "kind: Pod\n" }))).to.equal(
      "Unknown",
    );
  });
  it("never echoes key material in evidence", () => {
    const text = ENCRYPTION("secrets", "aescbc").replace(
      "aescbc: {}",
      "aescbc: {keys: [{name: k, secret: c2VjcmV0c2VjcmV0}]}",
    );
    expect(apiCheck("1.2.28", argv, { "encryption-provider-config": text }).evidence).to.not.contain(
      "c2VjcmV0",
    );
  });
});

describe("cis/apiserver 1.2.29 strong ciphers", () => {
  it("passes with a strong list, also split over two occurrences", () => {
    expect(
      status(
        apiCheck("1.2.29", [
          "--tls-cipher-suites=TLS_AES_128_GCM_SHA256,TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        ]),
      ),
    ).to.equal("Pass");
    expect(
      status(
        apiCheck("1.2.29", [
          "--tls-cipher-suites=TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
          "--tls-cipher-suites=TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305",
        ]),
      ),
    ).to.equal("Pass");
  });
  it("fails with a weak suite (even when appended by a second occurrence) or when unset", () => {
    const r = apiCheck("1.2.29", [
      "--tls-cipher-suites=TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
      "--tls-cipher-suites=TLS_RSA_WITH_AES_128_CBC_SHA",
    ]);
    expect(r.status).to.equal("Fail");
    expect(r.evidence).to.contain("not in the CIS strong list: TLS_RSA_WITH_AES_128_CBC_SHA");
    expect(apiCheck("1.2.29", []).evidence).to.contain(
      "Go's default suites, which include TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
    );
  });
  it("passes with a TLS 1.3 minimum; Unknown for a malformed list", () => {
    expect(status(apiCheck("1.2.29", ["--tls-min-version=VersionTLS13"]))).to.equal("Pass");
    expect(status(apiCheck("1.2.29", ['--tls-cipher-suites="TLS_AES_128_GCM_SHA256']))).to.equal("Unknown");
  });
});

describe("cis/apiserver inputs helper", () => {
  it("records unreadable files as failures with the reason", () => {
    const i = api(["--audit-policy-file=/x"], { "audit-policy-file": null });
    expect(i.files["audit-policy-file"]?.ok).to.equal(false);
  });
});
