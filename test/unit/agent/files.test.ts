import { expect } from "chai";
import { execFileSync } from "node:child_process";
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  truncateSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { writeError } from "../../../src/agent/agent.js";
import {
  fileState,
  MAX_DELIVERED_BYTES,
  removeStaleTemps,
  writeFileAtomic,
} from "../../../src/agent/files.js";
import { contentHash } from "../../../src/evidence/agentreports.js";

describe("agent file writes", () => {
  let dir = "";
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), "csp-agent-"))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("replaces a file atomically with mode 0600, leaves no temp file and returns the content hash", async () => {
    const path = join(dir, "sub", "encryption-config.yaml");
    expect(await fileState(path)).to.equal(undefined);
    expect(await writeFileAtomic(path, "one")).to.equal(contentHash("one"));
    writeFileSync(join(dir, "sub", "other"), "x", { mode: 0o644 });
    expect(await writeFileAtomic(path, "two")).to.equal(contentHash("two"));
    expect(readFileSync(path, "utf8")).to.equal("two");
    expect(statSync(path).mode & 0o777).to.equal(0o600);
    expect(readdirSync(join(dir, "sub")).sort()).to.deep.equal(["encryption-config.yaml", "other"]);
    expect((await fileState(path))?.sha256).to.equal(contentHash("two"));
  });

  it("removes the temp files a killed write left next to a target, and nothing else", async () => {
    const path = join(dir, "encryption-config.yaml");
    writeFileSync(path, "kind: EncryptionConfiguration\n");
    const left = [".encryption-config.yaml.0a1b2c3d4e5f.tmp", ".encryption-config.yaml.ffffffffffff.tmp"];
    const kept = [
      ".encryption-config.yaml.0a1b2c3d4e5.tmp", // 11 hex digits
      ".encryption-config.yaml.0A1B2C3D4E5F.tmp",
      ".encryption-configXyaml.0a1b2c3d4e5f.tmp", // the dot is not a wildcard
      ".audit-policy.yaml.0a1b2c3d4e5f.tmp",
      "encryption-config.yaml.0a1b2c3d4e5f.tmp",
      ".encryption-config.yaml.0a1b2c3d4e5f.tmp.bak",
    ];
    for (const n of [...left, ...kept]) writeFileSync(join(dir, n), "secret");
    mkdirSync(join(dir, ".encryption-config.yaml.aaaaaaaaaaaa.tmp"));
    expect((await removeStaleTemps(path)).sort()).to.deep.equal(left.sort());
    expect(readdirSync(dir).sort()).to.deep.equal(
      [...kept, ".encryption-config.yaml.aaaaaaaaaaaa.tmp", "encryption-config.yaml"].sort(),
    );
    expect(await removeStaleTemps(join(dir, "missing", "x.yaml"))).to.deep.equal([]);
    // The name writeFileAtomic gives its temp file is one removeStaleTemps finds.
    const { randomBytes } = await import("node:crypto");
    writeFileSync(join(dir, `.encryption-config.yaml.${randomBytes(6).toString("hex")}.tmp`), "");
    expect(await removeStaleTemps(path)).to.have.length(1);
  });

  it("never reads or follows what is not a regular file at a delivered path: FIFO, symlink, device; a huge file is an error", async () => {
    const fifo = join(dir, "audit.yaml");
    execFileSync("mkfifo", [fifo]);
    const link = join(dir, "link.yaml");
    writeFileSync(join(dir, "target"), "x");
    symlinkSync(join(dir, "target"), link);
    const dev = join(dir, "dev.yaml");
    symlinkSync("/dev/zero", dev);
    const big = join(dir, "big.yaml");
    writeFileSync(big, "");
    truncateSync(big, MAX_DELIVERED_BYTES + 1);
    expect(await fileState(fifo)).to.deep.include({
      sha256: "",
      notRegular: "is a FIFO, not a regular file",
    });
    expect(await fileState(link)).to.deep.include({
      sha256: "",
      notRegular: "is a symbolic link, not a regular file",
    });
    expect((await fileState(dev))?.notRegular).to.equal("is a symbolic link, not a regular file");
    const err = await fileState(big).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(writeError(big, err)).to.equal(
      `cannot write ${big}: EFBIG (is larger than 4 MiB (4194305 bytes))`,
    );
    // A rename replaces the FIFO and the link themselves (the link's target is never written).
    await writeFileAtomic(fifo, "one");
    await writeFileAtomic(link, "two");
    expect(readFileSync(fifo, "utf8")).to.equal("one");
    expect(readFileSync(join(dir, "target"), "utf8")).to.equal("x");
    expect((await fileState(link))?.sha256).to.equal(contentHash("two"));
  });
});
