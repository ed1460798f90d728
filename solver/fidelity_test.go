package solver_test

import (
	"testing"

	v1alpha1 "github.com/joinery-dev/joinery/api/v1alpha1"
	. "github.com/joinery-dev/joinery/solver"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// fidelityCases follow Karpenter v1.15.0's scheduling suite
// (pkg/controllers/provisioning/scheduling/*_test.go): each names the test
// whose semantics it checks, in our own inputs. Every plan is re-verified by
// solver/internal/check (TestFidelity uses solveChecked).
var fidelityCases = []ruleCase{
	// Karpenter: scheduling/topology_test.go "should ignore unknown topology keys",
	// extended to pods the unsatisfiable constraint selects: a constraint binds
	// only the pod that declares it.
	{name: "spread on an unknown key binds only its own pod",
		snap: func() *Snapshot {
			web := map[string]string{"app": "web"}
			owner := testPod("owner", "1", "1Gi", withLabels("app", "web"),
				withSpread("example.com/unknown", 1, corev1.DoNotSchedule, web))
			ps := append([]*corev1.Pod{owner}, pods(3, "plain", "1", "1Gi", withLabels("app", "web"))...)
			return onePool(ps)
		},
		expect: func(t *testing.T, s *Snapshot, p *Plan) {
			wantUnschedulable(t, p, 1)
			if p.Unschedulable[0].Pod != s.Pods[0] {
				t.Fatalf("unschedulable %s, want the constraint's owner", p.Unschedulable[0].Pod.Name)
			}
		}},
	{name: "anti-affinity on an unknown key binds only its own pod",
		snap: func() *Snapshot {
			web := map[string]string{"app": "web"}
			owner := testPod("owner", "1", "1Gi", withLabels("app", "db"), withAntiAffinity("example.com/unknown", web))
			ps := append([]*corev1.Pod{owner}, pods(3, "plain", "1", "1Gi", withLabels("app", "web"))...)
			return onePool(ps)
		},
		expect: func(t *testing.T, _ *Snapshot, p *Plan) { wantAllPlaced(t, p) }},
	// Karpenter: scheduling/topology_test.go "should violate preferred pod anti-affinity on zone (inverse)"
	{name: "preferred anti-affinity is not enforced in reverse",
		snap: func() *Snapshot {
			var ps []*corev1.Pod
			for _, z := range testZones {
				ps = append(ps, testPod("avoider-"+z, "2", "1Gi", withNodeSelector(v1alpha1.LabelZone, z),
					withPreferredAntiAffinity(10, v1alpha1.LabelZone, map[string]string{"security": "s2"})))
			}
			return onePool(append(ps, testPod("target", "100m", "100Mi", withLabels("security", "s2"))))
		},
		expect: func(t *testing.T, _ *Snapshot, p *Plan) {
			wantAllPlaced(t, p)
			// The target may share a node with an avoider: three nodes, not four.
			wantNodes(t, p, 3)
		}},
	// Karpenter: scheduling/topology_test.go "should not violate pod anti-affinity on zone (inverse)"
	{name: "required anti-affinity is enforced in reverse",
		snap: func() *Snapshot {
			var ps []*corev1.Pod
			for _, z := range testZones {
				ps = append(ps, testPod("avoider-"+z, "2", "1Gi", withNodeSelector(v1alpha1.LabelZone, z),
					withAntiAffinity(v1alpha1.LabelZone, map[string]string{"security": "s2"})))
			}
			return onePool(append(ps, testPod("target", "100m", "100Mi", withLabels("security", "s2"))))
		},
		expect: func(t *testing.T, _ *Snapshot, p *Plan) { wantUnschedulable(t, p, 1) }},
	// Karpenter: scheduling/nodeclaim.go (NodeClaim.CanAdd counts the host ports of
	// the daemonset pods a new node will run); the suite has no test of its own.
	{name: "a daemonset's host port is taken on new nodes",
		snap: func() *Snapshot {
			s := onePool([]*corev1.Pod{testPod("exporter", "100m", "100Mi", withHostPort(9100))})
			s.DaemonSets = []*appsv1.DaemonSet{daemonSet("node-exporter", "50m", "50Mi", dsHostPort(9100))}
			return s
		},
		expect: func(t *testing.T, _ *Snapshot, p *Plan) {
			wantUnschedulable(t, p, 1, "daemonset takes the pod's host port")
		}},
	{name: "a pod avoids types where a daemonset holds its host port",
		snap: func() *Snapshot {
			s := onePool([]*corev1.Pod{testPod("exporter", "100m", "100Mi", withHostPort(9100))})
			s.DaemonSets = []*appsv1.DaemonSet{daemonSet("node-exporter", "50m", "50Mi", dsHostPort(9100),
				func(ps *corev1.PodSpec) { ps.NodeSelector = map[string]string{v1alpha1.LabelArch: "amd64"} })}
			return s
		},
		expect: func(t *testing.T, _ *Snapshot, p *Plan) {
			wantAllPlaced(t, p)
			wantNodes(t, p, 1)
			if a := p.NewNodes[0].Labels[v1alpha1.LabelArch]; a != "arm64" {
				t.Fatalf("arch %s, want arm64 (the daemonset holds port 9100 on amd64 nodes)", a)
			}
			for _, fb := range p.NewNodes[0].Fallbacks {
				if fb.InstanceType.Labels[v1alpha1.LabelArch] != "arm64" {
					t.Fatalf("fallback %s would run the daemonset", fb.InstanceType.Name)
				}
			}
		}},
	// Karpenter: scheduling/topology_test.go "should only count running/scheduled pods with
	// matching labels scheduled to nodes with a corresponding domain" (terminating, Failed and
	// Succeeded pods are in no domain).
	{name: "terminating and finished pods do not count for spread",
		snap: func() *Snapshot {
			web := map[string]string{"app": "web"}
			bound := []*corev1.Pod{
				testPod("going", "100m", "100Mi", withLabels("app", "web"), terminating),
				testPod("failed", "100m", "100Mi", withLabels("app", "web"), inPhase(corev1.PodFailed)),
				testPod("done", "100m", "100Mi", withLabels("app", "web"), inPhase(corev1.PodSucceeded)),
			}
			s := onePool([]*corev1.Pod{testPod("web", "1", "1Gi", withLabels("app", "web"), withNodeSelector(v1alpha1.LabelZone, "zone-a"),
				withSpread(v1alpha1.LabelZone, 1, corev1.DoNotSchedule, web, func(c *corev1.TopologySpreadConstraint) {
					c.NodeAffinityPolicy = ptr(corev1.NodeInclusionPolicyIgnore)
				}))})
			s.Nodes = []*Node{existingNode("full-a", "zone-a", 1, 1, bound)}
			return s
		},
		expect: func(t *testing.T, _ *Snapshot, p *Plan) { wantAllPlaced(t, p) }},
	{name: "a terminating pod neither repels nor is repelled",
		snap: func() *Snapshot {
			bound := []*corev1.Pod{
				testPod("old-db", "100m", "100Mi", withLabels("app", "db"), terminating),
				testPod("old-cache", "100m", "100Mi", withLabels("app", "cache"), terminating,
					withAntiAffinity(v1alpha1.LabelZone, map[string]string{"app": "db"})),
			}
			s := onePool([]*corev1.Pod{testPod("db", "1", "1Gi", withLabels("app", "db"), withNodeSelector(v1alpha1.LabelZone, "zone-a"),
				withAntiAffinity(v1alpha1.LabelZone, map[string]string{"app": "db"}))})
			s.Nodes = []*Node{existingNode("full-a", "zone-a", 1, 1, bound)}
			return s
		},
		expect: func(t *testing.T, _ *Snapshot, p *Plan) { wantAllPlaced(t, p) }},
	// Karpenter: scheduling/suite_test.go "should schedule pods that have node selectors with label
	// in wellknown label list", for topology.kubernetes.io/region (nodes carry it).
	{name: "region is selectable",
		snap: func() *Snapshot {
			return realSnap(testPod("here", "1", "1Gi", withNodeSelector(v1alpha1.LabelRegion, "us-east-1")),
				testPod("elsewhere", "1", "1Gi", withNodeSelector(v1alpha1.LabelRegion, "eu-west-1")))
		},
		expect: func(t *testing.T, s *Snapshot, p *Plan) {
			wantUnschedulable(t, p, 1)
			if p.Unschedulable[0].Pod != s.Pods[1] {
				t.Fatalf("unschedulable %s", p.Unschedulable[0].Pod.Name)
			}
			if r := p.NewNodes[0].Labels[v1alpha1.LabelRegion]; r != "us-east-1" {
				t.Fatalf("region label %q", r)
			}
		}},
	// Karpenter: pkg/apis/v1/labels.go NormalizedLabels (requirements on deprecated keys are
	// read as the well-known ones); nodes carry the beta labels the kubelet sets.
	{name: "deprecated beta keys mean the well-known ones",
		snap: func() *Snapshot {
			return realSnap(
				testPod("arch", "1", "1Gi", withNodeSelector("beta.kubernetes.io/arch", "amd64")),
				testPod("os", "1", "1Gi", withNodeSelector("beta.kubernetes.io/os", "linux")),
				testPod("type", "1", "1Gi", withNodeSelector("beta.kubernetes.io/instance-type", "m5.xlarge")),
				testPod("zone", "1", "1Gi", withNodeSelector("failure-domain.beta.kubernetes.io/zone", "us-east-1b")),
				testPod("region", "1", "1Gi", withNodeSelector("failure-domain.beta.kubernetes.io/region", "us-east-1")))
		},
		expect: func(t *testing.T, s *Snapshot, p *Plan) {
			wantAllPlaced(t, p)
			for _, n := range p.NewNodes {
				for _, pod := range n.Pods {
					if pod.Name == "type" && n.InstanceType.Name != "m5.xlarge" {
						t.Fatalf("type pod on %s", n.InstanceType.Name)
					}
					if pod.Name == "zone" && n.Offering.Zone != "us-east-1b" {
						t.Fatalf("zone pod in %s", n.Offering.Zone)
					}
				}
			}
		}},
	// Karpenter: scheduling/topology_test.go "should balance pods across zones (match labels)",
	// with the topology key given by its deprecated alias.
	{name: "spread over a deprecated zone key balances",
		snap: func() *Snapshot {
			web := map[string]string{"app": "web"}
			return realSnap(pods(4, "web", "1", "1Gi", withLabels("app", "web"),
				withSpread("failure-domain.beta.kubernetes.io/zone", 1, corev1.DoNotSchedule, web))...)
		},
		expect: func(t *testing.T, _ *Snapshot, p *Plan) {
			wantAllPlaced(t, p)
			zones := map[string]bool{}
			for _, n := range p.NewNodes {
				zones[n.Offering.Zone] = true
			}
			if len(zones) != 4 {
				t.Fatalf("4 pods with maxSkew 1 over 6 zones use %d zones", len(zones))
			}
		}},
	// Karpenter AWS provider: instance-types "should support well known label
	// karpenter.k8s.aws/instance-accelerator-manufacturer".
	{name: "accelerator manufacturer is selectable",
		snap: func() *Snapshot {
			return realSnap(testPod("neuron", "1", "1Gi", withNodeSelector(v1alpha1.AWSLabelPrefix+v1alpha1.SuffixInstanceAcceleratorManufacturer, "aws")))
		},
		expect: func(t *testing.T, _ *Snapshot, p *Plan) {
			wantAllPlaced(t, p)
			if f := p.NewNodes[0].InstanceType.Labels[v1alpha1.AWSLabelPrefix+v1alpha1.SuffixInstanceFamily]; f[:3] != "inf" && f[:3] != "trn" {
				t.Fatalf("family %s has no AWS accelerator", f)
			}
		}},
	// Karpenter: scheduling/volumetopology.go (PV node affinity terms are alternatives) and the
	// AWS provider's normalisation of topology.ebs.csi.aws.com/zone.
	{name: "a volume's OR'd zone terms are alternatives",
		snap: func() *Snapshot {
			s := realSnap(testPod("db", "1", "1Gi", withClaim("data"), withNodeSelector(v1alpha1.LabelZone, "us-east-1d")))
			addBoundVolume(s, "data", corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{nsr(v1alpha1.LabelZone, corev1.NodeSelectorOpIn, "us-east-1c")}},
				corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{nsr(v1alpha1.LabelEBSCSIZone, corev1.NodeSelectorOpIn, "us-east-1d")}})
			return s
		},
		expect: func(t *testing.T, _ *Snapshot, p *Plan) {
			wantAllPlaced(t, p)
			if z := p.NewNodes[0].Offering.Zone; z != "us-east-1d" {
				t.Fatalf("zone %s", z)
			}
		}},
	{name: "a volume's EBS CSI zone pins the pod",
		snap: func() *Snapshot {
			s := realSnap(testPod("db", "1", "1Gi", withClaim("data")))
			addBoundVolume(s, "data", corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{nsr(v1alpha1.LabelEBSCSIZone, corev1.NodeSelectorOpIn, "us-east-1f")}})
			return s
		},
		expect: func(t *testing.T, _ *Snapshot, p *Plan) {
			wantAllPlaced(t, p)
			if z := p.NewNodes[0].Offering.Zone; z != "us-east-1f" {
				t.Fatalf("zone %s", z)
			}
		}},
	// Karpenter: provisioning/suite_test.go "should not match NodePool with PreferNoSchedule taint
	// when other NodePool match" (here the tainted pool even has the higher weight).
	{name: "a PreferNoSchedule pool is avoided while another can take the pod",
		snap: func() *Snapshot {
			tainted := testPool("soft", standardTypes(), func(p *Pool) {
				p.Weight = 10
				p.Taints = []corev1.Taint{{Key: "foo", Value: "bar", Effect: corev1.TaintEffectPreferNoSchedule}}
			})
			return &Snapshot{Pods: []*corev1.Pod{testPod("p", "1", "1Gi")}, Pools: []*Pool{tainted, testPool("default", standardTypes())}}
		},
		expect: func(t *testing.T, _ *Snapshot, p *Plan) {
			wantAllPlaced(t, p)
			if p.NewNodes[0].Pool != "default" {
				t.Fatalf("pool %s, want the untainted one", p.NewNodes[0].Pool)
			}
		}},
	// Karpenter: provisioning/suite_test.go "should tolerate PreferNoSchedule taint only after
	// trying to relax Affinity terms"
	{name: "PreferNoSchedule is tolerated as the last relaxation",
		snap: func() *Snapshot {
			pod := testPod("p", "1", "1Gi", withPreferred(1, nsr(v1alpha1.LabelZone, corev1.NodeSelectorOpIn, "invalid")),
				withPreferred(1, nsr(v1alpha1.LabelInstanceType, corev1.NodeSelectorOpIn, "invalid")))
			return onePool([]*corev1.Pod{pod}, func(p *Pool) {
				p.Taints = []corev1.Taint{{Key: "foo", Value: "bar", Effect: corev1.TaintEffectPreferNoSchedule}}
			})
		},
		expect: func(t *testing.T, _ *Snapshot, p *Plan) {
			wantAllPlaced(t, p)
			wantNodes(t, p, 1)
		}},
	// Karpenter: provisioning/suite_test.go "should consider a daemonset schedulable with a
	// PreferNoSchedule taint"
	{name: "daemonsets land on PreferNoSchedule nodes",
		snap: func() *Snapshot {
			s := onePool([]*corev1.Pod{testPod("p", "1", "1Gi", withToleration("test", "", corev1.TaintEffectPreferNoSchedule))}, func(p *Pool) {
				p.Taints = []corev1.Taint{{Key: "test", Effect: corev1.TaintEffectPreferNoSchedule}}
			})
			s.DaemonSets = []*appsv1.DaemonSet{daemonSet("agent", "2", "2Gi")}
			return s
		},
		expect: func(t *testing.T, _ *Snapshot, p *Plan) {
			wantAllPlaced(t, p)
			// 1 cpu + the daemonset's 2 cpu need a 4-cpu type.
			if cpu := p.NewNodes[0].InstanceType.Allocatable.Cpu().Value(); cpu < 4 {
				t.Fatalf("type %s ignores the daemonset", p.NewNodes[0].InstanceType.Name)
			}
		}},
	// Karpenter: scheduling/topology.go buildNamespaceList (a term's namespaces are its list plus
	// the namespaces its selector matches); the suite tests only the empty selector
	// ("should filter pod affinity topologies by namespace, empty namespace selector").
	{name: "pod affinity follows a labelled namespaceSelector",
		snap: func() *Snapshot {
			db := testPod("db", "100m", "100Mi", withLabels("app", "db"))
			db.Namespace = "team-a"
			web := testPod("web", "1", "1Gi", withPodAffinity(v1alpha1.LabelZone, map[string]string{"app": "db"}),
				withNamespaceSelector(map[string]string{"team": "a"}))
			s := onePool([]*corev1.Pod{web})
			s.Nodes = []*Node{existingNode("full-b", "zone-b", 1, 1, []*corev1.Pod{db})}
			s.Namespaces = teamNamespaces()
			return s
		},
		expect: func(t *testing.T, _ *Snapshot, p *Plan) {
			wantAllPlaced(t, p)
			if z := p.NewNodes[0].Offering.Zone; z != "zone-b" {
				t.Fatalf("zone %s, want zone-b next to team-a's db", z)
			}
		}},
	{name: "pod anti-affinity follows a labelled namespaceSelector",
		snap: func() *Snapshot {
			db := pods(3, "db", "100m", "100Mi", withLabels("app", "db"))
			for _, p := range db {
				p.Namespace = "team-a"
			}
			web := testPod("web", "1", "1Gi", withAntiAffinity(v1alpha1.LabelHostname, map[string]string{"app": "db"}),
				withNamespaceSelector(map[string]string{"team": "a"}))
			s := onePool(append(db, web))
			s.Namespaces = teamNamespaces()
			return s
		},
		expect: func(t *testing.T, s *Snapshot, p *Plan) {
			wantAllPlaced(t, p)
			web := nodeOf(p, s.Pods[3])
			for _, db := range s.Pods[:3] {
				if nodeOf(p, db) == web {
					t.Fatalf("web shares %s with %s", web, db.Name)
				}
			}
		}},
	// Karpenter: scheduling/volumetopology.go (an unbound WaitForFirstConsumer claim takes the
	// StorageClass's allowedTopologies), suite_test.go VolumeUsage "should schedule to storage
	// class zones if volume does not exist".
	{name: "an unbound WaitForFirstConsumer claim keeps the pod in its class's zones",
		snap: func() *Snapshot {
			s := realSnap(testPod("db", "1", "1Gi", withClaim("data")))
			wffc := storagev1.VolumeBindingWaitForFirstConsumer
			s.StorageClasses = []*storagev1.StorageClass{{ObjectMeta: metav1.ObjectMeta{Name: "gp3"}, VolumeBindingMode: &wffc,
				AllowedTopologies: []corev1.TopologySelectorTerm{{MatchLabelExpressions: []corev1.TopologySelectorLabelRequirement{
					{Key: v1alpha1.LabelEBSCSIZone, Values: []string{"us-east-1c"}}}}}}}
			pvc := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "data", Namespace: "default"}}
			pvc.Spec.StorageClassName = ptr("gp3")
			s.PersistentVolumeClaims = []*corev1.PersistentVolumeClaim{pvc}
			return s
		},
		expect: func(t *testing.T, _ *Snapshot, p *Plan) {
			wantAllPlaced(t, p)
			if z := p.NewNodes[0].Offering.Zone; z != "us-east-1c" {
				t.Fatalf("zone %s, want the class's us-east-1c", z)
			}
		}},
	// Karpenter: scheduling/suite_test.go "should schedule pods that have matching requirements"
	// (NodePool with Labels), with the pool allowing several values of a custom key: each pod
	// gets a node carrying the value it selects.
	{name: "a multi-value custom key serves pods selecting either value",
		snap: func() *Snapshot {
			return onePool([]*corev1.Pod{
				testPod("a", "1", "1Gi", withNodeSelector("team", "a")),
				testPod("b", "1", "1Gi", withNodeSelector("team", "b")),
				testPod("any", "1", "1Gi"),
			}, withTeams("a", "b"))
		},
		expect: func(t *testing.T, s *Snapshot, p *Plan) {
			wantAllPlaced(t, p)
			wantNodes(t, p, 2)
			for _, pod := range s.Pods[:2] {
				if n := newNodeByName(p, nodeOf(p, pod)); n.Labels["team"] != pod.Name {
					t.Fatalf("pod %s on a node labelled team=%s", pod.Name, n.Labels["team"])
				}
			}
		}},
	// Karpenter: scheduling/topology_test.go "should balance pods across capacity types", over a
	// custom key the pool allows several values of.
	{name: "spread over a multi-value custom key balances",
		snap: func() *Snapshot {
			web := map[string]string{"app": "web"}
			return onePool(pods(4, "web", "1", "1Gi", withLabels("app", "web"), withSpread("team", 1, corev1.DoNotSchedule, web)), withTeams("a", "b"))
		},
		expect: func(t *testing.T, s *Snapshot, p *Plan) {
			wantAllPlaced(t, p)
			perTeam := map[string]int{}
			for _, n := range p.NewNodes {
				perTeam[n.Labels["team"]] += len(n.Pods)
			}
			if perTeam["a"] != 2 || perTeam["b"] != 2 {
				t.Fatalf("pods per team %v, want 2 and 2", perTeam)
			}
		}},
	// Karpenter: scheduling/suite_test.go "should not schedule pods that have node selectors with undefined key"
	{name: "a selector on an undefined key is unschedulable",
		snap: func() *Snapshot {
			return onePool([]*corev1.Pod{testPod("p", "1", "1Gi", withNodeSelector("undefined", "x"))})
		},
		expect: func(t *testing.T, _ *Snapshot, p *Plan) { wantUnschedulable(t, p, 1) }},
	// Karpenter: scheduling/suite_test.go "should schedule pods that have node selectors with NotIn operator and undefined key"
	{name: "NotIn on an undefined key schedules",
		snap: func() *Snapshot {
			return onePool([]*corev1.Pod{testPod("p", "1", "1Gi", withRequiredTerms([]corev1.NodeSelectorRequirement{nsr("undefined", corev1.NodeSelectorOpNotIn, "x")}))})
		},
		expect: func(t *testing.T, _ *Snapshot, p *Plan) { wantAllPlaced(t, p) }},
	// Karpenter: scheduling/suite_test.go "should not schedule pods that have node selectors with Exists operator and undefined key"
	{name: "Exists on an undefined key is unschedulable",
		snap: func() *Snapshot {
			return onePool([]*corev1.Pod{testPod("p", "1", "1Gi", withRequiredTerms([]corev1.NodeSelectorRequirement{nsr("undefined", corev1.NodeSelectorOpExists)}))})
		},
		expect: func(t *testing.T, _ *Snapshot, p *Plan) { wantUnschedulable(t, p, 1) }},
	// Karpenter: scheduling/suite_test.go "should schedule pods that with DoesNotExists operator and undefined key"
	{name: "DoesNotExist on an undefined key schedules",
		snap: func() *Snapshot {
			return onePool([]*corev1.Pod{testPod("p", "1", "1Gi", withRequiredTerms([]corev1.NodeSelectorRequirement{nsr("undefined", corev1.NodeSelectorOpDoesNotExist)}))})
		},
		expect: func(t *testing.T, _ *Snapshot, p *Plan) { wantAllPlaced(t, p) }},
	// Karpenter: scheduling/suite_test.go "should schedule compatible requirements with Operator=Gt"
	{name: "Gt on an integer instance label",
		snap: func() *Snapshot {
			return onePool([]*corev1.Pod{testPod("p", "1", "1Gi", withRequiredTerms([]corev1.NodeSelectorRequirement{
				nsr(v1alpha1.AWSLabelPrefix+v1alpha1.SuffixInstanceCPU, corev1.NodeSelectorOpGt, "4")}))})
		},
		expect: func(t *testing.T, _ *Snapshot, p *Plan) {
			wantAllPlaced(t, p)
			if cpu := p.NewNodes[0].InstanceType.Capacity.Cpu().Value(); cpu <= 4 {
				t.Fatalf("%d cpus, want more than 4", cpu)
			}
		}},
	// Karpenter: scheduling/suite_test.go "should schedule incompatible preferences and requirements with Operator=In"
	{name: "a preference the requirement rules out is relaxed",
		snap: func() *Snapshot {
			return onePool([]*corev1.Pod{testPod("p", "1", "1Gi",
				withRequiredTerms([]corev1.NodeSelectorRequirement{nsr(v1alpha1.LabelZone, corev1.NodeSelectorOpIn, "zone-a")}),
				withPreferred(1, nsr(v1alpha1.LabelZone, corev1.NodeSelectorOpIn, "zone-b")))})
		},
		expect: func(t *testing.T, _ *Snapshot, p *Plan) {
			wantAllPlaced(t, p)
			if z := p.NewNodes[0].Offering.Zone; z != "zone-a" {
				t.Fatalf("zone %s", z)
			}
		}},
	// Karpenter: scheduling/suite_test.go "should not schedule nodes with a hostname selector"
	{name: "a hostname selector matches no new node",
		snap: func() *Snapshot {
			return onePool([]*corev1.Pod{testPod("p", "1", "1Gi", withNodeSelector(v1alpha1.LabelHostname, "red-node"))})
		},
		expect: func(t *testing.T, _ *Snapshot, p *Plan) { wantUnschedulable(t, p, 1) }},
	// Karpenter: scheduling/topology_test.go "should balance pods across zones (match labels)"
	{name: "zonal spread balances",
		snap: func() *Snapshot {
			web := map[string]string{"app": "web"}
			return onePool(pods(4, "web", "1", "1Gi", withLabels("app", "web"), withSpread(v1alpha1.LabelZone, 1, corev1.DoNotSchedule, web)))
		},
		expect: func(t *testing.T, _ *Snapshot, p *Plan) {
			wantAllPlaced(t, p)
			perZone := map[string]int{}
			for _, n := range p.NewNodes {
				perZone[n.Offering.Zone] += len(n.Pods)
			}
			if len(perZone) != 3 {
				t.Fatalf("pods per zone %v, want all three zones used", perZone)
			}
			for _, c := range perZone {
				if c < 1 || c > 2 {
					t.Fatalf("pods per zone %v, want 1 or 2 each", perZone)
				}
			}
		}},
	// Karpenter: scheduling/topology_test.go "should respect self pod affinity (hostname)"
	{name: "self pod affinity on hostname keeps replicas together",
		snap: func() *Snapshot {
			web := map[string]string{"app": "web"}
			return onePool(pods(3, "web", "500m", "1Gi", withLabels("app", "web"), withPodAffinity(v1alpha1.LabelHostname, web)))
		},
		expect: func(t *testing.T, _ *Snapshot, p *Plan) { wantAllPlaced(t, p); wantNodes(t, p, 1) }},
	// Karpenter: scheduling/suite_test.go "should schedule pods with the same host port to different nodes"
	{name: "host ports split pods across nodes",
		snap:   func() *Snapshot { return onePool(pods(2, "p", "100m", "100Mi", withHostPort(8080))) },
		expect: func(t *testing.T, _ *Snapshot, p *Plan) { wantAllPlaced(t, p); wantNodes(t, p, 2) }},
}

