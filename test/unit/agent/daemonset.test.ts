import { expect } from "chai";
import { readFileSync } from "node:fs";
import { parse } from "yaml";
import { CRITICAL_PATHS } from "../../../src/agent/integrity.js";

interface Container {
  args?: string[];
  ports?: { name: string; containerPort: number }[];
  livenessProbe?: { httpGet?: { path: string; port: string } };
  readinessProbe?: { httpGet?: { path: string; port: string } };
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[];
}
interface DaemonSet {
  spec: {
    template: {
      spec: {
        containers: Container[];
        volumes?: { name: string; hostPath?: { path: string; type?: string } }[];
      };
    };
  };
}

const ds = parse(readFileSync("config/agent/daemonset.yaml", "utf8")) as DaemonSet;
const pod = ds.spec.template.spec;
const agent = pod.containers[0]!;
const hostPaths = (pod.volumes ?? []).flatMap((v) => (v.hostPath ? [v.hostPath.path] : []));

describe("config/agent DaemonSet", () => {
  it("mounts every path the integrity monitor watches", () => {
    const covered = (p: string) => hostPaths.some((h) => p === h || p.startsWith(`${h}/`));
    expect(CRITICAL_PATHS.filter((p) => !covered(p))).to.deep.equal([]);
  });

  it("never mounts /var/lib/kubelet (Pod Secret volumes, tokens, the kubelet's key) or a directory above it", () => {
    for (const h of hostPaths)
      expect("/var/lib/kubelet/pods".startsWith(h.endsWith("/") ? h : `${h}/`), h).to.equal(false);
    expect(hostPaths.filter((h) => h.startsWith("/var/lib/kubelet/"))).to.deep.equal([
      "/var/lib/kubelet/config.yaml",
      "/var/lib/kubelet/kubeadm-flags.env",
    ]);
  });

  it("probes /healthz and /readyz on the port --health-probe-bind-address serves", () => {
    expect(agent.args).to.include("--health-probe-bind-address=:8081");
    expect(agent.ports).to.deep.include({ name: "health", containerPort: 8081, protocol: "TCP" });
    expect(agent.livenessProbe?.httpGet).to.deep.equal({ path: "/healthz", port: "health" });
    expect(agent.readinessProbe?.httpGet).to.deep.equal({ path: "/readyz", port: "health" });
  });
});
