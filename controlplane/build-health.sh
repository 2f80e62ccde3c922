#!/usr/bin/env bash
# Builds csp-healthcheck (controlplane/healthcheck): Argo CD's Lua interpreter (github.com/yuin/gopher-lua)
# and Flux's kstatus (sigs.k8s.io/cli-utils), used by the GitOps health tests. Cached outside the repository
# like the control plane; a re-run is instant unless the Go source or go.sum changed.
#
#   bash controlplane/build-health.sh    # prints the binary's path on the last line
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache=${CSP_CONTROLPLANE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/csp-operator}
src="$here/healthcheck"
stamp=$(cat "$src/go.mod" "$src/go.sum" "$src"/*.go | sha256sum | cut -c1-16)
bin="$cache/healthcheck/$stamp/csp-healthcheck"
if [ ! -x "$bin" ]; then
  if ! command -v go >/dev/null 2>&1; then
    echo "[healthcheck] Go >= 1.26 is required to build csp-healthcheck and was not found on PATH." >&2
    exit 1
  fi
  mkdir -p "$(dirname "$bin")"
  echo "[healthcheck] building csp-healthcheck (about 30 s cold)" >&2
  (cd "$src" && GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -ldflags "-s -w" -o "$bin.tmp" .)
  mv "$bin.tmp" "$bin"
fi
echo "$bin"
