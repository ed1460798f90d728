package main

import (
	"crypto/sha256"
	"fmt"
	"testing"
)

// The workload must stay Karpenter's: same labels, selectors, constraints
// and requests, drawn from r in the same order. The digest was taken from
// the generators as copied from scheduling_benchmark_test.go; names and
// UIDs are random there and here, so they are left out.
func TestWorkloadMatchesKarpenterSequence(t *testing.T) {
	w := newWorkload(1003)
	h := sha256.New()
	for _, p := range w.pods {
		fmt.Fprintf(h, "%v|%s|", p.Labels, p.Spec.Affinity.String())
		for i := range p.Spec.TopologySpreadConstraints {
			fmt.Fprintf(h, "%s|", p.Spec.TopologySpreadConstraints[i].String())
		}
		for _, c := range p.Spec.Containers {
			fmt.Fprintf(h, "%s,%s;", c.Resources.Requests.Cpu(), c.Resources.Requests.Memory())
		}
		fmt.Fprintln(h)
	}
	const want = "8ba1394cfcc3e03ada70b39d0a05a2a6ee1a9cc8b201cb29148362de2cddf696"
	if got := fmt.Sprintf("%x", h.Sum(nil)); got != want {
		t.Errorf("workload digest %s, want %s: the pods are no longer those of Karpenter's benchmark", got, want)
	}
}
