import { expect } from "chai";
import { stale, SYNCED, templateOf } from "../../../tools/chart-sync.js";

describe("chart copies of config/ (npm run chart-sync)", () => {
  it("every generated template and copied file in the chart is what config/ makes of it", () => {
    expect(stale(), "run npm run chart-sync").to.deep.equal([]);
    expect(SYNCED.length).to.be.greaterThan(10);
  });

  it("adds the chart's labels to each object: flow map, block map, or none; wraps in the switch", () => {
    const text = [
      "# leading comment, left out",
      "---",
      "apiVersion: v1",
      "kind: A",
      "metadata:",
      "  name: a",
      "  labels: { app.kubernetes.io/name: csp-operator, x: y }",
      "  # kept",
      "data: {}",
      "---",
      "apiVersion: v1",
      "kind: B",
      "metadata:",
      "  name: b",
      "  labels:",
      "    k: v",
      "  annotations: { a: b }",
      "spec:",
      "  selector:",
      "    matchLabels: { k: v }",
      "---",
      "kind: C",
      "metadata:",
      "  name: c",
      "",
    ].join("\n");
    const include = '    {{- include "csp-operator.labels" . | nindent 4 }}';
    expect(templateOf("config/x.yaml", text, "agent.enabled").split("\n")).to.deep.equal([
      "{{- /* Generated from config/x.yaml by `npm run chart-sync` (the comments there say why); edit that file. */}}",
      "{{- if .Values.agent.enabled }}",
      "apiVersion: v1",
      "kind: A",
      "metadata:",
      "  name: a",
      "  labels:",
      "    app.kubernetes.io/name: csp-operator",
      "    x: y",
      include,
      "  # kept",
      "data: {}",
      "---",
      "apiVersion: v1",
      "kind: B",
      "metadata:",
      "  name: b",
      "  labels:",
      "    k: v",
      include,
      "  annotations: { a: b }",
      "spec:",
      "  selector:",
      "    matchLabels: { k: v }",
      "---",
      "kind: C",
      "metadata:",
      "  name: c",
      "  labels:",
      include,
      "{{- end }}",
      "",
    ]);
  });

  it("refuses labels it cannot extend, naming the file", () => {
    const text = "kind: A\nmetadata:\n  name: a\n  labels: {a: b}, # odd\n";
    expect(() => templateOf("config/odd.yaml", text)).to.throw(/config\/odd.yaml: metadata.labels/);
  });
});
