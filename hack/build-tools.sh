#!/usr/bin/env bash
# Builds the real control plane (etcd, kube-apiserver, kube-scheduler,
# kube-controller-manager, kubectl), kwok, controller-gen and kustomize from
# the Go modules pinned in hack/tools, and CAPA's manager (capa-manager) from
# CAPA's own pins in hack/tools/capa, into bin/. Nothing prebuilt is
# downloaded. The build is skipped when bin/.tools-stamp matches the hash of
# the tools module and of this script, so a second run costs nothing.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
bin="$root/bin"
tools="$root/hack/tools"
binaries=(etcd kube-apiserver kube-scheduler kube-controller-manager kubectl kwok controller-gen kustomize capa-manager)

stamp=$(cat "$tools/go.mod" "$tools/go.sum" "$tools/capa/go.mod" "$tools/capa/go.sum" "$0" | sha256sum | cut -d' ' -f1)
if [[ -f "$bin/.tools-stamp" && "$(cat "$bin/.tools-stamp")" == "$stamp" ]]; then
  missing=0
  for b in "${binaries[@]}"; do [[ -x "$bin/$b" ]] || missing=1; done
  if [[ $missing == 0 ]]; then
    exit 0
  fi
fi

k8s_version=v1.36.3
ldflags="-s -w -X k8s.io/component-base/version.gitVersion=${k8s_version} -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=36 -X k8s.io/component-base/version.gitTreeState=clean"

mkdir -p "$bin"
staging=$(mktemp -d "$bin/.build.XXXXXX")
trap 'rm -rf "$staging"' EXIT

echo "building control plane and tools from Go modules into bin/ (cold: ~12-15 min on 2 cores)" >&2
start=$SECONDS
cd "$tools"
GOFLAGS=-mod=mod go build -ldflags "$ldflags" -o "$staging/" \
  k8s.io/kubernetes/cmd/kube-apiserver \
  k8s.io/kubernetes/cmd/kube-scheduler \
  k8s.io/kubernetes/cmd/kube-controller-manager \
  k8s.io/kubernetes/cmd/kubectl \
  sigs.k8s.io/kwok/cmd/kwok \
  sigs.k8s.io/controller-tools/cmd/controller-gen \
  sigs.k8s.io/kustomize/kustomize/v5
GOFLAGS=-mod=mod go build -ldflags "-s -w" -o "$staging/etcd" go.etcd.io/etcd/server/v3
# CAPA's manager, as its own release builds it: its own module graph (CAPI
# v1.13, controller-runtime v0.23), not ours.
capa_version=v2.13.0
(cd "$tools/capa" && GOFLAGS=-mod=mod go build \
  -ldflags "-s -w -X sigs.k8s.io/cluster-api-provider-aws/v2/version.gitVersion=${capa_version}" \
  -o "$staging/capa-manager" sigs.k8s.io/cluster-api-provider-aws/v2)

for b in "${binaries[@]}"; do mv -f "$staging/$b" "$bin/$b"; done
echo "$stamp" > "$bin/.tools-stamp"
echo "tools built in $((SECONDS - start))s" >&2
