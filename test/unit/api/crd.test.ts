import { expect } from "chai";
import { readdirSync, readFileSync } from "node:fs";
import { parse, parseAllDocuments } from "yaml";
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

  it("crds/ holds only CRDs where `kubectl apply -f crds/` looks (.yaml, .yml, .json files)", () => {
    const dir = new URL("../../../crds/", import.meta.url);
    const read = readdirSync(dir).filter((f) => /\.(ya?ml|json)$/.test(f));
    expect(read).to.include(CRD_FILE.slice("crds/".length));
    for (const f of read) {
      const docs = parseAllDocuments(readFileSync(new URL(f, dir), "utf8")).map(
        (d) => d.toJS() as { apiVersion?: string; kind?: string } | null,
      );
      for (const d of docs) {
        expect(`${f}: ${d?.apiVersion}/${d?.kind}`).to.equal(
          `${f}: apiextensions.k8s.io/v1/CustomResourceDefinition`,
        );
      }
    }
  });

  it("fits the 256 KiB last-applied annotation of a client-side `kubectl apply`, with room to grow", () => {
    const json = JSON.stringify(parse(renderCRDYaml()));
    expect(json.length).to.be.below(128 * 1024);
  });
});
