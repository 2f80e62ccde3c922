/**
 * Kubernetes minor releases with their release and end-of-life dates: the table `spec.clusterVersion`
 * judges versions against. Shipped as data so no lookup happens at run time; an air-gapped cluster
 * replaces it with a ConfigMap (`spec.clusterVersion.tableConfigMap`, key `releases.json`, same shape).
 *
 * Sources (checked on `lastUpdated`):
 * - end-of-life dates of past minors and their final patches: kubernetes/website data/releases/eol.yaml
 *   (https://github.com/kubernetes/website/blob/main/data/releases/eol.yaml);
 * - release dates, end-of-life dates of supported minors and latest patches: https://kubernetes.io/releases/
 *   and the per-minor pages https://kubernetes.io/releases/1.NN/ ; patches newer than those pages from the
 *   tags of k8s.io/kubernetes served by the Go module proxy.
 * A minor is supported for about 14 months after its release (12 standard + 2 maintenance).
 */
export interface ReleaseTable {
  /** ISO date the table was last checked against its sources; a table older than 180 days is reported. */
  lastUpdated: string;
  source: string;
  releases: MinorRelease[];
}

export interface MinorRelease {
  /** "1.36" */
  minor: string;
  /** ISO date of x.y.0. */
  released: string;
  /** ISO date the branch stops receiving patches. */
  endOfLife: string;
  /** Newest patch release of the branch the sources showed on lastUpdated, e.g. "1.36.3". */
  latestPatch: string;
}

export const KUBERNETES_RELEASES: ReleaseTable = {
  lastUpdated: "2026-12-05",
  source:
    "https://kubernetes.io/releases/ and kubernetes/website data/releases/eol.yaml; patches from k8s.io/kubernetes tags",
  releases: [
    { minor: "1.24", released: "2022-05-03", endOfLife: "2023-07-28", latestPatch: "1.24.17" },
    { minor: "1.25", released: "2022-08-23", endOfLife: "2023-10-28", latestPatch: "1.25.16" },
    { minor: "1.26", released: "2022-12-08", endOfLife: "2024-02-28", latestPatch: "1.26.15" },
    { minor: "1.27", released: "2023-04-11", endOfLife: "2024-07-16", latestPatch: "1.27.16" },
    { minor: "1.28", released: "2023-08-15", endOfLife: "2024-10-22", latestPatch: "1.28.15" },
    { minor: "1.29", released: "2023-12-13", endOfLife: "2025-02-28", latestPatch: "1.29.14" },
    { minor: "1.30", released: "2024-04-17", endOfLife: "2025-07-15", latestPatch: "1.30.14" },
    { minor: "1.31", released: "2024-08-13", endOfLife: "2025-11-11", latestPatch: "1.31.14" },
    { minor: "1.32", released: "2024-12-11", endOfLife: "2026-02-28", latestPatch: "1.32.13" },
    { minor: "1.33", released: "2025-04-23", endOfLife: "2026-06-28", latestPatch: "1.33.10" },
    { minor: "1.34", released: "2025-08-27", endOfLife: "2026-10-27", latestPatch: "1.34.6" },
    { minor: "1.35", released: "2025-12-17", endOfLife: "2027-02-28", latestPatch: "1.35.9" },
    { minor: "1.36", released: "2026-04-22", endOfLife: "2027-06-28", latestPatch: "1.36.3" },
    { minor: "1.37", released: "2026-08-26", endOfLife: "2027-10-28", latestPatch: "1.37.2" },
  ],
};
