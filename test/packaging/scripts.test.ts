/**
 * package.json's `build` and `prepare` scripts, run by npm for real in a temporary directory holding the
 * checkout's package.json. The TypeScript compiler is stood in for by a `tsc` that writes one module (the
 * scripts, not tsc, are under test; the image and pack tests build for real).
 */
import { expect } from "chai";
import { spawnSync } from "node:child_process";
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { REPO } from "./dockerfile.js";

describe("package.json scripts: build cleans dist/, prepare skips the build without typescript", function () {
  this.timeout(60_000);
  let dir: string;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "csp-scripts-"));
    cpSync(join(REPO, "package.json"), join(dir, "package.json"));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const npmRun = (script: string) => {
    const r = spawnSync("npm", ["run", "--silent", script], {
      cwd: dir,
      encoding: "utf8",
      env: { PATH: process.env["PATH"] ?? "", HOME: dir, npm_config_cache: join(dir, ".npm") },
    });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  };

  /** A resolvable `typescript` package whose `tsc` writes dist/src/main.js. */
  function fakeTypeScript(): void {
    const pkg = join(dir, "node_modules", "typescript");
    mkdirSync(pkg, { recursive: true });
    writeFileSync(join(pkg, "package.json"), '{"name":"typescript","version":"0.0.0","main":"index.js"}\n');
    writeFileSync(join(pkg, "index.js"), "module.exports = {};\n");
    const bin = join(dir, "node_modules", ".bin");
    mkdirSync(bin, { recursive: true });
    writeFileSync(join(bin, "tsc"), "#!/bin/sh\nmkdir -p dist/src && echo 'export {};' > dist/src/main.js\n");
    chmodSync(join(bin, "tsc"), 0o755);
  }

  it("prepare without typescript (npm ci --omit=dev in a checkout) succeeds, saying dist/ is not built", () => {
    const r = npmRun("prepare");
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout).to.contain("typescript is not installed (npm ci --omit=dev): dist/ not built");
    expect(existsSync(join(dir, "dist"))).to.be.false;
  });

  it("prepare with typescript builds", () => {
    fakeTypeScript();
    const r = npmRun("prepare");
    expect(r.code, r.stderr).to.equal(0);
    expect(existsSync(join(dir, "dist", "src", "main.js"))).to.be.true;
  });

  it("build removes what an earlier build left in dist/ (no stale module gets packed)", () => {
    fakeTypeScript();
    mkdirSync(join(dir, "dist", "src"), { recursive: true });
    writeFileSync(join(dir, "dist", "src", "zz_stale.js"), "export {};\n");
    const r = npmRun("build");
    expect(r.code, r.stderr).to.equal(0);
    expect(existsSync(join(dir, "dist", "src", "zz_stale.js")), "stale module").to.be.false;
    expect(existsSync(join(dir, "dist", "src", "main.js"))).to.be.true;
  });

  it("a failing build fails prepare (the skip is only for a missing typescript)", () => {
    fakeTypeScript();
    writeFileSync(join(dir, "node_modules", ".bin", "tsc"), "#!/bin/sh\necho 'error TS1005' >&2\nexit 2\n");
    const r = npmRun("prepare");
    expect(r.code).to.not.equal(0);
  });
});
