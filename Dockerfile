# The operator's image (also the node agent's: `agent` instead of `run`).
#   docker build -t ghcr.io/csp-operator/csp-operator:0.1.0 .
# Three stages: `build` compiles TypeScript with the dev dependencies, `deps` installs the production
# dependencies only, and the final stage is the Node base image plus those two results and package.json:
# no compiler, no sources, no tests, no npm cache. test/packaging/image.test.ts rebuilds the final stage's
# files from this file (it reads the COPY lines) and runs the entrypoint from them, so a file the runtime
# needs but this Dockerfile does not copy fails a test, not a rollout.
#
# Node is pinned by version, the same as the `node` devDependency the tests run on (a test checks that). To
# pin the digest too: docker buildx imagetools inspect node:24.21.0-alpine, then
#   docker build --build-arg NODE_IMAGE=node:24.21.0-alpine@sha256:<digest> .
ARG NODE_IMAGE=node:24.21.0-alpine

FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
# --ignore-scripts: the `prepare` build needs the sources, copied below; the `node` devDependency's install
# script would download a second Node.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN node node_modules/typescript/bin/tsc -p tsconfig.build.json

FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund

FROM ${NODE_IMAGE}
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="csp-operator" \
      org.opencontainers.image.description="Kubernetes operator that reconciles ClusterSecurityPolicy: network isolation, least privilege, Pod Security and control-plane hardening." \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/csp-operator/csp-operator" \
      org.opencontainers.image.url="https://github.com/csp-operator/csp-operator" \
      org.opencontainers.image.documentation="https://github.com/csp-operator/csp-operator#readme" \
      org.opencontainers.image.vendor="csp-operator"
# The runtime never calls npm, npx, corepack or yarn: leave them out of what runs in the cluster.
RUN rm -rf /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/corepack /opt/yarn-* \
      /usr/local/bin/npm /usr/local/bin/npx /usr/local/bin/corepack /usr/local/bin/yarn /usr/local/bin/yarnpkg
WORKDIR /app
ENV NODE_ENV=production
# V8's heap sized from the container's memory limit (cgroup), not the node's RAM: without it V8 may grow past
# the limit before it collects, and the kubelet OOM-kills the pod. 60 % leaves room for buffers and code
# (measured in a 256 MiB cgroup: heap limit 156 MiB with this, 259 MiB without). In so small a container V8
# also keeps its young generation small (1 MiB semi-spaces at 256 MiB); `npm run bench -- --only memory
# --memory-limit-mib N` gives the operator the same heap. The limit to set per cluster size: README, Memory sizing.
ENV NODE_OPTIONS=--max-old-space-size-percentage=60
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY --from=build /src/dist/src ./dist/src
# `validate` reads the CRD's schema and CEL rules from the generated file at run time.
COPY crds/security.csp-operator.io_clustersecuritypolicies.yaml ./crds/
# Numeric, so `runAsNonRoot: true` can verify it. The process writes nothing: readOnlyRootFilesystem works
# without a writable volume.
USER 65532:65532
ENTRYPOINT ["node", "/app/dist/src/main.js"]
CMD ["run"]
