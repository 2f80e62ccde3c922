import { expect } from "chai";
import { readFileSync } from "node:fs";
import { parse } from "yaml";
import { CRD_FILE, renderCRDYaml } from "../../../src/api/v1alpha1/render.js";

describe("CRD", () => {
  it("in crds/ is exactly what src/api/v1alpha1/policy.ts generates (run `npm run crds`)", () => {
    const committed = readFileSync(new URL(`../../../${CRD_FILE}`, import.meta.url), "utf8");
    expect(committed).to.equal(renderCRDYaml());
  });

  it("describes every property, so kubectl explain helps", () => {
    const crd = parse(renderCRDYaml()) as { spec: { versions: { schema: { openAPIV3Schema: unknown } }[] } };
    const missing: string[] = [];
    const walk = (s: Record<string, unknown>, path: string) => {
      for (const [k, v] of Object.entries(
        (s["properties"] as Record<string, Record<string, unknown>>) ?? {},
      )) {
        if (path.startsWith(".metadata") || ["apiVersion", "kind", "metadata"].includes(k)) continue;
        if (!v["description"]) missing.push(`${path}.${k}`);
        walk(v, `${path}.${k}`);
        if (v["items"]) walk(v["items"] as Record<string, unknown>, `${path}.${k}[]`);
      }
    };
    walk(crd.spec.versions[0]!.schema.openAPIV3Schema as Record<string, unknown>, "");
    expect(missing).to.deep.equal([]);
  });
});
