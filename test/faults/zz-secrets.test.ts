/**
 * Fault suite, last file (mocha runs files in name order): after every fault above, no key or token the suite
 * generated (the admin client keys, the ServiceAccount tokens the operator ran with) appears in anything the
 * operator produced: its logs, the Events and the policies' status of each control plane, recorded by the
 * other files before they stopped. Run alone it has nothing to check and says so.
 */
import { expect } from "chai";
import { allMeasurements, leaks, recordedCounts } from "./support.js";

describe("faults: no key material or token in logs, events or status (after the suite)", () => {
  it("no recorded secret appears in any recorded operator log, Event or status", function () {
    const counts = recordedCounts();
    if (counts.texts === 0) this.skip(); // run alone: nothing was recorded
    expect(counts.secrets, "secrets recorded").to.be.greaterThan(0);
    expect(leaks()).to.deep.equal([]);
    process.stderr.write(
      `[faults] secrets check: ${counts.secrets} secrets against ${counts.texts} texts (${counts.bytes} bytes)\n`,
    );
    for (const m of allMeasurements()) process.stderr.write(`[faults] summary ${JSON.stringify(m)}\n`);
  });
});
