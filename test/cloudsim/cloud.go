// Package cloudsim is the AWS a CAPA manager talks to in tests: a local
// endpoint speaking EC2's query protocol (RunInstances, DescribeInstances,
// TerminateInstances, images, subnets, security groups, network
// interfaces, tags, instance metadata options, instance types; see
// compute.go) and, for each instance that runs, a simulated kubelet (see
// kubelet.go) that reads the kubeadm JoinConfiguration in the user data
// CAPA passed to RunInstances and registers a kwok Node in the workload
// cluster the join names. It never writes a Kubernetes object of the
// management cluster: CAPA does that from what EC2 answers.
//
// Faults are injected through Go methods, at the EC2 layer: refused
// launches (insufficient capacity or any other EC2 error code), throttling,
// slow boots, instances whose node never joins, out-of-band termination and
// spot interruption. A ledger records every instance with its price,
// launch and termination time, so tests can assert the bill.
package cloudsim

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"maps"
	mathrand "math/rand"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/joinery-dev/joinery/cloud"
)

// PriceFunc returns the hourly price of an offering; ok is false when the
// offering has no price (it is then billed at 0).
type PriceFunc func(instanceType, zone, capacityType string) (pricePerHour float64, ok bool)

// Capacity types, as in Karpenter's karpenter.sh/capacity-type label.
const (
	CapacityTypeOnDemand = "on-demand"
	CapacityTypeSpot     = "spot"
)

// Instance states, as EC2 names them.
const (
	StatePending      = "pending"
	StateRunning      = "running"
	StateShuttingDown = "shutting-down"
	StateTerminated   = "terminated"
)

// Offering names an (instance type, zone, capacity type). In a fault, an
// empty field matches any value.
type Offering struct {
	InstanceType string
	Zone         string
	CapacityType string
}

func (o Offering) matches(other Offering) bool {
	return (o.InstanceType == "" || o.InstanceType == other.InstanceType) &&
		(o.Zone == "" || o.Zone == other.Zone) &&
		(o.CapacityType == "" || o.CapacityType == other.CapacityType)
}

func (o Offering) String() string {
	any := func(s string) string {
		if s == "" {
			return "*"
		}
		return s
	}
	return any(o.InstanceType) + "/" + any(o.Zone) + "/" + any(o.CapacityType)
}

// Instance is one EC2 instance in the ledger.
type Instance struct {
	ID string
	Offering
	PricePerHour float64
	// MaxPrice is the spot MaxPrice RunInstances asked for (0: none, EC2
	// then caps at the on-demand price).
	MaxPrice float64
	// Cluster is the CAPI Cluster (namespace/name) the instance was
	// launched for: the name from CAPA's
	// sigs.k8s.io/cluster-api-provider-aws/cluster/<name> tag, the
	// namespace from the registered cluster of that name (or, once the
	// kubelet joins, the one its join configuration names). AWSMachine is
	// the Name tag CAPA sets, in the same namespace.
	Cluster    types.NamespacedName
	AWSMachine types.NamespacedName
	ImageID    string
	SubnetID   string
	PrivateIP  string
	// Tags are the instance's tags now (RunInstances' TagSpecification,
	// then CreateTags/DeleteTags).
	Tags map[string]string
	// NodeName is the Node the instance's kubelet registers (its private
	// DNS name); empty until it has registered.
	NodeName string
	State    string
	// LaunchTime is when RunInstances succeeded; RunningTime when the
	// instance reached running; TerminateTime when it reached terminated.
	LaunchTime    time.Time
	RunningTime   time.Time
	TerminateTime time.Time
	// InterruptionNotice is when a spot interruption was announced.
	InterruptionNotice time.Time
	// TerminationReason says why an instance was terminated:
	// "TerminateInstances", "terminated out of band", "spot interruption".
	TerminationReason string
	// CapacityReservationID is the reservation the instance holds a slot
	// of (its Offering's capacity type is then reserved).
	CapacityReservationID string

	bootDelay time.Duration
	neverJoin bool
	hostname  string
	// shutdownAt is when the instance went shutting-down.
	shutdownAt time.Time
	wire       *instanceWire
}

