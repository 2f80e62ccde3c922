import { expect } from "chai";
import type { Exemption } from "../../../src/api/v1alpha1/policy.js";
import {
  expiringExemptionEvents,
  expiringExemptionFindings,
  expiringExemptions,
} from "../../../src/hygiene/exemptions.js";

const now = new Date("2026-12-05T12:00:00Z");
const ex = (expires: string | undefined, findingId = "RBAC-WILDCARD-VERB"): Exemption => ({
  findingId,
  reason: "vendor chart",
  ...(expires ? { expires } : {}),
});

describe("hygiene: exemptions expiring soon", () => {
  const list = [
    ex("2026-12-08T12:00:00Z"), // 3 days
    ex("2026-12-20T00:00:00Z"), // 14 days: not soon
    ex("2026-12-01T00:00:00Z"), // expired: reported elsewhere
    ex(undefined), // never expires
    ex("2026-12-05T18:00:00Z", "CIS-1.2.1"), // 6 hours
  ];

  it("selects only active exemptions expiring within 7 days, as Info findings with the date", () => {
    const soon = expiringExemptions(list, now);
    expect(soon.map((s) => s.index)).to.deep.equal([0, 4]);
    const f = expiringExemptionFindings(soon, "p");
    expect(f.map((x) => `${x.severity} ${x.id} ${x.resource}`)).to.deep.equal([
      "Info EXEMPTION-EXPIRING-SOON ClusterSecurityPolicy/p",
      "Info EXEMPTION-EXPIRING-SOON ClusterSecurityPolicy/p",
    ]);
    expect(f[0]!.message)
      .to.include("spec.exemptions[0]")
      .and.include("2026-12-08T12:00:00.000Z")
      .and.include("3 day(s)");
    expect(f[1]!.message).to.include("6 hour(s)").and.include("CIS-1.2.1");
  });

  it("an event per exemption once per UTC day", () => {
    const soon = expiringExemptions(list, now);
    const sent = new Set<string>();
    const first = expiringExemptionEvents(soon, "uid", now, sent);
    expect(first).to.have.length(2);
    for (const e of first) sent.add(e.key);
    expect(expiringExemptionEvents(soon, "uid", new Date("2026-12-05T23:59:00Z"), sent)).to.deep.equal([]);
    const tomorrow = new Date("2026-12-06T00:01:00Z");
    expect(expiringExemptionEvents(expiringExemptions(list, tomorrow), "uid", tomorrow, sent)).to.have.length(
      1,
    );
  });
});
