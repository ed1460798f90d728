package e2e

import (
	"context"
	"fmt"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/joinery-dev/joinery/internal/explain"
)

// explainer reads the management cluster directly, as `joinery explain`
// does, and reaches workload clusters through their kubeconfig Secrets.
func explainer() *explain.Explainer {
	c, err := client.New(tb.Management.Config, client.Options{Scheme: tb.Client.Scheme()})
	Expect(err).NotTo(HaveOccurred())
	return &explain.Explainer{Client: c, Workload: explain.WorkloadFromSecrets(c)}
}

// explainText runs one explanation (kind pod, machine or nodepool) and
// prints it to the spec's log, where it serves as a transcript.
func explainText(ctx context.Context, kind, name string, cluster string) string {
	e := explainer()
	var b strings.Builder
	var err error
	key := types.NamespacedName{Namespace: tb.Namespace, Name: name}
	switch kind {
	case "pod":
		key.Namespace = "default"
		var ck types.NamespacedName
		if cluster != "" {
			ck = types.NamespacedName{Namespace: tb.Namespace, Name: cluster}
		}
		err = e.Pod(ctx, &b, ck, key)
	case "machine":
		err = e.Machine(ctx, &b, key)
	case "nodepool":
		err = e.NodePool(ctx, &b, key)
	default:
		Fail("unknown kind " + kind)
	}
	Expect(err).NotTo(HaveOccurred())
	fmt.Fprintf(GinkgoWriter, "$ joinery explain %s %s\n%s\n", kind, name, b.String())
	return b.String()
}
