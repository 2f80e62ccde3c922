/**
 * Writes crds/ and the Helm chart's copy (charts/csp-operator/crds/) from the schema in policy.ts. Run
 * `npm run crds` after changing the API; test/unit/api/crd.test.ts and test/integration/helm.test.ts fail
 * while a committed copy is stale.
 */
import { basename } from "node:path";
import { writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { renderCRDYaml, CRD_FILE } from "./render.js";

const yaml = renderCRDYaml();
for (const file of [CRD_FILE, `charts/csp-operator/crds/${basename(CRD_FILE)}`]) {
  writeFileSync(fileURLToPath(new URL(`../../../${file}`, import.meta.url)), yaml);
  console.log(`wrote ${file}`);
}
