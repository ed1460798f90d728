// Package spotbench runs the simulated cloud alone, at accelerated time,
// under a fleet of pods that Joinery's solver places on spot capacity, and
// measures what the choice of spot offering costs: interruptions and
// dollars per pod-hour. It compares cheapest-first (spot risk weight 0)
// with risk-weighted choice (EC2's placement scores, read through
// cloud/live from the simulated EC2, and the interruptions seen, faded as
// the provisioning controller fades them). No control plane: the harness
// stands in for the provisioning loop, so only the choice differs.
package spotbench

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/joinery-dev/joinery/api/v1alpha1"
	"github.com/joinery-dev/joinery/cloud"
	"github.com/joinery-dev/joinery/cloud/live"
	"github.com/joinery-dev/joinery/controllers/provisioning"
	"github.com/joinery-dev/joinery/internal/solverinput"
	"github.com/joinery-dev/joinery/solver"
	"github.com/joinery-dev/joinery/test/cloudsim"
)

// Options describe one run.
type Options struct {
	// Weight is --spot-risk-weight: 0 is cheapest-first.
	Weight float64
	// HalfLife fades seen interruptions (--spot-interruption-half-life).
	HalfLife time.Duration
	// Pods is the fleet's size; each pod takes a node of its own.
	Pods int
	// Hours of simulated time, in steps of Step.
	Hours float64
	Step  time.Duration
	Seed  int64
}

// Result is what a run measured.
type Result struct {
	Interruptions int
	Dollars       float64
	PodHours      float64
	Launches      int
}

func (r Result) DollarsPerPodHour() float64 { return r.Dollars / r.PodHours }

// InterruptionsPerDollar is the headline: how many interruptions each
// dollar spent buys.
func (r Result) InterruptionsPerDollar() float64 { return float64(r.Interruptions) / r.Dollars }

func (r Result) String() string {
	return fmt.Sprintf("%d interruptions, %d launches, $%.2f for %.0f pod-hours: $%.4f per pod-hour, %.3f interruptions per dollar, %.4f per pod-hour",
		r.Interruptions, r.Launches, r.Dollars, r.PodHours, r.DollarsPerPodHour(), r.InterruptionsPerDollar(), float64(r.Interruptions)/r.PodHours)
}

// Types are the pool's instance types: 2 vCPU, 8 GiB, several families.
var Types = []string{"m5.large", "m5a.large", "m5d.large", "m6a.large", "m6i.large", "m7i.large", "m7a.large", "m5n.large"}

// Zones of the run, as the embedded catalog names us-east-1's.
var Zones = []string{"us-east-1a", "us-east-1b", "us-east-1c"}

