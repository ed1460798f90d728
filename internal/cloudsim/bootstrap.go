package cloudsim

import (
	"bytes"
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"
	"sigs.k8s.io/yaml"
)

// joinPath is where CAPI's kubeadm bootstrap provider writes the
// JoinConfiguration in a worker's cloud-init (bootstrap/kubeadm/pkg/cloudinit/node.go).
const joinPath = "/run/kubeadm/kubeadm-join-config.yaml"

// join is what the kubelet of a joining node takes from its bootstrap data.
type join struct {
	labels map[string]string
	taints []corev1.Taint
}

// joinConfiguration reads the Machine's bootstrap data the way the
// instance would: the cloud-init of its data secret, the kubeadm
// JoinConfiguration in it, and from that the node-labels kubelet argument
// and the registration taints (which include CAPI's
// node.cluster.x-k8s.io/uninitialized taint, removed by CAPI once the
// Machine has its nodeRef).
func (r *awsMachineReconciler) joinConfiguration(ctx context.Context, machine *clusterv1.Machine) (join, error) {
	name := *machine.Spec.Bootstrap.DataSecretName
	secret := &corev1.Secret{}
	if err := r.client.Get(ctx, types.NamespacedName{Namespace: machine.Namespace, Name: name}, secret); err != nil {
		return join{}, fmt.Errorf("reading bootstrap data secret %s/%s of Machine %s: %w", machine.Namespace, name, machine.Name, err)
	}
	j, err := parseJoin(secret.Data["value"])
	if err != nil {
		return join{}, fmt.Errorf("bootstrap data secret %s/%s of Machine %s: %w", machine.Namespace, name, machine.Name, err)
	}
	return j, nil
}

func parseJoin(userData []byte) (join, error) {
	var cloudConfig struct {
		WriteFiles []struct {
			Path    string `json:"path"`
			Content string `json:"content"`
		} `json:"write_files"`
	}
	// CABPK's header is "## template: jinja" then "#cloud-config".
	if !bytes.Contains(userData[:min(len(userData), 128)], []byte("#cloud-config")) {
		// Ignition or plain scripts: nothing the simulator reads.
		return join{}, nil
	}
	if err := yaml.Unmarshal(userData, &cloudConfig); err != nil {
		return join{}, fmt.Errorf("cloud-config does not parse: %w", err)
	}
	for _, f := range cloudConfig.WriteFiles {
		if f.Path != joinPath {
			continue
		}
		var cfg struct {
			NodeRegistration struct {
				Taints           []corev1.Taint `json:"taints"`
				KubeletExtraArgs any            `json:"kubeletExtraArgs"`
			} `json:"nodeRegistration"`
		}
		content := strings.TrimPrefix(strings.TrimSpace(f.Content), "---")
		if err := yaml.Unmarshal([]byte(content), &cfg); err != nil {
			return join{}, fmt.Errorf("%s does not parse: %w", joinPath, err)
		}
		j := join{labels: map[string]string{}, taints: cfg.NodeRegistration.Taints}
		for _, pair := range strings.Split(kubeletArg(cfg.NodeRegistration.KubeletExtraArgs, "node-labels"), ",") {
			if k, v, ok := strings.Cut(pair, "="); ok && k != "" {
				j.labels[k] = v
			}
		}
		return j, nil
	}
	return join{}, nil
}

// kubeletArg finds a kubelet argument in kubeadm's v1beta4 list form
// ([{name, value}]) or v1beta3 map form.
func kubeletArg(args any, name string) string {
	switch a := args.(type) {
	case []any:
		for _, item := range a {
			if m, ok := item.(map[string]any); ok && m["name"] == name {
				v, _ := m["value"].(string)
				return v
			}
		}
	case map[string]any:
		v, _ := a[name].(string)
		return v
	}
	return ""
}
