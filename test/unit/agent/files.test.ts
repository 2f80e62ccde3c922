import { expect } from "chai";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileState, writeFileAtomic } from "../../../src/agent/files.js";
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
});
