/**
 * PURE: text that came from a node (a certificate subject, a file path, an audit event's user name) made
 * safe to publish in a report, a status message, an event or a log line: one line, no character that
 * reorders or hides text, bounded, and (for names) nothing that looks like a credential.
 */

/**
 * C0 and C1 controls, DEL, the line and paragraph separators, and the bidirectional embedding, override and
 * isolate characters (U+202A-U+202E, U+2066-U+2069) and marks (U+200E, U+200F, U+061C): each can forge a
 * line or make text read differently from what it is.
 */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

/** One line, every unsafe character replaced by `?`, at most `max` characters (`...` when cut). */
export function oneLine(text: string, max: number): string {
  const t = text.replace(UNSAFE, "?");
  if (t.length <= max) return t;
  // Never cut a surrogate pair in two.
  const cut = [...t.slice(0, max - 3)].join("");
  return `${/[\ud800-\udbff]$/.test(cut) ? cut.slice(0, -1) : cut}...`;
}

/**
 * Anything that looks like a credential replaced by `<redacted>`: a JWT, a bootstrap token
 * (`abcdef.0123456789abcdef`), a `Bearer`/`Basic` value, GitHub (`ghp_`, `github_pat_`...), Slack
 * (`xox.-`), Anthropic/OpenAI (`sk-`) and AWS (`AKIA...`) keys, a run of 32 or more hex digits, and a
 * long base64 run mixing upper and lower case letters and digits.
 */
export function redactTokens(text: string): string {
  return text
    .replace(/eyJ[A-Za-z0-9_-]{8,}(\.[A-Za-z0-9_-]*){0,2}/g, "<redacted>")
    .replace(/\b[a-z0-9]{6}\.[a-z0-9]{16}\b/g, "<redacted>")
    .replace(/\b(Bearer|Basic)\s+\S+/gi, "$1 <redacted>")
    .replace(/\b(gh[pousr]_|github_pat_)[A-Za-z0-9_]{16,}/g, "<redacted>")
    .replace(/\bxox[abprs]-[A-Za-z0-9-]{10,}/g, "<redacted>")
    .replace(/\bsk-[A-Za-z0-9_-]{16,}/g, "<redacted>")
    .replace(/\b(AKIA|ASIA)[A-Z0-9]{16}\b/g, "<redacted>")
    .replace(/\b[0-9a-fA-F]{32,}\b/g, "<redacted>")
    .replace(/[A-Za-z0-9+/_-]{24,}={0,2}/g, (run) =>
      /[A-Z]/.test(run) && /[a-z]/.test(run) && /[0-9]/.test(run) ? "<redacted>" : run,
    );
}
