// Package cloudsim simulates what CAPA and EC2 do for a CAPI management
// cluster, as a controller-runtime reconciler: AWSClusters become ready with
// their failure domains; an AWSMachine owned by a Machine gets an EC2
// instance (after a boot delay), the fields CAPA v2.13 sets
// (spec.providerID, spec.instanceID, status.addresses,
// status.instanceState, status.ready, status.interruptible, the
// InstanceReady condition) and, once the "kubelet" registers, a kwok Node in
// the workload cluster with the labels, taints, capacity and providerID a
// real node would have. Deleting the AWSMachine terminates the instance.
//
// Faults are injected through Go methods: insufficient capacity per
// offering (reported exactly as CAPA reports a failed RunInstances), slow
// boots, instances whose node never joins, out-of-band termination and spot
// interruption. A ledger records every instance with its price, launch and
// termination time, so tests can assert the bill.
package cloudsim

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
)

// InstanceTypes describes instance types the way the node of one would
// look: its capacity and allocatable resources and the labels the kubelet
// and the cloud provider set on it (kubernetes.io/arch, kubernetes.io/os,
// node.kubernetes.io/instance-type). ok is false for a type EC2 does not
// know; launching one fails as RunInstances would.
type InstanceTypes interface {
	InstanceTypeInfo(name string) (capacity, allocatable corev1.ResourceList, labels map[string]string, ok bool)
}

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
	// Cluster and AWSMachine are the namespace/name of the CAPI Cluster
	// and the AWSMachine the instance was launched for.
	Cluster    types.NamespacedName
	AWSMachine types.NamespacedName
	PrivateIP  string
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
	// "AWSMachine deleted", "terminated out of band", "spot interruption".
	TerminationReason string

	bootDelay time.Duration
	neverJoin bool
	hostname  string
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
	// InstanceTypes describe node shapes (default: the embedded EC2
	// catalog of the cloud package, see CatalogInstanceTypes).
	InstanceTypes InstanceTypes
	// Prices price offerings (default: the embedded catalog's on-demand
	// price and lowest spot price in Region).
	Prices PriceFunc
	// BootDelay is how long an instance stays pending (default 1s);
	// JoinDelay how long after running its kubelet registers the Node
	// (default 500ms).
	BootDelay time.Duration
	JoinDelay time.Duration
	// SpotInterruptionWarning is the time between a spot interruption
	// notice and the termination (EC2: two minutes; default 2m).
	SpotInterruptionWarning time.Duration
	// LaunchRetryInterval is how soon a failed RunInstances is retried
	// (default 10s). CAPA retries with the controller's exponential
	// backoff; a fixed interval keeps the simulation predictable.
	LaunchRetryInterval time.Duration
	// OnSpotInterruption is called when a spot interruption is announced.
	OnSpotInterruption func(Interruption)
	// SQSQueue, when set, starts a local SQS endpoint (see SQS) with a
	// queue of this name, and the cloud sends EventBridge events to it as
	// EC2 would through an EventBridge rule: a spot interruption warning
	// for every interruption it announces, and the events of
	// RecommendRebalance, ScheduleChange and NotifyStateChange.
	SQSQueue string
	// SQSAddr is where the SQS endpoint listens (default 127.0.0.1 on a
	// free port).
	SQSAddr string
	// AccountID is the account of queue URLs and events (default
	// DefaultAccountID).
	AccountID string
	// Log receives the simulator's structured logs.
	Log logr.Logger
}

// Cloud is the simulated EC2 and CAPA controller. Its methods are safe for
// concurrent use.
type Cloud struct {
	opts Options

	mu        sync.Mutex
	instances map[string]*Instance // by instance ID
	byMachine map[types.UID]string // AWSMachine UID -> instance ID
	clusters  map[types.NamespacedName]client.Client
	ice       []Offering             // offerings with insufficient capacity
	slowBoots []slowBoot             // newest first
	neverJoin []Offering             // offerings whose nodes never join
	timers    map[string]*time.Timer // pending spot terminations
	ipCounter int

	client  client.Client
	trigger chan event.TypedGenericEvent[client.Object]
	stopped bool

	sqs *SQS // nil without Options.SQSQueue
}

type slowBoot struct {
	match Offering
	delay time.Duration
}

