package shard

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation"
	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"
	"sigs.k8s.io/controller-runtime/pkg/event"
)

func cluster(labels map[string]string) *clusterv1.Cluster {
	c := &clusterv1.Cluster{}
	c.Name, c.Namespace, c.Labels = "c", "default", labels
	return c
}

func TestFilterServesOnlyItsLabelledClusters(t *testing.T) {
	labelled := func(v string) *clusterv1.Cluster { return cluster(map[string]string{clusterv1.WatchLabel: v}) }
	cases := []struct {
		name   string
		filter Filter
		c      *clusterv1.Cluster
		want   bool
	}{
		{"no filter, unlabelled", Filter{}, cluster(nil), true},
		{"no filter, labelled", Filter{}, labelled("shard-a"), true},
		{"filter, same value", Filter{"shard-a"}, labelled("shard-a"), true},
		{"filter, other value", Filter{"shard-a"}, labelled("shard-b"), false},
		{"filter, unlabelled", Filter{"shard-a"}, cluster(nil), false},
		{"filter, other label with the value", Filter{"shard-a"}, cluster(map[string]string{"shard": "shard-a"}), false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := c.filter.Serves(c.c); got != c.want {
				t.Errorf("Serves = %v, want %v", got, c.want)
			}
			if got := c.filter.Clusters().Create(event.CreateEvent{Object: c.c}); got != c.want {
				t.Errorf("the Cluster predicate passes the event: %v, want %v", got, c.want)
			}
		})
	}
}

func TestFilterValidateNamesTheFlag(t *testing.T) {
	for _, v := range []string{"", "shard-a", "Shard_B.1"} {
		if err := (Filter{v}).Validate(); err != nil {
			t.Errorf("%q rejected: %v", v, err)
		}
	}
	for _, v := range []string{"-a", "a b", "a/b", strings.Repeat("a", 64)} {
		err := (Filter{v}).Validate()
		if err == nil || !strings.Contains(err.Error(), "--watch-filter") {
			t.Errorf("%q: got %v, want an error naming --watch-filter", v, err)
		}
	}
}

func TestLeaseNamePerShardIsAValidName(t *testing.T) {
	base := "joinery-manager.joinery.dev"
	if got := (Filter{}).LeaseName(base); got != base {
		t.Errorf("unsharded lease %q, want %q", got, base)
	}
	a, b := Filter{"Shard_A"}.LeaseName(base), Filter{"shard-b"}.LeaseName(base)
	if a == b || a == base {
		t.Errorf("shards share a lease: %q, %q", a, b)
	}
	for _, name := range []string{a, b} {
		if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 {
			t.Errorf("lease name %q is not a valid object name: %v", name, errs)
		}
	}
}
