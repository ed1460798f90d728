package main

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/joinery-dev/joinery/solver"
)

// The checker must pass Joinery's plan and catch plans broken on purpose.
func TestCheckPlanCatchesViolations(t *testing.T) {
	w := newWorkload(500)
	snap := joinerySnapshot(w)
	solve := func() *solver.Plan {
		_, plan, err := runJoinery(snap)
		if err != nil {
			t.Fatal(err)
		}
		return plan
	}
	if errs, _ := checkPlan(snap, solve()); len(errs) > 0 {
		t.Fatalf("valid plan rejected: %v", errs)
	}
	find := func(plan *solver.Plan, pred func(*corev1.Pod) bool) []int {
		var idx []int
		for i, pl := range plan.Order {
			if pred(pl.Pod) {
				idx = append(idx, i)
			}
		}
		return idx
	}
	hasAnti := func(p *corev1.Pod) bool { return p.Spec.Affinity != nil && p.Spec.Affinity.PodAntiAffinity != nil }
	hasAff := func(p *corev1.Pod) bool { return p.Spec.Affinity != nil && p.Spec.Affinity.PodAffinity != nil }
	moveTo := func(plan *solver.Plan, i int, node string) {
		p := plan.Order[i].Pod
		for _, nn := range plan.NewNodes {
			for j, q := range nn.Pods {
				if q == p {
					nn.Pods = append(nn.Pods[:j:j], nn.Pods[j+1:]...)
				}
			}
			if nn.Name == node {
				nn.Pods = append(nn.Pods, p)
			}
		}
		plan.Order[i].NodeName = node
	}
	cases := map[string]func(*solver.Plan) string{
		"anti-affinity": func(plan *solver.Plan) string {
			idx := find(plan, hasAnti)
			moveTo(plan, idx[1], plan.Order[idx[0]].NodeName)
			return "anti-affinity"
		},
		"affinity": func(plan *solver.Plan) string {
			idx := find(plan, hasAff)
			zoneOf := map[string]string{}
			for _, nn := range plan.NewNodes {
				zoneOf[nn.Name] = nn.Offering.Zone
			}
			// Move the last affinity pod to a node in another zone.
			last := idx[len(idx)-1]
			for _, nn := range plan.NewNodes {
				if nn.Offering.Zone != zoneOf[plan.Order[last].NodeName] {
					moveTo(plan, last, nn.Name)
					break
				}
			}
			return "affinity"
		},
		"resources": func(plan *solver.Plan) string {
			nn := plan.NewNodes[0]
			nn.InstanceType = &solver.InstanceType{Name: "tiny", Offerings: nn.InstanceType.Offerings,
				Allocatable: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1m"), corev1.ResourceMemory: resource.MustParse("1Ki"), corev1.ResourcePods: resource.MustParse("1")}}
			return "allocatable"
		},
		"missing": func(plan *solver.Plan) string {
			plan.Order = plan.Order[1:]
			return "not in plan.Order"
		},
	}
	for name, breakIt := range cases {
		t.Run(name, func(t *testing.T) {
			plan := solve()
			want := breakIt(plan)
			errs, _ := checkPlan(snap, plan)
			if !strings.Contains(strings.Join(errs, "\n"), want) {
				t.Fatalf("want an error mentioning %q, got %v", want, errs)
			}
		})
	}
}
