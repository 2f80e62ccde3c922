import { expect } from "chai";
import { KUBELET_CHECKS } from "../../../src/cis/checks/kubelet.js";
import { KUBELET_CONFIG_PATH, WITH_CONFIG, kubeletCheck, kubeletConfig } from "./helpers.js";

const NO_CONFIG = "--kubeconfig=/etc/kubernetes/kubelet.conf";
const cfg = kubeletConfig;

describe("cis/kubelet: check list", () => {
  it("covers 4.2.1 to 4.2.14 in order", () => {
    expect(KUBELET_CHECKS.map((c) => c.id)).to.deep.equal(
      Array.from({ length: 14 }, (_, i) => `4.2.${i + 1}`),
    );
    expect(KUBELET_CHECKS.filter((c) => c.automated).map((c) => c.id)).to.deep.equal([
      "4.2.1",
      "4.2.2",
      "4.2.3",
      "4.2.6",
      "4.2.10",
    ]);
  });
});

describe("cis/kubelet 4.2.1 anonymous auth", () => {
  it("passes when the config disables it", async () => {
    expect(
      await kubeletCheck("4.2.1", WITH_CONFIG, cfg("authentication:\n  anonymous:\n    enabled: false\n")),
    ).to.deep.equal({
      status: "Pass",
      evidence: `authentication.anonymous.enabled: false in ${KUBELET_CONFIG_PATH}`,
    });
  });
  it("passes when absent from a config file (v1beta1 default false)", async () => {
    const r = await kubeletCheck("4.2.1", WITH_CONFIG, cfg(""));
    expect(r).to.deep.equal({
      status: "Pass",
      evidence: `authentication.anonymous.enabled is not set in ${KUBELET_CONFIG_PATH} and --anonymous-auth is not set; the kubelet.config.k8s.io/v1beta1 default is false`,
    });
  });
  it("fails for a flags-only kubelet (legacy default true)", async () => {
    expect(await kubeletCheck("4.2.1", NO_CONFIG)).to.deep.equal({
      status: "Fail",
      evidence:
        "the kubelet has no config file and --anonymous-auth is not set; the kubelet's command-line default is true: anonymous requests reach the kubelet API",
    });
  });
  it("lets a flag override the config file, both ways", async () => {
    const off = cfg("authentication:\n  anonymous:\n    enabled: false\n");
    const on = cfg("authentication:\n  anonymous:\n    enabled: true\n");
    const r = await kubeletCheck("4.2.1", `${WITH_CONFIG} --anonymous-auth=true`, off);
    expect(r).to.deep.equal({
      status: "Fail",
      evidence: `--anonymous-auth=true (overrides authentication.anonymous.enabled: false in ${KUBELET_CONFIG_PATH}): anonymous requests reach the kubelet API`,
    });
    expect((await kubeletCheck("4.2.1", `${WITH_CONFIG} --anonymous-auth=false`, on)).status).to.equal(
      "Pass",
    );
  });
  it("is Unknown when the config cannot be read, does not decode, or the flag is invalid", async () => {
    const missing = await kubeletCheck("4.2.1", WITH_CONFIG);
    expect(missing.status).to.equal("Unknown");
    expect(missing.evidence).to.contain(`cannot read ${KUBELET_CONFIG_PATH}`);
    expect(
      (await kubeletCheck("4.2.1", WITH_CONFIG, cfg('authentication:\n  anonymous:\n    enabled: "false"\n')))
        .status,
    ).to.equal("Unknown");
    expect((await kubeletCheck("4.2.1", `${NO_CONFIG} --anonymous-auth=nope`)).status).to.equal("Unknown");
  });
  it("but an explicit flag still decides when the config cannot be read", async () => {
    expect((await kubeletCheck("4.2.1", `${WITH_CONFIG} --anonymous-auth=false`)).status).to.equal("Pass");
  });
  it("reads YAML 1.1 booleans as the kubelet does", async () => {
    expect(
      (await kubeletCheck("4.2.1", WITH_CONFIG, cfg("authentication:\n  anonymous:\n    enabled: no\n")))
        .status,
    ).to.equal("Pass");
  });
});

