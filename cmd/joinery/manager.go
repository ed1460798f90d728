package main

import (
	"flag"
	"fmt"

	"github.com/spf13/cobra"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/joinery-dev/joinery/internal/manager"
)

func newManagerCommand() *cobra.Command {
	opts := manager.DefaultOptions()
	zapOpts := &zap.Options{}
	cmd := &cobra.Command{
		Use:   "manager",
		Short: "Run Joinery's controllers against a Cluster API management cluster",
		Long: "Run Joinery's controllers. The management cluster is found through --kubeconfig, $KUBECONFIG,\n" +
			"the in-cluster service account or ~/.kube/config, in that order. Workload clusters are reached\n" +
			"through the kubeconfig Secrets of their CAPI Clusters, as CAPI's own controllers reach them.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runManager(opts, zapOpts) },
	}
	manager.BindFlags(cmd.Flags(), &opts)
	// --kubeconfig is registered by controller-runtime on the standard flag set.
	goFlags := flag.NewFlagSet("", flag.ContinueOnError)
	if kubeconfig := flag.CommandLine.Lookup("kubeconfig"); kubeconfig != nil {
		goFlags.Var(kubeconfig.Value, "kubeconfig", kubeconfig.Usage)
	}
	zapOpts.BindFlags(goFlags)
	cmd.Flags().AddGoFlagSet(goFlags)
	return cmd
}

func runManager(opts manager.Options, zapOpts *zap.Options) error {
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(zapOpts)))
	log := ctrl.Log.WithName("setup")
	if err := opts.Validate(); err != nil {
		return usageError{err}
	}
	cfg, err := ctrl.GetConfig()
	if err != nil {
		return usageError{fmt.Errorf("no management cluster to talk to: %w (pass --kubeconfig or set KUBECONFIG)", err)}
	}
	ctx := ctrl.SetupSignalHandler()
	mgr, err := manager.New(ctx, cfg, opts)
	if err != nil {
		return err
	}
	log.Info("starting manager", "version", version)
	return mgr.Start(ctx)
}
