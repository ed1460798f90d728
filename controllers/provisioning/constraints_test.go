package provisioning

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
	infrav1 "sigs.k8s.io/cluster-api-provider-aws/v2/api/v1beta2"
	capawebhooks "sigs.k8s.io/cluster-api-provider-aws/v2/webhooks"

	"github.com/joinery-dev/joinery/api/v1alpha1"
	"github.com/joinery-dev/joinery/solver"
)

// clusterSubnets are an AWSCluster's spec.network.subnets: a private and
// a public subnet in us-east-1a, a private one in us-east-1b, nothing
// public there.
var clusterSubnets = infrav1.Subnets{
	{ID: "subnet-a-private", AvailabilityZone: "us-east-1a", Tags: infrav1.Tags{"tier": "nodes"}},
	{ID: "subnet-a-public", AvailabilityZone: "us-east-1a", IsPublic: true, Tags: infrav1.Tags{"tier": "edge"}},
	{ID: "subnet-b-private", AvailabilityZone: "us-east-1b", Tags: infrav1.Tags{"tier": "nodes"}},
}

func TestTemplateConstraints(t *testing.T) {
	for _, tc := range []struct {
		rule     string
		spec     infrav1.AWSMachineSpec
		zones    []string // nil: every zone
		noSpot   bool
		typ      string
		maxPrice string
		blocking bool
		problem  string // substring of the problems
	}{
		{"a template without placement settings constrains nothing", infrav1.AWSMachineSpec{InstanceType: "m5.large"}, nil, false, "", "", false, ""},
		{"a subnet id pins the pool to its zone", infrav1.AWSMachineSpec{Subnet: &infrav1.AWSResourceReference{ID: ptr.To("subnet-b-private")}}, []string{"us-east-1b"}, false, "", "", false, ""},
		{"a subnet id the AWSCluster does not list blocks the pool", infrav1.AWSMachineSpec{Subnet: &infrav1.AWSResourceReference{ID: ptr.To("subnet-unknown")}}, nil, false, "", "", true, "subnet.id subnet-unknown"},
		{"an availability-zone filter pins the zone", infrav1.AWSMachineSpec{Subnet: &infrav1.AWSResourceReference{Filters: []infrav1.Filter{{Name: "availability-zone", Values: []string{"us-east-1a"}}}}}, []string{"us-east-1a"}, false, "", "", false, ""},
		{"a tag filter resolves through the AWSCluster's subnets", infrav1.AWSMachineSpec{Subnet: &infrav1.AWSResourceReference{Filters: []infrav1.Filter{{Name: "tag:tier", Values: []string{"nodes"}}}}}, []string{"us-east-1a", "us-east-1b"}, false, "", "", false, ""},
		{"a filter only EC2 can answer is reported, the others still apply", infrav1.AWSMachineSpec{Subnet: &infrav1.AWSResourceReference{Filters: []infrav1.Filter{
			{Name: "cidr-block", Values: []string{"10.0.0.0/24"}}, {Name: "tag:tier", Values: []string{"edge"}}}}}, []string{"us-east-1a"}, false, "", "", false, "cidr-block cannot be resolved without EC2"},
		{"publicIP keeps the zones with a public subnet", infrav1.AWSMachineSpec{PublicIP: ptr.To(true)}, []string{"us-east-1a"}, false, "", "", false, ""},
		{"publicIP on a private pinned subnet blocks the pool", infrav1.AWSMachineSpec{PublicIP: ptr.To(true), Subnet: &infrav1.AWSResourceReference{ID: ptr.To("subnet-b-private")}}, nil, false, "", "", true, "no public subnet"},
		{"a capacity reservation excludes spot", infrav1.AWSMachineSpec{CapacityReservationID: ptr.To("cr-1")}, nil, true, "", "", false, ""},
		{"CapacityReservationsOnly excludes spot", infrav1.AWSMachineSpec{CapacityReservationPreference: infrav1.CapacityReservationPreferenceOnly}, nil, true, "", "", false, ""},
		{"a capacity block in a pinned zone is its type there, on demand", infrav1.AWSMachineSpec{InstanceType: "p5.48xlarge", MarketType: infrav1.MarketTypeCapacityBlock, CapacityReservationID: ptr.To("cr-2"),
			Subnet: &infrav1.AWSResourceReference{ID: ptr.To("subnet-a-private")}}, []string{"us-east-1a"}, true, "p5.48xlarge", "", false, ""},
		{"a capacity block without a pinned zone cannot be modelled and blocks", infrav1.AWSMachineSpec{InstanceType: "p5.48xlarge", MarketType: infrav1.MarketTypeCapacityBlock, CapacityReservationID: ptr.To("cr-2")}, nil, true, "p5.48xlarge", "", true, "pin spec.template.spec.subnet"},
		{"a spot maxPrice becomes the cap", infrav1.AWSMachineSpec{SpotMarketOptions: &infrav1.SpotMarketOptions{MaxPrice: ptr.To("0.04")}}, nil, false, "", "0.04", false, ""},
		{"a maxPrice that is no price blocks the pool", infrav1.AWSMachineSpec{SpotMarketOptions: &infrav1.SpotMarketOptions{MaxPrice: ptr.To("cheap")}}, nil, false, "", "", true, "spotMarketOptions.maxPrice"},
	} {
		t.Run(tc.rule, func(t *testing.T) {
			c := TemplateConstraints(&tc.spec, clusterSubnets)
			if tc.blocking != c.Blocking || (tc.problem == "") != (len(c.Problems) == 0) || !strings.Contains(c.problemText(), tc.problem) {
				t.Fatalf("blocking %v problems %q, want blocking %v naming %q", c.Blocking, c.Problems, tc.blocking, tc.problem)
			}
			if c.Blocking {
				return
			}
			if (tc.zones == nil) != (c.Zones == nil) || len(tc.zones) != len(c.Zones) {
				t.Errorf("zones %v, want %v", c.Zones, tc.zones)
			}
			for _, z := range tc.zones {
				if !c.Zones[z] {
					t.Errorf("zones %v, want %v", c.Zones, tc.zones)
				}
			}
			if c.NoSpot != tc.noSpot || c.InstanceType != tc.typ || c.MaxPriceText != tc.maxPrice {
				t.Errorf("noSpot %v type %q maxPrice %q, want %v %q %q", c.NoSpot, c.InstanceType, c.MaxPriceText, tc.noSpot, tc.typ, tc.maxPrice)
			}
		})
	}
}

