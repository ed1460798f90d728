package provisioning_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/joinery-dev/joinery/api/v1alpha1"
	"github.com/joinery-dev/joinery/controllers/provisioning"
	"github.com/joinery-dev/joinery/test/cloudsim"
)

// refusalZone is the zone of the single-zone refusal pools; refusalZone2
// is the second zone of the pool whose subnet runs out of addresses. No
// other spec of this suite launches spot there with these types.
const refusalZone, refusalZone2 = "us-east-1c", "us-east-1a"

// refusalSpotPrices are the spot prices (USD/h) the simulated EC2 quotes
// for the refusal table's types, by zone name, set before the manager
// reads the catalog. They make each pool's first and second choice a
// matter of price, so the second choice tells which scope the refusal made
// unavailable. On-demand prices are the catalog's (m6i.large $0.096,
// c6i.large $0.085, x2iedn.xlarge $0.83363, r6i.large $0.126, m6a.large
// $0.0864, m6a.xlarge $0.1728, c6a.large $0.0765).
var refusalSpotPrices = map[[2]string]float64{
	{"m6i.large", refusalZone}:      0.030,
	{"c6i.large", refusalZone}:      0.020,
	{"c6i.xlarge", refusalZone}:     0.040,
	{"x2iedn.xlarge", refusalZone}:  0.200,
	{"x2iedn.2xlarge", refusalZone}: 0.400,
	{"r6i.large", refusalZone2}:     0.030,
	{"r6i.xlarge", refusalZone2}:    0.050,
	{"r6i.large", refusalZone}:      0.070,
	{"r6i.xlarge", refusalZone}:     0.090,
	{"m6a.large", refusalZone}:      0.030,
	{"m6a.xlarge", refusalZone}:     0.100, // above m6a.large on-demand, below m6a.xlarge on-demand
	{"c6a.large", refusalZone}:      0.025,
	{"r6a.large", refusalZone}:      0.040,
}

// setRefusalSpotPrices quotes refusalSpotPrices in the simulated EC2 (by
// zone ID, in this suite's account).
func setRefusalSpotPrices() {
	idOf := map[string]string{}
	for id, name := range accountZones {
		idOf[name] = id
	}
	for k, usd := range refusalSpotPrices {
		tb.Cloud.EC2().SetSpotPrice(k[0], idOf[k[1]], usd)
	}
}

// refusal is one refused RunInstances of a launch-error class, as EC2
// answers it to CAPA, and what the next plan must then do.
type refusal struct {
	name          string
	types         []string
	zones         []string
	capacityTypes []string
	// refuse is what EC2 refuses with code: the pool's first choice.
	refuse cloudsim.Offering
	code   string
	// reason is the NodePool Event of the refusal; avoided the scope it
	// names (capacity classes; {pool} is the pool's namespace/name).
	reason, avoided string
	// next is the offering the pod finally runs on: the cheapest one the
	// scope leaves, which differs from what a wider or a narrower scope
	// would leave. Empty for configuration errors.
	next provisioning.Offering
	// field is what LaunchConfigurationValid names (configuration).
	field string
}

func (r refusal) requirements() []v1alpha1.NodeSelectorRequirementWithMinValues {
	return []v1alpha1.NodeSelectorRequirementWithMinValues{
		{Key: v1alpha1.LabelInstanceType, Operator: v1alpha1.OpIn, Values: r.types},
		{Key: v1alpha1.LabelZone, Operator: v1alpha1.OpIn, Values: r.zones},
		{Key: v1alpha1.LabelCapacityType, Operator: v1alpha1.OpIn, Values: r.capacityTypes},
	}
}

var (
	spotAndOnDemand = []string{v1alpha1.CapacityTypeSpot, v1alpha1.CapacityTypeOnDemand}
	spot            = v1alpha1.CapacityTypeSpot
	onDemand        = v1alpha1.CapacityTypeOnDemand
)