// copy is the instance with maps of its own, for callers outside mu.
func (i *Instance) copy() Instance {
	out := *i
	out.Tags = maps.Clone(i.Tags)
	out.wire = nil
	return out
}

// Cost is what the instance has cost up to at (per-second billing, as EC2
// bills Linux instances), from launch to termination.
func (i Instance) Cost(at time.Time) float64 {
	end := at
	if !i.TerminateTime.IsZero() && i.TerminateTime.Before(at) {
		end = i.TerminateTime
	}
	if end.Before(i.LaunchTime) {
		return 0
	}
	return end.Sub(i.LaunchTime).Hours() * i.PricePerHour
}

// Interruption is a spot interruption notice: what EC2 sends to
// EventBridge (and on to an SQS queue) two minutes before it reclaims a
// spot instance.
type Interruption struct {
	InstanceID      string
	Offering        Offering
	AWSMachine      types.NamespacedName
	NoticeTime      time.Time
	TerminationTime time.Time
}

// Options configure the simulated cloud.
type Options struct {
	// Region is where every instance runs (default us-east-1).
	Region string
	// Catalog supplies the instance types (as DescribeInstanceTypes
	// describes them: vCPUs, memory, GPUs, architecture), the zones and
	// offerings, and the spot prices EC2 starts with (default: the
	// embedded catalog of the cloud package).
	Catalog *cloud.Catalog
	// ZoneNames is the account's zone ID -> zone name mapping, as its
	// DescribeAvailabilityZones answers (default: the catalog's, which for
	// the embedded snapshot is cloud.DefaultZoneNames, a guess). AWS maps
	// names to zones per account, so a test that sets another mapping
	// shows which names a client really read from EC2. It must name every
	// zone ID the catalog has in Region, each with its own name.
	ZoneNames map[string]string
	// Prices price offerings for the ledger (default: the catalog's
	// on-demand price in Region, and for spot the spot price EC2 answers
	// in the instance's zone, else the catalog's lowest spot price).
	Prices PriceFunc
	// BootDelay is how long an instance stays pending (default 1s);
	// JoinDelay how long after running its kubelet registers the Node
	// (default 500ms); ShutdownDelay how long a terminated instance stays
	// shutting-down (default 1s).
	BootDelay     time.Duration
	JoinDelay     time.Duration
	ShutdownDelay time.Duration
	// TerminatedRetention is how long DescribeInstances still shows a
	// terminated instance (EC2: about an hour; default 1h).
	TerminatedRetention time.Duration
	// SpotInterruptionWarning is the time between a spot interruption
	// notice and the termination (EC2: two minutes; default 2m).
	SpotInterruptionWarning time.Duration
	// InterruptionSeed seeds the draws of SetInterruptionRate's
	// interruptions; InterruptionTick is how often they are drawn (default
	// 1s; negative: only when StepInterruptions is called).
	InterruptionSeed int64
	InterruptionTick time.Duration
	// OnSpotInterruption is called when a spot interruption is announced.
	OnSpotInterruption func(Interruption)
	// EC2Addr is where the EC2 endpoint listens (default 127.0.0.1 on a
	// free port).
	EC2Addr string
	// SQSQueue, when set, starts a local SQS endpoint (see SQS) with a
	// queue of this name, and the cloud sends EventBridge events to it as
	// EC2 would through an EventBridge rule: a spot interruption warning
	// for every interruption it announces, and the events of
	// RecommendRebalance, ScheduleChange and NotifyStateChange.
	SQSQueue string
	// SQSAddr is where the SQS endpoint listens (default 127.0.0.1 on a
	// free port).
	SQSAddr string
	// AccountID is the account of queue URLs, events and resource owners
	// (default DefaultAccountID).
	AccountID string
	// CapacityReservations are the account's capacity reservations at
	// start (see AddCapacityReservation).
	CapacityReservations []CapacityReservation
	// Log receives the simulator's structured logs.
	Log logr.Logger
}

