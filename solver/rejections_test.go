package solver_test

import (
	. "github.com/joinery-dev/joinery/solver"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	v1alpha1 "github.com/joinery-dev/joinery/api/v1alpha1"
)

func TestRejections(t *testing.T) {
	type want struct {
		reason   string // substring of Rejection.Reason
		count    int
		cheapest string // instance type of the first recorded offering
	}
	for _, tc := range []struct {
		name   string
		snap   func() *Snapshot
		chosen string
		want   []want
	}{
		{name: "smaller types are too small",
			snap:   func() *Snapshot { return onePool(pods(1, "p", "3", "4Gi")) },
			chosen: "c.xlarge",
			want:   []want{{"too small for the pods' requests cpu=3, memory=4Gi", 9, "c.large"}},
		},
		{name: "offerings the cloud refused are listed before the rest",
			snap: func() *Snapshot {
				s := onePool(pods(1, "p", "3", "4Gi"))
				s.Unavailable = UnavailableOfferings{}
				for _, z := range testZones {
					s.Unavailable[OfferingKey{InstanceType: "c.xlarge", Zone: z, CapacityType: "on-demand"}] = struct{}{}
				}
				return s
			},
			chosen: "a.xlarge",
			want: []want{
				{"refused by the cloud recently", 3, "c.xlarge"},
				{"too small", 9, "c.large"},
			},
		},
		{name: "types against the pods' node selector",
			snap: func() *Snapshot {
				return onePool(pods(1, "p", "3", "4Gi", withNodeSelector(v1alpha1.LabelArch, "arm64")))
			},
			chosen: "a.xlarge",
			want: []want{
				{"does not satisfy the pods' requirements [kubernetes.io/arch=arm64]", 9, "c.large"},
				{"too small", 3, "a.large"},
			},
		},
		{name: "a cheaper type over the pool's memory limit",
			snap: func() *Snapshot {
				types := []*InstanceType{itype("bigmem", 2, 64, 0.05), itype("small", 2, 4, 0.08)}
				return &Snapshot{Pods: pods(1, "p", "1", "1Gi"), Pools: []*Pool{testPool("default", types, func(p *Pool) {
					p.Limits = corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("16Gi")}
				})}}
			},
			chosen: "small",
			want:   []want{{"would exceed the pool's limits", 3, "bigmem"}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			plan := solveChecked(t, tc.snap(), Options{RecordRejections: true})
			wantNodes(t, plan, 1)
			n := plan.NewNodes[0]
			if n.InstanceType.Name != tc.chosen {
				t.Fatalf("chose %s, want %s", n.InstanceType.Name, tc.chosen)
			}
			if len(n.Rejected) != len(tc.want) {
				t.Fatalf("got %d reasons %+v, want %d", len(n.Rejected), n.Rejected, len(tc.want))
			}
			for i, w := range tc.want {
				r := n.Rejected[i]
				if !strings.Contains(r.Reason, w.reason) || r.Count != w.count || r.Offerings[0].InstanceType.Name != w.cheapest {
					t.Errorf("reason %d = %q x%d (first %s), want %q x%d (first %s)", i, r.Reason, r.Count, r.Offerings[0].InstanceType.Name, w.reason, w.count, w.cheapest)
				}
				if len(r.Offerings) > 3 {
					t.Errorf("reason %d records %d offerings", i, len(r.Offerings))
				}
				for _, o := range r.Offerings {
					if o.Offering.PricePerHour >= n.Offering.PricePerHour {
						t.Errorf("rejected %s at $%v is not cheaper than the chosen $%v", o.InstanceType.Name, o.Offering.PricePerHour, n.Offering.PricePerHour)
					}
				}
			}
		})
	}
	t.Run("not recorded unless asked", func(t *testing.T) {
		plan := solveChecked(t, onePool(pods(1, "p", "3", "4Gi")))
		if r := plan.NewNodes[0].Rejected; r != nil {
			t.Fatalf("Rejected = %+v without RecordRejections", r)
		}
	})
}
