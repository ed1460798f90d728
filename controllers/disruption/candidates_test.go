package disruption

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"

	"github.com/joinery-dev/joinery/api/v1alpha1"
	"github.com/joinery-dev/joinery/controllers/provisioning"
)

var t0 = time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)

func candidate() *Candidate {
	pool := &v1alpha1.NodePool{
		ObjectMeta: metav1.ObjectMeta{Name: "general"},
		Spec: v1alpha1.NodePoolSpec{
			Template: v1alpha1.NodeClaimTemplate{Spec: v1alpha1.NodeClaimSpec{
				ExpireAfter: "720h",
				Requirements: []v1alpha1.NodeSelectorRequirementWithMinValues{
					{Key: v1alpha1.LabelCapacityType, Operator: v1alpha1.OpIn, Values: []string{"on-demand"}},
					{Key: "karpenter.k8s.aws/instance-category", Operator: v1alpha1.OpIn, Values: []string{"c", "m"}},
				},
			}},
			Disruption: v1alpha1.Disruption{ConsolidationPolicy: v1alpha1.ConsolidationPolicyWhenEmptyOrUnderutilized, ConsolidateAfter: "30s"},
		},
	}
	m := &clusterv1.Machine{ObjectMeta: metav1.ObjectMeta{Name: "general-abc", CreationTimestamp: metav1.NewTime(t0),
		Annotations: map[string]string{provisioning.AnnotationPoolHash: provisioning.PoolHash(pool)}}}
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "ip-10-0-1-5", CreationTimestamp: metav1.NewTime(t0.Add(time.Minute)),
		Labels: map[string]string{v1alpha1.LabelCapacityType: "on-demand", "karpenter.k8s.aws/instance-category": "c"}}}
	return &Candidate{Machine: m, Node: node, Pool: pool, LastPodChange: node.CreationTimestamp.Time}
}

func appPod(name string, annotations map[string]string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name, Labels: map[string]string{"app": "web"}, Annotations: annotations}}
}

func TestExpired(t *testing.T) {
	c := candidate()
	if ok, _ := Expired(c, t0.Add(719*time.Hour)); ok {
		t.Error("expired before expireAfter")
	}
	if ok, why := Expired(c, t0.Add(721*time.Hour)); !ok || why == "" {
		t.Errorf("not expired after expireAfter (%q)", why)
	}
	c.Pool.Spec.Template.Spec.ExpireAfter = "Never"
	if ok, _ := Expired(c, t0.Add(10000*time.Hour)); ok {
		t.Error("expireAfter Never expired")
	}
}

func TestDrifted(t *testing.T) {
	if ok, why := Drifted(candidate()); ok {
		t.Errorf("a fresh Machine drifted: %s", why)
	}
	c := candidate()
	c.Pool.Spec.Template.Spec.InfrastructureTemplateRef.Name = "workers-v2"
	if ok, _ := Drifted(c); !ok {
		t.Error("a changed infrastructure template reference is not drift")
	}
	c = candidate()
	c.Pool.Spec.Template.Spec.Requirements[1].Values = []string{"r"}
	if ok, why := Drifted(c); !ok {
		t.Error("a node outside the pool's requirements is not drift")
	} else if why == "" {
		t.Error("drift without a reason")
	}
	c = candidate()
	delete(c.Node.Labels, "karpenter.k8s.aws/instance-category")
	if ok, why := Drifted(c); ok {
		t.Errorf("a label not set yet counts as drift: %s", why)
	}
	c = candidate()
	c.Pool.Spec.Limits = corev1.ResourceList{corev1.ResourceCPU: resourceQ("100")}
	c.Pool.Spec.Template.Spec.ExpireAfter = "1h"
	if ok, why := Drifted(c); ok {
		t.Errorf("limits and expireAfter are not part of a machine: %s", why)
	}
}