func withTeams(values ...string) func(*Pool) {
	return func(p *Pool) {
		p.Requirements = append(p.Requirements, Requirement{Key: "team", Operator: OpIn, Values: values})
	}
}

func teamNamespaces() []*corev1.Namespace {
	return []*corev1.Namespace{
		{ObjectMeta: metav1.ObjectMeta{Name: "default"}},
		{ObjectMeta: metav1.ObjectMeta{Name: "team-a", Labels: map[string]string{"team": "a"}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "team-b", Labels: map[string]string{"team": "b"}}},
	}
}

// withNamespaceSelector sets the namespaceSelector of every pod (anti-)affinity term.
func withNamespaceSelector(match map[string]string) podOpt {
	return func(p *corev1.Pod) {
		a := affinity(p)
		if a.PodAffinity != nil {
			for i := range a.PodAffinity.RequiredDuringSchedulingIgnoredDuringExecution {
				a.PodAffinity.RequiredDuringSchedulingIgnoredDuringExecution[i].NamespaceSelector = &metav1.LabelSelector{MatchLabels: match}
			}
		}
		if a.PodAntiAffinity != nil {
			for i := range a.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution {
				a.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution[i].NamespaceSelector = &metav1.LabelSelector{MatchLabels: match}
			}
		}
	}
}