// Cloud is the simulated EC2 (with a kubelet per instance). Its methods
// are safe for concurrent use.
//
// Locks: an EC2 request holds ec2.mu and then takes mu; nothing holding mu
// may call a locking method of ec2.
type Cloud struct {
	opts Options
	ec2  *EC2
	sqs  *SQS // nil without Options.SQSQueue
	// defaultPrices: Options.Prices was not set, so spot instances are
	// billed at the spot price EC2 answers in their zone.
	defaultPrices bool

	mu           sync.Mutex
	instances    map[string]*Instance // by instance ID
	reservations map[string]*CapacityReservation
	clientTokens map[string][]string // RunInstances ClientToken -> instance IDs
	net          network
	clusters     map[string]*workloadCluster // by apiServerEndpoint (host:port)
	ice          []Offering                  // offerings with insufficient capacity
	launchErrors []launchError
	slowBoots    []slowBoot             // newest first
	neverJoin    []Offering             // offerings whose nodes never join
	timers       map[string]*time.Timer // pending spot terminations and kubelet joins
	stopped      bool
	// rates, rng and stepping: interruptions at a rate (interruptrate.go).
	rates    []interruptionRate // newest first
	rng      *mathrand.Rand
	stepping bool
}

type slowBoot struct {
	match Offering
	delay time.Duration
}

type launchError struct {
	match         Offering
	code, message string
}

// workloadCluster is where the nodes of one CAPI Cluster register.
type workloadCluster struct {
	cluster  types.NamespacedName
	endpoint string
	client   client.Client
}

// New returns a simulated cloud whose EC2 endpoint (and SQS endpoint,
// with Options.SQSQueue) already serves: EC2Endpoint is the URL to give
// CAPA's --service-endpoints. It knows a default VPC with a subnet per zone
// and the images DefaultImageAMD64 and DefaultImageARM64; AddNetwork and
// AddImage declare more. Stop shuts it down.
func New(opts Options) (*Cloud, error) {
	if opts.Region == "" {
		opts.Region = "us-east-1"
	}
	if opts.Catalog == nil {
		catalog, err := cloud.Embedded()
		if err != nil {
			return nil, fmt.Errorf("loading the embedded EC2 catalog for the simulated cloud: %w (or set cloudsim.Options.Catalog)", err)
		}
		opts.Catalog = catalog
	}
	if opts.BootDelay == 0 {
		opts.BootDelay = time.Second
	}
	if opts.JoinDelay == 0 {
		opts.JoinDelay = 500 * time.Millisecond
	}
	if opts.ShutdownDelay == 0 {
		opts.ShutdownDelay = time.Second
	}
	if opts.TerminatedRetention == 0 {
		opts.TerminatedRetention = time.Hour
	}
	if opts.SpotInterruptionWarning == 0 {
		opts.SpotInterruptionWarning = 2 * time.Minute
	}
	if opts.AccountID == "" {
		opts.AccountID = DefaultAccountID
	}
	if opts.Log.GetSink() == nil {
		opts.Log = logr.Discard()
	}
	e, err := NewEC2FromCatalog(opts.Catalog, opts.Region)
	if err != nil {
		return nil, err
	}
	if err := e.renameZones(opts.ZoneNames); err != nil {
		return nil, fmt.Errorf("cloudsim.Options.ZoneNames: %w", err)
	}
	defaultPrices := opts.Prices == nil
	if defaultPrices {
		opts.Prices = catalogPrices(opts.Catalog, opts.Region)
	}
	c := &Cloud{
		opts: opts, ec2: e, defaultPrices: defaultPrices,
		instances: map[string]*Instance{}, clientTokens: map[string][]string{}, reservations: map[string]*CapacityReservation{},
		net:      newNetwork(),
		clusters: map[string]*workloadCluster{},
		timers:   map[string]*time.Timer{},
	}
	e.log = opts.Log.WithName("ec2")
	e.compute = c.serveCompute
	c.addDefaultNetwork()
	for _, img := range []Image{
		{ID: DefaultImageAMD64, Name: "capa-ami-ubuntu-24.04-simulated-amd64", Architecture: ArchitectureX86_64},
		{ID: DefaultImageARM64, Name: "capa-ami-ubuntu-24.04-simulated-arm64", Architecture: ArchitectureARM64},
	} {
		if err := c.AddImage(img); err != nil {
			return nil, err
		}
	}
	for i, r := range opts.CapacityReservations {
		if _, err := c.AddCapacityReservation(r); err != nil {
			return nil, fmt.Errorf("cloudsim.Options.CapacityReservations[%d]: %w", i, err)
		}
	}
	if err := e.Start(opts.EC2Addr); err != nil {
		return nil, err
	}
	opts.Log.Info("simulated EC2 serving", "endpoint", e.URL(), "region", opts.Region)
	if opts.SQSQueue != "" {
		c.sqs = NewSQS(opts.AccountID)
		if err := c.sqs.Start(opts.SQSAddr); err != nil {
			_ = e.Close()
			return nil, err
		}
		if _, err := c.sqs.CreateQueue(opts.SQSQueue); err != nil {
			_ = c.sqs.Close()
			_ = e.Close()
			return nil, fmt.Errorf("simulated SQS: creating queue %q (cloudsim.Options.SQSQueue): %w", opts.SQSQueue, err)
		}
		opts.Log.Info("simulated SQS serving", "endpoint", c.sqs.URL(), "queue", c.sqs.QueueURL(opts.SQSQueue))
	}
	return c, nil
}