// TestDriftedOnVersionAndTemplateContent follows Karpenter's drift suite
// (pkg/controllers/nodeclaim/disruption/drift_test.go: "should detect
// drift on a changed NodeClass hash", "should not detect drift if the
// hash versions differ", and the AMI-drift cases of the AWS provider,
// whose counterpart here is the Cluster's Kubernetes version).
func TestDriftedOnVersionAndTemplateContent(t *testing.T) {
	stamped := func() *Candidate {
		c := candidate()
		c.Machine.Spec.Version = "v1.36.3"
		c.Machine.Annotations[provisioning.AnnotationTemplateHash] = "aaaa"
		c.Machine.Annotations[provisioning.AnnotationTemplateHashVersion] = provisioning.TemplateHashVersion
		c.Want = Wanted{Version: "v1.36.3", VersionReady: true, TemplateHash: "aaaa"}
		return c
	}
	for _, tc := range []struct {
		name    string
		mutate  func(*Candidate)
		drifted bool
		why     string
	}{
		{name: "a Machine on the Cluster's version and templates has not drifted", mutate: func(*Candidate) {}},
		{name: "the control plane moved to a new version", mutate: func(c *Candidate) { c.Want.Version = "v1.36.4" },
			drifted: true, why: "runs Kubernetes v1.36.3 and the Cluster's control plane is at v1.36.4"},
		{name: "the same version without its leading v", mutate: func(c *Candidate) { c.Want.Version = "1.36.3" }},
		{name: "a control plane still upgrading holds the workers back",
			mutate: func(c *Candidate) { c.Want.Version, c.Want.VersionReady = "v1.36.4", false }},
		{name: "a Cluster version that cannot be read is not judged", mutate: func(c *Candidate) { c.Want.Version = "" }},
		{name: "the templates' content changed", mutate: func(c *Candidate) { c.Want.TemplateHash = "bbbb" },
			drifted: true, why: "template hash aaaa, now bbbb"},
		{name: "a Machine stamped under another hash version is not drifted by the hash",
			mutate: func(c *Candidate) {
				c.Machine.Annotations[provisioning.AnnotationTemplateHashVersion] = "v0"
				c.Want.TemplateHash = "bbbb"
			}},
		{name: "a Machine made before hashes were stamped is not drifted by the hash",
			mutate: func(c *Candidate) {
				delete(c.Machine.Annotations, provisioning.AnnotationTemplateHash)
				c.Want.TemplateHash = "bbbb"
			}},
		{name: "templates that cannot be read now are not judged", mutate: func(c *Candidate) { c.Want.TemplateHash = "" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := stamped()
			tc.mutate(c)
			ok, why := Drifted(c)
			if ok != tc.drifted {
				t.Fatalf("drifted = %v (%q), want %v", ok, why, tc.drifted)
			}
			if !strings.Contains(why, tc.why) {
				t.Errorf("reason %q does not contain %q", why, tc.why)
			}
		})
	}
}

func TestEmptyAndConsolidatable(t *testing.T) {
	c := candidate()
	if ok, _ := Empty(c, c.LastPodChange.Add(10*time.Second)); ok {
		t.Error("empty before consolidateAfter")
	}
	if ok, _ := Empty(c, c.LastPodChange.Add(time.Minute)); !ok {
		t.Error("not empty after consolidateAfter")
	}
	c.Pods = []*corev1.Pod{appPod("web-1", nil)}
	if ok, _ := Empty(c, c.LastPodChange.Add(time.Minute)); ok {
		t.Error("a node with a pod is empty")
	}
	if ok, why := Consolidatable(c, c.LastPodChange.Add(time.Minute)); !ok {
		t.Errorf("WhenEmptyOrUnderutilized does not consolidate: %s", why)
	}
	if ok, why := Consolidatable(c, c.LastPodChange.Add(10*time.Second)); ok || !strings.Contains(why, "a pod arrived or left within the pool's consolidateAfter (30s)") {
		t.Errorf("consolidatable before consolidateAfter: %v %q", ok, why)
	}
	c.Pool.Spec.Disruption.ConsolidationPolicy = v1alpha1.ConsolidationPolicyWhenEmpty
	if ok, why := Consolidatable(c, c.LastPodChange.Add(time.Minute)); ok || !strings.Contains(why, "WhenEmpty") {
		t.Errorf("WhenEmpty consolidates a node with pods (%q)", why)
	}
	c.Pool.Spec.Disruption.ConsolidateAfter = "Never"
	c.Pods = nil
	if ok, _ := Empty(c, c.LastPodChange.Add(1000*time.Hour)); ok {
		t.Error("consolidateAfter Never removed an empty node")
	}
}

func TestMovablePodsLeaveDaemonSetsAndFinishedPods(t *testing.T) {
	ds := appPod("ds-1", nil)
	ds.OwnerReferences = []metav1.OwnerReference{{Kind: "DaemonSet", Name: "ds", Controller: ptr.To(true)}}
	done := appPod("job-1", nil)
	done.Status.Phase = corev1.PodSucceeded
	mirror := appPod("static", map[string]string{corev1.MirrorPodAnnotationKey: "x"})
	web := appPod("web-1", nil)
	if got := MovablePods([]*corev1.Pod{ds, done, mirror, web}); len(got) != 1 || got[0] != web {
		t.Errorf("movable = %v, want only web-1", got)
	}
}

