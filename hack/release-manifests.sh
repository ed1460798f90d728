#!/usr/bin/env bash
# Writes the release assets of one Joinery version into a directory (out/ by
# default), laid out as clusterctl expects a provider's GitHub release:
#
#   addon-components.yaml    config/release: CRDs, RBAC, the manager Deployment,
#                            with clusterctl variables and the version's image
#   metadata.yaml            release series -> Cluster API contract
#   cluster-template*.yaml   templates/, for `clusterctl generate cluster --from`
#
# Usage: RELEASE_VERSION=v0.1.0 hack/release-manifests.sh [out-dir]
# (make release-manifests). KUSTOMIZE defaults to bin/kustomize.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/out}
version=${RELEASE_VERSION:?set RELEASE_VERSION, e.g. v0.1.0}
image=${RELEASE_IMAGE:-ghcr.io/joinery-dev/joinery}
kustomize=${KUSTOMIZE:-$root/bin/kustomize}

if [[ ! $version =~ ^v[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$ ]]; then
  echo "release-manifests: RELEASE_VERSION=$version is not a semantic version such as v0.1.0" >&2
  exit 1
fi
if [[ ! -x $kustomize ]]; then
  echo "release-manifests: $kustomize not found: run 'make tools' or set KUSTOMIZE" >&2
  exit 1
fi

mkdir -p "$out"
out=$(cd "$out" && pwd)
# kustomize accepts only relative paths to other kustomizations, so the
# overlay that pins the image lives in a scratch directory whose path to
# config/release is spelled relative.
overlay=$(mktemp -d)
trap 'rm -rf "$overlay"' EXIT
cat >"$overlay/kustomization.yaml" <<YAML
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
- $(realpath --relative-to="$overlay" "$root/config/release")
patches:
- target:
    group: apps
    version: v1
    kind: Deployment
    name: joinery-controller-manager
  patch: |-
    - op: replace
      path: /spec/template/spec/containers/0/image
      value: \${JOINERY_IMAGE:=$image:$version}
YAML
"$kustomize" build "$overlay" >"$out/addon-components.yaml"
install -m 0644 "$root/metadata.yaml" "$out/metadata.yaml"
install -m 0644 "$root"/templates/cluster-template*.yaml "$out/"
echo "release-manifests: wrote $(cd "$out" && ls | tr '\n' ' ')to $out" >&2