describe("cis/kubelet 4.2.2 authorization mode", () => {
  it("passes with the config-file default Webhook, fails for flags-only (AlwaysAllow)", async () => {
    expect((await kubeletCheck("4.2.2", WITH_CONFIG, cfg(""))).status).to.equal("Pass");
    expect((await kubeletCheck("4.2.2", NO_CONFIG)).status).to.equal("Fail");
    expect((await kubeletCheck("4.2.2", `${NO_CONFIG} --authorization-mode Webhook`)).status).to.equal(
      "Pass",
    );
  });
  it("fails when a flag overrides Webhook with AlwaysAllow", async () => {
    const r = await kubeletCheck(
      "4.2.2",
      `${WITH_CONFIG} --authorization-mode=AlwaysAllow`,
      cfg("authorization:\n  mode: Webhook\n"),
    );
    expect(r.status).to.equal("Fail");
    expect(r.evidence).to.contain('overrides authorization.mode: "Webhook"');
  });
  it("is Unknown for a mode the kubelet rejects", async () => {
    expect((await kubeletCheck("4.2.2", WITH_CONFIG, cfg("authorization:\n  mode: RBAC\n"))).status).to.equal(
      "Unknown",
    );
  });
});

describe("cis/kubelet 4.2.3 client CA", () => {
  it("passes when set in the config or by flag, fails otherwise", async () => {
    expect(
      (
        await kubeletCheck(
          "4.2.3",
          WITH_CONFIG,
          cfg("authentication:\n  x509:\n    clientCAFile: /pki/ca.crt\n"),
        )
      ).status,
    ).to.equal("Pass");
    expect((await kubeletCheck("4.2.3", `${NO_CONFIG} --client-ca-file=/pki/ca.crt`)).status).to.equal(
      "Pass",
    );
    expect((await kubeletCheck("4.2.3", WITH_CONFIG, cfg(""))).status).to.equal("Fail");
    expect(
      (await kubeletCheck("4.2.3", WITH_CONFIG, cfg("authentication:\n  x509:\n    clientCAFile: 5\n")))
        .status,
    ).to.equal("Unknown");
  });
});

describe("cis/kubelet 4.2.4 read-only port", () => {
  it("passes when absent from a config file (v1beta1: 0), fails for flags-only (10255)", async () => {
    expect((await kubeletCheck("4.2.4", WITH_CONFIG, cfg(""))).status).to.equal("Pass");
    expect(await kubeletCheck("4.2.4", NO_CONFIG)).to.deep.equal({
      status: "Fail",
      evidence:
        "the kubelet has no config file and --read-only-port is not set; the kubelet's command-line default is 10255: the kubelet serves an unauthenticated read-only API on port 10255",
    });
  });
  it("follows flag overrides and Go integer parsing", async () => {
    expect(
      (await kubeletCheck("4.2.4", `${WITH_CONFIG} --read-only-port 0`, cfg("readOnlyPort: 10255\n"))).status,
    ).to.equal("Pass");
    expect(
      (await kubeletCheck("4.2.4", `${WITH_CONFIG} --read-only-port=10255`, cfg("readOnlyPort: 0\n"))).status,
    ).to.equal("Fail");
    expect((await kubeletCheck("4.2.4", `${NO_CONFIG} --read-only-port=00`)).status).to.equal("Pass");
  });
  it("is Unknown for a string port in the config", async () => {
    expect((await kubeletCheck("4.2.4", WITH_CONFIG, cfg('readOnlyPort: "10255"\n'))).status).to.equal(
      "Unknown",
    );
  });
});

