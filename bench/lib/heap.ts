// How the benchmark sizes the operator's V8 heap: as the image does under the Deployment's memory limit.
// Every bench that starts the compiled operator for its memory figures (the full bench's lab and
// `--only memory`) takes its node flags from here, so both measure the operator as the image runs it.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parse } from "yaml";

const MiB = 1024 * 1024;
const DEPLOYMENT = fileURLToPath(new URL("../../config/manager/deployment.yaml", import.meta.url));
/** The image's NODE_OPTIONS=--max-old-space-size-percentage=60 (Dockerfile). */
const OLD_SPACE_PERCENT = 60;

/**
 * The operator container's memory limit in config/manager/deployment.yaml (charts/csp-operator/values.yaml
 * has the same default), in MiB: the limit the bench emulates unless `--memory-limit-mib` says
 * otherwise. Throws naming the file when the limit is missing or not a plain `<n>Mi`/`<n>Gi`.
 */
export function deploymentMemoryLimitMiB(path = DEPLOYMENT): number {
  const doc = parse(readFileSync(path, "utf8")) as {
    spec?: { template?: { spec?: { containers?: { resources?: { limits?: { memory?: unknown } } }[] } } };
  };
  const limit = doc.spec?.template?.spec?.containers?.[0]?.resources?.limits?.memory;
  const m = typeof limit === "string" ? /^(\d+)(Mi|Gi)$/.exec(limit) : null;
  if (!m)
    throw new Error(
      `${path}: spec.template.spec.containers[0].resources.limits.memory must be <n>Mi or <n>Gi, got ${JSON.stringify(limit)}`,
    );
  return Number(m[1]) * (m[2] === "Gi" ? 1024 : 1);
}

/** What the bench runs the operator with: the emulated container limit and the node flags it implies. */
export interface HeapSizing {
  memoryLimitMiB: number;
  memoryLimitBytes: number;
  nodeArgs: string[];
}

/**
 * The V8 heap the image gets under a container memory limit, given as flags (the bench cannot set a cgroup
 * limit): the image's NODE_OPTIONS=--max-old-space-size-percentage=60 makes the old generation 60 % of the
 * limit, and in so small a container V8 sizes the young generation from it (a semi-space of old/128,
 * rounded down to a power of two, at least 1 MiB: measured in a 256 MiB cgroup, a 156 MiB heap limit =
 * 153 + 3 x 1). Outside a container Node 24 picks 64 MiB semi-spaces on a large machine instead;
 * `semiSpaceMiB` 0 keeps that default, a number sets it.
 */
export function imageHeapSizing(memoryLimitMiB: number, semiSpaceMiB?: number): HeapSizing {
  if (!Number.isInteger(memoryLimitMiB) || memoryLimitMiB < 64)
    throw new Error(`memory limit must be an integer >= 64 MiB, got ${memoryLimitMiB}`);
  if (semiSpaceMiB !== undefined && (!Number.isInteger(semiSpaceMiB) || semiSpaceMiB < 0))
    throw new Error(`semi-space size must be an integer >= 0 MiB, got ${semiSpaceMiB}`);
  const old = Math.floor((memoryLimitMiB * OLD_SPACE_PERCENT) / 100);
  const semi = semiSpaceMiB ?? Math.max(1, 2 ** Math.floor(Math.log2(Math.max(1, old / 128))));
  return {
    memoryLimitMiB,
    memoryLimitBytes: memoryLimitMiB * MiB,
    nodeArgs: [`--max-old-space-size=${old}`, ...(semi > 0 ? [`--max-semi-space-size=${semi}`] : [])],
  };
}