// EC2 is the cloud's EC2 endpoint, for changing what it answers
// (AddInstanceType, SetSpotPrice, FailWith, ...).
func (c *Cloud) EC2() *EC2 { return c.ec2 }

// EC2Endpoint is the URL of the EC2 endpoint (CAPA's
// --service-endpoints=<region>:ec2=<URL>, an SDK's BaseEndpoint).
func (c *Cloud) EC2Endpoint() string { return c.ec2.URL() }

// SQS is the cloud's SQS endpoint, nil without Options.SQSQueue.
func (c *Cloud) SQS() *SQS { return c.sqs }

// SQSEndpoint is the URL of the cloud's SQS endpoint (the
// --aws-endpoint of a client), empty without Options.SQSQueue.
func (c *Cloud) SQSEndpoint() string {
	if c.sqs == nil {
		return ""
	}
	return c.sqs.URL()
}

// Region is the region the cloud runs instances in.
func (c *Cloud) Region() string { return c.opts.Region }

// RegisterCluster tells the cloud where nodes of the CAPI Cluster
// namespace/name register: the workload cluster's apiserver, which join
// configurations name as discovery.bootstrapToken.apiServerEndpoint
// (host:port, exactly as in the Cluster's controlPlaneEndpoint).
func (c *Cloud) RegisterCluster(cluster types.NamespacedName, apiServerEndpoint string, config *rest.Config) error {
	if apiServerEndpoint == "" {
		return fmt.Errorf("registering workload cluster %s: apiServerEndpoint is empty; pass the host:port of the Cluster's spec.controlPlaneEndpoint", cluster)
	}
	cl, err := client.New(config, client.Options{})
	if err != nil {
		return fmt.Errorf("client for workload cluster %s: %w", cluster, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.clusters[apiServerEndpoint] = &workloadCluster{cluster: cluster, endpoint: apiServerEndpoint, client: cl}
	return nil
}

// clusterNamed is the registered cluster called name, if exactly one is;
// mu held.
func (c *Cloud) clusterNamed(name string) (types.NamespacedName, bool) {
	var found []types.NamespacedName
	for _, w := range c.clusters {
		if w.cluster.Name == name && !slices.Contains(found, w.cluster) {
			found = append(found, w.cluster)
		}
	}
	if len(found) != 1 {
		return types.NamespacedName{}, false
	}
	return found[0], true
}

func (c *Cloud) workloadClient(cluster types.NamespacedName) (client.Client, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, w := range c.clusters {
		if w.cluster == cluster {
			return w.client, true
		}
	}
	return nil, false
}

// Stop cancels pending spot terminations and kubelet joins and stops the
// EC2 and SQS endpoints.
func (c *Cloud) Stop() {
	c.mu.Lock()
	c.stopped = true
	for id, t := range c.timers {
		t.Stop()
		delete(c.timers, id)
	}
	c.mu.Unlock()
	if err := c.ec2.Close(); err != nil {
		c.opts.Log.Error(err, "stopping the simulated EC2 endpoint")
	}
	if c.sqs != nil {
		if err := c.sqs.Close(); err != nil {
			c.opts.Log.Error(err, "stopping the simulated SQS endpoint")
		}
	}
}

// Faults.

// InjectInsufficientCapacity makes RunInstances fail with
// InsufficientInstanceCapacity for every matching offering until cleared.
func (c *Cloud) InjectInsufficientCapacity(offerings ...Offering) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ice = append(c.ice, offerings...)
	c.opts.Log.Info("fault injected: insufficient capacity", "offerings", fmt.Sprint(offerings))
}

// ClearInsufficientCapacity removes the given insufficient-capacity faults
// (exactly as injected), or all of them when called without arguments.
func (c *Cloud) ClearInsufficientCapacity(offerings ...Offering) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(offerings) == 0 {
		c.ice = nil
		return
	}
	c.ice = slices.DeleteFunc(c.ice, func(o Offering) bool { return slices.Contains(offerings, o) })
}

