package config_test

import (
	"bytes"
	"flag"
	"os/exec"
	"testing"

	"github.com/spf13/pflag"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/joinery-dev/joinery/internal/manager"
	"github.com/joinery-dev/joinery/internal/shard"
)

// config/sharded installs two managers, each serving its own shard of the
// fleet under its own Lease, sharing one ServiceAccount and its RBAC, with
// one copy of everything else.
func TestShardedOverlayRunsOneManagerPerShard(t *testing.T) {
	out, err := exec.Command(kustomizePath(t), "build", "sharded").Output()
	if err != nil {
		t.Fatalf("kustomize build config/sharded: %v", err)
	}
	kinds := map[string]int{}
	var deployments []*appsv1.Deployment
	serviceAccounts := map[string]bool{}
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(out), 4096)
	for {
		var obj map[string]any
		if err := dec.Decode(&obj); err != nil {
			break
		}
		kind, _ := obj["kind"].(string)
		kinds[kind]++
		switch kind {
		case "Deployment":
			d := &appsv1.Deployment{}
			if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(obj, d, true); err != nil {
				t.Fatal(err)
			}
			deployments = append(deployments, d)
		case "ServiceAccount":
			serviceAccounts[obj["metadata"].(map[string]any)["name"].(string)] = true
		}
	}
	for kind, want := range map[string]int{"Namespace": 1, "CustomResourceDefinition": 2, "ServiceAccount": 1, "ClusterRole": 2, "Deployment": 2} {
		if kinds[kind] != want {
			t.Errorf("%d objects of kind %s, want %d (all kinds: %v)", kinds[kind], kind, want, kinds)
		}
	}
	if len(deployments) != 2 {
		t.FailNow()
	}
	filters := map[string]string{}
	leases := map[string]bool{}
	for _, d := range deployments {
		c := d.Spec.Template.Spec.Containers[0]
		opts := manager.DefaultOptions()
		fs := pflag.NewFlagSet("manager", pflag.ContinueOnError)
		manager.BindFlags(fs, &opts)
		goFlags := flag.NewFlagSet("", flag.ContinueOnError)
		(&zap.Options{}).BindFlags(goFlags)
		fs.AddGoFlagSet(goFlags)
		if err := fs.Parse(c.Args[1:]); err != nil {
			t.Fatalf("%s: joinery manager %v: %v", d.Name, c.Args[1:], err)
		}
		if err := opts.Validate(); err != nil {
			t.Errorf("%s: %v", d.Name, err)
		}
		if opts.WatchFilter == "" || !opts.LeaderElect {
			t.Errorf("%s: --watch-filter=%q --leader-elect=%v, want a shard and leader election", d.Name, opts.WatchFilter, opts.LeaderElect)
		}
		if other, ok := filters[opts.WatchFilter]; ok {
			t.Errorf("%s and %s serve the same shard %q", d.Name, other, opts.WatchFilter)
		}
		filters[opts.WatchFilter] = d.Name
		leases[shard.Filter{Value: opts.WatchFilter}.LeaseName(opts.LeaderElectionID)] = true
		if !serviceAccounts[d.Spec.Template.Spec.ServiceAccountName] {
			t.Errorf("%s runs as ServiceAccount %q, which the overlay does not install", d.Name, d.Spec.Template.Spec.ServiceAccountName)
		}
		// Each Deployment's selector must match its own pods only, or the
		// two would fight over each other's ReplicaSets.
		for _, other := range deployments {
			sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
			if err != nil {
				t.Fatal(err)
			}
			if matches := sel.Matches(labels.Set(other.Spec.Template.Labels)); matches != (other == d) {
				t.Errorf("the selector of %s matches the pods of %s: %v", d.Name, other.Name, matches)
			}
		}
	}
	if len(leases) != 2 {
		t.Errorf("the shards' leader-election Leases are %v, want one each", leases)
	}
}
