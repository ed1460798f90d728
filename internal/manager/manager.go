// Package manager assembles Joinery's controller manager: the scheme, the
// caches CAPI's managers use, CAPI's ClusterCache (through which every
// workload cluster is reached) and Joinery's controllers. `joinery
// manager`, the sandbox and the end-to-end tests run this same assembly.
package manager

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/go-logr/logr"
	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	infrav1 "sigs.k8s.io/cluster-api-provider-aws/v2/api/v1beta2"
	bootstrapv1 "sigs.k8s.io/cluster-api/api/bootstrap/kubeadm/v1beta2"
	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"
	"sigs.k8s.io/cluster-api/controllers/clustercache"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	autoscalingv1beta1 "github.com/joinery-dev/joinery/api/autoscaling/v1beta1"
	joineryv1alpha1 "github.com/joinery-dev/joinery/api/v1alpha1"
	"github.com/joinery-dev/joinery/cloud"
	"github.com/joinery-dev/joinery/cloud/live"
	"github.com/joinery-dev/joinery/controllers/disruption"
	"github.com/joinery-dev/joinery/controllers/interruption"
	"github.com/joinery-dev/joinery/controllers/poolstatus"
	"github.com/joinery-dev/joinery/controllers/provisioning"
	"github.com/joinery-dev/joinery/internal/apiclock"
	"github.com/joinery-dev/joinery/internal/shard"
	"github.com/joinery-dev/joinery/solver"
)

// Options are the manager's settings; BindFlags names them as every
// kubebuilder/controller-runtime manager does, so operators find them.
type Options struct {
	MetricsAddr string
	// MetricsSecure serves metrics over HTTPS behind the management
	// apiserver's authentication and authorization, as CAPI's managers do.
	MetricsSecure    bool
	ProbeAddr        string
	LeaderElect      bool
	LeaderElectionID string
	LeaderElectionNS string
	LeaseDuration    time.Duration
	RenewDeadline    time.Duration
	RetryPeriod      time.Duration
	// QPS and Burst bound requests to the management cluster. A burst of
	// pending pods becomes three creates per machine (Machine, AWSMachine,
	// bootstrap config) across every cluster, so the defaults are
	// Karpenter's order of magnitude, not CAPI's 20/30.
	QPS   float32
	Burst int
	// WorkloadQPS and WorkloadBurst bound requests to each workload
	// cluster's apiserver.
	WorkloadQPS   float32
	WorkloadBurst int
	Provisioning  provisioning.Options
	Disruption    disruption.Options
	// Interruption configures the interruption queue (off without one).
	Interruption interruption.Options
	// Catalog configures refreshing the EC2 catalog from EC2's API (off
	// without regions).
	Catalog live.Options
	// WatchFilter serves only the Clusters labelled
	// cluster.x-k8s.io/watch-filter=<value> (CAPI's --watch-filter), with a
	// Lease of the shard's own, so several managers split a fleet.
	WatchFilter string
	// ProfilerAddr serves Go's pprof endpoints when set (CAPI's
	// --profiler-address).
	ProfilerAddr string
	// SkipNameValidation lets several managers run in one process (tests).
	SkipNameValidation bool
	// Logger, when set, replaces controller-runtime's global logger.
	Logger logr.Logger
	// Clock is the manager's own wall clock, time.Now when nil. Every
	// controller reads it; the soak runs managers whose clock is ahead of
	// or behind the apiserver's (ChildClockSkewEnv) to check that no
	// decision depends on the two agreeing.
	Clock func() time.Time
}

// DefaultOptions are the flags' defaults.
func DefaultOptions() Options {
	return Options{
		MetricsAddr: ":8443", MetricsSecure: true, ProbeAddr: ":8081", LeaderElect: true, LeaderElectionID: "joinery-manager.joinery.dev",
		LeaseDuration: 15 * time.Second, RenewDeadline: 10 * time.Second, RetryPeriod: 2 * time.Second,
		QPS: 100, Burst: 200, WorkloadQPS: 20, WorkloadBurst: 30, Provisioning: provisioning.DefaultOptions(), Disruption: disruption.DefaultOptions(),
		Catalog: live.DefaultOptions(),
	}
}