// New returns a simulated cloud. Register it with a manager through
// SetupWithManager, and tell it the workload clusters nodes join with
// RegisterCluster.
func New(opts Options) (*Cloud, error) {
	if opts.Region == "" {
		opts.Region = "us-east-1"
	}
	if opts.InstanceTypes == nil || opts.Prices == nil {
		catalog, err := embeddedCatalog()
		if err != nil {
			return nil, fmt.Errorf("loading the embedded EC2 catalog for the simulated cloud: %w (or set cloudsim.Options.InstanceTypes and Prices)", err)
		}
		if opts.InstanceTypes == nil {
			opts.InstanceTypes = CatalogInstanceTypes(catalog)
		}
		if opts.Prices == nil {
			opts.Prices = CatalogPrices(catalog, opts.Region)
		}
	}
	if opts.BootDelay == 0 {
		opts.BootDelay = time.Second
	}
	if opts.JoinDelay == 0 {
		opts.JoinDelay = 500 * time.Millisecond
	}
	if opts.SpotInterruptionWarning == 0 {
		opts.SpotInterruptionWarning = 2 * time.Minute
	}
	if opts.LaunchRetryInterval == 0 {
		opts.LaunchRetryInterval = 10 * time.Second
	}
	if opts.Log.GetSink() == nil {
		opts.Log = logr.Discard()
	}
	c := &Cloud{
		opts:      opts,
		instances: map[string]*Instance{},
		byMachine: map[types.UID]string{},
		clusters:  map[types.NamespacedName]client.Client{},
		timers:    map[string]*time.Timer{},
		trigger:   make(chan event.TypedGenericEvent[client.Object], 1024),
	}
	if opts.SQSQueue != "" {
		c.sqs = NewSQS(opts.AccountID)
		if err := c.sqs.Start(opts.SQSAddr); err != nil {
			return nil, err
		}
		if _, err := c.sqs.CreateQueue(opts.SQSQueue); err != nil {
			_ = c.sqs.Close()
			return nil, fmt.Errorf("simulated SQS: creating queue %q (cloudsim.Options.SQSQueue): %w", opts.SQSQueue, err)
		}
		opts.Log.Info("simulated SQS serving", "endpoint", c.sqs.URL(), "queue", c.sqs.QueueURL(opts.SQSQueue))
	}
	return c, nil
}

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
// namespace/name register: the workload cluster's apiserver.
func (c *Cloud) RegisterCluster(cluster types.NamespacedName, config *rest.Config) error {
	cl, err := client.New(config, client.Options{})
	if err != nil {
		return fmt.Errorf("client for workload cluster %s: %w", cluster, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.clusters[cluster] = cl
	return nil
}

func (c *Cloud) workloadClient(cluster types.NamespacedName) (client.Client, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cl, ok := c.clusters[cluster]
	return cl, ok
}

// Stop cancels pending spot terminations and stops the SQS endpoint. The
// reconciler stops with its manager.
func (c *Cloud) Stop() {
	c.mu.Lock()
	c.stopped = true
	for id, t := range c.timers {
		t.Stop()
		delete(c.timers, id)
	}
	c.mu.Unlock()
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
	snapshot := *inst
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
	for _, i := range c.instances {
		out = append(out, *i)
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
	return *i, true
}

// Bill is what every instance has cost up to at.
func (c *Cloud) Bill(at time.Time) float64 {
	total := 0.0
	for _, i := range c.Instances() {
		total += i.Cost(at)
	}
	return total
}

// launch records a new pending instance, or returns the EC2 error
// RunInstances would return.
// zones are the cluster's zones, which EC2's insufficient-capacity message
// suggests instead of the requested one.
func (c *Cloud) launch(o Offering, zones []string, cluster, awsMachine types.NamespacedName, uid types.UID) (*Instance, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if id, ok := c.byMachine[uid]; ok {
		return c.instances[id], nil
	}
	if _, _, _, ok := c.opts.InstanceTypes.InstanceTypeInfo(o.InstanceType); !ok {
		return nil, ec2Error(string(uid), "InvalidParameterValue", 400, fmt.Sprintf("Invalid value '%s' for InstanceType.", o.InstanceType))
	}
	for _, f := range c.ice {
		if f.matches(o) {
			return nil, insufficientCapacity(string(uid), o, otherZones(zones, o.Zone))
		}
	}
	price, _ := c.opts.Prices(o.InstanceType, o.Zone, o.CapacityType)
	c.ipCounter++
	ip := fmt.Sprintf("10.0.%d.%d", 1+c.ipCounter/250, 4+c.ipCounter%250)
	inst := &Instance{
		ID: newInstanceID(), Offering: o, PricePerHour: price, Cluster: cluster, AWSMachine: awsMachine,
		PrivateIP: ip, State: StatePending, LaunchTime: time.Now(), bootDelay: c.opts.BootDelay,
		hostname: privateDNSName(ip, c.opts.Region),
	}
	for _, s := range c.slowBoots {
		if s.match.matches(o) {
			inst.bootDelay = s.delay
			break
		}
	}
	for _, n := range c.neverJoin {
		if n.matches(o) {
			inst.neverJoin = true
		}
	}
	c.instances[inst.ID] = inst
	c.byMachine[uid] = inst.ID
	c.opts.Log.Info("RunInstances", "instance", inst.ID, "offering", o.String(), "pricePerHour", price, "awsMachine", awsMachine.String())
	return inst, nil
}

func otherZones(zones []string, requested string) []string {
	var out []string
	for _, z := range zones {
		if z != requested {
			out = append(out, z)
		}
	}
	return out
}

// instanceFor returns a copy of the AWSMachine's instance.
func (c *Cloud) instanceFor(uid types.UID) (Instance, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	id, ok := c.byMachine[uid]
	if !ok {
		return Instance{}, false
	}
	return *c.instances[id], true
}

// advance moves a pending instance whose boot delay has passed to running
// and returns the instance and, while pending, how long until it runs.
func (c *Cloud) advance(id string, now time.Time) (Instance, time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	inst := c.instances[id]
	if inst.State == StatePending {
		if runAt := inst.LaunchTime.Add(inst.bootDelay); now.Before(runAt) {
			return *inst, runAt.Sub(now)
		}
		inst.State = StateRunning
		inst.RunningTime = now
		c.opts.Log.Info("instance running", "instance", inst.ID, "awsMachine", inst.AWSMachine.String())
	}
	return *inst, 0
}

func (c *Cloud) setNodeName(id, node string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.instances[id].NodeName = node
}

// terminate moves an instance to terminated, deletes its Node from the
// workload cluster and wakes the reconciler for its AWSMachine.
func (c *Cloud) terminate(ctx context.Context, id, reason string) error {
	c.mu.Lock()
	inst, ok := c.instances[id]
	if !ok {
		c.mu.Unlock()
		return fmt.Errorf("no instance %s in the simulated cloud", id)
	}
	if t, ok := c.timers[id]; ok {
		t.Stop()
		delete(c.timers, id)
	}
	if inst.State == StateTerminated {
		c.mu.Unlock()
		return nil
	}
	inst.State = StateTerminated
	inst.TerminateTime = time.Now()
	inst.TerminationReason = reason
	snapshot := *inst
	c.mu.Unlock()
	c.opts.Log.Info("instance terminated", "instance", id, "reason", reason, "awsMachine", snapshot.AWSMachine.String(), "cost", snapshot.Cost(snapshot.TerminateTime))

	if snapshot.NodeName != "" {
		if cl, ok := c.workloadClient(snapshot.Cluster); ok {
			node := &corev1.Node{}
			node.Name = snapshot.NodeName
			if err := client.IgnoreNotFound(cl.Delete(ctx, node)); err != nil {
				return fmt.Errorf("deleting Node %s of terminated instance %s from cluster %s: %w", node.Name, id, snapshot.Cluster, err)
			}
		}
	}
	c.wake(snapshot.AWSMachine)
	return nil
}

// wake enqueues a reconcile of an AWSMachine.
func (c *Cloud) wake(awsMachine types.NamespacedName) {
	obj := newAWSMachineKey(awsMachine)
	select {
	case c.trigger <- event.TypedGenericEvent[client.Object]{Object: obj}:
	default:
		c.opts.Log.Info("reconcile trigger queue full; the AWSMachine is picked up at its next requeue", "awsMachine", awsMachine.String())
	}
}

func newInstanceID() string {
	b := make([]byte, 9)
	_, _ = rand.Read(b)
	return "i-" + hex.EncodeToString(b)[:17]
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
