package main

import (
	"flag"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	joineryv1alpha1 "github.com/joinery-dev/joinery/api/v1alpha1"
)

// managerOptions are the flags of `joinery manager`, named as in every
// kubebuilder/controller-runtime manager so operators find them.
type managerOptions struct {
	metricsAddr      string
	probeAddr        string
	leaderElect      bool
	leaderElectionID string
	leaderElectionNS string
	leaseDuration    time.Duration
	renewDeadline    time.Duration
	retryPeriod      time.Duration
	zap              zap.Options
}

func newManagerCommand() *cobra.Command {
	opts := &managerOptions{}
	cmd := &cobra.Command{
		Use:   "manager",
		Short: "Run Joinery's controllers against a Cluster API management cluster",
		Long: "Run Joinery's controllers. The management cluster is found through --kubeconfig, $KUBECONFIG,\n" +
			"the in-cluster service account or ~/.kube/config, in that order.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runManager(opts) },
	}
	f := cmd.Flags()
	f.StringVar(&opts.metricsAddr, "metrics-bind-address", ":8080", "Address the Prometheus metrics endpoint binds to; \"0\" disables it.")
	f.StringVar(&opts.probeAddr, "health-probe-bind-address", ":8081", "Address the /healthz and /readyz endpoints bind to.")
	f.BoolVar(&opts.leaderElect, "leader-elect", true, "Elect a leader so only one replica acts at a time.")
	f.StringVar(&opts.leaderElectionID, "leader-election-id", "joinery-manager.joinery.dev", "Name of the Lease used for leader election.")
	f.StringVar(&opts.leaderElectionNS, "leader-election-namespace", "", "Namespace of the leader election Lease (default: the manager's own namespace).")
	f.DurationVar(&opts.leaseDuration, "leader-elect-lease-duration", 15*time.Second, "How long a non-leader waits before trying to take over.")
	f.DurationVar(&opts.renewDeadline, "leader-elect-renew-deadline", 10*time.Second, "How long the leader keeps trying to renew before giving up.")
	f.DurationVar(&opts.retryPeriod, "leader-elect-retry-period", 2*time.Second, "How often leader election is retried.")
	// --kubeconfig is registered by controller-runtime on the standard flag set.
	goFlags := flag.NewFlagSet("", flag.ContinueOnError)
	if kubeconfig := flag.CommandLine.Lookup("kubeconfig"); kubeconfig != nil {
		goFlags.Var(kubeconfig.Value, "kubeconfig", kubeconfig.Usage)
	}
	opts.zap.BindFlags(goFlags)
	f.AddGoFlagSet(goFlags)
	return cmd
}

func newScheme() (*runtime.Scheme, error) {
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, joineryv1alpha1.AddToScheme} {
		if err := add(scheme); err != nil {
			return nil, err
		}
	}
	return scheme, nil
}

// The manager's own needs: leader election and Events. Each controller
// package carries the markers for what it reads and writes.
// +kubebuilder:rbac:groups=coordination.k8s.io,resources=leases,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups="",resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=joinery.dev,resources=nodepools,verbs=get;list;watch
// +kubebuilder:rbac:groups=joinery.dev,resources=nodepools/status,verbs=get;update;patch

func runManager(opts *managerOptions) error {
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&opts.zap)))
	log := ctrl.Log.WithName("setup")
	scheme, err := newScheme()
	utilruntime.Must(err)

	cfg, err := ctrl.GetConfig()
	if err != nil {
		return usageError{fmt.Errorf("no management cluster to talk to: %w (pass --kubeconfig or set KUBECONFIG)", err)}
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                  scheme,
		Metrics:                 metricsserver.Options{BindAddress: opts.metricsAddr},
		HealthProbeBindAddress:  opts.probeAddr,
		LeaderElection:          opts.leaderElect,
		LeaderElectionID:        opts.leaderElectionID,
		LeaderElectionNamespace: opts.leaderElectionNS,
		LeaseDuration:           &opts.leaseDuration,
		RenewDeadline:           &opts.renewDeadline,
		RetryPeriod:             &opts.retryPeriod,
		// A killed leader must not keep acting: release on clean stop only.
		LeaderElectionReleaseOnCancel: true,
	})
	if err != nil {
		return fmt.Errorf("creating manager: %w", err)
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return err
	}
	log.Info("starting manager", "version", version)
	return mgr.Start(ctrl.SetupSignalHandler())
}