describe("cis/kubelet 4.2.5 streaming idle timeout", () => {
  it("passes with the default, and with 0s in the config (the kubelet defaults it to 4h)", async () => {
    expect((await kubeletCheck("4.2.5", WITH_CONFIG, cfg(""))).status).to.equal("Pass");
    const zero = await kubeletCheck("4.2.5", WITH_CONFIG, cfg("streamingConnectionIdleTimeout: 0s\n"));
    expect(zero).to.deep.equal({
      status: "Pass",
      evidence: `streamingConnectionIdleTimeout: 0s in ${KUBELET_CONFIG_PATH} (the kubelet replaces 0 in its config with the default 4h0m0s) (effective 4h0m0s)`,
    });
  });
  it("fails when the flag sets 0 (flags are not re-defaulted)", async () => {
    expect(
      (
        await kubeletCheck(
          "4.2.5",
          `${WITH_CONFIG} --streaming-connection-idle-timeout=0`,
          cfg("streamingConnectionIdleTimeout: 5m\n"),
        )
      ).status,
    ).to.equal("Fail");
  });
  it("is Unknown for a number in the config or an invalid flag duration", async () => {
    expect(
      (await kubeletCheck("4.2.5", WITH_CONFIG, cfg("streamingConnectionIdleTimeout: 300\n"))).status,
    ).to.equal("Unknown");
    expect(
      (await kubeletCheck("4.2.5", `${NO_CONFIG} --streaming-connection-idle-timeout=5`)).status,
    ).to.equal("Unknown");
  });
});

describe("cis/kubelet 4.2.6 iptables util chains, 4.2.7 hostname override, 4.2.8 event QPS", () => {
  it("4.2.6 passes by default and fails when turned off", async () => {
    expect((await kubeletCheck("4.2.6", NO_CONFIG)).status).to.equal("Pass");
    expect(
      (await kubeletCheck("4.2.6", WITH_CONFIG, cfg("makeIPTablesUtilChains: false\n"))).status,
    ).to.equal("Fail");
    expect((await kubeletCheck("4.2.6", `${NO_CONFIG} --make-iptables-util-chains=false`)).status).to.equal(
      "Fail",
    );
  });
  it("4.2.7 passes when --hostname-override is not set and asks a human when it is", async () => {
    expect((await kubeletCheck("4.2.7", NO_CONFIG)).status).to.equal("Pass");
    expect((await kubeletCheck("4.2.7", `${NO_CONFIG} --hostname-override node-1`)).status).to.equal(
      "Manual",
    );
  });
  it("4.2.8 reports the effective eventRecordQPS for a human; Unknown when negative", async () => {
    expect(
      await kubeletCheck("4.2.8", `${WITH_CONFIG} --event-qps=0`, cfg("eventRecordQPS: 5\n")),
    ).to.deep.equal({
      status: "Manual",
      evidence: `--event-qps=0 (overrides eventRecordQPS: 5 in ${KUBELET_CONFIG_PATH}) (effective 0 events/s); whether this captures enough events depends on the cluster`,
    });
    expect((await kubeletCheck("4.2.8", WITH_CONFIG, cfg("eventRecordQPS: -1\n"))).status).to.equal(
      "Unknown",
    );
  });
});

