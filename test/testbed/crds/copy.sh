#!/usr/bin/env bash
# Copies the upstream CRDs the testbed installs from the Go module cache, so
# the testbed (and the joinery binary's sandbox) embeds exactly the CRDs of
# the CAPI and CAPA versions in go.mod. Run by `go generate` (make generate).
set -euo pipefail
cd "$(dirname "$0")"
# On a fresh machine the modules may not be in the cache yet, and `go list -m`
# prints an empty Dir for a module it has not downloaded.
go mod download sigs.k8s.io/cluster-api sigs.k8s.io/cluster-api-provider-aws/v2
capi=$(go list -m -f '{{.Dir}}' sigs.k8s.io/cluster-api)
capa=$(go list -m -f '{{.Dir}}' sigs.k8s.io/cluster-api-provider-aws/v2)
if [[ ! -d "$capi/core/config/crd/bases" || ! -d "$capa/config/crd/bases" ]]; then
  echo "copy.sh: CRD sources not found (cluster-api: '$capi', cluster-api-provider-aws: '$capa'); run 'go mod download'" >&2
  exit 1
fi
rm -f ./*.yaml
for f in clusters machines machinesets machinedeployments machinepools machinedrainrules machinehealthchecks; do
  install -m 0644 "$capi/core/config/crd/bases/cluster.x-k8s.io_$f.yaml" .
done
for f in kubeadmconfigs kubeadmconfigtemplates; do
  install -m 0644 "$capi/bootstrap/kubeadm/config/crd/bases/bootstrap.cluster.x-k8s.io_$f.yaml" .
done
# The kinds CAPA's AWSMachine path reads: the cluster, machines, templates and
# the identities its AWSCluster webhook defaults to (AWSClusterControllerIdentity
# "default", which CAPA's AutoControllerIdentityCreator makes).
for f in awsclusters awsmachines awsmachinetemplates awsclustercontrolleridentities awsclusterroleidentities awsclusterstaticidentities; do
  install -m 0644 "$capa/config/crd/bases/infrastructure.cluster.x-k8s.io_$f.yaml" .
done
# CAPA's webhook configurations (served by CAPA's manager; the testbed points
# them at it and keeps those of the kinds above).
install -m 0644 "$capa/config/webhook/manifests.yaml" ../webhooks/capa-webhooks.yaml
