import { expect } from "chai";
import { stringFlag } from "../../../src/cis/parse/flags.js";
import { gatherApiServerInputs, jsonMergePatch } from "../../../src/cis/gather/inputs.js";
import {
  containerPathOnHost,
  expandEnvRefs,
  parseApiServerManifest,
} from "../../../src/cis/parse/manifest.js";
import type { ApiServerManifest } from "../../../src/cis/parse/manifest.js";
import { parseYamlMapping } from "../../../src/cis/parse/yaml.js";
import { KUBELET_CONFIG_PATH, kubelet, kubeletConfig, memoryReader } from "./helpers.js";

const POD = `apiVersion: v1
kind: Pod
metadata:
  name: kube-apiserver
  namespace: kube-system
spec:
  containers:
  - name: kube-apiserver
    image: registry.k8s.io/kube-apiserver:v1.36.3
    command:
    - /usr/local/bin/kube-apiserver
    - --authorization-mode=Node,RBAC
    - --audit-policy-file=$(CONF_DIR)/audit.yaml
    args:
    - --profiling=false
    - --token-auth-file=$(TOKENS)
    - --etcd-prefix=$$(literal)
    env:
    - name: CONF_DIR
      value: /etc/kubernetes/conf
    - name: TOKENS
      valueFrom:
        configMapKeyRef: {name: x, key: y}
    volumeMounts:
    - name: conf
      mountPath: /etc/kubernetes/conf
    - name: pki
      mountPath: /etc/kubernetes/pki
    - name: scratch
      mountPath: /scratch
  volumes:
  - name: conf
    hostPath: {path: /srv/k8s/conf, type: Directory}
  - name: pki
    hostPath: {path: /etc/kubernetes/pki}
  - name: scratch
    emptyDir: {}
`;

function manifest(text: string): ApiServerManifest {
  const m = parseApiServerManifest(text);
  if (!m.ok) throw new Error(m.reason);
  return m.value;
}

describe("cis/inputs: kube-apiserver manifest", () => {
  it("takes command (minus the binary) then args, expanding $(VAR) from the container env", () => {
    const m = manifest(POD);
    expect(m.argv).to.deep.equal([
      { text: "--authorization-mode=Node,RBAC" },
      { text: "--audit-policy-file=/etc/kubernetes/conf/audit.yaml" },
      { text: "--profiling=false" },
      {
        text: "--token-auth-file=$(TOKENS)",
        unresolved: "it uses $(TOKENS), which comes from valueFrom and is only known at run time",
      },
      { text: "--etcd-prefix=$(literal)" },
    ]);
    expect(m.pod).to.deep.equal({ name: "kube-apiserver", namespace: "kube-system" });
  });

  it("keeps an undefined $(VAR) verbatim, as the kubelet does", () => {
    expect(expandEnvRefs("a$(NOPE)b$", new Map())).to.deep.equal({ text: "a$(NOPE)b$" });
    expect(expandEnvRefs("$(A)-$(A", new Map([["A", { value: "x" }]]))).to.deep.equal({ text: "x-$(A" });
  });

  it("maps container paths to host paths through hostPath mounts", () => {
    const m = manifest(POD);
    expect(containerPathOnHost("/etc/kubernetes/conf/audit.yaml", m)).to.deep.equal({
      ok: true,
      value: { hostPath: "/srv/k8s/conf/audit.yaml" },
    });
    expect(containerPathOnHost("/etc/kubernetes/pki/ca.crt", m)).to.deep.equal({
      ok: true,
      value: { hostPath: "/etc/kubernetes/pki/ca.crt" },
    });
    const scratch = containerPathOnHost("/scratch/x.yaml", m);
    expect(scratch.ok).to.equal(false);
    expect(!scratch.ok && scratch.reason).to.contain("emptyDir volume");
    const unmounted = containerPathOnHost("/opt/x.yaml", m);
    expect(unmounted.ok && unmounted.value.hostPath).to.equal("/opt/x.yaml");
  });

  it("rejects YAML that is not a kube-apiserver Pod, naming the problem", () => {
    const cases: [string, string][] = [
      ["apiVersion: apps/v1\nkind: Deployment\n", 'is not a Pod (kind: "Deployment")'],
      ["kind: Pod\nspec: {}\n", "is a Pod without spec.containers"],
      ["kind: Pod\n---\nkind: Pod\n", "holds 2 YAML documents, expected one"],
      ["- a\n- b\n", "is not a YAML mapping"],
      ["kind: Pod\nkind: Pod\n", "is not valid YAML"],
      ["", "is empty"],
      [
        "kind: Pod\nspec:\n  containers:\n  - name: x\n    command: [/bin/sh, -c, 'kube-apiserver --profiling=false']\n",
        'runs "/bin/sh", not kube-apiserver',
      ],
      [
        "kind: Pod\nspec:\n  containers:\n  - name: kube-apiserver\n    command: [kube-apiserver, 5]\n",
        "command[1] is not a string",
      ],
    ];
    for (const [text, want] of cases) {
      const r = parseApiServerManifest(text);
      expect(r.ok, text).to.equal(false);
      expect(!r.ok && r.reason, text).to.contain(want);
    }
  });

  it("parses YAML 1.1 like the Go decoders (yes/on are booleans)", () => {
    const r = parseYamlMapping("a: yes\nb: on\nc: 'yes'\n");
    expect(r.ok && r.value).to.deep.equal({ a: true, b: true, c: "yes" });
  });

  it("reads flag-referenced files through the mounts and records unreadable ones with the reason", async () => {
    const inputs = await gatherApiServerInputs(manifest(POD), "pod.yaml", memoryReader({}));
    const audit = inputs.files["audit-policy-file"];
    expect(audit).to.deep.equal({
      ok: false,
      path: "/etc/kubernetes/conf/audit.yaml",
      hostPath: "/srv/k8s/conf/audit.yaml",
      reason: "cannot read /srv/k8s/conf/audit.yaml: ENOENT: no such file /srv/k8s/conf/audit.yaml",
    });
    expect(inputs.files["encryption-provider-config"]).to.equal(undefined);
    const ok = await gatherApiServerInputs(
      manifest(POD),
      "pod.yaml",
      memoryReader({ "/srv/k8s/conf/audit.yaml": "x: 1" }),
    );
    expect(ok.files["audit-policy-file"]?.ok).to.equal(true);
  });
});