// BindFlags registers the options as flags, with o's values as defaults.
func BindFlags(f *pflag.FlagSet, o *Options) {
	f.StringVar(&o.MetricsAddr, "metrics-bind-address", o.MetricsAddr, "Address the Prometheus metrics endpoint binds to; \"0\" disables it.")
	f.BoolVar(&o.MetricsSecure, "metrics-secure", o.MetricsSecure, "Serve metrics over HTTPS, each scrape authenticated (TokenReview) and authorized (SubjectAccessReview: get on the non-resource URL /metrics, e.g. ClusterRole joinery-metrics-reader) by the management apiserver; false serves plain HTTP to anyone who reaches the port, for local tools.")
	f.StringVar(&o.WatchFilter, "watch-filter", o.WatchFilter, "Serve only the CAPI Clusters labelled cluster.x-k8s.io/watch-filter=<value>, as CAPI's controllers do, so several managers split a fleet; "+
		"each shard's leader-election Lease is <value>.<leader-election-id>. Empty serves every Cluster. See docs/sharding.md.")
	f.StringVar(&o.ProfilerAddr, "profiler-address", o.ProfilerAddr, "Address Go's pprof endpoints (/debug/pprof/) bind to, e.g. localhost:6060; empty disables them.")
	f.StringVar(&o.ProbeAddr, "health-probe-bind-address", o.ProbeAddr, "Address the /healthz and /readyz endpoints bind to; \"0\" disables them.")
	f.BoolVar(&o.LeaderElect, "leader-elect", o.LeaderElect, "Elect a leader so only one replica acts at a time.")
	f.StringVar(&o.LeaderElectionID, "leader-election-id", o.LeaderElectionID, "Name of the Lease used for leader election.")
	f.StringVar(&o.LeaderElectionNS, "leader-election-namespace", o.LeaderElectionNS, "Namespace of the leader election Lease (default: the manager's own namespace).")
	f.DurationVar(&o.LeaseDuration, "leader-elect-lease-duration", o.LeaseDuration, "How long a non-leader waits before trying to take over.")
	f.DurationVar(&o.RenewDeadline, "leader-elect-renew-deadline", o.RenewDeadline, "How long the leader keeps trying to renew before giving up.")
	f.DurationVar(&o.RetryPeriod, "leader-elect-retry-period", o.RetryPeriod, "How often leader election is retried.")
	f.Float32Var(&o.QPS, "kube-api-qps", o.QPS, "Requests per second to the management cluster's apiserver.")
	f.IntVar(&o.Burst, "kube-api-burst", o.Burst, "Burst of requests to the management cluster's apiserver.")
	f.Float32Var(&o.WorkloadQPS, "workload-cluster-qps", o.WorkloadQPS, "Requests per second to each workload cluster's apiserver.")
	f.IntVar(&o.WorkloadBurst, "workload-cluster-burst", o.WorkloadBurst, "Burst of requests to each workload cluster's apiserver.")
	p := &o.Provisioning
	f.DurationVar(&p.BatchIdle, "batch-idle-duration", p.BatchIdle, "A batch of pending pods closes after this long without a new one.")
	f.DurationVar(&p.BatchMax, "batch-max-duration", p.BatchMax, "A batch of pending pods closes at the latest this long after it opened.")
	f.DurationVar(&p.UnavailableTTL, "unavailable-offerings-ttl", p.UnavailableTTL, "How long an offering EC2 refused for lack of capacity is avoided.")
	f.Float64Var(&p.SpotRiskWeight, "spot-risk-weight", p.SpotRiskWeight, "How much interruption risk weighs on a spot offering's price when choosing: price × (1 + weight × risk), risk 0..1 from EC2's spot placement score "+
		"(read with --catalog-regions) and the interruptions Joinery saw of the offering. 1 makes the riskiest offering compete at twice its price; 0 chooses spot by price alone.")
	f.DurationVar(&p.InterruptionHalfLife, "spot-interruption-half-life", p.InterruptionHalfLife, "How fast a spot interruption Joinery saw stops weighing on its offering: its weight halves every this long.")
	f.DurationVar(&p.RegistrationTimeout, "registration-timeout", p.RegistrationTimeout, "A Machine whose Node has not registered after this long is deleted.")
	f.DurationVar(&p.NodeLostGrace, "node-lost-grace", p.NodeLostGrace, "A Machine whose Node disappeared while its instance runs counts as not-ready capacity this long, then is deleted.")
	f.DurationVar(&p.LaunchErrorBackoff, "launch-error-backoff", p.LaunchErrorBackoff, "A pool whose launch EC2 or CAPA refused for its configuration launches nothing in that cluster this long, unless its templates change first.")
	f.DurationVar(&p.Replan, "replan-interval", p.Replan, "How often pods that stay pending are planned for again.")
	f.IntVar(&p.Concurrency, "cluster-concurrency", p.Concurrency, "How many workload clusters are planned for at once.")
	f.Float64Var(&p.VMMemoryOverheadPercent, "vm-memory-overhead-percent", p.VMMemoryOverheadPercent,
		"Share of an instance type's memory planning assumes the hypervisor and kernel keep from the kubelet (Karpenter's default, 0.075).")
	d := &o.Disruption
	f.DurationVar(&d.ValidationDelay, "disruption-validation-delay", d.ValidationDelay, "How long a disruption decision waits before it is checked again and carried out.")
	f.DurationVar(&d.Interval, "disruption-interval", d.Interval, "How often each cluster is looked at for machines to disrupt.")
	f.BoolVar(&d.SpotToSpot, "spot-to-spot-consolidation", d.SpotToSpot, "Replace spot machines with cheaper spot machines (keeping at least 15 cheaper instance types as options).")
	f.BoolVar(&d.Repair, "node-repair", d.Repair, "Replace unhealthy Machines: those a MachineHealthCheck marked (HealthCheckSucceeded=False, OwnerRemediated=False), else those whose node had Ready=False/Unknown for 30 minutes "+
		"or a node monitoring agent condition past its toleration; never more than 20% of a pool's nodes in a cluster at once. false turns repair off.")
	i := &o.Interruption
	f.StringVar(&i.Queue, "interruption-queue", i.Queue, "Name or URL of the SQS queue EventBridge sends EC2 spot interruption, rebalance, state-change and AWS Health events to; empty turns interruption handling off.")
	f.StringVar(&i.Region, "aws-region", i.Region, "AWS region of the interruption queue (default: $AWS_REGION).")
	f.StringVar(&i.Endpoint, "aws-endpoint", i.Endpoint, "SQS endpoint URL replacing the region's (a VPC endpoint, or a local one in tests).")
	c := &o.Catalog
	f.StringSliceVar(&c.Regions, "catalog-regions", c.Regions, "EC2 regions whose catalog is refreshed from the EC2 API, e.g. us-east-1,eu-west-1: instance types, "+
		"which types each Availability Zone offers, spot prices per zone and the account's zone names (credentials from the AWS SDK's default chain: environment, AWS_PROFILE, IRSA, instance profile; "+
		"the calls are ec2:DescribeInstanceTypes, DescribeInstanceTypeOfferings, DescribeSpotPriceHistory, "+
		"DescribeAvailabilityZones). Empty (the default) decides with the embedded snapshot only. On-demand prices always come from the snapshot; "+
		"while EC2 cannot be reached the last good catalog stays in use (see docs/catalog.md).")
	f.DurationVar(&c.Interval, "catalog-refresh-interval", c.Interval, "How often instance types, offerings, zone names and spot prices are all read from EC2 (with --catalog-regions).")
	f.DurationVar(&c.SpotInterval, "catalog-spot-refresh-interval", c.SpotInterval, "How often spot prices alone are read from EC2 in between; 0 reads them only with the rest (with --catalog-regions).")
	f.DurationVar(&c.ReservationInterval, "catalog-reservation-refresh-interval", c.ReservationInterval, "How often capacity reservations (and how many instances each still takes) alone are read from EC2 in between; 0 reads them only with the rest (with --catalog-regions).")
	f.StringVar(&c.Endpoint, "ec2-endpoint", c.Endpoint, "EC2 endpoint URL replacing each region's for the catalog refresh (a VPC endpoint, or a local one in tests).")
}