func TestRestrictionWithholdsWhatTheTemplateAndTheCloudForbid(t *testing.T) {
	price := 0.04
	offerings := func() []solver.Offering {
		return []solver.Offering{
			{Zone: "us-east-1a", CapacityType: "spot", PricePerHour: 0.03, Available: true},
			{Zone: "us-east-1a", CapacityType: "spot", PricePerHour: 0.05, Available: true},
			{Zone: "us-east-1b", CapacityType: "spot", PricePerHour: 0.02, Available: true},
			{Zone: "us-east-1a", CapacityType: "on-demand", PricePerHour: 0.096, Available: true},
			{Zone: "us-east-1b", CapacityType: "on-demand", PricePerHour: 0.096, Available: true},
		}
	}
	snap := &solver.Snapshot{Pools: []*solver.Pool{
		{Name: "capped", InstanceTypes: []*solver.InstanceType{{Name: "m5.large", Offerings: offerings()}}},
		{Name: "pinned", InstanceTypes: []*solver.InstanceType{{Name: "m5.large", Offerings: offerings()}}},
		{Name: "broken", InstanceTypes: []*solver.InstanceType{{Name: "m5.large", Offerings: offerings()}}},
		{Name: "free", InstanceTypes: []*solver.InstanceType{{Name: "m5.large", Offerings: offerings()}}},
	}}
	r := &restriction{region: "us-east-1", namespace: "team-a",
		constraints: map[string]*LaunchConstraints{
			"capped": {MaxPrice: &price, MaxPriceText: "0.04"},
			"pinned": {Zones: map[string]bool{"us-east-1a": true}, NoSpot: true},
		},
		scopes:  []UnavailableScope{{Kind: ScopePoolZone, Pool: "team-a/free", Zone: "us-east-1b"}},
		blocked: map[string]bool{"broken": true},
	}
	r.apply(snap)
	want := map[string][]bool{
		"capped": {true, false, true, true, true},    // spot above $0.04 withheld
		"pinned": {false, false, false, true, false}, // us-east-1a, on demand only
		"broken": {false, false, false, false, false},
		"free":   {true, true, false, true, false}, // us-east-1b out of addresses for this pool
	}
	for _, p := range snap.Pools {
		for i, o := range p.InstanceTypes[0].Offerings {
			if o.Available != want[p.Name][i] {
				t.Errorf("pool %s offering %s %s $%.3f: available %v, want %v", p.Name, o.Zone, o.CapacityType, o.PricePerHour, o.Available, want[p.Name][i])
			}
		}
	}
}