describe("cis/inputs: kubelet config loading", () => {
  it("drops a leading kubelet binary and loads the file --config names", async () => {
    const k = await kubelet(`/usr/bin/kubelet --config=${KUBELET_CONFIG_PATH}`, {
      [KUBELET_CONFIG_PATH]: kubeletConfig("readOnlyPort: 0\n"),
    });
    expect(k.flags.positional).to.deep.equal([]);
    expect(k.defaults).to.equal("configFile");
    expect(k.config.state === "loaded" && k.config.data.readOnlyPort).to.equal(0);
  });

  it("records an unreadable or invalid config file instead of guessing", async () => {
    const missing = await kubelet(`--config ${KUBELET_CONFIG_PATH}`);
    expect(missing.config.state).to.equal("error");
    const wrongKind = await kubelet(`--config ${KUBELET_CONFIG_PATH}`, {
      [KUBELET_CONFIG_PATH]: "apiVersion: v1\nkind: ConfigMap\n",
    });
    expect(wrongKind.config.state === "error" && wrongKind.config.reason).to.contain(
      'has apiVersion "v1" kind "ConfigMap", expected kubelet.config.k8s.io/v1beta1 KubeletConfiguration',
    );
    const dup = await kubelet(`--config ${KUBELET_CONFIG_PATH}`, {
      [KUBELET_CONFIG_PATH]: kubeletConfig("readOnlyPort: 0\nreadOnlyPort: 10255\n"),
    });
    expect(dup.config.state).to.equal("error");
  });

  it("merges --config-dir drop-ins (*.conf only, walk order, null deletes) over the config", async () => {
    const k = await kubelet(`--config=${KUBELET_CONFIG_PATH} --config-dir=/etc/kubelet.conf.d`, {
      [KUBELET_CONFIG_PATH]: kubeletConfig(
        "readOnlyPort: 0\nauthentication:\n  anonymous:\n    enabled: false\n",
      ),
      "/etc/kubelet.conf.d/20-late.conf": kubeletConfig("readOnlyPort: 10255\n"),
      "/etc/kubelet.conf.d/10-early.conf": kubeletConfig(
        "readOnlyPort: 1\nauthentication:\n  anonymous: null\n",
      ),
      "/etc/kubelet.conf.d/30-ignored.yaml": kubeletConfig("readOnlyPort: 2\n"),
      "/etc/kubelet.conf.d/10-early/x.conf": kubeletConfig("seccompDefault: true\n"),
    });
    expect(k.config.state).to.equal("loaded");
    if (k.config.state !== "loaded") return;
    // filepath.WalkDir: the directory "10-early" sorts before the file "10-early.conf".
    expect(k.config.dropIns).to.deep.equal([
      "/etc/kubelet.conf.d/10-early/x.conf",
      "/etc/kubelet.conf.d/10-early.conf",
      "/etc/kubelet.conf.d/20-late.conf",
    ]);
    expect(k.config.data.readOnlyPort).to.equal(10255);
    expect(k.config.data.seccompDefault).to.equal(true);
    expect(k.config.data.authentication).to.deep.equal({});
  });

  it("cannot use drop-ins it cannot list", async () => {
    const k = await kubelet("--config-dir=/etc/kubelet.conf.d");
    expect(k.config.state === "error" && k.config.reason).to.contain("cannot list /etc/kubelet.conf.d");
    expect(k.defaults).to.equal("flags");
  });

  it("implements RFC 7386 merge patch", () => {
    expect(jsonMergePatch({ a: { b: 1, c: 2 }, d: [1] }, { a: { b: null, e: 3 }, d: [2] })).to.deep.equal({
      a: { c: 2, e: 3 },
      d: [2],
    });
  });

  it("reads the kubelet --config flag with last-wins semantics", async () => {
    const k = await kubelet(`--config=/nope.yaml --config=${KUBELET_CONFIG_PATH}`, {
      [KUBELET_CONFIG_PATH]: kubeletConfig(""),
    });
    const v = stringFlag(k.flags, "config");
    expect(v.ok && v.value).to.equal(KUBELET_CONFIG_PATH);
    expect(k.config.state).to.equal("loaded");
  });
});

describe("cis/inputs: YAML fidelity", () => {
  it("keeps sexagesimal-looking and timestamp-looking scalars as strings, as go-yaml v2 does", () => {
    const r = parseYamlMapping("a: 1:30\nb: 2001-12-14\nc: 0x1F\n");
    expect(r.ok && r.value).to.deep.equal({ a: "1:30", b: "2001-12-14", c: 31 });
  });
});