// Validate names the flag of a bad value and what it should be.
func (o Options) Validate() error {
	p := o.Provisioning
	for _, d := range []struct {
		flag  string
		value time.Duration
	}{{"--batch-idle-duration", p.BatchIdle}, {"--batch-max-duration", p.BatchMax}, {"--unavailable-offerings-ttl", p.UnavailableTTL},
		{"--spot-interruption-half-life", p.InterruptionHalfLife},
		{"--registration-timeout", p.RegistrationTimeout}, {"--replan-interval", p.Replan},
		{"--node-lost-grace", p.NodeLostGrace}, {"--launch-error-backoff", p.LaunchErrorBackoff},
		{"--disruption-validation-delay", o.Disruption.ValidationDelay}, {"--disruption-interval", o.Disruption.Interval}} {
		if d.value <= 0 {
			return fmt.Errorf("%s=%s: must be a positive duration such as 10s", d.flag, d.value)
		}
	}
	if p.BatchMax < p.BatchIdle {
		return fmt.Errorf("--batch-max-duration=%s is shorter than --batch-idle-duration=%s; make it at least as long", p.BatchMax, p.BatchIdle)
	}
	if err := (solver.SpotRisk{Weight: p.SpotRiskWeight}).Validate(); err != nil {
		return fmt.Errorf("--spot-risk-weight: %w", err)
	}
	if p.Concurrency < 1 {
		return fmt.Errorf("--cluster-concurrency=%d: must be at least 1", p.Concurrency)
	}
	if p.VMMemoryOverheadPercent < 0 || p.VMMemoryOverheadPercent >= 1 {
		return fmt.Errorf("--vm-memory-overhead-percent=%g: must be a share of memory in [0, 1), such as 0.075", p.VMMemoryOverheadPercent)
	}
	if err := (shard.Filter{Value: o.WatchFilter}).Validate(); err != nil {
		return err
	}
	if i := o.Interruption; i.Enabled() && i.Region == "" {
		return fmt.Errorf("--interruption-queue=%s needs the queue's region: set --aws-region or $AWS_REGION", i.Queue)
	}
	return o.Catalog.Validate()
}