// validateWithCAPA runs CAPA's own AWSMachine admission webhook on a clone.
func validateWithCAPA(t *testing.T, obj *unstructured.Unstructured) error {
	t.Helper()
	aws := &infrav1.AWSMachine{}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj.Object, aws); err != nil {
		t.Fatal(err)
	}
	_, err := (&capawebhooks.AWSMachine{}).ValidateCreate(context.Background(), aws)
	return err
}

func TestBuildInfrastructureWritesWhatCAPAAccepts(t *testing.T) {
	l := launchSpec()
	m, _ := BuildMachine(l, awsTemplateRef, kubeadmTemplateRef)
	ref := TemplateObjectReference("team-a", awsTemplateRef, "v1beta2")
	for _, tc := range []struct {
		rule         string
		capacityType string
		template     map[string]any
		check        func(t *testing.T, spec map[string]any)
		wantErr      string
	}{
		{"a spot launch keeps the template's maxPrice", "spot",
			map[string]any{"instanceType": "t3.large", "spotMarketOptions": map[string]any{"maxPrice": "0.04"}, "marketType": "Spot"},
			func(t *testing.T, spec map[string]any) {
				if got, _, _ := unstructured.NestedString(spec, "spotMarketOptions", "maxPrice"); got != "0.04" {
					t.Errorf("maxPrice %q, want the template's 0.04", got)
				}
			}, ""},
		{"an on-demand launch of a spot template carries no spot options", "on-demand",
			map[string]any{"instanceType": "t3.large", "spotMarketOptions": map[string]any{"maxPrice": "0.04"}, "marketType": "Spot"},
			func(t *testing.T, spec map[string]any) {
				if _, has, _ := unstructured.NestedMap(spec, "spotMarketOptions"); has {
					t.Errorf("spotMarketOptions kept: %v", spec)
				}
			}, ""},
		{"a capacity block stays a capacity block", "on-demand",
			map[string]any{"instanceType": "p5.48xlarge", "marketType": "CapacityBlock", "capacityReservationId": "cr-1"},
			func(t *testing.T, spec map[string]any) {
				if got, _, _ := unstructured.NestedString(spec, "marketType"); got != "CapacityBlock" {
					t.Errorf("marketType %q", got)
				}
			}, ""},
		{"the pool and cluster are tagged, merged with the template's tags", "on-demand",
			map[string]any{"instanceType": "t3.large", "additionalTags": map[string]any{"team": "a", "karpenter.sh/nodepool": "stale"}},
			func(t *testing.T, spec map[string]any) {
				tags, _, _ := unstructured.NestedStringMap(spec, "additionalTags")
				want := map[string]string{"team": "a", TagNodePool: "general", TagNodePoolNamespace: "team-a", TagCluster: "workload-1", TagKarpenterNodePool: "general"}
				for k, v := range want {
					if tags[k] != v {
						t.Errorf("tag %s = %q, want %q (all: %v)", k, tags[k], v, tags)
					}
				}
			}, ""},
		{"a spot launch against a reservation is refused, not written", "spot",
			map[string]any{"instanceType": "t3.large", "capacityReservationId": "cr-1"}, nil, "capacity reservation"},
	} {
		t.Run(tc.rule, func(t *testing.T) {
			d := l.Decision
			d.Offering.CapacityType = tc.capacityType
			obj, err := BuildInfrastructure(awsMachineTemplate(tc.template), ref, m, d)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one naming %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := validateWithCAPA(t, obj); err != nil {
				t.Errorf("CAPA's webhook refuses the clone: %v", err)
			}
			spec, _, _ := unstructured.NestedMap(obj.Object, "spec")
			tc.check(t, spec)
		})
	}
}

