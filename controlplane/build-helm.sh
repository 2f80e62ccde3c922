#!/usr/bin/env bash
# Builds the helm CLI from the Go module helm.sh/helm/v4 (wrapper module in controlplane/helm) and caches
# the binary outside the repository, next to the control plane. Re-runs are instant: the binary is rebuilt
# only when it is missing or reports another version. The chart tests (test/integration/helm.test.ts) use it.
#
#   bash controlplane/build-helm.sh     # build if missing, print the binary's path on the last line
#
# Environment: CSP_CONTROLPLANE_CACHE (default ~/.cache/csp-operator) — where binaries live.
set -euo pipefail

HELM_VERSION=v4.3.2
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache=${CSP_CONTROLPLANE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/csp-operator}
bin="$cache/helm-$HELM_VERSION/bin"
mkdir -p "$bin"

log() { printf '[helm] %s\n' "$*" >&2; }

if [[ -x $bin/helm && $("$bin/helm" version --template '{{.Version}}' 2>/dev/null || true) == "$HELM_VERSION" ]]; then
  echo "$bin/helm"
  exit 0
fi

if ! command -v go >/dev/null 2>&1; then
  log "Go is required for the one-time helm build (Go >= 1.26 from https://go.dev/dl) and was not found on PATH."
  exit 1
fi

logf="$cache/helm-$HELM_VERSION/build-helm.log"
log "building helm $HELM_VERSION (cold build on 2 cores: about 2 min; log: $logf)"
start=$SECONDS
ldflags="-s -w -X helm.sh/helm/v4/internal/version.version=$HELM_VERSION"
ldflags+=" -X helm.sh/helm/v4/internal/version.gitTreeState=clean"
(cd "$here/helm" && GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod \
   go build -trimpath -ldflags "$ldflags" -o "$bin/helm.tmp" helm.sh/helm/v4/cmd/helm) >"$logf" 2>&1 &
pid=$!
while kill -0 "$pid" 2>/dev/null; do
  sleep 5
  if (( (SECONDS - start) % 30 < 5 )) && kill -0 "$pid" 2>/dev/null; then
    log "  still building, $((SECONDS - start)) s elapsed"
  fi
done
if ! wait "$pid"; then
  log "FAILED to build helm after $((SECONDS - start)) s. Last lines of $logf:"
  tail -n 20 "$logf" >&2
  log "Fix the cause (disk space, Go module proxy reachable?) and run 'bash controlplane/build-helm.sh' again."
  exit 1
fi
mv "$bin/helm.tmp" "$bin/helm"
log "built helm in $((SECONDS - start)) s"
echo "$bin/helm"
