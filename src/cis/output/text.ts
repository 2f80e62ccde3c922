/**
 * Making text that came from input safe to print. Flag values, paths and file names reach evidence and
 * error messages; printed raw, an escape sequence in them would drive the reader's terminal (clear the
 * screen, set the title, hide the lines after it) and a newline would forge report lines. Everything
 * printed goes through {@link safeText}: one line, control characters escaped, bounded in length.
 */

/** Evidence of one check result is cut to this many characters. */
export const MAX_EVIDENCE_CHARS = 2000;

/** An error message or warning is cut to this many characters. */
export const MAX_MESSAGE_CHARS = 500;

// C0 controls, DEL, C1 controls (U+009B is a one-character CSI on some terminals), the Unicode line and
// paragraph separators, and the bidirectional overrides and isolates that reorder what is displayed.
// eslint-disable-next-line no-control-regex
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]/g;

function escapeChar(c: string): string {
  const code = c.charCodeAt(0);
  if (c === "\n") return "\\n";
  if (c === "\r") return "\\r";
  if (c === "\t") return "\\t";
  return code <= 0xff
    ? `\\x${code.toString(16).padStart(2, "0")}`
    : `\\u${code.toString(16).padStart(4, "0")}`;
}

/** Replaces every control character with a visible escape (`\x1b`, `\n`, `\u202e`). */
export function escapeControl(s: string): string {
  return s.replace(UNSAFE, escapeChar);
}

/**
 * One printable line of at most `max` characters: control characters escaped, the rest cut with a note of
 * how much was left out. Cutting never splits a surrogate pair.
 */
export function safeText(s: string, max: number): string {
  const escaped = escapeControl(s);
  if (escaped.length <= max) return escaped;
  const note = (n: number) => ` ... (${n} more characters)`;
  let keep = Math.max(0, max - note(escaped.length).length);
  const last = escaped.charCodeAt(keep - 1);
  if (keep > 0 && last >= 0xd800 && last <= 0xdbff) keep--;
  return escaped.slice(0, keep) + note(escaped.length - keep);
}

/**
 * A value from input, quoted for a message: strings in double quotes (`"` and `\\` escaped), anything
 * else JSON-encoded, then made safe (control characters escaped as in {@link escapeControl}) and bounded (default 80 characters) so a 50 MB value does not become a 50 MB message.
 */
export function quote(v: unknown, max = 80): string {
  let s: string;
  try {
    s = typeof v === "string" ? `"${v.replace(/["\\]/g, "\\$&")}"` : (JSON.stringify(v) ?? String(v));
  } catch {
    s = Object.prototype.toString.call(v);
  }
  return safeText(s, max);
}
