// Command joinery is Joinery's single binary: `joinery manager` runs the
// controllers; other subcommands are tools for people (simulate, explain,
// convert, sandbox) as they land.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

func main() {
	if err := newRootCommand().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(exitCode(err))
	}
}

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "joinery",
		Short: "Joinery autoscales the nodes of Cluster API workload clusters",
		Long: "Joinery watches for pods that cannot be scheduled in the workload clusters a NodePool selects,\n" +
			"works out the cheapest machines that fit them and creates them as Cluster API Machines.",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newManagerCommand(), newSimulateCommand(), newConvertCommand(), newExplainCommand(), newSandboxCommand(), newVersionCommand())
	return root
}

// usageError is an error in what the user asked for; it exits with code 2.
type usageError struct{ error }

func exitCode(err error) int {
	if _, ok := err.(usageError); ok {
		return 2
	}
	return 1
}
