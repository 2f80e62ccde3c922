import { expect } from "chai";
import { readFileSync } from "node:fs";

describe("GitOps health files shown in the README", () => {
  const readme = readFileSync("README.md", "utf8");

  it("shows health/argocd/health.lua verbatim as the argocd-cm health customization", () => {
    const lua = readFileSync("health/argocd/health.lua", "utf8");
    const indented = lua
      .trimEnd()
      .split("\n")
      .map((l) => (l ? `    ${l}` : ""))
      .join("\n");
    expect(readme).to.include(
      `  resource.customizations.health.security.csp-operator.io_ClusterSecurityPolicy: |\n${indented}\n`,
    );
  });

  it("shows health/flux/kustomization.yaml verbatim", () => {
    expect(readme).to.include("```yaml\n" + readFileSync("health/flux/kustomization.yaml", "utf8") + "```");
  });
});