// InjectLaunchError makes RunInstances of a matching offering fail with an
// EC2 error code until cleared: VcpuLimitExceeded,
// MaxSpotInstanceCountExceeded, UnfulfillableCapacity,
// InsufficientFreeAddressesInSubnet, Unsupported, SpotMaxPriceTooLow,
// ReservationCapacityExceeded, InvalidParameterValue, ... The HTTP status
// is EC2's for the code (500 for the Insufficient*/Unfulfillable capacity
// errors, 503 for RequestLimitExceeded/Unavailable, else 400); an empty
// message is EC2's wording for the code.
func (c *Cloud) InjectLaunchError(match Offering, code, message string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.launchErrors = append(c.launchErrors, launchError{match: match, code: code, message: message})
	c.opts.Log.Info("fault injected: launch error", "offering", match.String(), "code", code)
}

// ClearLaunchErrors removes every fault of InjectLaunchError.
func (c *Cloud) ClearLaunchErrors() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.launchErrors = nil
}

// Throttle makes the next n EC2 calls of action ("" for any action) fail
// with RequestLimitExceeded (HTTP 503); n <= 0 clears it.
func (c *Cloud) Throttle(action string, n int) { c.ec2.Throttle(action, n) }

// SlowBoot makes matching instances launched from now on stay pending for
// delay instead of Options.BootDelay. A zero delay removes the fault.
func (c *Cloud) SlowBoot(match Offering, delay time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.slowBoots = slices.DeleteFunc(c.slowBoots, func(s slowBoot) bool { return s.match == match })
	if delay > 0 {
		c.slowBoots = append([]slowBoot{{match: match, delay: delay}}, c.slowBoots...)
	}
}

// NeverJoin makes matching instances launched from now on run without
// their node ever registering (a broken AMI or bootstrap script). on=false
// removes the fault.
func (c *Cloud) NeverJoin(match Offering, on bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.neverJoin = slices.DeleteFunc(c.neverJoin, func(o Offering) bool { return o == match })
	if on {
		c.neverJoin = append(c.neverJoin, match)
	}
}

