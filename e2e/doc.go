// Package e2e is Joinery's end-to-end suite: Ginkgo specs on the testbed
// (test/testbed), a real CAPI management cluster with workload
// clusters and a simulated AWS. Run it with `make e2e` (it is part of
// `make test` too). It runs as two processes, each on its own testbed (see
// shard_test.go).
package e2e
