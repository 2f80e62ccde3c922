import { expect } from "chai";
import { KUBERNETES_RELEASES, type ReleaseTable } from "../../../src/hygiene/kubernetes-releases.js";
import {
  API_SERVER_RESOURCE,
  parseReleaseTable,
  parseVersion,
  versionFindings,
} from "../../../src/hygiene/versions.js";

const table: ReleaseTable = {
  lastUpdated: "2026-12-01",
  source: "test",
  releases: [
    { minor: "1.31", released: "2024-08-13", endOfLife: "2025-11-11", latestPatch: "1.31.14" },
    { minor: "1.34", released: "2025-08-27", endOfLife: "2026-10-27", latestPatch: "1.34.6" },
    { minor: "1.35", released: "2025-12-17", endOfLife: "2027-02-28", latestPatch: "1.35.9" },
    { minor: "1.36", released: "2026-04-22", endOfLife: "2027-06-28", latestPatch: "1.36.3" },
  ],
};
const now = new Date("2026-12-05T12:00:00Z");
const ids = (fs: { id: string; resource: string; severity: string }[]) =>
  fs.map((f) => `${f.severity} ${f.id} ${f.resource}`).sort();

describe("hygiene: version currency", () => {
  it("parses the versions distributions report and refuses anything else", () => {
    expect(parseVersion("v1.36.3")).to.include({ major: 1, minor: 36, patch: 3 });
    expect(parseVersion("v1.36.3-eks-4f4795d")).to.include({ minor: 36, patch: 3 });
    expect(parseVersion("v1.36.3+k3s1")).to.include({ patch: 3 });
    for (const bad of ["", "v1.36", "latest", "v1.36.3 ; rm", "1.x.3"])
      expect(parseVersion(bad)).to.equal(undefined);
  });

  it("a supported, current API server with matching kubelets has no finding", () => {
    const f = versionFindings(
      { apiServer: "v1.36.3", kubelets: [{ node: "a", version: "v1.36.3" }] },
      table,
      now,
    );
    expect(f).to.deep.equal([]);
  });

  it("the shipped table is valid, dated, names its source and knows the minors of today", () => {
    const parsed = parseReleaseTable(JSON.parse(JSON.stringify(KUBERNETES_RELEASES)));
    expect(parsed).to.have.property("table");
    expect(KUBERNETES_RELEASES.source).to.match(/kubernetes\.io\/releases/);
    const minors = KUBERNETES_RELEASES.releases.map((r) => r.minor);
    expect(minors).to.include.members(["1.34", "1.35", "1.36", "1.37"]);
    for (const r of KUBERNETES_RELEASES.releases) {
      const months = (Date.parse(r.endOfLife) - Date.parse(r.released)) / (30.4 * 86_400_000);
      expect(months, r.minor).to.be.within(13, 16); // ~14 months of support
    }
  });

  it("past end of life is High with the date and days; within warnDays Medium with the days left", () => {
    const eol = versionFindings({ apiServer: "v1.34.6", kubelets: [] }, table, now);
    expect(ids(eol)).to.deep.equal([`High VERSION-EOL ${API_SERVER_RESOURCE}`]);
    expect(eol[0]!.message).to.include("2026-10-27").and.include("39 day(s) ago").and.include("v1.34.6");

    const soon = versionFindings({ apiServer: "v1.35.9", kubelets: [] }, table, now, 90);
    expect(ids(soon)).to.deep.equal([`Medium VERSION-EOL-SOON ${API_SERVER_RESOURCE}`]);
    expect(soon[0]!.message).to.include("2027-02-28").and.include("in 84 day(s)");
    expect(versionFindings({ apiServer: "v1.35.9", kubelets: [] }, table, now, 60)).to.deep.equal([]);
  });

  it("patches behind the newest known are Low, naming both versions", () => {
    const f = versionFindings({ apiServer: "v1.36.1", kubelets: [] }, table, now);
    expect(ids(f)).to.deep.equal([`Low VERSION-PATCH-BEHIND ${API_SERVER_RESOURCE}`]);
    expect(f[0]!.message).to.include("v1.36.1").and.include("2 patch").and.include("1.36.3");
  });

  it("kubelet skew: newer than the API server or more than three minors older is High; mixed versions Info", () => {
    const f = versionFindings(
      {
        apiServer: "v1.35.9",
        kubelets: [
          { node: "new", version: "v1.36.3" },
          { node: "ok", version: "v1.35.9" },
          { node: "old", version: "v1.31.14" },
        ],
      },
      table,
      now,
      30,
    );
    expect(ids(f)).to.deep.equal(
      [
        "High VERSION-KUBELET-SKEW Node/new",
        "High VERSION-KUBELET-SKEW Node/old",
        "High VERSION-EOL Node/old",
        `Info VERSION-MIXED-KUBELETS ${API_SERVER_RESOURCE}`,
      ].sort(),
    );
    const old = f.find((x) => x.id === "VERSION-KUBELET-SKEW" && x.resource === "Node/old")!;
    expect(old.message).to.include("4 minor(s) older").and.include("v1.35.9");
  });

  it("a minor older than the table is past end of life; a newer one is Info, not supported", () => {
    expect(ids(versionFindings({ apiServer: "v1.20.0", kubelets: [] }, table, now))).to.deep.equal([
      `High VERSION-EOL ${API_SERVER_RESOURCE}`,
    ]);
    expect(ids(versionFindings({ apiServer: "v1.40.0", kubelets: [] }, table, now))).to.deep.equal([
      `Info VERSION-UNKNOWN-MINOR ${API_SERVER_RESOURCE}`,
    ]);
  });

  it("a table older than 180 days is itself an Info finding", () => {
    const f = versionFindings(
      { apiServer: "v1.36.3", kubelets: [] },
      { ...table, lastUpdated: "2026-01-01" },
      now,
    );
    expect(ids(f)).to.deep.equal([`Info VERSION-TABLE-STALE ${API_SERVER_RESOURCE}`]);
    expect(f[0]!.message).to.include("2026-01-01");
  });

  it("unparseable versions are reported as such, never judged or echoed at length", () => {
    const f = versionFindings(
      { apiServer: "x".repeat(500), kubelets: [{ node: "n", version: "weird" }] },
      table,
      now,
    );
    expect(ids(f)).to.deep.equal([
      `Info VERSION-UNPARSEABLE ${API_SERVER_RESOURCE}`,
      "Info VERSION-UNPARSEABLE Node/n",
    ]);
    expect(f.every((x) => x.message.length < 400)).to.equal(true);
  });

  it("a bad replacement table is refused with the field named", () => {
    const err = (raw: unknown) => (parseReleaseTable(raw) as { error?: string }).error;
    expect(err([])).to.match(/not a JSON object/);
    expect(err({ releases: [] })).to.match(/^lastUpdated/);
    expect(err({ lastUpdated: "2026-12-01", releases: [] })).to.match(/^releases: want a non-empty/);
    const r = { minor: "1.36", released: "2026-04-22", endOfLife: "2027-06-28", latestPatch: "1.36.3" };
    expect(err({ lastUpdated: "2026-12-01", releases: [{ ...r, minor: "136" }] })).to.match(
      /^releases\[0\]\.minor/,
    );
    expect(err({ lastUpdated: "2026-12-01", releases: [{ ...r, endOfLife: "soon" }] })).to.match(
      /^releases\[0\]\.endOfLife/,
    );
    expect(err({ lastUpdated: "2026-12-01", releases: [r, { ...r, latestPatch: "1.35.1" }] })).to.match(
      /^releases\[1\]\.minor: 1\.36 is listed twice/,
    );
    expect(err({ lastUpdated: "2026-12-01", releases: [{ ...r, latestPatch: "1.35.1" }] })).to.match(
      /^releases\[0\]\.latestPatch/,
    );
    expect(parseReleaseTable({ lastUpdated: "2026-12-01", releases: [r] })).to.have.property("table");
  });

  it("a kubelet version with an unbounded suffix is unparseable, and no message grows with the versions", () => {
    expect(parseVersion(`v1.35.0-${"a".repeat(900_000)}`)).to.equal(undefined);
    expect(parseVersion(`v1.35.0-${"a".repeat(65)}`)).to.equal(undefined);
    expect(parseVersion(`v1.35.0-${"a".repeat(64)}`)).to.include({ minor: 35 });
    const kubelets = Array.from({ length: 40 }, (_, i) => ({
      node: `n${i}`,
      version: `v1.35.${i}-${String(i).padStart(2, "0")}${"b".repeat(60)}`,
    }));
    kubelets.push({ node: "huge", version: `v1.35.0-${"a".repeat(900_000)}` });
    const f = versionFindings({ apiServer: "v1.36.3", kubelets }, table, now);
    expect(Math.max(...f.map((x) => x.message.length))).to.be.below(1200);
    const mixed = f.find((x) => x.id === "VERSION-MIXED-KUBELETS")!;
    expect(mixed.message).to.include("40 different versions").and.include("and 30 more");
    expect(f.find((x) => x.resource === "Node/huge")).to.include({ id: "VERSION-UNPARSEABLE" });
  });

  it("a table dated in the future or with end of life before release is refused", () => {
    const r = { minor: "1.20", released: "2030-01-01", endOfLife: "2020-01-01", latestPatch: "1.20.0" };
    const err = (raw: unknown) => (parseReleaseTable(raw, now) as { error?: string }).error;
    expect(err({ lastUpdated: "2999-12-31", releases: [{ ...r, endOfLife: "2031-01-01" }] })).to.equal(
      "lastUpdated: 2999-12-31 is in the future",
    );
    expect(err({ lastUpdated: "2026-12-06", releases: [{ ...r, endOfLife: "2031-01-01" }] })).to.equal(
      undefined,
    );
    expect(err({ lastUpdated: "2026-12-01", releases: [r] })).to.match(
      /^releases\[0\]\.endOfLife: 2020-01-01 is before released 2030-01-01/,
    );
  });
});
