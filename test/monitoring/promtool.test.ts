/**
 * `npm run test:monitoring`: proves config/prometheus/prometheus_rule.yaml with promtool (built from the Go
 * module github.com/prometheus/prometheus by controlplane/build-promtool.sh, cached outside the repo).
 * The rules are taken from the PrometheusRule itself, so what is tested is what ships.
 */
import { expect } from "chai";
import { execFile, execFileSync } from "node:child_process";
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse, stringify } from "yaml";

const run = (cmd: string, args: string[], cwd: string) =>
  new Promise<{ code: number; out: string }>((resolve) =>
    execFile(cmd, args, { cwd }, (err, stdout, stderr) =>
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, out: stdout + stderr }),
    ),
  );

describe("PrometheusRule (promtool)", function () {
  this.timeout(900_000);
  let promtool: string;
  let dir: string;

  before(() => {
    const out = execFileSync("bash", ["controlplane/build-promtool.sh"], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "inherit"],
    });
    promtool = out.trim().split("\n").at(-1)!;
    dir = mkdtempSync(join(tmpdir(), "csp-promtool-"));
    const rule = parse(readFileSync("config/prometheus/prometheus_rule.yaml", "utf8")) as {
      spec: { groups: unknown[] };
    };
    writeFileSync(join(dir, "rules.yaml"), stringify({ groups: rule.spec.groups }));
    copyFileSync("test/prometheus/alerts.test.yaml", join(dir, "alerts.test.yaml"));
  });

  after(() => rmSync(dir, { recursive: true, force: true }));

  it("promtool check rules accepts them", async () => {
    const r = await run(promtool, ["check", "rules", "rules.yaml"], dir);
    expect(r.code, r.out).to.equal(0);
    expect(r.out).to.match(/SUCCESS: 9 rules found/);
  });

  it("promtool test rules: every alert quiet before its `for`, firing after, annotations rendered", async () => {
    const r = await run(promtool, ["test", "rules", "alerts.test.yaml"], dir);
    expect(r.code, r.out).to.equal(0);
    expect(r.out).to.match(/SUCCESS/);
  });
});
