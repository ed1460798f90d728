#!/usr/bin/env bash
# Regenerates CRDs, RBAC, deepcopy code and embedded data and fails when
# that changes any file: committed outputs must match their sources.
set -euo pipefail
cd "$(dirname "$0")/.."
generated=(config/crd config/rbac api cloud/data test/testbed/crds test/testbed/webhooks)
snapshot() {
  local existing=()
  for p in "${generated[@]}"; do [[ -e $p ]] && existing+=("$p"); done
  find "${existing[@]}" -type f -print0 | sort -z | xargs -0 -r sha256sum
}
before=$(snapshot)
make --no-print-directory manifests generate >/dev/null
after=$(snapshot)
if [[ "$before" != "$after" ]]; then
  diff <(echo "$before") <(echo "$after") >&2 || true
  echo "generated files were out of date: run 'make manifests generate' and commit the result" >&2
  exit 1
fi
