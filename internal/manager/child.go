package manager

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
)

// ChildEnv, set to "1", makes RunChildIfRequested run the manager: a test
// or benchmark binary re-executes itself to run Joinery as a process of
// its own (killable like a real deployment's pod) without building the
// joinery binary.
const ChildEnv = "JOINERY_RUN_MANAGER"

// ChildClockSkewEnv, a Go duration ("3m", "-90s"), sets the child's
// clock that far ahead of (or behind) the machine's: a manager on a node
// whose clock drifted. Only a child reads it; the joinery binary has no
// such setting.
const ChildClockSkewEnv = "JOINERY_CHILD_CLOCK_SKEW"

// childClock is the clock ChildClockSkewEnv asks for, nil without one.
func childClock() (func() time.Time, error) {
	v := os.Getenv(ChildClockSkewEnv)
	if v == "" {
		return nil, nil
	}
	skew, err := time.ParseDuration(v)
	if err != nil {
		return nil, fmt.Errorf("%s=%q: not a Go duration (e.g. 3m, -90s): %w", ChildClockSkewEnv, v, err)
	}
	return func() time.Time { return time.Now().Add(skew) }, nil
}

// RunChildIfRequested runs the manager with os.Args' flags and exits when
// ChildEnv is set; otherwise it returns at once. Call it first in main or
// TestMain.
func RunChildIfRequested() {
	if os.Getenv(ChildEnv) != "1" {
		return
	}
	os.Exit(runChild(os.Args[1:]))
}

func runChild(args []string) int {
	opts := DefaultOptions()
	flags := pflag.NewFlagSet("manager", pflag.ContinueOnError)
	BindFlags(flags, &opts)
	kubeconfig := flags.String("kubeconfig", "", "Kubeconfig of the management cluster.")
	if err := flags.Parse(args); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	clock, err := childClock()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	opts.Clock = clock
	ctrl.SetLogger(zap.New(zap.UseDevMode(true)))
	cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	ctx := ctrl.SetupSignalHandler()
	mgr, err := New(ctx, cfg, opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := mgr.Start(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}