// A reserved decision targets its reservation the way CAPA v2.13 sends it
// to EC2 (capacityReservationId; marketType CapacityBlock for a block), in
// a clone CAPA's own webhook accepts.
func TestBuildInfrastructureTargetsTheDecisionsReservation(t *testing.T) {
	l := launchSpec()
	m, _ := BuildMachine(l, awsTemplateRef, kubeadmTemplateRef)
	ref := TemplateObjectReference("team-a", awsTemplateRef, "v1beta2")
	for _, tc := range []struct {
		rule       string
		kind       string
		template   map[string]any
		wantMarket string
		wantPref   string
	}{
		{"an on-demand capacity reservation", v1alpha1.CapacityReservationTypeDefault,
			map[string]any{"instanceType": "t3.large", "spotMarketOptions": map[string]any{"maxPrice": "0.04"}, "marketType": "Spot"}, "", ""},
		{"a capacity block", v1alpha1.CapacityReservationTypeBlock, map[string]any{"instanceType": "t3.large"}, "CapacityBlock", ""},
		{"the template's open preference gives way", v1alpha1.CapacityReservationTypeDefault,
			map[string]any{"instanceType": "t3.large", "capacityReservationPreference": "Open"}, "", ""},
		{"the template's reservations-only preference stays", v1alpha1.CapacityReservationTypeDefault,
			map[string]any{"instanceType": "t3.large", "capacityReservationPreference": "CapacityReservationsOnly"}, "", "CapacityReservationsOnly"},
	} {
		t.Run(tc.rule, func(t *testing.T) {
			d := l.Decision
			d.Offering.CapacityType, d.Offering.ReservationID, d.Offering.ReservationType = v1alpha1.CapacityTypeReserved, "cr-0123456789abcdef0", tc.kind
			obj, err := BuildInfrastructure(awsMachineTemplate(tc.template), ref, m, d)
			if err != nil {
				t.Fatal(err)
			}
			if err := validateWithCAPA(t, obj); err != nil {
				t.Errorf("CAPA's webhook refuses the clone: %v", err)
			}
			spec, _, _ := unstructured.NestedMap(obj.Object, "spec")
			id, _, _ := unstructured.NestedString(spec, "capacityReservationId")
			market, _, _ := unstructured.NestedString(spec, "marketType")
			pref, _, _ := unstructured.NestedString(spec, "capacityReservationPreference")
			_, spot, _ := unstructured.NestedMap(spec, "spotMarketOptions")
			if id != "cr-0123456789abcdef0" || market != tc.wantMarket || pref != tc.wantPref || spot {
				t.Errorf("capacityReservationId %q marketType %q preference %q spot %v; want cr-0123456789abcdef0, %q, %q, no spot", id, market, pref, spot, tc.wantMarket, tc.wantPref)
			}
		})
	}
	// The Machine and the node it becomes name the reservation.
	l.Decision.Offering.CapacityType, l.Decision.Offering.ReservationID, l.Decision.Offering.ReservationType = v1alpha1.CapacityTypeReserved, "cr-0123456789abcdef0", "default"
	m, err := BuildMachine(l, awsTemplateRef, kubeadmTemplateRef)
	if err != nil {
		t.Fatal(err)
	}
	labels := NodeLabels(l.NodePool, l.Decision, nil)
	if m.Labels[v1alpha1.LabelCapacityReservationID] != "cr-0123456789abcdef0" || labels[v1alpha1.LabelCapacityReservationID] != "cr-0123456789abcdef0" ||
		labels[v1alpha1.LabelCapacityReservationType] != "default" || labels[v1alpha1.LabelCapacityType] != "reserved" {
		t.Errorf("Machine labels %v, node labels %v", m.Labels, labels)
	}
}

