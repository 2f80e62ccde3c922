import { HygieneReader, servingCertificate } from "../cluster/hygiene.js";
import { OPERATOR_NAMESPACE } from "../desired/metadata.js";
import type { Finding } from "../findings/finding.js";
import { bound, hygieneCondition, isoDay } from "../hygiene/common.js";
import {
  AREA,
  CRED_CERT_UNREADABLE,
  CRED_CLUSTER_CA_EXPIRY,
  CRED_SERVING_CERT_EXPIRY,
  DEFAULT_EXPIRY_WARNING_DAYS,
  certificateFinding,
  fromX509,
  legacyTokenFindings,
  parsePemBundle,
  pkiFindings,
  pkiIncomplete,
} from "../hygiene/credentials.js";
import { agentEvidence, parsePkiReport, PKI_KEY } from "../evidence/agentreports.js";
import type { AreaFactory, AreaInput, AreaReconciler, AreaReport } from "./areas.js";
import { errorText, readFailureReason } from "./clusterversion.js";

export const CONDITION = "CredentialsRotated";
export const CLUSTER_CA_CONFIGMAP = "kube-root-ca.crt";
/** Certificates and token Secrets change without any event this area watches: read them again this often. */
export const CREDENTIALS_RECHECK_MS = 10 * 60_000;

/**
 * `spec.credentials`: legacy ServiceAccount token Secrets (metadata only), the serving certificate every
 * API server endpoint presents, and the cluster CA published in kube-root-ca.crt. Reports only.
 */
export function credentialsArea(recheckMs = CREDENTIALS_RECHECK_MS): AreaFactory {
  return ({ kc }) => {
    const reader = new HygieneReader(kc);
    const area: AreaReconciler = {
      name: "credentials",
      inUse: (spec) => spec.credentials !== undefined,
      async reconcile({ spec, snapshot }: AreaInput): Promise<AreaReport> {
        const c = spec.credentials ?? {};
        const now = snapshot.now;
        const warnDays = c.expiryWarningDays ?? c.certificateExpiryWarningDays ?? DEFAULT_EXPIRY_WARNING_DAYS;
        const findings: Finding[] = [];
        const problems: { reason: string; message: string }[] = [];
        const facts: string[] = [];

        if (c.legacyTokenSecrets !== false) {
          try {
            const secrets = await reader.legacyTokenSecrets();
            findings.push(...legacyTokenFindings(secrets));
            if (secrets.length === 0) facts.push("no legacy ServiceAccount token Secret");
          } catch (err) {
            const reason = readFailureReason(err);
            problems.push({
              reason,
              message: `legacy token Secrets not listed: ${errorText(err)}${reason === "Forbidden" ? " (apply the opt-in overlay config/credentials)" : ""}`,
            });
          }
        }

        let endpoints: { host: string; port: number }[] = [];
        try {
          endpoints = await reader.apiServerEndpoints();
        } catch (err) {
          problems.push({
            reason: readFailureReason(err),
            message: `the kubernetes Service's EndpointSlices could not be read (${errorText(err)}); only the API server this operator talks to was checked`,
          });
        }
        if (endpoints.length === 0) {
          const own = reader.configuredServer();
          if (own) endpoints = [own];
        }
        const expiries: string[] = [];
        for (const ep of endpoints) {
          const resource = `APIServer/${ep.host}:${ep.port}`;
          try {
            const cert = fromX509(await servingCertificate(ep.host, ep.port));
            const f = certificateFinding(
              CRED_SERVING_CERT_EXPIRY,
              `the serving certificate of the API server at ${ep.host}:${ep.port}`,
              resource,
              cert,
              now,
              warnDays,
            );
            if (f) findings.push(f);
            expiries.push(isoDay(cert.notAfter));
          } catch (err) {
            findings.push({
              id: CRED_CERT_UNREADABLE,
              severity: "Info",
              area: AREA,
              resource,
              message: `no serving certificate read from ${ep.host}:${ep.port}: ${errorText(err)}`,
            });
            problems.push({ reason: "CertificateUnreadable", message: `${ep.host}:${ep.port} not checked` });
          }
        }
        if (expiries.length > 0)
          facts.push(
            `serving certificate(s) of ${expiries.length} API server endpoint(s) valid until ${[...expiries].sort()[0]} or later`,
          );

        try {
          const data = await reader.configMapData(OPERATOR_NAMESPACE, CLUSTER_CA_CONFIGMAP);
          const pem = data?.["ca.crt"];
          if (pem === undefined)
            problems.push({
              reason: "ClusterCAUnknown",
              message: `ConfigMap ${OPERATOR_NAMESPACE}/${CLUSTER_CA_CONFIGMAP} (ca.crt) not found`,
            });
          else {
            const { certs, errors } = parsePemBundle(pem);
            for (const cert of certs) {
              const f = certificateFinding(
                CRED_CLUSTER_CA_EXPIRY,
                "a cluster CA certificate",
                `ConfigMap/${OPERATOR_NAMESPACE}/${CLUSTER_CA_CONFIGMAP}`,
                cert,
                now,
                warnDays,
              );
              if (f) findings.push(f);
            }
            if (errors.length > 0)
              problems.push({ reason: "ClusterCAUnknown", message: `cluster CA: ${errors.join("; ")}` });
            if (certs.length > 0)
              facts.push(`cluster CA valid until ${certs.map((x) => isoDay(x.notAfter)).sort()[0]}`);
          }
        } catch (err) {
          problems.push({
            reason: readFailureReason(err),
            message: `cluster CA not read: ${errorText(err)}`,
          });
        }

        // The control-plane PKI, as the node agents read it on their hosts (absent without an agent).
        const pki = agentEvidence(snapshot.configMaps ?? [], PKI_KEY, parsePkiReport);
        findings.push(...pkiFindings(pki, now, warnDays));
        for (const n of pki) {
          const incomplete = n.value
            ? pkiIncomplete(n.node, n.value, now, warnDays)
            : { reason: "CertificateUnreadable", message: `the PKI report of node ${n.node} is not usable` };
          if (incomplete) problems.push(incomplete);
        }
        const pkiCerts = pki.flatMap((n) => n.value?.certificates ?? []);
        if (pkiCerts.length > 0)
          facts.push(
            `${pkiCerts.length} control-plane certificate(s) on ${pki.length} node(s) valid until ${pkiCerts.map((x) => x.notAfter.slice(0, 10)).sort()[0]} or later`,
          );

        let condition = hygieneCondition(CONDITION, findings, spec.exemptions, now, {
          failReason: "RotationDue",
          okReason: "Rotated",
          okMessage: `${facts.join("; ")}; certificates checked against ${warnDays} day(s)`,
        });
        if (condition.status === "True" && problems.length > 0)
          condition = {
            type: CONDITION,
            status: "Unknown",
            reason: problems[0]!.reason,
            message: bound(problems.map((p) => p.message).join("; ")),
          };
        return { findings, conditions: [condition], requeueAfterMs: recheckMs };
      },
    };
    return area;
  };
}
