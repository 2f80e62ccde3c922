#!/usr/bin/env bash
# Builds the local Kubernetes control plane (etcd, kube-apiserver, kube-controller-manager, kubectl) from
# Go modules and caches the binaries outside the repository. Re-runs are instant: a binary is rebuilt only
# when it is missing or reports another version.
#
#   bash controlplane/build.sh          # build what is missing, print the bin directory on the last line
#
# Environment: CSP_CONTROLPLANE_CACHE (default ~/.cache/csp-operator) — where binaries live.
set -euo pipefail

K8S_VERSION=v1.36.3
ETCD_VERSION=v3.6.16
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache=${CSP_CONTROLPLANE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/csp-operator}
bin="$cache/$K8S_VERSION/bin"
mkdir -p "$bin"

log() { printf '[controlplane] %s\n' "$*" >&2; }

if ! command -v go >/dev/null 2>&1; then
  log "Go is required for the one-time control-plane build (Go >= 1.26 from https://go.dev/dl) and was not found on PATH."
  exit 1
fi

# A binary counts as built when it exists and reports the expected version.
have() {
  local name=$1 want=$2 out
  [ -x "$bin/$name" ] || return 1
  case $name in
    kubectl) out=$("$bin/$name" version --client 2>/dev/null || true) ;;
    etcd) out=$("$bin/$name" --version 2>/dev/null || true) ;;
    *) out=$("$bin/$name" --version 2>/dev/null || true) ;;
  esac
  [[ $out == *"${want#v}"* ]]
}

# Runs a build in the background and prints elapsed time every 30 s so a cold build is never a silent wait.
build() {
  local name=$1 dir=$2 pkg=$3 ldflags=$4 expect=$5 logf="$cache/$K8S_VERSION/build-$1.log"
  log "building $name (cold build on 2 cores: about $expect; log: $logf)"
  local start=$SECONDS
  (cd "$here/$dir" && GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod \
     go build -trimpath -ldflags "$ldflags" -o "$bin/$name.tmp" "$pkg") >"$logf" 2>&1 &
  local pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    sleep 5
    if (( (SECONDS - start) % 30 < 5 )) && kill -0 "$pid" 2>/dev/null; then
      log "  $name: still building, $((SECONDS - start)) s elapsed"
    fi
  done
  if ! wait "$pid"; then
    log "FAILED to build $name after $((SECONDS - start)) s. Last lines of $logf:"
    tail -n 20 "$logf" >&2
    log "Fix the cause (disk space, Go module proxy reachable?) and run 'bash controlplane/build.sh' again."
    exit 1
  fi
  mv "$bin/$name.tmp" "$bin/$name"
  log "built $name in $((SECONDS - start)) s"
}

v=${K8S_VERSION#v}
kver="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  kver+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=${v%%.*} -X $pkg.gitMinor=$(cut -d. -f2 <<<"$v")"
  kver+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
done

have etcd "$ETCD_VERSION" || build etcd etcd go.etcd.io/etcd/server/v3 "-s -w" "40 s"
have kube-apiserver "$K8S_VERSION" || build kube-apiserver kubernetes k8s.io/kubernetes/cmd/kube-apiserver "$kver" "5-6 min"
have kube-controller-manager "$K8S_VERSION" || build kube-controller-manager kubernetes k8s.io/kubernetes/cmd/kube-controller-manager "$kver" "1.5 min"
have kubectl "$K8S_VERSION" || build kubectl kubernetes k8s.io/kubernetes/cmd/kubectl "$kver" "30 s"

echo "$bin"
