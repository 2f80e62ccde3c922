/**
 * Needs the local control plane (built on first use by controlplane/build.sh).
 * The operator's metrics and probes, as a process: /metrics over HTTPS with the caller checked by a
 * TokenReview and a SubjectAccessReview (200 with csp-operator-metrics-reader, 403 without, 401 with no
 * token), the operator itself on the csp-operator ServiceAccount bound as config/rbac says; every metric
 * name the PrometheusRule and the Grafana dashboard use is exported; /readyz fails with the reason before
 * the caches sync and while the API server is unreachable, and recovers.
 */
import { expect } from "chai";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import { join, relative } from "node:path";
import { parse, parseAllDocuments } from "yaml";
import { useControlPlane } from "../support/controlplane.js";
import { installCrd } from "../support/crd.js";
import { eventually } from "../support/eventually.js";
import { FaultProxy } from "../support/faultproxy.js";
import { kubectlOk } from "../support/kubectl.js";

interface Proc {
  child: ChildProcess;
  log: string;
  exited: Promise<void>;
}

function get(url: string, token?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = (url.startsWith("https:") ? httpsRequest : httpRequest)(
      url,
      {
        rejectUnauthorized: false, // self-signed, generated in memory at start
        headers: token ? { Authorization: `Bearer ${token}` } : {},
        timeout: 5_000,
      },
      (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (d: string) => (body += d));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", reject);
    req.end();
  });
}

/** The port a server line of the JSON log announced. */
function portFrom(log: string, message: string): number | undefined {
  for (const line of log.split("\n")) {
    if (!line.includes(message)) continue;
    try {
      const port = (JSON.parse(line) as { port?: number }).port;
      if (port) return port;
    } catch {
      /* not JSON */
    }
  }
  return undefined;
}

/**
 * Metric names a PromQL expression reads: identifiers that are not functions, keywords, label names
 * (inside {} or by/on/without (...)), strings or durations.
 */
