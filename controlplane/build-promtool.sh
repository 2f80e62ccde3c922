#!/usr/bin/env bash
# Builds promtool (github.com/prometheus/prometheus cmd/promtool) from Go modules and caches it outside the
# repository, like the control plane. Re-runs are instant once the binary reports the expected version.
#
#   bash controlplane/build-promtool.sh     # build if missing, print the promtool path on the last line
#
# Built with -tags remove_all_sd: rule checks need no service discovery, so the cloud SDKs are left out.
# Environment: CSP_CONTROLPLANE_CACHE (default ~/.cache/csp-operator).
set -euo pipefail

PROM_VERSION=v0.316.0
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache=${CSP_CONTROLPLANE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/csp-operator}
bin="$cache/promtool-$PROM_VERSION/bin"
mkdir -p "$bin"
log() { printf '[promtool] %s\n' "$*" >&2; }

if [ -x "$bin/promtool" ] && "$bin/promtool" --version >/dev/null 2>&1; then
  echo "$bin/promtool"
  exit 0
fi
if ! command -v go >/dev/null 2>&1; then
  log "Go (>= 1.26) is required for the one-time promtool build and was not found on PATH."
  exit 1
fi
logf="$cache/promtool-$PROM_VERSION/build.log"
log "building promtool $PROM_VERSION (cold build on 2 cores: a few minutes; log: $logf)"
start=$SECONDS
# Built in a copy of the wrapper module (-mod=mod may add indirect requires), so the repository stays untouched;
# the checked-in go.sum pins every module hash.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$here/promtool/go.mod" "$here/promtool/tools.go" "$work/"
[ -f "$here/promtool/go.sum" ] && cp "$here/promtool/go.sum" "$work/"
if ! (cd "$work" && GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod \
  go build -trimpath -tags tools,remove_all_sd -ldflags "-s -w -X github.com/prometheus/common/version.Version=${PROM_VERSION#v}" \
  -o "$bin/promtool.tmp" github.com/prometheus/prometheus/cmd/promtool) >"$logf" 2>&1; then
  log "FAILED to build promtool after $((SECONDS - start)) s. Last lines of $logf:"
  tail -n 20 "$logf" >&2
  exit 1
fi
mv "$bin/promtool.tmp" "$bin/promtool"
log "built promtool in $((SECONDS - start)) s"
echo "$bin/promtool"
