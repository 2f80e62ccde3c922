/**
 * The image without a container engine: the final stage's files, reproduced from the Dockerfile's own
 * COPY lines (./dockerfile.ts), must run the entrypoint with production dependencies only, write nothing,
 * and carry what the Dockerfile promises (pinned Node, numeric non-root user, OCI labels).
 */
import { expect } from "chai";
import { spawnSync } from "node:child_process";
import { existsSync, lstatSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, posix, sep } from "node:path";
import { hostPath, imageStages, listFiles, parseDockerfile, REPO, type BuiltStage } from "./dockerfile.js";

interface Pkg {
  name: string;
  version: string;
  description: string;
  license: string;
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
}
const pkg = JSON.parse(readFileSync(join(REPO, "package.json"), "utf8")) as Pkg;
const FIXTURE = join(REPO, "test/fixtures/cis/hardened/kube-apiserver.yaml");

/** path -> size and mtime of every entry under `dir`: a write anywhere changes it. */
function snapshot(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const d of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    const p = join(d.parentPath, d.name);
    const st = lstatSync(p);
    out.set(p, `${st.size}:${st.mtimeMs}:${st.mode}`);
  }
  return out;
}

describe("the image (final Dockerfile stage reproduced without a container engine)", function () {
  // One TypeScript build and one `npm ci --omit=dev` (from the npm cache) on a shared 2-core machine.
  this.timeout(300_000);
  let final: BuiltStage;
  let home: string;
  let tmp: string;

  /** Runs the image's ENTRYPOINT (CMD when `args` is undefined) as the container would, from its files. */
  function entrypoint(args?: string[]): { code: number | null; stdout: string; stderr: string } {
    const [exe, ...rest] = final.entrypoint ?? [];
    expect(exe).to.equal("node");
    const mapped = rest.map((a) => (a.startsWith("/") ? hostPath(final, a) : a));
    const r = spawnSync(process.execPath, [...mapped, ...(args ?? final.cmd ?? [])], {
      cwd: hostPath(final, "."),
      // The container's environment, nothing of this one's (no NODE_OPTIONS, NODE_PATH, npm_* or tsx).
      env: { PATH: `${dirname(process.execPath)}:/usr/bin:/bin`, HOME: home, TMPDIR: tmp, ...final.env },
      encoding: "utf8",
      timeout: 60_000,
    });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  }

  before(function () {
    this.timeout(300_000);
    const stages = imageStages();
    final = stages.at(-1)!;
    home = mkdtempSync(join(tmpdir(), "csp-image-home-"));
    tmp = mkdtempSync(join(tmpdir(), "csp-image-tmp-"));
  });

  after(() => {
    for (const d of [home, tmp]) rmSync(d, { recursive: true, force: true });
  });

  it("pins Node by full version, the one the tests run on (package.json's `node` devDependency)", () => {
    const df = parseDockerfile(readFileSync(join(REPO, "Dockerfile"), "utf8"));
    expect(df.stages.length).to.be.at.least(2);
    for (const s of df.stages) {
      const m = /^node:(\d+\.\d+\.\d+)-[\w.]+(@sha256:[0-9a-f]{64})?$/.exec(s.from);
      expect(m, `FROM ${s.from}`).to.not.equal(null);
      expect(m![1], `FROM ${s.from}`).to.equal(pkg.devDependencies["node"]);
    }
  });

  it("runs as a numeric non-root user, compiled JavaScript as its entrypoint, with the OCI labels", () => {
    expect(final.user).to.match(/^[1-9]\d*:[1-9]\d*$/);
    expect(final.entrypoint?.[0]).to.equal("node");
    const main = final.entrypoint?.[1] ?? "";
    expect(main).to.match(/^\/.*\.js$/);
    expect(existsSync(hostPath(final, main)), main).to.be.true;
    expect(final.cmd).to.deep.equal(["run"]);
    // V8's heap follows the container's memory limit (the entrypoint runs with it below, so Node accepts it).
    expect(final.env["NODE_OPTIONS"]).to.match(/^--max-old-space-size-percentage=\d+$/);
    const l = final.labels;
    expect(l["org.opencontainers.image.title"]).to.equal(pkg.name);
    expect(l["org.opencontainers.image.version"]).to.equal(pkg.version);
    expect(l["org.opencontainers.image.description"]).to.equal(pkg.description);
    expect(l["org.opencontainers.image.licenses"]).to.equal(pkg.license);
    for (const k of ["source", "revision", "url", "documentation", "vendor"])
      expect(l[`org.opencontainers.image.${k}`], k).to.be.a("string").and.not.equal("");
  });

  it("holds package.json, the compiled code, the CRD and the production dependencies only: no sources, tests or caches", () => {
    const app = hostPath(final, ".");
    expect(readdirSync(final.root)).to.deep.equal([final.workdir.split("/")[1]]);
    expect(readdirSync(app).sort()).to.deep.equal(["crds", "dist", "node_modules", "package.json"]);
    // `validate` reads the generated CRD at run time; only it, not crds/'s kustomization.
    expect(readdirSync(join(app, "crds"))).to.deep.equal([
      "security.csp-operator.io_clustersecuritypolicies.yaml",
    ]);
    const own = listFiles(app).filter((f) => !f.startsWith(`node_modules${sep}`));
    expect(
      own.filter((f) => !/^(dist\/src\/.*\.js(\.map)?|crds\/[^/]+\.yaml)$/.test(f) && f !== "package.json"),
    ).to.deep.equal([]);
    expect(own).to.include("dist/src/main.js");
    // Exactly the lockfile's non-dev packages: nothing a devDependency brought, nothing missing.
    const lock = JSON.parse(readFileSync(join(REPO, "package-lock.json"), "utf8")) as {
      packages: Record<string, { dev?: boolean; optional?: boolean }>;
    };
    const prod = Object.entries(lock.packages)
      .filter(([p, e]) => p.startsWith("node_modules/") && !e.dev && !e.optional)
      .map(([p]) => p);
    const installed = new Set(
      listFiles(app)
        .filter((f) => f.endsWith(`${sep}package.json`))
        .map((f) => posix.dirname(f))
        .filter((d) => Object.hasOwn(lock.packages, d)),
    );
    for (const p of prod) expect(installed.has(p), `${p} (a production dependency) is missing`).to.be.true;
    for (const p of installed) expect(lock.packages[p]?.dev, `${p} is a devDependency`).to.not.equal(true);
    // The tools: none of them (a devDependency a production one needs, like @types/node, is not dev there).
    for (const tool of ["typescript", "tsx", "mocha", "eslint", "prettier", "node"])
      expect(existsSync(join(app, "node_modules", tool)), tool).to.be.false;
  });

  it("runs --help, --version, run/agent --help, check and validate from those files alone, writing nothing", () => {
    const before = snapshot(final.root);
    const help = entrypoint(["--help"]);
    expect(help.code, help.stderr).to.equal(0);
    expect(help.stdout).to.match(/^Usage: csp-operator /);
    const version = entrypoint(["--version"]);
    expect(version).to.deep.equal({ code: 0, stdout: `${pkg.version}\n`, stderr: "" });
    for (const cmd of ["run", "agent"]) {
      const r = entrypoint([cmd, "--help"]);
      expect(r.code, r.stderr).to.equal(0);
      expect(r.stdout).to.contain(`Usage: csp-operator ${cmd} [options]`);
    }
    const check = entrypoint(["check", "--apiserver-manifest", FIXTURE, "-o", "json"]);
    expect([0, 1, 3], check.stderr).to.include(check.code);
    const report = JSON.parse(check.stdout) as { results: { id: string }[] };
    expect(report.results.length).to.be.above(10);
    // validate finds the image's own CRD (the schema and CEL rules it judges by).
    const valid = entrypoint(["validate", "-f", join(REPO, "samples", "baseline.yaml")]);
    expect(valid.code, valid.stderr).to.equal(0);
    const invalid = entrypoint(["validate", "-f", join(REPO, "samples", "invalid", "bad-mode.yaml")]);
    expect(invalid.code, invalid.stderr).to.equal(1);
    expect(invalid.stdout).to.contain("spec.mode");
    const usage = entrypoint(["--no-such-flag"]);
    expect(usage.code).to.equal(2);
    expect(usage.stderr.trim().split("\n")).to.have.length(1);
    // Nothing written: not in the image's files (read-only root filesystem), not in $HOME or $TMPDIR.
    expect(snapshot(final.root)).to.deep.equal(before);
    expect(readdirSync(home)).to.deep.equal([]);
    expect(readdirSync(tmp)).to.deep.equal([]);
  });

  it("can load every compiled module with production dependencies only (the agent and operator too)", () => {
    const dist = hostPath(final, "/app/dist/src");
    const modules = listFiles(dist)
      .filter((f) => f.endsWith(".js") && f !== "main.js" && f !== "api/v1alpha1/generate.js")
      .map((f) => join(dist, f));
    expect(modules.length).to.be.above(40);
    const r = spawnSync(
      process.execPath,
      [
        "--input-type=module",
        "-e",
        "for (const m of JSON.parse(process.argv[1])) await import(m);",
        JSON.stringify(modules),
      ],
      {
        cwd: hostPath(final, "."),
        env: { PATH: `${dirname(process.execPath)}:/usr/bin:/bin`, HOME: home, TMPDIR: tmp, ...final.env },
        encoding: "utf8",
        timeout: 60_000,
      },
    );
    expect(r.status, r.stderr).to.equal(0);
  });

  it("cannot reach a node_modules outside its own files (so a missing COPY cannot pass unseen)", () => {
    for (let d = dirname(final.root); d !== dirname(d); d = dirname(d))
      expect(existsSync(join(d, "node_modules")), `${d}/node_modules`).to.be.false;
    expect(statSync(join(hostPath(final, "."), "node_modules")).isDirectory()).to.be.true;
    expect(lstatSync(join(hostPath(final, "."), "node_modules")).isSymbolicLink()).to.be.false;
  });
});