export function metricNames(expr: string): string[] {
  const cleaned = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, " ")
    .replace(/\{[^}]*\}/g, " ")
    .replace(/\b(by|on|without|ignoring|group_left|group_right)\s*\([^)]*\)/g, " ")
    .replace(/\[[^\]]*\]/g, " ")
    .replace(/\$\w+/g, " ");
  const keywords = new Set(["and", "or", "unless", "bool", "offset", "le", "inf", "nan"]);
  const names = new Set<string>();
  for (const m of cleaned.matchAll(/([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?/g)) {
    if (m[2] || keywords.has(m[1]!.toLowerCase())) continue;
    names.add(m[1]!);
  }
  return [...names];
}

/** Names a Prometheus text exposition declares (# TYPE), with histogram/summary sample suffixes. */
function exported(text: string): Set<string> {
  const names = new Set<string>();
  for (const m of text.matchAll(/^# TYPE (\S+) (\w+)$/gm)) {
    names.add(m[1]!);
    if (m[2] === "histogram") for (const s of ["_bucket", "_sum", "_count"]) names.add(`${m[1]}${s}`);
    if (m[2] === "summary") for (const s of ["_sum", "_count"]) names.add(`${m[1]}${s}`);
  }
  return names;
}

describe("metrics and health probes (operator process, real API server)", function () {
  this.timeout(180_000);
  const cp = useControlPlane({ name: "observability" });
  const ok = kubectlOk(cp);
  const procs: Proc[] = [];

  function startOperator(kubeconfig: string, args: string[]): Proc {
    const child = spawn(
      process.execPath,
      ["--import", "tsx", "src/main.ts", "run", "--resync=3600", ...args],
      {
        env: { ...process.env, KUBECONFIG: kubeconfig, LOG_LEVEL: "info" },
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    const p: Proc = { child, log: "", exited: Promise.resolve() };
    child.stdout?.on("data", (d: Buffer) => (p.log += d.toString()));
    child.stderr?.on("data", (d: Buffer) => (p.log += d.toString()));
    p.exited = new Promise((resolve) => child.once("exit", () => resolve()));
    procs.push(p);
    return p;
  }

  before(async function () {
    this.timeout(60_000);
    await installCrd(cp());
    await ok(["create", "namespace", "csp-system"]);
    await ok(["apply", "-k", "config/rbac"]);
    await ok(["create", "namespace", "obs-team"]);
    await ok(["label", "namespace", "obs-team", "obs=yes"]);
    await ok(["create", "serviceaccount", "scraper", "-n", "csp-system"]);
    await ok(["create", "serviceaccount", "nosy", "-n", "csp-system"]);
    await ok([
      "create",
      "clusterrolebinding",
      "scraper-metrics",
      "--clusterrole=csp-operator-metrics-reader",
      "--serviceaccount=csp-system:scraper",
    ]);
    await ok(
      ["apply", "-f", "-"],
      JSON.stringify({
        apiVersion: "security.csp-operator.io/v1alpha1",
        kind: "ClusterSecurityPolicy",
        metadata: { name: "obs" },
        spec: {
          namespaces: { selector: { matchLabels: { obs: "yes" } } },
          exemptions: [{ area: "rbac", reason: "test", expires: "2099-01-01T00:00:00Z" }],
        },
      }),
    );
  });

  afterEach(function () {
    if (this.currentTest?.state === "failed")
      for (const p of procs) process.stderr.write(`--- operator:\n${p.log.slice(-3000)}\n`);
  });

  after(async () => {
    for (const p of procs) p.child.kill("SIGKILL");
    await Promise.all(procs.map((p) => p.exited));
  });

  it("serves /metrics over HTTPS: 200 for a reader, 403 for others, 401 without a token; rule and dashboard names are exported", async () => {
    const kubeconfig = await cp().serviceAccountKubeconfig("csp-system", "csp-operator");
    const op = startOperator(kubeconfig, [
      "--metrics-bind-address=127.0.0.1:0",
      "--health-probe-bind-address=127.0.0.1:0",
    ]);
    const port = await eventually(
      "metrics served",
      () => Promise.resolve(portFrom(op.log, "serving metrics")),
      60_000,
    );
    const url = `https://127.0.0.1:${port}/metrics`;
    const reader = (await ok(["create", "token", "scraper", "-n", "csp-system"])).trim();
    const nosy = (await ok(["create", "token", "nosy", "-n", "csp-system"])).trim();
    expect((await get(url)).status).to.equal(401);
    expect((await get(url, "not-a-token")).status).to.equal(401);
    expect((await get(url, nosy)).status).to.equal(403);
    await eventually(
      "the policy reconciled",
      async () => {
        const r = await get(url, reader);
        return (
          r.status === 200 && /csp_policy_condition\{policy="obs",type="Ready",status="True"\} 1/.test(r.body)
        );
      },
      60_000,
    );
    const { body } = await get(url, reader);
    const reconciles = body.split("\n").filter((l) => l.startsWith("controller_runtime_reconcile_total{"));
    expect(reconciles.join("\n")).to.match(
      /controller_runtime_reconcile_total\{controller="clustersecuritypolicy",result="(success|requeue_after)"\} [1-9]/,
    );
    expect(body).to.match(
      /rest_client_requests_total\{code="20\d",method="(GET|PATCH)",host="127\.0\.0\.1:\d+"\} [1-9]/,
    );
    expect(body).to.match(/leader_election_master_status\{name="csp-operator-leader"\} 1/);
    expect(body).to.match(
      /csp_exemption_expiry_timestamp_seconds\{policy="obs",exemption="0",area="rbac"\} 4070908800/,
    );
    expect(body).to.match(/^process_resident_memory_bytes \d+/m);
    // Findings: the status counts every one by severity, and the metric's sums are those totals. A policy
    // without the rbac exemption judges the cluster's bindings, so it has findings.
    await ok(
      ["apply", "-f", "-"],
      JSON.stringify({
        apiVersion: "security.csp-operator.io/v1alpha1",
        kind: "ClusterSecurityPolicy",
        metadata: { name: "obs-findings" },
        spec: { namespaces: { selector: { matchLabels: { "obs-none": "yes" } } } },
      }),
    );
    await eventually("csp_policy_findings sums are status.summary.findingsBySeverity", async () => {
      const status = (
        JSON.parse(await ok(["get", "csp", "obs-findings", "-o", "json"])) as {
          status?: {
            findings?: { severity: string }[];
            summary?: { findingsBySeverity?: Record<string, number> };
          };
        }
      ).status;
      const totals = status?.summary?.findingsBySeverity ?? {};
      const total = Object.values(totals).reduce((a, b) => a + b, 0);
      expect(total, "the policy has findings").to.be.greaterThan(0);
      expect(total).to.be.at.least(status?.findings?.length ?? 0);
      const scraped = (await get(url, reader)).body;
      const lines = /^csp_policy_findings\{policy="obs-findings",severity="(\w+)",area="\w+"\} (\d+)$/gm;
      const sums = new Map<string, number>();
      for (const m of scraped.matchAll(lines)) sums.set(m[1]!, (sums.get(m[1]!) ?? 0) + Number(m[2]));
      for (const severity of ["Critical", "High", "Medium", "Low", "Info"])
        expect(sums.get(severity), severity).to.equal(totals[severity] ?? 0);
      return true;
    });
    expect(body, "no namespace or object name as a label value").to.not.match(/obs-team/);

    const names = exported(body);
    const rule = parse(readFileSync("config/prometheus/prometheus_rule.yaml", "utf8")) as {
      spec: { groups: { rules: { expr: string }[] }[] };
    };
    const dashboard = JSON.parse(readFileSync("config/prometheus/dashboard.json", "utf8")) as {
      panels: { targets: { expr: string }[] }[];
    };
    const used = new Set<string>();
    for (const g of rule.spec.groups)
      for (const r of g.rules) for (const n of metricNames(r.expr)) used.add(`rule:${n}`);
    for (const p of dashboard.panels)
      for (const t of p.targets) for (const n of metricNames(t.expr)) used.add(`dashboard:${n}`);
    expect(used.size, [...used].join(", ")).to.be.greaterThan(20);
    // Not the operator's: PromQL functions without parentheses in our parser, and `up`, which Prometheus
    // itself records for every scrape target.
    const prometheusOwn = new Set(["vector", "time", "up"]);
    const missing = [...used].filter(
      (u) => !names.has(u.split(":")[1]!) && !prometheusOwn.has(u.split(":")[1]!),
    );
    expect(missing, "metric names used but not exported").to.deep.equal([]);
    op.child.kill("SIGTERM");
    await op.exited;
  });

  it("/readyz fails with the reason before sync and while the API server is unreachable, then recovers; --metrics-secure=false serves plain HTTP", async () => {
    const proxy = await FaultProxy.forKubeconfig(cp().kubeconfigPath);
    try {
      const kubeconfig = proxy.writeKubeconfig(join(cp().dir, "obs-proxy.kubeconfig"));
      const lists = proxy.addRule({ verb: "list", action: { status: 503 } });
      const op = startOperator(kubeconfig, [
        "--metrics-bind-address=127.0.0.1:0",
        "--metrics-secure=false",
        "--health-probe-bind-address=127.0.0.1:0",
      ]);
      const port = await eventually(
        "probes served",
        () => Promise.resolve(portFrom(op.log, "serving health probes")),
        60_000,
      );
      const probe = (path: string) => get(`http://127.0.0.1:${port}${path}`);
      expect((await probe("/healthz")).status).to.equal(200);
      await eventually("a failed LIST", () => Promise.resolve(lists.hits > 0), 30_000);
      let ready = await probe("/readyz");
      expect(ready.status).to.equal(503);
      expect(ready.body).to.match(/informers: cache not synced: .*ClusterSecurityPolicy/);
      lists.remove();
      await eventually("ready after sync", async () => (await probe("/readyz")).status === 200, 60_000);

      const metricsPort = portFrom(op.log, "serving metrics");
      const plain = await get(`http://127.0.0.1:${metricsPort}/metrics`);
      expect(plain.status).to.equal(200);
      expect(plain.body).to.match(/csp_cache_synced 1/);

      // The API server goes away: every request is answered by a reset connection, every watch drops.
      const down = proxy.addRule({ action: { reset: true } });
      proxy.dropStreams();
      ready = await eventually(
        "not ready while the API server is unreachable",
        async () => {
          const r = await probe("/readyz");
          return r.status === 503 ? r : undefined;
        },
        30_000,
      );
      expect(ready.body).to.match(/informers: cache not synced: .+/);
      expect((await probe("/healthz")).status, "alive all the same").to.equal(200);
      down.remove();
      await eventually(
        "ready again once the API server is back",
        async () => (await probe("/readyz")).status === 200,
        90_000,
      );
      op.child.kill("SIGTERM");
      await op.exited;
    } finally {
      await proxy.stop();
    }
  });

  it("config/prometheus renders as a kustomize Component of config/default", async () => {
    const dir = mkdtempSync(join(tmpdir(), "csp-overlay-"));
    try {
      const config = relative(dir, join(process.cwd(), "config"));
      writeFileSync(
        join(dir, "kustomization.yaml"),
        `apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [${config}/default]\ncomponents: [${config}/prometheus]\n`,
      );
      const objs = parseAllDocuments(await ok(["kustomize", dir])).map(
        (d) => d.toJSON() as { kind: string; metadata: { name: string; labels?: Record<string, string> } },
      );
      const names = objs.map((o) => `${o.kind}/${o.metadata.name}`);
      for (const want of [
        "ServiceMonitor/csp-operator",
        "PrometheusRule/csp-operator",
        "ConfigMap/csp-operator-dashboard",
        "ClusterRoleBinding/csp-operator-metrics-reader",
        "Service/csp-operator-metrics",
        "Deployment/csp-operator",
      ])
        expect(names).to.include(want);
      const svc = objs.find((o) => o.kind === "Service")!;
      expect(
        svc.metadata.labels?.["app.kubernetes.io/name"],
        "the ServiceMonitor selects the Service",
      ).to.equal("csp-operator");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
