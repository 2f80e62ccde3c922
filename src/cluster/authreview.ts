import type { KubeConfig } from "@kubernetes/client-node";
import { RestClient } from "./rest.js";

/** Timeout of each TokenReview / SubjectAccessReview request. */
export const REVIEW_TIMEOUT_MS = 3_000;

/** Who a bearer token belongs to, per the API server's TokenReview. */
export interface ReviewedUser {
  username: string;
  uid?: string;
  groups?: string[];
  extra?: Record<string, string[]>;
}

/**
 * Delegated authentication and authorization, as kube-rbac-proxy and controller-runtime's
 * WithAuthenticationAndAuthorization do it: a TokenReview tells who the caller is, a SubjectAccessReview
 * whether that user may `get` the non-resource URL. Neither review is stored by the API server.
 */
export class KubeAuthReviewer {
  private readonly rest: RestClient;

  constructor(kc: KubeConfig) {
    // Short: a scrape (Prometheus' default timeout is 10 s) must get an answer, even a 500, well before it
    // gives up; a failed review falls back on the token's last allow decision (MetricsServer).
    this.rest = new RestClient(kc, { defaultTimeoutMs: REVIEW_TIMEOUT_MS });
  }

  /** The token's user, or undefined when the API server does not authenticate it. */
  async authenticate(token: string): Promise<ReviewedUser | undefined> {
    const review = await this.rest.request<{
      status?: { authenticated?: boolean; user?: ReviewedUser };
    }>("POST", "/apis/authentication.k8s.io/v1/tokenreviews", {
      body: { apiVersion: "authentication.k8s.io/v1", kind: "TokenReview", spec: { token } },
    });
    return review.status?.authenticated && review.status.user?.username ? review.status.user : undefined;
  }

  /** May `user` perform `verb` on the non-resource URL `path`? */
  async authorize(user: ReviewedUser, verb: string, path: string): Promise<boolean> {
    const review = await this.rest.request<{ status?: { allowed?: boolean } }>(
      "POST",
      "/apis/authorization.k8s.io/v1/subjectaccessreviews",
      {
        body: {
          apiVersion: "authorization.k8s.io/v1",
          kind: "SubjectAccessReview",
          spec: {
            user: user.username,
            ...(user.uid ? { uid: user.uid } : {}),
            ...(user.groups ? { groups: user.groups } : {}),
            ...(user.extra ? { extra: user.extra } : {}),
            nonResourceAttributes: { path, verb },
          },
        },
      },
    );
    return review.status?.allowed === true;
  }
}

/** Paths of the review APIs: requests that create nothing, let through the leader-election write fence. */
export function isReviewPath(path: string): boolean {
  return (
    path === "/apis/authentication.k8s.io/v1/tokenreviews" ||
    path === "/apis/authorization.k8s.io/v1/subjectaccessreviews"
  );
}
