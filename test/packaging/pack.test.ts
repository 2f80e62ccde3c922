/**
 * The npm package: `npm pack` of the checkout (with its compiled output) installed with `npm install -g`
 * puts `csp-operator` and `kubectl-csp` on PATH, and kubectl finds `kubectl csp` as a plugin.
 *
 * Offline when the npm cache holds the registry's metadata of the dependencies; a fresh cache filled only by
 * `npm ci` holds the tarballs but not that metadata, which a global install needs to resolve the package's
 * dependency ranges (it has no lockfile), so then npm fetches the metadata (--prefer-offline).
 */
import { expect } from "chai";
import { execFileSync, spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { controlPlaneBinDir } from "../../controlplane/harness.js";
import { hostPath, imageStages, REPO } from "./dockerfile.js";

const pkg = JSON.parse(readFileSync(join(REPO, "package.json"), "utf8")) as { name: string; version: string };
const FIXTURE = join(REPO, "test/fixtures/cis/hardened/kube-apiserver.yaml");

describe("the npm package: npm pack, npm install -g, csp-operator and kubectl csp on PATH", function () {
  this.timeout(300_000);
  let prefix: string;
  let packed: string[];
  let PATH: string;
  let top: string;

  const run = (exe: string, args: string[]) => {
    const r = spawnSync(exe, args, {
      env: { PATH, HOME: prefix },
      encoding: "utf8",
      timeout: 60_000,
    });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  };

  before(function () {
    this.timeout(300_000);
    top = mkdtempSync(join(tmpdir(), "csp-pack-"));
    // The checkout as `git clone` gives it (tracked and new, not ignored, files), plus the compiled output
    // `prepare` writes: the image's build stage has just compiled it from the same sources.
    const stage = join(top, "checkout");
    const files = execFileSync("git", ["ls-files", "-z", "--cached", "--others", "--exclude-standard"], {
      cwd: REPO,
      encoding: "utf8",
    })
      .split("\0")
      .filter((f) => f !== "" && existsSync(join(REPO, f)));
    for (const f of files) {
      mkdirSync(dirname(join(stage, f)), { recursive: true });
      cpSync(join(REPO, f), join(stage, f));
    }
    const build = imageStages().find((s) => s.name === "build");
    if (!build) throw new Error("the Dockerfile has no `build` stage");
    cpSync(hostPath(build, "/src/dist"), join(stage, "dist"), { recursive: true });
    const out = execFileSync(
      "npm",
      ["pack", "--ignore-scripts", "--json", "--loglevel=error", "--pack-destination", top],
      { cwd: stage, encoding: "utf8" },
    );
    const [info] = JSON.parse(out) as { filename: string; files: { path: string }[] }[];
    packed = info!.files.map((f) => f.path);
    prefix = join(top, "global");
    execFileSync(
      "npm",
      [
        "install",
        "--global",
        "--prefix",
        prefix,
        "--prefer-offline",
        "--no-audit",
        "--no-fund",
        "--loglevel=error",
        join(top, info!.filename),
      ],
      { cwd: top, stdio: ["ignore", "pipe", "pipe"] },
    );
    // The project's Node first (the executables' `#!/usr/bin/env node`), then the installed executables.
    PATH = [dirname(process.execPath), join(prefix, "bin"), "/usr/bin", "/bin"].join(":");
  });

  after(() => {
    if (top) rmSync(top, { recursive: true, force: true });
  });

  it("packs the compiled code, the CRD and the README; no TypeScript, tests or source maps", () => {
    expect(packed).to.include.members([
      "package.json",
      "README.md",
      "dist/src/main.js",
      "dist/src/cli/program.js",
    ]);
    expect(packed).to.include("crds/security.csp-operator.io_clustersecuritypolicies.yaml");
    expect(
      packed.filter((f) => !/^(dist\/src\/.*\.js|crds\/[^/]+\.yaml|package\.json|README\.md)$/.test(f)),
    ).to.deep.equal([]);
  });

  it("puts csp-operator and kubectl-csp on PATH: --version, help and check work", () => {
    const version = run("csp-operator", ["--version"]);
    expect(version).to.deep.equal({ code: 0, stdout: `${pkg.version}\n`, stderr: "" });
    const help = run("csp-operator", ["help"]);
    expect(help.code, help.stderr).to.equal(0);
    expect(help.stdout).to.match(/^Usage: csp-operator \[options\] \[command\]/);
    const checkHelp = run("kubectl-csp", ["check", "--help"]);
    expect(checkHelp.code, checkHelp.stderr).to.equal(0);
    expect(checkHelp.stdout).to.contain("Usage: csp-operator check");
    const plugin = run("kubectl-csp", ["--help"]);
    expect(plugin.stdout).to.match(/^Usage: kubectl csp \[options\] \[command\]/);
    const check = run("csp-operator", ["check", "--apiserver-manifest", FIXTURE, "-o", "json"]);
    expect([0, 1, 3], check.stderr).to.include(check.code);
    expect((JSON.parse(check.stdout) as { results: unknown[] }).results.length).to.be.above(10);
  });

  it("is found by kubectl as the plugin `kubectl csp`", () => {
    const kubectl = join(controlPlaneBinDir(), "kubectl");
    const version = run(kubectl, ["csp", "--version"]);
    expect(version, version.stderr).to.deep.include({ code: 0, stdout: `${pkg.version}\n` });
    const check = run(kubectl, ["csp", "check", "--apiserver-manifest", FIXTURE]);
    expect([0, 1, 3], check.stderr).to.include(check.code);
    expect(check.stdout).to.match(/\d+ checks: \d+ Pass/);
    const bad = run(kubectl, ["csp", "check", "--output"]);
    expect(bad.code).to.equal(2);
    expect(bad.stderr.trim().split("\n")).to.have.length(1);
  });
});