// Machines count against their reservation until EC2's count shows them:
// two passes never plan more than the reservation holds.
func TestRestrictionCountsMachinesAgainstTheirReservation(t *testing.T) {
	reserved := func(id string, read int) solver.Offering {
		return solver.Offering{Zone: "us-east-1a", CapacityType: v1alpha1.CapacityTypeReserved, Available: true, ReservationID: id, ReservationCapacity: read}
	}
	use := reservationUse{}
	launched := "i-0123"
	decided := func(id string) Decision { return Decision{Offering: Offering{ReservationID: id}} }
	// cr-a: 3 slots; read says 2 free; one Machine launching (not in the
	// read), one launched after the read (instance ID, not in it either).
	use.count(decided("cr-a"), nil)
	use.count(decided("cr-a"), &infrav1.AWSMachine{Spec: infrav1.AWSMachineSpec{InstanceID: &launched}})
	// cr-b: 4 slots, read says 1 free, one Machine launching: none left.
	use.count(decided("cr-b"), &infrav1.AWSMachine{})
	snap := &solver.Snapshot{Pools: []*solver.Pool{
		{Name: "terms", InstanceTypes: []*solver.InstanceType{{Name: "m5.large", Offerings: []solver.Offering{reserved("cr-a", 2), reserved("cr-b", 1), reserved("cr-c", 2)}}}},
		{Name: "template", InstanceTypes: []*solver.InstanceType{{Name: "m5.large", Offerings: []solver.Offering{reserved("cr-c", 2),
			{Zone: "us-east-1a", CapacityType: "on-demand", Available: true}}}}},
	}}
	r := &restriction{region: "us-east-1", namespace: "team-a", blocked: map[string]bool{},
		constraints:       map[string]*LaunchConstraints{"template": {Reservation: "cr-t", NoSpot: true}},
		scopes:            []UnavailableScope{{Kind: ScopeReservation, Reservation: "cr-c"}},
		reservations:      use,
		reservationTotals: map[string]int{"cr-a": 3, "cr-b": 4, "cr-c": 2},
	}
	r.apply(snap)
	got := map[string]string{}
	for _, p := range snap.Pools {
		for _, o := range p.InstanceTypes[0].Offerings {
			got[p.Name+" "+o.CapacityType+" "+o.ReservationID] = fmt.Sprintf("available=%t room=%d", o.Available, o.ReservationCapacity)
		}
	}
	want := map[string]string{
		"terms reserved cr-a":    "available=true room=1",  // min(2-1 launching, 3-2 Machines)
		"terms reserved cr-b":    "available=false room=0", // 1 read, 1 launching
		"terms reserved cr-c":    "available=false room=2", // EC2 refused it lately (ReservationCapacityExceeded)
		"template reserved cr-c": "available=false room=2", // the template targets its own reservation
		"template on-demand ":    "available=true room=0",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("offerings after the restriction:\n  %v\nwant:\n  %v", got, want)
	}
}
