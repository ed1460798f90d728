package solverinput

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/joinery-dev/joinery/api/v1alpha1"
	"github.com/joinery-dev/joinery/cloud"
)

// KubeletArg is one kubelet flag of a KubeadmConfig
// (joinConfiguration.nodeRegistration.kubeletExtraArgs), without "--".
type KubeletArg struct {
	Name  string
	Value string
}

// The kubelet flags that change a node's allocatable resources.
const (
	ArgMaxPods        = "max-pods"
	ArgPodsPerCore    = "pods-per-core"
	ArgKubeReserved   = "kube-reserved"
	ArgSystemReserved = "system-reserved"
	ArgEvictionHard   = "eviction-hard"
)

// Kubelet flags the NodePool's kubelet block sets that do not change
// allocatable.
const (
	argEvictionSoft              = "eviction-soft"
	argEvictionSoftGracePeriod   = "eviction-soft-grace-period"
	argEvictionMaxPodGracePeriod = "eviction-max-pod-grace-period"
	argImageGCHighThreshold      = "image-gc-high-threshold"
	argImageGCLowThreshold       = "image-gc-low-threshold"
	argCPUCFSQuota               = "cpu-cfs-quota"
	argClusterDNS                = "cluster-dns"
)

// MaxKubeletArgValue is the longest value CAPI v1beta2 admits for a
// kubeletExtraArgs entry (bootstrapv1.Arg.Value, MaxLength=1024).
const MaxKubeletArgValue = 1024

// NodeModel is what a pool's templates say about the nodes it makes,
// besides the NodePool itself. The zero value is a kubeadm node with the
// kubelet's defaults, an 8Gi root volume and either architecture.
type NodeModel struct {
	// KubeletArgs are the bootstrap template's kubeletExtraArgs.
	KubeletArgs []KubeletArg
	// RootVolume is the root EBS volume: the AWSMachineTemplate's
	// rootVolume.size, else the AMI's root device (zero: unknown, then
	// cloud.DefaultRootVolumeSize).
	RootVolume resource.Quantity
	// Arch is the only architecture the pool's AMI runs (amd64, arm64), or
	// empty when the template looks the AMI up per instance type.
	Arch string
	// VMMemoryOverheadPercent replaces cloud.DefaultVMMemoryOverheadPercent
	// when > 0.
	VMMemoryOverheadPercent float64
}

// nodeOptions are the cloud package's view of the model.
func (m NodeModel) nodeOptions() cloud.NodeOptions {
	opts := cloud.DefaultNodeOptions()
	if !m.RootVolume.IsZero() {
		opts.RootVolumeSize = m.RootVolume.DeepCopy()
	}
	if m.VMMemoryOverheadPercent > 0 {
		opts.VMMemoryOverheadPercent = m.VMMemoryOverheadPercent
	}
	return opts
}

