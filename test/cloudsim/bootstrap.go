package cloudsim

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// joinPath is where CAPI's kubeadm bootstrap provider writes the
// JoinConfiguration in a worker's cloud-init (bootstrap/kubeadm/pkg/cloudinit/node.go).
const joinPath = "/run/kubeadm/kubeadm-join-config.yaml"

// join is what the kubelet of a joining node takes from its user data.
type join struct {
	// apiServerEndpoint is discovery.bootstrapToken.apiServerEndpoint:
	// the workload cluster the node registers with.
	apiServerEndpoint string
	// args are nodeRegistration.kubeletExtraArgs (the last value of a
	// repeated name wins, as for kubelet flags).
	args   map[string]string
	taints []corev1.Taint
}

// parseJoin reads user data the way the instance would: gunzip it if CAPA
// compressed it, take the cloud-config's kubeadm JoinConfiguration, and
// from that the endpoint, the kubelet arguments and the taints.
func parseJoin(userData []byte) (join, error) {
	if len(userData) >= 2 && userData[0] == 0x1f && userData[1] == 0x8b {
		r, err := gzip.NewReader(bytes.NewReader(userData))
		if err != nil {
			return join{}, fmt.Errorf("user data is gzip but does not open: %w", err)
		}
		if userData, err = io.ReadAll(io.LimitReader(r, 1<<20)); err != nil {
			return join{}, fmt.Errorf("user data is gzip but does not read: %w", err)
		}
	}
	// CABPK's header is "## template: jinja" then "#cloud-config".
	if !bytes.Contains(userData[:min(len(userData), 128)], []byte("#cloud-config")) {
		return join{}, fmt.Errorf("user data is not a cloud-config (Ignition and scripts are not simulated); it starts %q", string(userData[:min(len(userData), 40)]))
	}
	var cloudConfig struct {
		WriteFiles []struct {
			Path     string `json:"path"`
			Content  string `json:"content"`
			Encoding string `json:"encoding"`
		} `json:"write_files"`
	}
	if err := yaml.Unmarshal(userData, &cloudConfig); err != nil {
		return join{}, fmt.Errorf("cloud-config does not parse: %w", err)
	}
	for _, f := range cloudConfig.WriteFiles {
		if f.Path != joinPath {
			continue
		}
		if f.Encoding != "" {
			return join{}, fmt.Errorf("%s is written with encoding %q; the simulated kubelet reads plain content", joinPath, f.Encoding)
		}
		var cfg struct {
			Kind      string `json:"kind"`
			Discovery struct {
				BootstrapToken struct {
					APIServerEndpoint string `json:"apiServerEndpoint"`
				} `json:"bootstrapToken"`
			} `json:"discovery"`
			NodeRegistration struct {
				Taints           []corev1.Taint `json:"taints"`
				KubeletExtraArgs any            `json:"kubeletExtraArgs"`
			} `json:"nodeRegistration"`
		}
		// The file may hold several YAML documents; the JoinConfiguration
		// is the one of that kind.
		for _, doc := range strings.Split(f.Content, "\n---") {
			doc = strings.TrimPrefix(strings.TrimSpace(doc), "---")
			if err := yaml.Unmarshal([]byte(doc), &cfg); err != nil {
				return join{}, fmt.Errorf("%s does not parse: %w", joinPath, err)
			}
			if cfg.Kind == "JoinConfiguration" {
				break
			}
		}
		if cfg.Kind != "JoinConfiguration" {
			return join{}, fmt.Errorf("%s holds no JoinConfiguration", joinPath)
		}
		j := join{apiServerEndpoint: cfg.Discovery.BootstrapToken.APIServerEndpoint, args: kubeletArgs(cfg.NodeRegistration.KubeletExtraArgs), taints: cfg.NodeRegistration.Taints}
		if j.apiServerEndpoint == "" {
			return join{}, fmt.Errorf("%s: discovery.bootstrapToken.apiServerEndpoint is empty", joinPath)
		}
		return j, nil
	}
	return join{}, fmt.Errorf("the cloud-config writes no %s: not a kubeadm join", joinPath)
}

// kubeletArgs reads kubeadm's v1beta4 list form ([{name, value}]) or
// v1beta3 map form of kubeletExtraArgs.
func kubeletArgs(args any) map[string]string {
	out := map[string]string{}
	switch a := args.(type) {
	case []any:
		for _, item := range a {
			if m, ok := item.(map[string]any); ok {
				name, _ := m["name"].(string)
				v, _ := m["value"].(string)
				out[name] = v
			}
		}
	case map[string]any:
		for k, v := range a {
			s, _ := v.(string)
			out[k] = s
		}
	}
	return out
}