describe("cis/kubelet 4.2.9 serving certificate, 4.2.10 client cert rotation, 4.2.11 server cert rotation", () => {
  it("4.2.9 passes with a cert/key pair or with serverTLSBootstrap", async () => {
    expect(
      (await kubeletCheck("4.2.9", `${NO_CONFIG} --tls-cert-file=/a.crt --tls-private-key-file=/a.key`))
        .status,
    ).to.equal("Pass");
    expect((await kubeletCheck("4.2.9", WITH_CONFIG, cfg("serverTLSBootstrap: true\n"))).status).to.equal(
      "Pass",
    );
  });
  it("4.2.9 fails with a self-signed certificate, half a pair, or bootstrap without the gate", async () => {
    expect((await kubeletCheck("4.2.9", WITH_CONFIG, cfg(""))).evidence).to.contain(
      "self-signed certificate",
    );
    expect((await kubeletCheck("4.2.9", WITH_CONFIG, cfg("tlsCertFile: /a.crt\n"))).status).to.equal("Fail");
    expect(
      (
        await kubeletCheck(
          "4.2.9",
          `${WITH_CONFIG} --feature-gates=RotateKubeletServerCertificate=false`,
          cfg("serverTLSBootstrap: true\n"),
        )
      ).status,
    ).to.equal("Fail");
  });
  it("4.2.10 fails when rotateCertificates is absent from the config: the v1beta1 default is false", async () => {
    expect(await kubeletCheck("4.2.10", WITH_CONFIG, cfg(""))).to.deep.equal({
      status: "Fail",
      evidence: `rotateCertificates is not set in ${KUBELET_CONFIG_PATH} and --rotate-certificates is not set; the kubelet.config.k8s.io/v1beta1 default is false: the kubelet's client certificate is not rotated`,
    });
  });
  it("4.2.10 passes when enabled in the config or by a bare flag, fails when a flag turns it off", async () => {
    expect((await kubeletCheck("4.2.10", WITH_CONFIG, cfg("rotateCertificates: true\n"))).status).to.equal(
      "Pass",
    );
    expect((await kubeletCheck("4.2.10", `${NO_CONFIG} --rotate-certificates`)).status).to.equal("Pass");
    expect(
      (
        await kubeletCheck(
          "4.2.10",
          `${WITH_CONFIG} --rotate-certificates=false`,
          cfg("rotateCertificates: true\n"),
        )
      ).status,
    ).to.equal("Fail");
  });
  it("4.2.11 passes with the gate (default on) and serverTLSBootstrap", async () => {
    expect(
      (await kubeletCheck("4.2.11", `${WITH_CONFIG} --rotate-server-certificates`, cfg(""))).status,
    ).to.equal("Pass");
  });
  it("4.2.11 fails when the gate is off (config or flag, the flag winning per key)", async () => {
    const off = cfg("serverTLSBootstrap: true\nfeatureGates:\n  RotateKubeletServerCertificate: false\n");
    expect((await kubeletCheck("4.2.11", WITH_CONFIG, off)).status).to.equal("Fail");
    expect(
      (
        await kubeletCheck(
          "4.2.11",
          `${WITH_CONFIG} --feature-gates=RotateKubeletServerCertificate=true`,
          off,
        )
      ).status,
    ).to.equal("Pass");
    const on = cfg("serverTLSBootstrap: true\nfeatureGates:\n  RotateKubeletServerCertificate: true\n");
    expect(
      (
        await kubeletCheck(
          "4.2.11",
          `${WITH_CONFIG} --feature-gates=Foo=true --feature-gates=RotateKubeletServerCertificate=false`,
          on,
        )
      ).status,
    ).to.equal("Fail");
  });
  it("4.2.11 fails when the gate is on but nothing requests a serving certificate, Manual for a static one", async () => {
    expect((await kubeletCheck("4.2.11", WITH_CONFIG, cfg(""))).evidence).to.contain(
      "the gate alone rotates nothing",
    );
    expect(
      (await kubeletCheck("4.2.11", WITH_CONFIG, cfg("tlsCertFile: /a.crt\ntlsPrivateKeyFile: /a.key\n")))
        .status,
    ).to.equal("Manual");
  });
  it("4.2.11 is Unknown for a malformed --feature-gates", async () => {
    expect(
      (await kubeletCheck("4.2.11", `${NO_CONFIG} --feature-gates=RotateKubeletServerCertificate`)).status,
    ).to.equal("Unknown");
  });
});

describe("cis/kubelet 4.2.12 strong ciphers", () => {
  it("passes with a strong list in the config (either ChaCha20 spelling)", async () => {
    const c = cfg(
      "tlsCipherSuites:\n- TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256\n- TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256\n",
    );
    expect((await kubeletCheck("4.2.12", WITH_CONFIG, c)).status).to.equal("Pass");
  });
  it("fails with Go defaults, or when a flag list replaces a strong config list with a weak one", async () => {
    expect((await kubeletCheck("4.2.12", WITH_CONFIG, cfg(""))).status).to.equal("Fail");
    const c = cfg("tlsCipherSuites:\n- TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256\n");
    const r = await kubeletCheck(
      "4.2.12",
      `${WITH_CONFIG} --tls-cipher-suites=TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA`,
      c,
    );
    expect(r.status).to.equal("Fail");
    expect(r.evidence).to.contain("not in the CIS strong list: TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA");
  });
  it("passes with a TLS 1.3 minimum", async () => {
    expect((await kubeletCheck("4.2.12", WITH_CONFIG, cfg("tlsMinVersion: VersionTLS13\n"))).status).to.equal(
      "Pass",
    );
  });
});

