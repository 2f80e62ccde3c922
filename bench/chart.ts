// Draws the converge-time chart (median converge time against N, one line per client) as a standalone SVG
// from the benchmark's own figures. No dependencies: a few lines of SVG.

export interface Series {
  name: string;
  color: string;
  /** SVG stroke-dasharray, e.g. "6 4"; solid when unset. */
  dash?: string;
  points: { n: number; seconds: number }[];
}

const W = 780;
const H = 360;
const M = { left: 64, right: 250, top: 40, bottom: 48 };

function niceMax(v: number): number {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;");

export function convergeChart(series: Series[], title: string): string {
  const ns = [...new Set(series.flatMap((s) => s.points.map((p) => p.n)))].sort((a, b) => a - b);
  const xMax = niceMax(Math.max(...ns, 1));
  const yMax = niceMax(Math.max(...series.flatMap((s) => s.points.map((p) => p.seconds)), 0.001));
  const pw = W - M.left - M.right;
  const ph = H - M.top - M.bottom;
  const x = (n: number) => +(M.left + (n / xMax) * pw).toFixed(1);
  const y = (v: number) => +(M.top + ph - (v / yMax) * ph).toFixed(1);
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${M.left}" y="22" font-size="14" font-weight="bold">${esc(title)}</text>`,
    `<line x1="${M.left}" y1="${M.top + ph}" x2="${M.left + pw}" y2="${M.top + ph}" stroke="black"/>`,
    `<line x1="${M.left}" y1="${M.top}" x2="${M.left}" y2="${M.top + ph}" stroke="black"/>`,
    `<text x="${M.left + pw / 2}" y="${H - 10}" text-anchor="middle">namespaces (N)</text>`,
    `<text x="16" y="${M.top + ph / 2}" text-anchor="middle" transform="rotate(-90 16 ${M.top + ph / 2})">cold converge (s, median)</text>`,
  ];
  for (let i = 0; i <= 4; i++) {
    const v = (yMax * i) / 4;
    out.push(
      `<line x1="${M.left}" y1="${y(v)}" x2="${M.left + pw}" y2="${y(v)}" stroke="#ddd"/>`,
      `<text x="${M.left - 6}" y="${y(v) + 4}" text-anchor="end">${+v.toPrecision(3)}</text>`,
    );
  }
  for (const n of ns)
    out.push(
      `<line x1="${x(n)}" y1="${M.top + ph}" x2="${x(n)}" y2="${M.top + ph + 5}" stroke="black"/>`,
      `<text x="${x(n)}" y="${M.top + ph + 18}" text-anchor="middle">${n}</text>`,
    );
  series.forEach((s, i) => {
    const dash = s.dash ? ` stroke-dasharray="${s.dash}"` : "";
    const pts = [...s.points].sort((a, b) => a.n - b.n);
    if (pts.length > 1)
      out.push(
        `<polyline fill="none" stroke="${s.color}" stroke-width="2"${dash} points="${pts.map((p) => `${x(p.n)},${y(p.seconds)}`).join(" ")}"/>`,
      );
    for (const p of pts)
      out.push(
        `<circle cx="${x(p.n)}" cy="${y(p.seconds)}" r="4" fill="${s.color}"><title>${esc(s.name)} N=${p.n}: ${p.seconds.toFixed(2)} s</title></circle>`,
      );
    const ly = M.top + 10 + i * 20;
    out.push(
      `<line x1="${M.left + pw + 16}" y1="${ly}" x2="${M.left + pw + 36}" y2="${ly}" stroke="${s.color}" stroke-width="2"${dash}/>`,
      `<text x="${M.left + pw + 42}" y="${ly + 4}">${esc(s.name)}</text>`,
    );
  });
  out.push("</svg>");
  return `${out.join("\n")}\n`;
}