// The launch-error classes of launcherrors.go, one entry each, through
// CAPA and EC2's wire (the e2e suite has VcpuLimitExceeded and
// InvalidAMIID.NotFound). After Karpenter's "should not launch instance
// types when InsufficientInstanceCapacity" / unavailable-offerings cache
// specs (karpenter-provider-aws pkg/cloudprovider/suite_test.go and
// pkg/providers/instance/suite_test.go), with the scopes EC2's codes have.
var refusals = []refusal{{
	name: "refuse-ice", types: []string{"m6i.large"}, zones: []string{refusalZone}, capacityTypes: spotAndOnDemand,
	refuse: cloudsim.Offering{InstanceType: "m6i.large", Zone: refusalZone, CapacityType: cloudsim.CapacityTypeSpot},
	code:   "InsufficientInstanceCapacity", reason: "InsufficientCapacity", avoided: "spot m6i.large in " + refusalZone + " is avoided",
	// The type in the zone would leave nothing: only the offering goes.
	next: provisioning.Offering{InstanceType: "m6i.large", Zone: refusalZone, CapacityType: onDemand},
}, {
	name: "refuse-spot-price", types: []string{"c6i.large", "c6i.xlarge"}, zones: []string{refusalZone}, capacityTypes: spotAndOnDemand,
	refuse: cloudsim.Offering{InstanceType: "c6i.large", Zone: refusalZone, CapacityType: cloudsim.CapacityTypeSpot},
	code:   "SpotMaxPriceTooLow", reason: "InsufficientCapacity", avoided: "spot c6i.large in " + refusalZone + " is avoided",
	// The spot market of the type in the zone: spot of another type
	// stays (a quota group would have left on-demand only).
	next: provisioning.Offering{InstanceType: "c6i.xlarge", Zone: refusalZone, CapacityType: spot},
}, {
	name: "refuse-spot-count", types: []string{"x2iedn.xlarge", "x2iedn.2xlarge"}, zones: []string{refusalZone}, capacityTypes: spotAndOnDemand,
	refuse: cloudsim.Offering{InstanceType: "x2iedn.xlarge", Zone: refusalZone, CapacityType: cloudsim.CapacityTypeSpot},
	code:   "MaxSpotInstanceCountExceeded", reason: "InsufficientCapacity", avoided: `every spot instance of vCPU quota group "x" in us-east-1 is avoided`,
	// The account's spot quota of the X group: the bigger X type's spot
	// (cheaper than on-demand) is refused too, on-demand has its own.
	next: provisioning.Offering{InstanceType: "x2iedn.xlarge", Zone: refusalZone, CapacityType: onDemand},
}, {
	name: "refuse-addresses", types: []string{"r6i.large", "r6i.xlarge"}, zones: []string{refusalZone2, refusalZone}, capacityTypes: []string{spot},
	refuse: cloudsim.Offering{InstanceType: "r6i.large", Zone: refusalZone2, CapacityType: cloudsim.CapacityTypeSpot},
	code:   "InsufficientFreeAddressesInSubnet", reason: "InsufficientCapacity", avoided: "zone " + refusalZone2 + " for NodePool {pool} is avoided",
	// The pool's subnet in the zone is full, whatever the type: the next
	// plan leaves the zone, though r6i.xlarge is cheaper there.
	next: provisioning.Offering{InstanceType: "r6i.large", Zone: refusalZone, CapacityType: spot},
}, {
	name: "refuse-unsupported", types: []string{"m6a.large", "m6a.xlarge"}, zones: []string{refusalZone}, capacityTypes: spotAndOnDemand,
	// EC2 says Unsupported for the type in the zone, any market.
	refuse: cloudsim.Offering{InstanceType: "m6a.large", Zone: refusalZone},
	code:   "Unsupported", reason: "InsufficientCapacity", avoided: "m6a.large in " + refusalZone + " is avoided",
	// Neither market of the type in the zone: not m6a.large on-demand,
	// which is cheaper than m6a.xlarge spot.
	next: provisioning.Offering{InstanceType: "m6a.xlarge", Zone: refusalZone, CapacityType: spot},
}, {
	name: "refuse-unknown", types: []string{"c6a.large"}, zones: []string{refusalZone}, capacityTypes: spotAndOnDemand,
	refuse: cloudsim.Offering{InstanceType: "c6a.large", Zone: refusalZone, CapacityType: cloudsim.CapacityTypeSpot},
	// A code the table does not know: the offering, as capacity, and a
	// LaunchFailed Event (a wrong guess costs one offering one TTL).
	code: "UnknownToJoinery", reason: "LaunchFailed", avoided: "spot c6a.large in " + refusalZone + " is avoided",
	next: provisioning.Offering{InstanceType: "c6a.large", Zone: refusalZone, CapacityType: onDemand},
}, {
	name: "refuse-group", types: []string{"r6a.large"}, zones: []string{refusalZone}, capacityTypes: spotAndOnDemand,
	// A security group EC2 does not have: every offering is refused the
	// same way, so only the template can cure it.
	refuse: cloudsim.Offering{InstanceType: "r6a.large"},
	code:   "InvalidGroup.NotFound", reason: "LaunchConfigurationError", field: "spec.template.spec.additionalSecurityGroups",
}}

