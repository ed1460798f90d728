package main

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/joinery-dev/joinery/internal/explain"
	"github.com/joinery-dev/joinery/internal/manager"
)

func newExplainCommand() *cobra.Command {
	var namespace, cluster string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "explain (pod NAMESPACE/NAME | machine [NAMESPACE/]NAME | nodepool [NAMESPACE/]NAME)",
		Short: "Say why Joinery did what it did, from what its controllers recorded",
		Long: "Explain a decision from the records Joinery's controllers keep in the management cluster (the\n" +
			"decision annotation on each Machine, disruption annotations, NodePool status, Events):\n" +
			"  pod       where a workload pod runs or why it waits, and for which Machine (the workload cluster\n" +
			"            is reached through its CAPI kubeconfig Secret; --cluster when several have the pod)\n" +
			"  machine   why this instance type, zone and capacity type; the cheaper offerings passed over and\n" +
			"            why; its lifecycle; why it is kept or being replaced\n" +
			"  nodepool  the pool's state, limits, clusters and machines, with what disruption thinks of each\n" +
			"The management cluster is found through --kubeconfig, $KUBECONFIG or ~/.kube/config.",
		Example: "  joinery explain pod shop/web-7f9c --cluster team-a/prod-eu\n" +
			"  joinery explain machine team-a/general-3f2a9c01be\n" +
			"  joinery explain nodepool -n team-a general",
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			kind, ref := strings.ToLower(args[0]), args[1]
			key, err := objectKey(ref, namespace)
			if err != nil {
				return usageError{err}
			}
			var clusterKey types.NamespacedName
			if cluster != "" {
				if clusterKey, err = objectKey(cluster, namespace); err != nil {
					return usageError{fmt.Errorf("--cluster: %w", err)}
				}
			}
			switch kind {
			case "pod", "pods", "po", "machine", "machines", "nodepool", "nodepools":
			default:
				return usageError{fmt.Errorf("cannot explain %q: say pod, machine or nodepool", args[0])}
			}
			cfg, err := ctrl.GetConfig()
			if err != nil {
				return usageError{fmt.Errorf("no management cluster to talk to: %w (pass --kubeconfig or set KUBECONFIG)", err)}
			}
			scheme, err := manager.Scheme()
			if err != nil {
				return err
			}
			c, err := client.New(cfg, client.Options{Scheme: scheme})
			if err != nil {
				return fmt.Errorf("connecting to the management cluster: %w", err)
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			e := &explain.Explainer{Client: c, Workload: explain.WorkloadFromSecrets(c)}
			out := cmd.OutOrStdout()
			switch kind {
			case "pod", "pods", "po":
				return e.Pod(ctx, out, clusterKey, key)
			case "machine", "machines":
				return e.Machine(ctx, out, key)
			default:
				return e.NodePool(ctx, out, key)
			}
		},
	}
	cmd.Flags().StringVarP(&namespace, "namespace", "n", "", "Namespace of the object when NAME has none (default \"default\").")
	cmd.Flags().StringVar(&cluster, "cluster", "", "For pods: the CAPI Cluster (NAMESPACE/NAME) whose workload cluster has the pod.")
	cmd.Flags().DurationVar(&timeout, "timeout", 30*time.Second, "Give up after this long.")
	goFlags := flag.NewFlagSet("", flag.ContinueOnError)
	if kubeconfig := flag.CommandLine.Lookup("kubeconfig"); kubeconfig != nil {
		goFlags.Var(kubeconfig.Value, "kubeconfig", kubeconfig.Usage)
	}
	cmd.Flags().AddGoFlagSet(goFlags)
	return cmd
}

// objectKey reads NAMESPACE/NAME or NAME (in namespace, else "default").
func objectKey(ref, namespace string) (types.NamespacedName, error) {
	ns, name, found := strings.Cut(ref, "/")
	if !found {
		ns, name = namespace, ref
		if ns == "" {
			ns = "default"
		}
	}
	if ns == "" || name == "" || strings.Contains(name, "/") {
		return types.NamespacedName{}, fmt.Errorf("%q is not NAME or NAMESPACE/NAME", ref)
	}
	return types.NamespacedName{Namespace: ns, Name: name}, nil
}