// Scheme knows the Kubernetes, CAPI core and kubeadm bootstrap, CAPA,
// Joinery and CapacityBuffer types.
func Scheme() (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		clientgoscheme.AddToScheme, clusterv1.AddToScheme, bootstrapv1.AddToScheme, infrav1.AddToScheme, joineryv1alpha1.AddToScheme,
		// CapacityBuffers are read in the workload clusters (the
		// ClusterCache's clients use this scheme).
		autoscalingv1beta1.AddToScheme,
	} {
		if err := add(s); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// The manager's own needs: Events; the kubeconfig Secrets of CAPI Clusters,
// read by name with an uncached get (CAPI's ClusterCache needs nothing
// else); TokenReviews and SubjectAccessReviews for the metrics endpoint's
// authentication and authorization. Leader election's Lease is in the
// manager's namespace: config/rbac/leader_election_role.yaml, a Role.
// +kubebuilder:rbac:groups="",resources=events,verbs=create;patch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get
// +kubebuilder:rbac:groups=authentication.k8s.io,resources=tokenreviews,verbs=create
// +kubebuilder:rbac:groups=authorization.k8s.io,resources=subjectaccessreviews,verbs=create
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// New builds the manager with Joinery's controllers; Start runs it.
func New(ctx context.Context, cfg *rest.Config, o Options) (ctrl.Manager, error) {
	if o.Interruption.Enabled() && o.Interruption.Region == "" {
		o.Interruption.Region = os.Getenv("AWS_REGION")
	}
	if err := o.Validate(); err != nil {
		return nil, err
	}
	scheme, err := Scheme()
	if err != nil {
		return nil, err
	}
	catalog, err := cloud.Embedded()
	if err != nil {
		return nil, fmt.Errorf("reading the embedded EC2 catalog: %w", err)
	}
	fleetShard := shard.Filter{Value: o.WatchFilter}
	cfg = rest.CopyConfig(cfg)
	if o.QPS > 0 {
		cfg.QPS, cfg.Burst = o.QPS, o.Burst
	}
	// Every response of the management cluster's apiserver tells the
	// clock its time; timeouts counted from its timestamps read it.
	local := o.Clock
	if local == nil {
		local = time.Now
	}
	apiClock := apiclock.New(local)
	apiClock.ExportMetric()
	apiClock.Wrap(cfg)
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                  scheme,
		Logger:                  o.Logger,
		Metrics:                 metricsOptions(o),
		HealthProbeBindAddress:  o.ProbeAddr,
		PprofBindAddress:        o.ProfilerAddr,
		LeaderElection:          o.LeaderElect,
		LeaderElectionID:        fleetShard.LeaseName(o.LeaderElectionID),
		LeaderElectionNamespace: o.LeaderElectionNS,
		LeaseDuration:           &o.LeaseDuration,
		RenewDeadline:           &o.RenewDeadline,
		RetryPeriod:             &o.RetryPeriod,
		// A killed leader must not keep acting: release on clean stop only.
		LeaderElectionReleaseOnCancel: true,
		Controller:                    config.Controller{SkipNameValidation: ptr.To(o.SkipNameValidation)},
		// Machines, AWSMachines and NodePools are read (and copied) on
		// every pass; their managed fields are never read.
		Cache: cache.Options{DefaultTransform: cache.TransformStripManagedFields()},
		// The objects read by group and kind (pools' AWSMachineTemplates
		// and KubeadmConfigTemplates, Clusters' control planes) come from
		// the cache as typed ones do: controller-runtime reads them from
		// the apiserver otherwise, and provisioning and disruption read
		// them on every pass. With 20 clusters planning at once on a busy
		// management apiserver, most of a pass's time was spent waiting
		// for these reads, and the other clusters' passes waited for a
		// free worker behind them.
		Client: client.Options{Cache: &client.CacheOptions{Unstructured: true}},
	})
	if err != nil {
		return nil, fmt.Errorf("creating manager: %w", err)
	}
	var source cloud.Source = catalog
	// Without EC2 access AMIs stay unknown: planning assumes and says so.
	var images cloud.Images
	if o.Catalog.Enabled() {
		clients := map[string]live.EC2API{}
		imageClients := map[string]live.ImagesAPI{}
		for _, region := range o.Catalog.Regions {
			c, err := live.NewEC2Client(ctx, region, o.Catalog.Endpoint)
			if err != nil {
				return nil, err
			}
			clients[region], imageClients[region] = c, c
		}
		images = live.NewImages(imageClients)
		refresher, err := live.New(catalog, clients, o.Catalog, mgr.GetLogger().WithName("catalog"))
		if err != nil {
			return nil, err
		}
		if err := mgr.Add(refresher); err != nil {
			return nil, fmt.Errorf("adding the catalog refresher: %w", err)
		}
		source = refresher
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return nil, err
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return nil, err
	}
	clusterCache, err := clustercache.SetupWithManager(ctx, mgr, clustercache.Options{
		// An uncached get of <cluster>-kubeconfig by name: no informer on
		// Secrets, so no list or watch of every cluster's CA and keys.
		SecretClient: mgr.GetAPIReader(),
		// Connects only to the shard's Clusters: another shard's are
		// neither cached nor watched here.
		WatchFilterValue: o.WatchFilter,
		Cache: clustercache.CacheOptions{
			// Pods are what the provisioning loop reads most; managed
			// fields are never read.
			DefaultTransform: cache.TransformStripManagedFields(),
			// Pods and Nodes are most of a cluster's cache: keep only
			// what Joinery reads of them.
			ByObject: WorkloadCacheByObject(),
		},
		Client: clustercache.ClientOptions{QPS: o.WorkloadQPS, Burst: o.WorkloadBurst, UserAgent: "joinery"},
	}, controller.Options{MaxConcurrentReconciles: 10})
	if err != nil {
		return nil, fmt.Errorf("setting up CAPI's ClusterCache: %w", err)
	}
	// CAPI's ClusterCache runs each workload cluster's cache on a context
	// of its own that only Shutdown ends, not the manager's: a manager
	// stopped inside a longer-lived process (the sandbox, tests) would
	// otherwise leave its watches open, and a workload apiserver with open
	// watches does not exit on SIGTERM until its shutdown timeout.
	if s, ok := clusterCache.(interface{ Shutdown() }); ok {
		if err := mgr.Add(shutdownOnStop(s.Shutdown)); err != nil {
			return nil, fmt.Errorf("adding the ClusterCache's shutdown: %w", err)
		}
	}
	reports := provisioning.NewReports()
	provisioner := &provisioning.Provisioner{
		Client:         mgr.GetClient(),
		APIReader:      mgr.GetAPIReader(),
		ClusterCache:   clusterCache,
		Catalog:        source,
		Images:         images,
		Recorder:       mgr.GetEventRecorderFor("joinery-provisioning"),
		Options:        o.Provisioning,
		Shard:          fleetShard,
		Reports:        reports,
		APIServerClock: apiClock,
		Now:            local,
	}
	if err := provisioner.SetupWithManager(ctx, mgr); err != nil {
		return nil, fmt.Errorf("setting up the provisioning controller: %w", err)
	}
	if err := (&disruption.Controller{
		Client:      mgr.GetClient(),
		Provisioner: provisioner,
		Recorder:    mgr.GetEventRecorderFor("joinery-disruption"),
		Options:     o.Disruption,
		Now:         local,
	}).SetupWithManager(mgr); err != nil {
		return nil, fmt.Errorf("setting up the disruption controller: %w", err)
	}
	if i := o.Interruption; i.Enabled() {
		queue, err := interruption.NewSQSClient(ctx, i.Region, i.Endpoint)
		if err != nil {
			return nil, err
		}
		if err := (&interruption.Controller{
			Client:      mgr.GetClient(),
			SQS:         queue,
			Queue:       i.Queue,
			Recorder:    mgr.GetEventRecorderFor("joinery-interruption"),
			Unavailable: provisioner.Unavailable(),
			History:     provisioner.SpotInterruptions(),
			Now:         local,
		}).SetupWithManager(ctx, mgr); err != nil {
			return nil, fmt.Errorf("setting up the interruption controller: %w", err)
		}
	}
	if err := (&poolstatus.Reconciler{Client: mgr.GetClient(), Catalog: source, Reports: reports, Shard: fleetShard}).SetupWithManager(mgr); err != nil {
		return nil, fmt.Errorf("setting up the pool status controller: %w", err)
	}
	return mgr, nil
}

// metricsOptions: HTTPS with controller-runtime's authn/authz filter (a
// self-signed serving certificate unless one is mounted), as CAPI's
// managers serve metrics; plain HTTP only when asked for.
func metricsOptions(o Options) metricsserver.Options {
	m := metricsserver.Options{BindAddress: o.MetricsAddr}
	if o.MetricsSecure {
		m.SecureServing = true
		m.FilterProvider = filters.WithAuthenticationAndAuthorization
	}
	return m
}

// shutdownOnStop runs a function when the manager stops. It runs on every
// replica, leader or not, since every replica connects to the clusters;
// as a runnable of its own it is stopped after the controllers that read
// through the ClusterCache.
type shutdownOnStop func()

func (f shutdownOnStop) Start(ctx context.Context) error {
	<-ctx.Done()
	f()
	return nil
}

func (shutdownOnStop) NeedLeaderElection() bool { return false }
