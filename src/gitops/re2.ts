/**
 * Go RE2 regular expressions (the API server's `pattern` and CEL `matches()`) run on JavaScript's engine.
 * The syntax our CRD uses is common to both; the meaning differs in two places, rewritten here:
 * - `.` in RE2 matches any character but `\n`; in JavaScript it also refuses `\r`, U+2028 and U+2029, so
 *   `^unix:///.+` would wrongly refuse `unix:///\r`.
 * - `\s` in RE2 is ASCII `[\t\n\f\r ]`; JavaScript's also takes `\v`, U+00A0, U+2028, U+FEFF, ...
 *   (`\S` likewise). `\d`, `\w` and `\b` are ASCII in both.
 */
const SPACE = "\\t\\n\\f\\r ";

/** The JavaScript source (for `new RegExp(source, "u")`) matching what RE2 matches for `pattern`. */
export function re2ToJs(pattern: string): string {
  let out = "";
  let inClass = false;
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === "\\" && i + 1 < pattern.length) {
      const n = pattern[i + 1]!;
      i++;
      if (n === "s") out += inClass ? SPACE : `[${SPACE}]`;
      else if (n === "S" && !inClass) out += `[^${SPACE}]`;
      else out += c + n;
      continue;
    }
    if (inClass) {
      if (c === "]") inClass = false;
      out += c;
      continue;
    }
    if (c === "[") {
      inClass = true;
      out += c;
      // A `]` right after `[` or `[^` is a literal in RE2.
      if (pattern[i + 1] === "^") out += pattern[++i];
      if (pattern[i + 1] === "]") {
        out += "\\]";
        i++;
      }
      continue;
    }
    out += c === "." ? "[^\\n]" : c;
  }
  return out;
}

const cache = new Map<string, RegExp>();

/** A compiled RE2 pattern (cached: the CRD has few). */
export function re2(pattern: string): RegExp {
  let re = cache.get(pattern);
  if (!re) {
    re = new RegExp(re2ToJs(pattern), "u");
    cache.set(pattern, re);
  }
  return re;
}