// TerminateInstance terminates an instance out of band (someone in the
// console, an AWS retirement): the instance goes to terminated and its
// Node disappears, as the cloud node lifecycle controller removes it.
func (c *Cloud) TerminateInstance(ctx context.Context, instanceID string) error {
	return c.terminate(ctx, instanceID, "terminated out of band")
}

// InterruptSpotInstance announces a spot interruption for a running spot
// instance (calling Options.OnSpotInterruption and, with
// Options.SQSQueue, sending EC2's "EC2 Spot Instance Interruption
// Warning" to the queue) and terminates it after
// Options.SpotInterruptionWarning.
func (c *Cloud) InterruptSpotInstance(ctx context.Context, instanceID string) (Interruption, error) {
	return c.InterruptSpotInstanceAfter(ctx, instanceID, c.opts.SpotInterruptionWarning)
}

// InterruptSpotInstanceAfter is InterruptSpotInstance with its own warning
// time instead of Options.SpotInterruptionWarning (tests of different
// speeds share one cloud).
func (c *Cloud) InterruptSpotInstanceAfter(ctx context.Context, instanceID string, warning time.Duration) (Interruption, error) {
	c.mu.Lock()
	inst, ok := c.instances[instanceID]
	if !ok {
		c.mu.Unlock()
		return Interruption{}, fmt.Errorf("no instance %s in the simulated cloud", instanceID)
	}
	if inst.CapacityType != CapacityTypeSpot {
		c.mu.Unlock()
		return Interruption{}, fmt.Errorf("instance %s is %s, not spot: only spot instances are interrupted", instanceID, inst.CapacityType)
	}
	c.refresh(inst, time.Now())
	if inst.State == StateTerminated || inst.State == StateShuttingDown {
		c.mu.Unlock()
		return Interruption{}, fmt.Errorf("instance %s is already %s", instanceID, inst.State)
	}
	now := time.Now()
	inst.InterruptionNotice = now
	notice := Interruption{
		InstanceID: inst.ID, Offering: inst.Offering, AWSMachine: inst.AWSMachine,
		NoticeTime: now, TerminationTime: now.Add(warning),
	}
	if !c.stopped {
		c.timers[instanceID] = time.AfterFunc(warning, func() {
			if err := c.terminate(context.Background(), instanceID, "spot interruption"); err != nil {
				c.opts.Log.Error(err, "terminating interrupted spot instance", "instance", instanceID)
			}
		})
	}
	hook := c.opts.OnSpotInterruption
	snapshot := inst.copy()
	c.mu.Unlock()
	c.opts.Log.Info("spot interruption notice", "instance", instanceID, "offering", inst.Offering.String(), "terminationTime", notice.TerminationTime)
	if c.sqs != nil {
		c.sendSpotInterruption(snapshot, notice)
	}
	if hook != nil {
		hook(notice)
	}
	return notice, nil
}

// Ledger.

// Instances returns every instance ever launched, oldest first.
func (c *Cloud) Instances() []Instance {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]Instance, 0, len(c.instances))
	now := time.Now()
	for _, i := range c.instances {
		c.refresh(i, now)
		out = append(out, i.copy())
	}
	sort.Slice(out, func(a, b int) bool {
		if !out[a].LaunchTime.Equal(out[b].LaunchTime) {
			return out[a].LaunchTime.Before(out[b].LaunchTime)
		}
		return out[a].ID < out[b].ID
	})
	return out
}

// Instance returns one instance of the ledger.
func (c *Cloud) Instance(id string) (Instance, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	i, ok := c.instances[id]
	if !ok {
		return Instance{}, false
	}
	c.refresh(i, time.Now())
	return i.copy(), true
}

// Bill is what every instance has cost up to at.
func (c *Cloud) Bill(at time.Time) float64 {
	total := 0.0
	for _, i := range c.Instances() {
		total += i.Cost(at)
	}
	return total
}