// realSnap places pods with the on-demand amd64 pool built from the
// embedded us-east-1 catalog.
func realSnap(ps ...*corev1.Pod) *Snapshot {
	return &Snapshot{Pods: ps, Pools: realPoolsForCases[1:]}
}

// realPoolsForCases is filled by TestFidelity before any case runs.
var realPoolsForCases []*Pool

func addBoundVolume(s *Snapshot, claim string, terms ...corev1.NodeSelectorTerm) {
	pv := &corev1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: "pv-" + claim}}
	pv.Spec.NodeAffinity = &corev1.VolumeNodeAffinity{Required: &corev1.NodeSelector{NodeSelectorTerms: terms}}
	pvc := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: claim, Namespace: "default"}}
	pvc.Spec.VolumeName = pv.Name
	s.PersistentVolumes = append(s.PersistentVolumes, pv)
	s.PersistentVolumeClaims = append(s.PersistentVolumeClaims, pvc)
}

func terminating(p *corev1.Pod) {
	now := metav1.Now()
	p.DeletionTimestamp = &now
}

func inPhase(phase corev1.PodPhase) podOpt {
	return func(p *corev1.Pod) { p.Status.Phase = phase }
}

func dsHostPort(port int32) func(*corev1.PodSpec) {
	return func(ps *corev1.PodSpec) {
		ps.Containers[0].Ports = append(ps.Containers[0].Ports, corev1.ContainerPort{ContainerPort: port, HostPort: port})
	}
}

func withPreferredAntiAffinity(weight int32, key string, match map[string]string) podOpt {
	return func(p *corev1.Pod) {
		a := affinity(p)
		if a.PodAntiAffinity == nil {
			a.PodAntiAffinity = &corev1.PodAntiAffinity{}
		}
		a.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution = append(a.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution,
			corev1.WeightedPodAffinityTerm{Weight: weight, PodAffinityTerm: podTerm(key, match)})
	}
}

func TestFidelity(t *testing.T) {
	realPoolsForCases = realPools(t)
	for _, tc := range fidelityCases {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.snap()
			p := solveChecked(t, s, tc.opts)
			tc.expect(t, s, p)
		})
	}
}
