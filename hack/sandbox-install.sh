#!/usr/bin/env bash
# Installs config/default into the sandbox's management cluster as a user
# would (kubectl apply -k), and writes a kubeconfig with a token of the
# manager's ServiceAccount, so `joinery manager` can run locally with exactly
# the permissions config/rbac grants (plus read access to the testbed's own
# control plane kind). The Deployment is scaled to 0: the sandbox's
# management cluster has no kubelet to run it.
#
# Usage: bin/joinery sandbox --manager=false &   (or make run SANDBOX_FLAGS=--manager=false)
#        hack/sandbox-install.sh [sandbox-dir]   (default .sandbox)
#        bin/joinery manager --kubeconfig <sandbox-dir>/joinery-sa.kubeconfig --leader-election-namespace joinery-system
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
dir=$(cd "${1:-$root/.sandbox}" && pwd)
admin=$dir/management/kubeconfig
kubectl=("$root/bin/kubectl" --kubeconfig "$admin")
namespace=joinery-system
sa=joinery-controller-manager

if [[ ! -f $admin ]]; then
  echo "sandbox-install: no $admin: start the sandbox first (bin/joinery sandbox --manager=false)" >&2
  exit 1
fi
# --force-conflicts: the sandbox installed the NodePool CRD itself.
"${kubectl[@]}" apply --server-side --force-conflicts -k "$root/config/default"
"${kubectl[@]}" -n "$namespace" scale deployment "$sa" --replicas=0
# The one grant the sandbox needs beyond config/rbac: its workload clusters'
# control plane is the testbed's TestbedControlPlane, not a group
# (controlplane.cluster.x-k8s.io) a real control plane provider uses. Joinery
# reads the control plane's spec.version.
"${kubectl[@]}" apply --server-side -f - <<YAML
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: joinery-sandbox-testbed-controlplane
rules:
- apiGroups: [controlplane.testbed.joinery.dev]
  resources: ["*"]
  verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: joinery-sandbox-testbed-controlplane
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: joinery-sandbox-testbed-controlplane
subjects:
- kind: ServiceAccount
  name: $sa
  namespace: $namespace
YAML
token=$("${kubectl[@]}" -n "$namespace" create token "$sa" --duration=24h)
server=$("${kubectl[@]}" config view --minify -o jsonpath='{.clusters[0].cluster.server}')
out=$dir/joinery-sa.kubeconfig
"${kubectl[@]}" config view --minify --raw -o jsonpath='{.clusters[0].cluster.certificate-authority-data}' | base64 -d >"$dir/management-ca.crt"
KUBECONFIG=$out "$root/bin/kubectl" config set-cluster management --server="$server" --certificate-authority="$dir/management-ca.crt" --embed-certs >/dev/null
KUBECONFIG=$out "$root/bin/kubectl" config set-credentials "$sa" --token="$token" >/dev/null
KUBECONFIG=$out "$root/bin/kubectl" config set-context "$sa" --cluster=management --user="$sa" --namespace="$namespace" >/dev/null
KUBECONFIG=$out "$root/bin/kubectl" config use-context "$sa" >/dev/null
rm -f "$dir/management-ca.crt"
echo "wrote $out (ServiceAccount $namespace/$sa); run:"
echo "  $root/bin/joinery manager --kubeconfig $out --leader-election-namespace $namespace"