// refresh moves an instance along the states time has taken it through:
// pending to running once its boot delay has passed, shutting-down to
// terminated once the shutdown delay has. EC2 reports the state at the
// time of each call, so the simulator computes it at each read; mu held.
func (c *Cloud) refresh(inst *Instance, now time.Time) {
	if inst.State == StatePending {
		if runAt := inst.LaunchTime.Add(inst.bootDelay); !now.Before(runAt) {
			inst.State, inst.RunningTime = StateRunning, runAt
		}
	}
	if inst.State == StateShuttingDown {
		if doneAt := inst.shutdownAt.Add(c.opts.ShutdownDelay); !now.Before(doneAt) {
			inst.State, inst.TerminateTime = StateTerminated, doneAt
		}
	}
}

func (c *Cloud) setNodeName(id, node string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.instances[id].NodeName = node
}

// beginTermination moves a live instance to shutting-down (or, with now
// set, straight to terminated), cancels its pending timers and returns a
// copy of it; ok is false when it was already going. mu held.
func (c *Cloud) beginTermination(inst *Instance, reason string, at time.Time, immediate bool) (Instance, bool) {
	c.refresh(inst, at)
	if inst.State == StateShuttingDown || inst.State == StateTerminated {
		return *inst, false
	}
	for _, key := range []string{inst.ID, joinTimer(inst.ID)} {
		if t, ok := c.timers[key]; ok {
			t.Stop()
			delete(c.timers, key)
		}
	}
	if inst.State == StatePending {
		// Terminated before it ran: it never gets a running time.
		inst.bootDelay = time.Duration(1<<63 - 1)
	}
	c.releaseResources(inst)
	inst.State, inst.shutdownAt, inst.TerminationReason = StateShuttingDown, at, reason
	if immediate {
		inst.State, inst.TerminateTime = StateTerminated, at
	}
	return *inst, true
}

// terminate ends an instance at once (out of band, spot interruption)
// and deletes its Node from the workload cluster, as the cloud node
// lifecycle controller does for an instance that is gone.
func (c *Cloud) terminate(ctx context.Context, id, reason string) error {
	c.mu.Lock()
	inst, ok := c.instances[id]
	if !ok {
		c.mu.Unlock()
		return fmt.Errorf("no instance %s in the simulated cloud", id)
	}
	snapshot, changed := c.beginTermination(inst, reason, time.Now(), true)
	c.mu.Unlock()
	if !changed {
		return nil
	}
	c.opts.Log.Info("instance terminated", "instance", id, "reason", reason, "awsMachine", snapshot.AWSMachine.String(), "cost", snapshot.Cost(snapshot.TerminateTime))
	return c.deleteNode(ctx, snapshot)
}

// deleteNode removes a gone instance's Node from its workload cluster.
func (c *Cloud) deleteNode(ctx context.Context, inst Instance) error {
	if inst.NodeName == "" {
		return nil
	}
	cl, ok := c.workloadClient(inst.Cluster)
	if !ok {
		return nil
	}
	node := &corev1.Node{}
	node.Name = inst.NodeName
	if err := client.IgnoreNotFound(cl.Delete(ctx, node)); err != nil {
		return fmt.Errorf("deleting Node %s of terminated instance %s from cluster %s: %w", node.Name, inst.ID, inst.Cluster, err)
	}
	return nil
}

// newID is an EC2 resource ID: the prefix and 17 hex digits.
func newID(prefix string) string {
	b := make([]byte, 9)
	_, _ = rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)[:17]
}

func privateDNSName(ip, region string) string {
	host := "ip-" + dashed(ip)
	if region == "us-east-1" {
		return host + ".ec2.internal"
	}
	return host + "." + region + ".compute.internal"
}

func dashed(ip string) string {
	out := []byte(ip)
	for i, b := range out {
		if b == '.' {
			out[i] = '-'
		}
	}
	return string(out)
}
