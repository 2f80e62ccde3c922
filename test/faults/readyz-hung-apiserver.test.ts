/**
 * `npm run test:faults` (not in `npm test`: about two minutes of waiting out silences).
 * Needs the local control plane (built on first use by controlplane/build.sh).
 * A hung API server (SIGSTOP: connections stay open, nothing is answered) looks to a watch exactly like a
 * quiet one. The operator must not stay ready on a cache nobody updates: /readyz fails, naming the kind,
 * once a watch has sent no event and no bookmark for --watch-silence-timeout and the API server does not
 * answer a ping either, and passes again once it answers (SIGCONT). Before that, a quiet but healthy API
 * server keeps it ready for longer than the timeout (kinds nobody writes get no bookmarks: silence alone
 * proves nothing).
 */
import { expect } from "chai";
import { readFileSync } from "node:fs";
import { request } from "node:http";
import { join } from "node:path";
import { useControlPlane } from "../support/controlplane.js";
import { installCrd } from "../support/crd.js";
import { eventually } from "../support/eventually.js";
import { spawnOperator, type OperatorProcess } from "../support/operatorprocess.js";

const SILENCE_MS = 20_000;

function probe(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path, timeout: 5_000 }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (body += d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", reject);
    req.end();
  });
}

describe("readiness with a hung API server (SIGSTOP, real control plane)", function () {
  this.timeout(420_000);
  const cp = useControlPlane({ name: "readyz-hung" });
  let op: OperatorProcess | undefined;
  let apiserverPid: number | undefined;

  before(async function () {
    this.timeout(60_000);
    await installCrd(cp());
    for (const line of readFileSync(join(cp().dir, "pids"), "utf8").split("\n").filter(Boolean)) {
      const cmd = readFileSync(`/proc/${line}/cmdline`, "utf8").split("\0")[0] ?? "";
      if (cmd.endsWith("/kube-apiserver")) apiserverPid = Number(line);
    }
    expect(apiserverPid, "kube-apiserver's pid").to.be.a("number");
  });

  afterEach(function () {
    if (this.currentTest?.state === "failed" && op)
      process.stderr.write(`--- operator:\n${op.log.slice(-4000)}\n`);
  });

  after(async () => {
    try {
      if (apiserverPid) process.kill(apiserverPid, "SIGCONT");
    } catch {
      // already stopped with its control plane
    }
    if (op && op.exit === undefined) op.child.kill("SIGKILL");
    await op?.exited;
  });

  it("/readyz: ready while quiet, 503 naming the kind while the API server is stopped, ready again after", async () => {
    op = spawnOperator("op-hung", cp().kubeconfigPath, [
      "--health-probe-bind-address=127.0.0.1:0",
      "--metrics-bind-address=0",
      `--watch-silence-timeout=${SILENCE_MS / 1000}s`,
    ]);
    const port = await eventually(
      "probes served",
      () => {
        for (const line of op!.log.split("\n"))
          if (line.includes("serving health probes")) {
            try {
              return Promise.resolve((JSON.parse(line) as { port?: number }).port);
            } catch {
              // a partial line
            }
          }
        return Promise.resolve(undefined);
      },
      60_000,
    );
    await eventually("ready after sync", async () => (await probe(port, "/readyz")).status === 200, 60_000);

    // Quiet but healthy for longer than the silence timeout: bookmarks keep every watch alive.
    const quietUntil = performance.now() + SILENCE_MS + 20_000;
    const quietFailures: string[] = [];
    await eventually(
      "a quiet stretch longer than the silence timeout",
      async () => {
        const r = await probe(port, "/readyz");
        if (r.status !== 200) quietFailures.push(r.body);
        return performance.now() >= quietUntil;
      },
      SILENCE_MS + 60_000,
    );
    expect(
      quietFailures.length,
      `unready while the API server was merely quiet:\n${quietFailures.join("\n")}`,
    ).to.equal(0);

    process.kill(apiserverPid!, "SIGSTOP");
    const stoppedAt = performance.now();
    const unready = await eventually(
      "unready while the API server is stopped",
      async () => {
        const r = await probe(port, "/readyz");
        return r.status === 503 ? r : undefined;
      },
      SILENCE_MS + 60_000,
    );
    process.stdout.write(
      `      unready ${Math.round((performance.now() - stoppedAt) / 1000)} s after SIGSTOP\n`,
    );
    expect(unready.body).to.match(
      /informers: watch of [A-Z][A-Za-z]*.*no event or bookmark, and the API server ping/,
    );
    expect((await probe(port, "/healthz")).status, "alive all the same").to.equal(200);

    process.kill(apiserverPid!, "SIGCONT");
    const resumedAt = performance.now();
    await eventually("ready again", async () => (await probe(port, "/readyz")).status === 200, 120_000);
    process.stdout.write(
      `      ready ${Math.round((performance.now() - resumedAt) / 1000)} s after SIGCONT\n`,
    );
    op.child.kill("SIGTERM");
    await op.exited;
  });
});
