// Package shard splits a fleet of workload clusters between Joinery
// managers the way CAPI's controllers split theirs: a manager started with
// --watch-filter=VALUE serves only the Clusters labelled
// cluster.x-k8s.io/watch-filter=VALUE, takes its own leader-election
// Lease, and leaves every other Cluster, and the Machines of those
// Clusters, to the manager that serves them. Without a filter a manager
// serves every Cluster.
package shard

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
)

// Filter is one manager's share of the fleet.
type Filter struct {
	// Value is the cluster.x-k8s.io/watch-filter label value the manager
	// serves; empty serves every Cluster.
	Value string
}

// Validate names the flag and the fix when the value cannot be a label
// value (no Cluster could carry it).
func (f Filter) Validate() error {
	if f.Value == "" {
		return nil
	}
	if errs := validation.IsValidLabelValue(f.Value); len(errs) > 0 {
		return fmt.Errorf("--watch-filter=%q: not a valid label value (%s); use at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit", f.Value, strings.Join(errs, "; "))
	}
	return nil
}

// Serves reports whether the manager serves cluster.
func (f Filter) Serves(cluster client.Object) bool {
	return f.Value == "" || cluster.GetLabels()[clusterv1.WatchLabel] == f.Value
}

// Clusters keeps the events of served Clusters, for watches on Clusters.
func (f Filter) Clusters() predicate.Predicate {
	return predicate.NewPredicateFuncs(f.Serves)
}

// LeaseName is the leader-election Lease of the manager's shard: each
// shard elects its own leader, so two shards' managers run side by side.
// Label values may hold '_' and capitals, which Lease names may not.
func (f Filter) LeaseName(base string) string {
	if f.Value == "" {
		return base
	}
	return strings.ReplaceAll(strings.ToLower(f.Value), "_", "-") + "." + base
}
