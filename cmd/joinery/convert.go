package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/joinery-dev/joinery/internal/convert"
)

type convertOptions struct {
	files           []string
	clusterName     string
	clusterSelector string
	namespace       string
	output          string
}

func newConvertCommand() *cobra.Command {
	opts := &convertOptions{}
	cmd := &cobra.Command{
		Use:   "convert -f FILE... (--cluster-name NAME | --cluster-selector k=v) [--namespace NS] [-o FILE]",
		Short: "Convert Karpenter v1 NodePools and EC2NodeClasses to Joinery NodePools and CAPI templates",
		Long: "Reads Karpenter v1 NodePools (karpenter.sh/v1) and EC2NodeClasses (karpenter.k8s.aws/v1) from\n" +
			"multi-document YAML files (or a List, as kubectl get -o yaml prints) and writes, for each\n" +
			"EC2NodeClass, a CAPA AWSMachineTemplate and a KubeadmConfigTemplate stub of the same name, and for\n" +
			"each NodePool a Joinery NodePool serving the given CAPI Cluster(s). Settings without an equivalent\n" +
			"are reported on standard error, each with the object, the field and what to do. Nothing is sent\n" +
			"to a cluster. Exit code 2 means the input is wrong; the message names file, object and field.\n" +
			"See docs/migrating-from-karpenter.md.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runConvert(cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr(), opts)
		},
	}
	f := cmd.Flags()
	f.StringArrayVarP(&opts.files, "filename", "f", nil, "YAML file with Karpenter NodePools and EC2NodeClasses (repeatable; - for standard input)")
	f.StringVar(&opts.clusterName, "cluster-name", "", "CAPI Cluster the NodePools serve (spec.clusterName)")
	f.StringVar(&opts.clusterSelector, "cluster-selector", "", "Label selector of the CAPI Clusters the NodePools serve (spec.clusterSelector), e.g. env=dev")
	f.StringVarP(&opts.namespace, "namespace", "n", metav1.NamespaceDefault, "Namespace of the output objects (the CAPI Clusters' namespace)")
	f.StringVarP(&opts.output, "output", "o", "", "File to write the YAML to (default: standard output)")
	return cmd
}

func runConvert(stdin io.Reader, stdout, stderr io.Writer, opts *convertOptions) error {
	if len(opts.files) == 0 {
		return usageError{errors.New("no input: pass -f FILE (YAML with Karpenter v1 NodePools and EC2NodeClasses; - for standard input)")}
	}
	options := convert.Options{ClusterName: opts.clusterName, Namespace: opts.namespace}
	if opts.clusterSelector != "" {
		sel, err := metav1.ParseToLabelSelector(opts.clusterSelector)
		if err != nil {
			return usageError{fmt.Errorf("--cluster-selector %q: %w", opts.clusterSelector, err)}
		}
		options.ClusterSelector = sel
	}
	if err := options.Validate(); err != nil {
		return usageError{err}
	}
	in, err := convert.LoadFiles(stdin, opts.files...)
	if err != nil {
		return usageError{err}
	}
	if len(in.NodePools) == 0 && len(in.EC2NodeClasses) == 0 {
		for _, w := range in.Warnings {
			fmt.Fprintln(stderr, "warning:", w)
		}
		return usageError{errors.New("nothing to convert: the input has no karpenter.sh/v1 NodePool and no karpenter.k8s.aws/v1 EC2NodeClass")}
	}
	result, err := convert.Convert(in, options)
	if err != nil {
		return usageError{err}
	}
	var buf bytes.Buffer
	if err := result.WriteYAML(&buf); err != nil {
		return err
	}
	if opts.output == "" {
		if _, err := stdout.Write(buf.Bytes()); err != nil {
			return err
		}
	} else if err := os.WriteFile(opts.output, buf.Bytes(), 0o644); err != nil {
		return err
	}
	for _, w := range result.Warnings {
		fmt.Fprintln(stderr, "warning:", w)
	}
	return nil
}
