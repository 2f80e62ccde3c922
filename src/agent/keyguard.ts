import { parse } from "yaml";

/**
 * The keys an EncryptionConfiguration can decrypt with, as `<provider>/<name>` (kms: `kms/<name>`), over
 * every resource entry. identity and unparseable parts contribute nothing.
 */
export function decryptionKeys(yamlText: string): Set<string> {
  const keys = new Set<string>();
  let doc: unknown;
  try {
    doc = parse(yamlText);
  } catch {
    return keys;
  }
  const resources = (doc as { resources?: unknown } | null)?.resources;
  if (!Array.isArray(resources)) return keys;
  for (const r of resources) {
    const providers = (r as { providers?: unknown } | null)?.providers;
    if (!Array.isArray(providers)) continue;
    for (const p of providers) {
      if (!p || typeof p !== "object") continue;
      for (const [provider, conf] of Object.entries(p as Record<string, unknown>)) {
        if (provider === "identity" || !conf || typeof conf !== "object") continue;
        if (provider === "kms") {
          const name = (conf as { name?: unknown }).name;
          if (typeof name === "string") keys.add(`kms/${name}`);
          continue;
        }
        const list = (conf as { keys?: unknown }).keys;
        if (!Array.isArray(list)) continue;
        for (const k of list) {
          const name = (k as { name?: unknown } | null)?.name;
          if (typeof name === "string") keys.add(`${provider}/${name}`);
        }
      }
    }
  }
  return keys;
}

/**
 * Keys a file on disk can decrypt with that the replacement cannot. Overwriting an EncryptionConfiguration
 * the operator did not write with one that lacks such a key makes every object stored under it unreadable:
 * the agent refuses, and says which keys, instead of losing data.
 */
export function keysDropped(existing: string, replacement: string): string[] {
  const kept = decryptionKeys(replacement);
  return [...decryptionKeys(existing)].filter((k) => !kept.has(k)).sort();
}