func TestBlocked(t *testing.T) {
	pdb := func(allowed int32) []policyv1.PodDisruptionBudget {
		return []policyv1.PodDisruptionBudget{{
			ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web"},
			Spec:       policyv1.PodDisruptionBudgetSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}},
			Status:     policyv1.PodDisruptionBudgetStatus{DisruptionsAllowed: allowed},
		}}
	}
	for _, tc := range []struct {
		name    string
		mutate  func(*Candidate)
		pdbs    []policyv1.PodDisruptionBudget
		blocked bool
	}{
		{"nothing", func(c *Candidate) { c.Pods = []*corev1.Pod{appPod("web-1", nil)} }, nil, false},
		{"a pod says do-not-disrupt (Karpenter's key)", func(c *Candidate) {
			c.Pods = []*corev1.Pod{appPod("web-1", map[string]string{AnnotationKarpenterDoNotDisrupt: "true"})}
		}, nil, true},
		{"a pod says do-not-disrupt (Joinery's key)", func(c *Candidate) {
			c.Pods = []*corev1.Pod{appPod("web-1", map[string]string{AnnotationDoNotDisrupt: "true"})}
		}, nil, true},
		{"the node says do-not-disrupt", func(c *Candidate) { c.Node.Annotations = map[string]string{AnnotationDoNotDisrupt: "true"} }, nil, true},
		{"a PDB allows no disruption", func(c *Candidate) { c.Pods = []*corev1.Pod{appPod("web-1", nil)} }, pdb(0), true},
		{"a PDB allows one, two pods here: the drain goes at its pace", func(c *Candidate) {
			c.Pods = []*corev1.Pod{appPod("web-1", nil), appPod("web-2", nil)}
		}, pdb(1), false},
		{"a PDB allows none, but none of its pods are here", func(c *Candidate) {}, pdb(0), false},
		{"a PDB with an empty selector selects every pod of its namespace", func(c *Candidate) { c.Pods = []*corev1.Pod{appPod("web-1", nil)} },
			[]policyv1.PodDisruptionBudget{{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "all"}, Spec: policyv1.PodDisruptionBudgetSpec{Selector: &metav1.LabelSelector{}}}}, true},
		{"a PDB with an empty selector in another namespace", func(c *Candidate) { c.Pods = []*corev1.Pod{appPod("web-1", nil)} },
			[]policyv1.PodDisruptionBudget{{ObjectMeta: metav1.ObjectMeta{Namespace: "other", Name: "all"}, Spec: policyv1.PodDisruptionBudgetSpec{Selector: &metav1.LabelSelector{}}}}, false},
		{"a PDB without a selector selects nothing", func(c *Candidate) { c.Pods = []*corev1.Pod{appPod("web-1", nil)} },
			[]policyv1.PodDisruptionBudget{{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "none"}}}, false},
	} {
		c := candidate()
		tc.mutate(c)
		if got := Blocked(c, tc.pdbs) != ""; got != tc.blocked {
			t.Errorf("%s: blocked = %v, want %v", tc.name, got, tc.blocked)
		}
	}
}

func resourceQ(s string) resource.Quantity { return resource.MustParse(s) }

type fixedClock time.Time

func (c fixedClock) Now() time.Time { return time.Time(c) }

// expireAfter counts from the Machine's creationTimestamp, which the
// apiserver set: its age is read on the apiserver's clock, whatever the
// manager's says.
func TestExpiryIsMeasuredOnTheAPIServersClock(t *testing.T) {
	apiserver := t0.Add(700 * time.Hour) // the Machine is 700h old; expireAfter is 720h
	for _, skew := range []time.Duration{-30 * time.Hour, 30 * time.Hour} {
		manager := func() time.Time { return apiserver.Add(skew) }
		r := &round{Controller: &Controller{Now: manager, Provisioner: &provisioning.Provisioner{Now: manager, APIServerClock: fixedClock(apiserver)}}, now: manager()}
		if ok, why := r.expired(candidate()); ok {
			t.Errorf("manager clock %s off: a 700h old Machine expired (%s)", skew, why)
		}
	}
	apiserver = t0.Add(721 * time.Hour)
	manager := func() time.Time { return apiserver.Add(-30 * time.Hour) }
	r := &round{Controller: &Controller{Now: manager, Provisioner: &provisioning.Provisioner{Now: manager, APIServerClock: fixedClock(apiserver)}}, now: manager()}
	if ok, _ := r.expired(candidate()); !ok {
		t.Error("manager clock 30h behind: a 721h old Machine did not expire")
	}
}
