// The bare client: exactly the minimal writes the baseline policy needs (5 server-side applies per
// namespace), nothing read, with the same library and one keep-alive connection pool, at a given
// concurrency. Run as its own process; prints "ready", waits for "go" on stdin, prints "done <ms>".
import { readFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";
import { minimalWrites } from "../lib/desired.js";
import { Kube, pool } from "../lib/kube.js";

const { values } = parseArgs({
  options: {
    kubeconfig: { type: "string" },
    "policy-uid": { type: "string" },
    "namespaces-file": { type: "string" },
    concurrency: { type: "string", default: "1" },
  },
});
if (!values.kubeconfig || !values["policy-uid"] || !values["namespaces-file"])
  throw new Error("bare.ts needs --kubeconfig, --policy-uid and --namespaces-file");
const kube = new Kube(values.kubeconfig);
const namespaces = readFileSync(values["namespaces-file"], "utf8").split("\n").filter(Boolean);
const writes = namespaces.flatMap((ns) => minimalWrites(ns, values["policy-uid"]!));

await kube.json("GET", "/version"); // opens the keep-alive connection, as the operator's informers have
console.log("ready");
const lines = createInterface({ input: process.stdin });
for await (const line of lines) if (line === "go") break;
const t0 = performance.now();
await pool(writes, Number(values.concurrency), async (w) => {
  await kube.apply(w.path, w.body, "bench-bare");
});
console.log(`done ${Math.round(performance.now() - t0)}`);
// Stay alive until the benchmark has read this process's CPU time and closes stdin.
for await (const _ of lines) {
  /* drain */
}