// market is the simulated spot market: per-zone prices around the
// catalog's spot price, and for each offering a placement score and an
// interruption rate. The cheapest tenth of offerings are shallow pools
// (score 2, 0.4 interruptions per instance-hour), the next third middling
// (score 6, 0.08), the rest deep (score 9, 0.01), except one deep-looking
// offering that is reclaimed as often as the shallow ones: only
// interruptions seen reveal it.
func market(sim *cloudsim.Cloud, catalog *cloud.Catalog) error {
	offered, err := catalog.RegionOfferings(sim.Region(), cloud.WithZones(Zones...))
	if err != nil {
		return err
	}
	type spot struct {
		typ, zone, zoneID string
		price             float64
	}
	var all []spot
	for _, it := range offered {
		if !contains(Types, it.InstanceType.Name) {
			continue
		}
		for zi, o := range it.Offerings {
			if o.CapacityType != v1alpha1.CapacityTypeSpot {
				continue
			}
			// Zones differ by a few percent, deterministically.
			p := o.PricePerHour * (0.9 + 0.04*float64((zi+len(it.InstanceType.Name))%4))
			sim.EC2().SetSpotPrice(it.InstanceType.Name, o.ZoneID, p)
			all = append(all, spot{it.InstanceType.Name, o.Zone, o.ZoneID, p})
		}
	}
	if len(all) < 10 {
		return fmt.Errorf("only %d spot offerings of %v in %v", len(all), Types, Zones)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].price < all[j].price })
	hidden := len(all) / 2
	for i, s := range all {
		score, rate := 9, 0.01
		switch {
		case i < len(all)/10:
			score, rate = 2, 0.4
		case i < len(all)/10+len(all)/3:
			score, rate = 6, 0.08
		case i == hidden:
			rate = 0.4
		}
		sim.EC2().SetPlacementScore(s.typ, s.zoneID, score)
		sim.SetInterruptionRate(cloudsim.Offering{InstanceType: s.typ, Zone: s.zone, CapacityType: cloudsim.CapacityTypeSpot}, rate)
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Run runs the fleet for Hours of simulated time.
func Run(ctx context.Context, o Options) (Result, error) {
	sim, err := cloudsim.New(cloudsim.Options{BootDelay: time.Microsecond, JoinDelay: 1000 * time.Hour, SpotInterruptionWarning: time.Millisecond,
		ShutdownDelay: time.Microsecond, InterruptionSeed: o.Seed, InterruptionTick: -1, Log: logr.Discard()})
	if err != nil {
		return Result{}, err
	}
	defer sim.Stop()
	subnets := map[string]string{}
	var nets []cloudsim.Subnet
	for i, z := range Zones {
		id := fmt.Sprintf("subnet-0bench%011d", i)
		subnets[z] = id
		nets = append(nets, cloudsim.Subnet{ID: id, AvailabilityZone: z, CIDR: fmt.Sprintf("10.0.%d.0/20", i*16)})
	}
	if _, err := sim.AddNetwork(cloudsim.Network{CIDR: "10.0.0.0/16", Subnets: nets}); err != nil {
		return Result{}, err
	}
	base, err := cloud.Embedded()
	if err != nil {
		return Result{}, err
	}
	if err := market(sim, base); err != nil {
		return Result{}, err
	}
	client := ec2.New(ec2.Options{Region: sim.Region(), BaseEndpoint: aws.String(sim.EC2Endpoint()), RetryMaxAttempts: 1, HTTPClient: live.HTTPClient()})
	refresher, err := live.New(base, map[string]live.EC2API{sim.Region(): client}, live.Options{Regions: []string{sim.Region()}, Interval: time.Hour}, logr.Discard())
	if err != nil {
		return Result{}, err
	}
	if err := refresher.Refresh(ctx); err != nil {
		return Result{}, err
	}
	offered, err := refresher.Current().RegionOfferings(sim.Region(), cloud.WithZones(Zones...))
	if err != nil {
		return Result{}, err
	}
	pool := &v1alpha1.NodePool{ObjectMeta: metav1.ObjectMeta{Name: "spot"}}
	pool.Spec.Template.Spec.Requirements = []v1alpha1.NodeSelectorRequirementWithMinValues{
		{Key: v1alpha1.LabelCapacityType, Operator: "In", Values: []string{v1alpha1.CapacityTypeSpot}},
		{Key: v1alpha1.LabelInstanceType, Operator: "In", Values: Types},
	}
	history := provisioning.NewSpotInterruptions(o.HalfLife)
	pending := map[string]*corev1.Pod{}
	for i := range o.Pods {
		name := fmt.Sprintf("web-%d", i)
		pending[name] = podNamed(name)
	}
	running := map[string][]string{} // instance ID -> pod names
	// booting are instances launched this step: billed, but their pods
	// are not served until the next one (boot, join, pod start), which is
	// what an interruption costs beyond the bill.
	booting := map[string]bool{}
	var res Result
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	steps := int(o.Hours * float64(time.Hour) / float64(o.Step))
	for range steps {
		if len(pending) > 0 {
			var pods []*corev1.Pod
			for _, name := range sortedKeys(pending) {
				pods = append(pods, pending[name])
			}
			snap, err := solverinput.Snapshot(solverinput.Objects{Pods: pods, NodePools: []*v1alpha1.NodePool{pool}}, offered, nil)
			if err != nil {
				return res, err
			}
			snap.SpotRisk = solver.SpotRisk{Weight: o.Weight}
			if o.Weight > 0 {
				snap.SpotRisk.Interruptions = history.At(now)
			}
			plan, err := solver.Solve(snap, solver.Options{SkipLowerBound: true})
			if err != nil {
				return res, err
			}
			for _, n := range plan.NewNodes {
				out, err := client.RunInstances(ctx, &ec2.RunInstancesInput{
					ImageId: aws.String(cloudsim.DefaultImageAMD64), InstanceType: ec2types.InstanceType(n.InstanceType.Name),
					MinCount: aws.Int32(1), MaxCount: aws.Int32(1), SubnetId: aws.String(subnets[n.Offering.Zone]),
					InstanceMarketOptions: &ec2types.InstanceMarketOptionsRequest{MarketType: ec2types.MarketTypeSpot},
				})
				if err != nil {
					return res, fmt.Errorf("launching %s in %s: %w", n.InstanceType.Name, n.Offering.Zone, err)
				}
				id := aws.ToString(out.Instances[0].InstanceId)
				res.Launches++
				booting[id] = true
				for _, p := range n.Pods {
					running[id] = append(running[id], p.Name)
					delete(pending, p.Name)
				}
			}
			time.Sleep(time.Millisecond) // the instances boot (BootDelay)
		}
		// The step passes: every running instance is billed, its pods
		// served; then EC2 reclaims some.
		hours := o.Step.Hours()
		for id, pods := range running {
			inst, _ := sim.Instance(id)
			res.Dollars += inst.PricePerHour * hours
			if !booting[id] {
				res.PodHours += float64(len(pods)) * hours
			}
		}
		clear(booting)
		now = now.Add(o.Step)
		for _, n := range sim.StepInterruptions(o.Step) {
			res.Interruptions++
			history.RecordInterruption(solver.OfferingKey{InstanceType: n.Offering.InstanceType, Zone: n.Offering.Zone, CapacityType: n.Offering.CapacityType}, now)
			for _, name := range running[n.InstanceID] {
				pending[name] = podNamed(name)
			}
			delete(running, n.InstanceID)
		}
	}
	return res, nil
}

// podNamed is a fleet pod: 1 CPU and 3 GiB, one to a 2-vCPU node.
func podNamed(name string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
			corev1.ResourceCPU: resource.MustParse("1"), corev1.ResourceMemory: resource.MustParse("3Gi")}}}}}}
}

func sortedKeys(m map[string]*corev1.Pod) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