var _ = Describe("Launch errors of every class through CAPA and EC2's wire", func() {
	// One spec for the table: the pools are set up together and checked
	// side by side (their refusals and offerings do not overlap), so the
	// table costs about one launch-and-relaunch, not one per entry.
	It("avoids exactly what each refusal's scope covers, or holds the pool back for its template", func(ctx SpecContext) {
		for _, r := range refusals {
			pool(ctx, r.name, nil, r.requirements()...)
		}
		DeferCleanup(tb.Cloud.ClearLaunchErrors)
		for _, r := range refusals {
			tb.Cloud.InjectLaunchError(r.refuse, r.code, "")
			pods(ctx, r.name, r.name, 1, "500m")
		}
		// Cleanups run last in, first out: every pool is deleted at once
		// here before pool's cleanups wait for their Machines one by one.
		DeferCleanup(func(ctx SpecContext) {
			for _, r := range refusals {
				np := &v1alpha1.NodePool{ObjectMeta: metav1.ObjectMeta{Namespace: tb.Namespace, Name: r.name}}
				Expect(client.IgnoreNotFound(tb.Client.Delete(ctx, np))).To(Succeed())
			}
		})

		var mu sync.Mutex
		var failures []string
		var wg sync.WaitGroup
		for _, r := range refusals {
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() {
					if v := recover(); v != nil {
						mu.Lock()
						failures = append(failures, fmt.Sprintf("%s (%s): %v", r.name, r.code, v))
						mu.Unlock()
					}
				}()
				g := NewGomega(func(message string, _ ...int) { panic(message) })
				checkRefusal(ctx, g, r)
			}()
		}
		wg.Wait()
		if len(failures) > 0 {
			// Every failed entry, whole: Gomega would truncate a list.
			Fail(fmt.Sprintf("%d of %d entries failed:\n\n%s", len(failures), len(refusals), strings.Join(failures, "\n\n")))
		}
	})
})

// checkRefusal checks one entry; g fails by panicking.
func checkRefusal(ctx context.Context, g Gomega, r refusal) {
	g.Eventually(ctx, func() []string { return eventMessages(ctx, r.name, r.reason) }).WithTimeout(within).
		Should(ContainElement(ContainSubstring("EC2 error "+r.code)), "the refusal, classified and told on the NodePool")

	if r.field != "" {
		g.Eventually(ctx, func() string { return launchCondition(ctx, r.name) }).WithTimeout(within).
			Should(And(HavePrefix("False: "), ContainSubstring(r.field), ContainSubstring(r.code)), "LaunchConfigurationValid names the template field")
		g.Expect(eventMessages(ctx, r.name, r.reason)).To(ContainElement(ContainSubstring("fix the AWSMachineTemplate of spec.template.spec.infrastructureTemplateRef, " + r.field)))
		g.Eventually(ctx, func() int { return len(machines(ctx, r.name)) }).WithTimeout(within).Should(BeZero(), "the refused Machine is deleted")
		// Its pod is pending: a pass starts within a batch window (1 s),
		// which would launch again were the pool not held back.
		g.Consistently(ctx, func() []string {
			var out []string
			for _, m := range machines(ctx, r.name) {
				out = append(out, m.Name)
			}
			return out
		}).WithTimeout(5*time.Second).WithPolling(250*time.Millisecond).Should(BeEmpty(), "no relaunch")
		g.Expect(eventCount(ctx, r.name, "Launched")).To(Equal(1), "launched once")
		g.Expect(runningPods(ctx, r.name)).To(BeZero())
		return
	}

	// The scope follows "; " in the message: "spot X" is not read as "X".
	avoided := "; " + strings.ReplaceAll(r.avoided, "{pool}", tb.Namespace+"/"+r.name)
	g.Expect(eventMessages(ctx, r.name, r.reason)).To(ContainElement(ContainSubstring(avoided)), "the scope made unavailable")
	g.Eventually(ctx, func() int { return runningPods(ctx, r.name) }).WithTimeout(within).Should(Equal(1), "the pod runs on the fallback")
	var live []provisioning.Offering
	for _, m := range machines(ctx, r.name) {
		if m.DeletionTimestamp != nil {
			continue
		}
		d, err := provisioning.ReadDecision(&m)
		g.Expect(err).NotTo(HaveOccurred())
		live = append(live, provisioning.Offering{InstanceType: d.Offering.InstanceType, Zone: d.Offering.Zone, CapacityType: d.Offering.CapacityType})
	}
	g.Expect(live).To(ConsistOf(r.next), "the next plan takes the cheapest offering the scope leaves")
	g.Expect(eventCount(ctx, r.name, r.reason)).To(Equal(1), "refused once: the next plan did not ask for anything the refusal covers")
	g.Expect(eventCount(ctx, r.name, "Launched")).To(Equal(2), "the refused launch and the fallback")
	g.Expect(launchCondition(ctx, r.name)).NotTo(HavePrefix("False: "), "a capacity refusal says nothing against the templates")
}

func eventMessages(ctx context.Context, pool, reason string) []string {
	var out []string
	for _, e := range poolEvents(ctx, pool, reason) {
		out = append(out, e.Message)
	}
	return out
}

// eventCount counts a pool's Events of reason, with their repeats.
func eventCount(ctx context.Context, pool, reason string) int {
	n := 0
	for _, e := range poolEvents(ctx, pool, reason) {
		n += max(1, int(e.Count))
	}
	return n
}

func launchCondition(ctx context.Context, pool string) string {
	np := &v1alpha1.NodePool{}
	if err := tb.Client.Get(ctx, key(pool), np); err != nil {
		return err.Error()
	}
	c := meta.FindStatusCondition(np.Status.Conditions, provisioning.ConditionLaunchConfigurationValid)
	if c == nil {
		return ""
	}
	return strings.Join([]string{string(c.Status), c.Message}, ": ")
}
