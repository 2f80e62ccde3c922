// Sums a V8 heap snapshot (bench/memprobe.js writes them with CSP_BENCH_HEAPSNAPSHOT_DIR; `npm run bench --
// --only memory --heap-snapshots <dir>`) by what a heap holds: self size and count per constructor (objects)
// or per node type (strings, arrays, code), and the strings held most often. Given two snapshots, it prints
// what grew from the first to the second, largest first: what the operator keeps per managed object.
//
//   npx tsx bench/heapsummary.ts <before.heapsnapshot> [<after.heapsnapshot>] [--top 40]
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]] } };
  nodes: number[];
  strings: string[];
}

export interface HeapSummary {
  /** "type:name" (e.g. "object:Object", "string", "array:(object properties)") -> bytes and count. */
  groups: Map<string, { bytes: number; count: number }>;
  /** String contents (first 60 chars) -> bytes and count. */
  strings: Map<string, { bytes: number; count: number }>;
  total: number;
}

export function summarize(path: string): HeapSummary {
  const s = JSON.parse(readFileSync(path, "utf8")) as Snapshot;
  const f = s.snapshot.meta.node_fields;
  const types = s.snapshot.meta.node_types[0];
  const [iType, iName, iSize] = [f.indexOf("type"), f.indexOf("name"), f.indexOf("self_size")];
  const groups = new Map<string, { bytes: number; count: number }>();
  const strings = new Map<string, { bytes: number; count: number }>();
  const add = (m: Map<string, { bytes: number; count: number }>, k: string, bytes: number) => {
    const g = m.get(k) ?? { bytes: 0, count: 0 };
    g.bytes += bytes;
    g.count++;
    m.set(k, g);
  };
  let total = 0;
  for (let i = 0; i < s.nodes.length; i += f.length) {
    const type = types[s.nodes[i + iType]!] ?? "?";
    const name = s.strings[s.nodes[i + iName]!] ?? "";
    const size = s.nodes[i + iSize]!;
    total += size;
    if (type === "string" || type === "concatenated string" || type === "sliced string") {
      add(groups, "string", size);
      add(strings, name.slice(0, 60), size);
    } else if (type === "object" || type === "closure" || type === "native")
      add(groups, `${type}:${name}`, size);
    else add(groups, `${type}:${type === "array" || type === "hidden" ? name : ""}`, size);
  }
  return { groups, strings, total };
}

function diff(
  a: Map<string, { bytes: number; count: number }> | undefined,
  b: Map<string, { bytes: number; count: number }>,
): [string, number, number][] {
  const rows: [string, number, number][] = [];
  for (const [k, v] of b) {
    const o = a?.get(k) ?? { bytes: 0, count: 0 };
    rows.push([k, v.bytes - o.bytes, v.count - o.count]);
  }
  return rows.sort((x, y) => y[1] - x[1]);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values, positionals } = parseArgs({
    options: { top: { type: "string", default: "40" } },
    allowPositionals: true,
  });
  const top = Number(values.top);
  const [first, second] = positionals.map(summarize);
  if (!first) throw new Error("usage: heapsummary.ts <a.heapsnapshot> [<b.heapsnapshot>]");
  const base = second ? first : undefined;
  const cur = second ?? first;
  const kb = (b: number) => `${(b / 1024).toFixed(1)} KiB`.padStart(12);
  console.log(`total ${kb(cur.total)}${base ? ` (delta ${kb(cur.total - base.total)})` : ""}`);
  console.log("\nby type:constructor (self size)");
  for (const [k, b, c] of diff(base?.groups, cur.groups).slice(0, top))
    console.log(`${kb(b)} ${String(c).padStart(8)}  ${k}`);
  console.log("\nstrings");
  for (const [k, b, c] of diff(base?.strings, cur.strings).slice(0, top))
    console.log(`${kb(b)} ${String(c).padStart(8)}  ${JSON.stringify(k)}`);
}
