//go:build tools

// Package capa pins Cluster API Provider AWS's manager, built from CAPA's own
// module requirements (its go.mod resolves CAPI v1.13 and controller-runtime
// v0.23, which do not build inside the main module's CAPI v1.14), into
// bin/capa-manager by hack/build-tools.sh. The testbed runs it as a process,
// as users run it.
package capa

import (
	_ "sigs.k8s.io/cluster-api-provider-aws/v2"
)