// KubeletArgs merges a NodePool's kubelet settings into the bootstrap
// template's kubelet flags; the result is what the node's kubelet runs
// with and what planning sizes the node for. The NodePool wins, as
// Karpenter's kubelet block does: its maxPods, podsPerCore,
// evictionMaxPodGracePeriod, image GC thresholds, cpuCFSQuota and
// clusterDNS replace the template's flags; its kubeReserved,
// systemReserved, evictionHard, evictionSoft and evictionSoftGracePeriod
// entries replace the template's entries for the same resource or signal
// and keep the others. A NodePool evictionHard without a template
// --eviction-hard starts from the kubelet's defaults, because the kubelet
// takes the flag as the whole set: without them the node would lose its
// default disk-pressure thresholds. Each flag appears once, where the
// template had it; new flags go last, in a fixed order.
func KubeletArgs(template []KubeletArg, k *v1alpha1.KubeletConfiguration) ([]KubeletArg, error) {
	args := dedupe(template)
	if k == nil {
		return args, nil
	}
	set := func(name, value string) error {
		if len(value) > MaxKubeletArgValue {
			return fmt.Errorf("kubelet flag --%s would be %d characters long; CAPI admits at most %d in a kubeletExtraArgs value: set fewer entries", name, len(value), MaxKubeletArgValue)
		}
		if i := slices.IndexFunc(args, func(a KubeletArg) bool { return a.Name == name }); i >= 0 {
			args[i].Value = value
			return nil
		}
		args = append(args, KubeletArg{Name: name, Value: value})
		return nil
	}
	current := func(name string) (string, bool) {
		for _, a := range args {
			if a.Name == name {
				return a.Value, true
			}
		}
		return "", false
	}
	if k.MaxPods != nil {
		if err := set(ArgMaxPods, strconv.Itoa(int(*k.MaxPods))); err != nil {
			return nil, err
		}
	}
	if k.PodsPerCore != nil {
		if err := set(ArgPodsPerCore, strconv.Itoa(int(*k.PodsPerCore))); err != nil {
			return nil, err
		}
	}
	for _, r := range []struct {
		flag string
		m    map[string]string
	}{{ArgKubeReserved, stringMap(k.KubeReserved)}, {ArgSystemReserved, stringMap(k.SystemReserved)}} {
		if len(r.m) == 0 {
			continue
		}
		value, _ := current(r.flag)
		merged, err := parseMap(r.flag, value, "=")
		if err != nil {
			return nil, err
		}
		for key, v := range r.m {
			merged[key] = v
		}
		if err := set(r.flag, formatMap(merged, "=")); err != nil {
			return nil, err
		}
	}
	// Soft thresholds and their grace periods merge by signal; the kubelet
	// has no default soft thresholds.
	for _, soft := range []struct {
		flag, sep string
		m         map[string]string
	}{{argEvictionSoft, "<", stringMap(k.EvictionSoft)}, {argEvictionSoftGracePeriod, "=", stringMap(k.EvictionSoftGracePeriod)}} {
		if len(soft.m) == 0 {
			continue
		}
		value, _ := current(soft.flag)
		merged, err := parseMap(soft.flag, value, soft.sep)
		if err != nil {
			return nil, err
		}
		for signal, v := range soft.m {
			merged[signal] = v
		}
		if err := set(soft.flag, formatMap(merged, soft.sep)); err != nil {
			return nil, err
		}
	}
	for _, n := range []struct {
		flag  string
		value *int32
	}{{argEvictionMaxPodGracePeriod, k.EvictionMaxPodGracePeriod}, {argImageGCHighThreshold, k.ImageGCHighThresholdPercent}, {argImageGCLowThreshold, k.ImageGCLowThresholdPercent}} {
		if n.value == nil {
			continue
		}
		if err := set(n.flag, strconv.Itoa(int(*n.value))); err != nil {
			return nil, err
		}
	}
	if k.CPUCFSQuota != nil {
		if err := set(argCPUCFSQuota, strconv.FormatBool(*k.CPUCFSQuota)); err != nil {
			return nil, err
		}
	}
	if len(k.ClusterDNS) > 0 {
		if err := set(argClusterDNS, strings.Join(k.ClusterDNS, ",")); err != nil {
			return nil, err
		}
	}
	if len(k.EvictionHard) > 0 {
		merged := cloud.DefaultEvictionHard()
		if value, ok := current(ArgEvictionHard); ok {
			var err error
			if merged, err = parseMap(ArgEvictionHard, value, "<"); err != nil {
				return nil, err
			}
		}
		for signal, v := range stringMap(k.EvictionHard) {
			merged[signal] = v
		}
		if err := set(ArgEvictionHard, formatMap(merged, "<")); err != nil {
			return nil, err
		}
	}
	return args, nil
}

// dedupe keeps the last value of a flag given twice (as the kubelet's flag
// parser does) at the place of its first.
func dedupe(args []KubeletArg) []KubeletArg {
	out := make([]KubeletArg, 0, len(args))
	for _, a := range args {
		if i := slices.IndexFunc(out, func(b KubeletArg) bool { return b.Name == a.Name }); i >= 0 {
			out[i].Value = a.Value
			continue
		}
		out = append(out, a)
	}
	return out
}

// KubeletConfigFromArgs reads the allocatable-shaping flags of a node's
// kubelet, as the kubelet parses them.
func KubeletConfigFromArgs(args []KubeletArg) (cloud.KubeletConfig, error) {
	var kc cloud.KubeletConfig
	for _, a := range dedupe(args) {
		switch a.Name {
		case ArgMaxPods, ArgPodsPerCore:
			n, err := strconv.ParseInt(strings.TrimSpace(a.Value), 10, 32)
			if err != nil || n < 0 {
				return kc, fmt.Errorf("kubelet flag --%s=%q is not a number of pods >= 0", a.Name, a.Value)
			}
			if a.Name == ArgMaxPods {
				kc.MaxPods = ptrInt32(n)
			} else {
				kc.PodsPerCore = ptrInt32(n)
			}
		case ArgKubeReserved, ArgSystemReserved:
			m, err := parseMap(a.Name, a.Value, "=")
			if err != nil {
				return kc, err
			}
			if a.Name == ArgKubeReserved {
				kc.KubeReserved = m
			} else {
				kc.SystemReserved = m
			}
		case ArgEvictionHard:
			m, err := parseMap(a.Name, a.Value, "<")
			if err != nil {
				return kc, err
			}
			kc.EvictionHard = m
		}
	}
	if err := kc.Validate(); err != nil {
		return kc, fmt.Errorf("kubelet flags: %w", err)
	}
	return kc, nil
}

func ptrInt32(n int64) *int32 {
	v := int32(n)
	return &v
}

// parseMap reads "k=v,k=v" (sep "=") or "signal<v,signal<v" (sep "<").
func parseMap(flag, value, sep string) (map[string]string, error) {
	m := map[string]string{}
	for _, kv := range strings.Split(value, ",") {
		kv = strings.TrimSpace(kv)
		if kv == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, sep)
		if !ok || strings.TrimSpace(k) == "" {
			return nil, fmt.Errorf("kubelet flag --%s=%q: %q is not key%svalue", flag, value, kv, sep)
		}
		m[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	return m, nil
}

func formatMap(m map[string]string, sep string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + sep + m[k]
	}
	return strings.Join(parts, ",")
}
