import { expect } from "chai";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { deploymentMemoryLimitMiB, imageHeapSizing } from "../../../bench/lib/heap.js";

describe("bench heap sizing: the operator as the image runs it", () => {
  it("gives V8 60 % of the limit for the old generation and a young one sized from it", () => {
    // 153 + 3 x 1 = 156 MiB of heap limit was measured in a 256 MiB cgroup.
    expect(imageHeapSizing(256).nodeArgs).to.deep.equal([
      "--max-old-space-size=153",
      "--max-semi-space-size=1",
    ]);
    expect(imageHeapSizing(384).nodeArgs).to.deep.equal([
      "--max-old-space-size=230",
      "--max-semi-space-size=1",
    ]);
    expect(imageHeapSizing(1024).nodeArgs).to.deep.equal([
      "--max-old-space-size=614",
      "--max-semi-space-size=4",
    ]);
    expect(imageHeapSizing(384, 0).nodeArgs).to.deep.equal(["--max-old-space-size=230"]);
    expect(imageHeapSizing(384).memoryLimitBytes).to.equal(384 * 1024 * 1024);
  });

  it("refuses a limit too small or not whole", () => {
    expect(() => imageHeapSizing(32)).to.throw(/memory limit/);
    expect(() => imageHeapSizing(384, 1.5)).to.throw(/semi-space/);
  });

  it("defaults to the Deployment's limit, and names the field when it cannot read it", () => {
    expect(deploymentMemoryLimitMiB()).to.equal(384);
    const dir = mkdtempSync(join(tmpdir(), "heap-test-"));
    const file = join(dir, "deployment.yaml");
    writeFileSync(
      file,
      "spec:\n  template:\n    spec:\n      containers:\n        - resources: { limits: { memory: 2Gi } }\n",
    );
    expect(deploymentMemoryLimitMiB(file)).to.equal(2048);
    writeFileSync(
      file,
      "spec:\n  template:\n    spec:\n      containers:\n        - resources: { limits: { memory: 400M } }\n",
    );
    expect(() => deploymentMemoryLimitMiB(file)).to.throw(/resources\.limits\.memory.*"400M"/);
  });
});
