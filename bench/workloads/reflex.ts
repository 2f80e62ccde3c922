// The reflex client: the lower bound for drift repair. It watches the managed objects and answers each
// event that leaves one of them not as desired with ONE write (apply for a missing object or label, update
// for a NetworkPolicy someone added rules to). No cache, no queue, no status. Prints "ready" once watching.
import { parseArgs } from "node:util";
import { isDesired, minimalWrites, npPath, NP_SPECS, SELECTOR_LABEL, type Kind } from "../lib/desired.js";
import { Kube, type Json } from "../lib/kube.js";

const { values } = parseArgs({
  options: { kubeconfig: { type: "string" }, "policy-uid": { type: "string" } },
});
if (!values.kubeconfig || !values["policy-uid"])
  throw new Error("reflex.ts needs --kubeconfig and --policy-uid");
const kube = new Kube(values.kubeconfig);
const uid = values["policy-uid"];
const selected = new Set<string>();

async function repair(kind: Kind, type: string, obj: Json): Promise<void> {
  const meta = obj["metadata"] as { name: string; namespace?: string; labels?: Record<string, string> };
  const ns = kind === "ns" ? meta.name : meta.namespace!;
  if (kind === "ns") {
    if (type === "DELETED" || meta.labels?.[SELECTOR_LABEL] === undefined) selected.delete(ns);
    else selected.add(ns);
  }
  if (!selected.has(ns)) return;
  const writes = minimalWrites(ns, uid);
  if (type === "DELETED") {
    if (kind !== "np") return;
    const w = writes.find((x) => x.path === npPath(ns, meta.name));
    if (w) await kube.apply(w.path, w.body, "bench-bare");
    return;
  }
  if (isDesired(kind, obj)) return;
  if (kind === "np") {
    if (!NP_SPECS[meta.name]) return;
    await kube.json("PUT", npPath(ns, meta.name), { body: { ...obj, spec: NP_SPECS[meta.name] } });
  } else
    await kube.apply(writes[kind === "ns" ? 0 : 1]!.path, writes[kind === "ns" ? 0 : 1]!.body, "bench-bare");
}

async function watch(kind: Kind, path: string, query: string, synced: () => void): Promise<void> {
  const list = await kube.json<{ metadata: { resourceVersion: string }; items: Json[] }>(
    "GET",
    `${path}?${query}`,
  );
  for (const item of list.items) if (kind === "ns") await repair(kind, "ADDED", item);
  synced();
  let rv = list.metadata.resourceVersion;
  for (;;) {
    const res = await kube.send(
      "GET",
      `${path}?${query}${query ? "&" : ""}watch=1&timeoutSeconds=3600&resourceVersion=${rv}`,
    );
    if (!res.ok || !res.body) throw new Error(`watch ${path}: HTTP ${res.status}`);
    const decoder = new TextDecoder();
    let buf = "";
    for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
      buf += decoder.decode(chunk, { stream: true });
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const ev = JSON.parse(buf.slice(0, nl)) as { type: string; object: Json };
        buf = buf.slice(nl + 1);
        if (ev.type === "ERROR") throw new Error(`watch ${path}: ${JSON.stringify(ev.object)}`);
        rv = (ev.object["metadata"] as { resourceVersion: string }).resourceVersion;
        repair(kind, ev.type, ev.object).catch((err: unknown) =>
          console.error(`repair failed: ${String(err)}`),
        );
      }
    }
  }
}

const watches: [Kind, string, string][] = [
  ["ns", "/api/v1/namespaces", ""],
  ["sa", "/api/v1/serviceaccounts", "fieldSelector=metadata.name%3Ddefault"],
  [
    "np",
    "/apis/networking.k8s.io/v1/networkpolicies",
    "labelSelector=app.kubernetes.io%2Fmanaged-by%3Dcsp-operator",
  ],
];
// Namespaces first: selection must be known before ServiceAccount and NetworkPolicy events are judged.
await new Promise<void>((synced) => void watch(...watches[0]!, synced).catch(fail));
await Promise.all(
  watches.slice(1).map((w) => new Promise<void>((synced) => void watch(...w, synced).catch(fail))),
);
console.log("ready");
process.once("SIGTERM", () => process.exit(0));

function fail(err: unknown): never {
  console.error(`reflex: ${String(err)}`);
  process.exit(1);
}