describe("cis/kubelet 4.2.13 pod PIDs limit, 4.2.14 seccomp default", () => {
  it("4.2.13 fails without a positive limit, passes with one", async () => {
    expect((await kubeletCheck("4.2.13", WITH_CONFIG, cfg(""))).status).to.equal("Fail");
    expect((await kubeletCheck("4.2.13", WITH_CONFIG, cfg("podPidsLimit: 0\n"))).status).to.equal("Fail");
    expect((await kubeletCheck("4.2.13", WITH_CONFIG, cfg("podPidsLimit: 4096\n"))).status).to.equal("Pass");
    expect((await kubeletCheck("4.2.13", `${NO_CONFIG} --pod-max-pids=1024`)).status).to.equal("Pass");
    expect((await kubeletCheck("4.2.13", WITH_CONFIG, cfg("podPidsLimit: 1.5\n"))).status).to.equal(
      "Unknown",
    );
  });
  it("4.2.14 passes when the config or the flag enables it, fails by default", async () => {
    expect((await kubeletCheck("4.2.14", WITH_CONFIG, cfg("seccompDefault: true\n"))).status).to.equal(
      "Pass",
    );
    expect((await kubeletCheck("4.2.14", `${NO_CONFIG} --seccomp-default`)).status).to.equal("Pass");
    expect((await kubeletCheck("4.2.14", WITH_CONFIG, cfg(""))).status).to.equal("Fail");
  });
  it("4.2.14: --seccomp-default=false cannot turn off seccompDefault: true (the kubelet ORs them)", async () => {
    const r = await kubeletCheck(
      "4.2.14",
      `${WITH_CONFIG} --seccomp-default=false`,
      cfg("seccompDefault: true\n"),
    );
    expect(r.status).to.equal("Pass");
    expect(r.evidence).to.contain("does not turn it off");
  });
});

describe("cis/kubelet drop-in directory", () => {
  it("applies drop-ins over the config file, and flags over both", async () => {
    const files = { "/etc/kubernetes/kubelet.conf.d/50-port.conf": cfg("readOnlyPort: 10255\n") };
    const line = `${WITH_CONFIG} --config-dir=/etc/kubernetes/kubelet.conf.d`;
    const r = await kubeletCheck("4.2.4", line, cfg("readOnlyPort: 0\n"), files);
    expect(r.status).to.equal("Fail");
    expect(r.evidence).to.contain(
      `readOnlyPort: 10255 in ${KUBELET_CONFIG_PATH} + drop-ins in /etc/kubernetes/kubelet.conf.d`,
    );
    expect(
      (await kubeletCheck("4.2.4", `${line} --read-only-port=0`, cfg("readOnlyPort: 0\n"), files)).status,
    ).to.equal("Pass");
  });
  it("stops at 4 MiB of drop-ins altogether, reporting Unknown instead of reading on", async () => {
    const pad = `# ${"x".repeat(1024 * 1024 - 100)}\n`;
    const files: Record<string, string> = {};
    for (let i = 0; i < 5; i++) files[`/etc/kubelet.d/${i}.conf`] = cfg(pad);
    const r = await kubeletCheck("4.2.1", `${WITH_CONFIG} --config-dir=/etc/kubelet.d`, cfg(""), files);
    expect(r.status).to.equal("Unknown");
    expect(r.evidence).to.contain(
      "the drop-ins in /etc/kubelet.d hold more than 4194304 characters together",
    );
  });
  it("keeps legacy defaults for drop-ins without a --config file", async () => {
    const files = { "/etc/kubelet.d/10.conf": cfg("seccompDefault: true\n") };
    expect((await kubeletCheck("4.2.1", "--config-dir=/etc/kubelet.d", undefined, files)).status).to.equal(
      "Fail",
    );
  });
});
