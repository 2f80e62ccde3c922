/**
 * Writes crds/ from the schema in policy.ts. Run `npm run crds` after changing the API;
 * test/unit/api/crd.test.ts fails while the committed file is stale.
 */
import { writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { renderCRDYaml, CRD_FILE } from "./render.js";

const target = fileURLToPath(new URL(`../../../${CRD_FILE}`, import.meta.url));
writeFileSync(target, renderCRDYaml());
console.log(`wrote ${CRD_FILE}`);
