import { generate } from "selfsigned";

const DAY = 86_400_000;

/**
 * A self-signed certificate made in the test (EC P-256, fast), expiring `days` from now (negative: already
 * expired), and its private key, for PKI expiry tests on temp host roots.
 */
export async function certificate(cn: string, days: number): Promise<{ cert: string; key: string }> {
  const pems = await generate([{ name: "commonName", value: cn }], {
    keyType: "ec",
    curve: "P-256",
    algorithm: "sha256",
    notBeforeDate: new Date(Date.now() - 2 * 365 * DAY),
    notAfterDate: new Date(Date.now() + days * DAY),
  });
  return { cert: pems.cert, key: pems.private };
}
