package cloudsim

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/joinery-dev/joinery/cloud"
)

// KwokNodeAnnotation marks the Nodes the simulated kubelet creates as
// managed by kwok, which keeps them Ready and runs their pods.
const KwokNodeAnnotation = "kwok.x-k8s.io/node"

// joinRetry is how soon a kubelet that could not register tries again.
const joinRetry = 2 * time.Second

func joinTimer(id string) string { return "join/" + id }

// scheduleJoin starts the instance's kubelet after a delay; mu held.
func (c *Cloud) scheduleJoin(id string, after time.Duration) {
	if c.stopped {
		return
	}
	c.timers[joinTimer(id)] = time.AfterFunc(after, func() { c.join(id) })
}

// join is the kubelet of a running instance: it reads the user data,
// registers the Node in the workload cluster its join configuration
// names, and retries while that cluster is unknown or unreachable.
func (c *Cloud) join(id string) {
	c.mu.Lock()
	delete(c.timers, joinTimer(id))
	inst, ok := c.instances[id]
	if !ok {
		c.mu.Unlock()
		return
	}
	now := time.Now()
	c.refresh(inst, now)
	if inst.State != StateRunning || inst.neverJoin || inst.NodeName != "" {
		if inst.State == StatePending {
			c.scheduleJoin(id, inst.LaunchTime.Add(inst.bootDelay).Sub(now)+c.opts.JoinDelay)
		}
		c.mu.Unlock()
		return
	}
	snapshot, wire := inst.copy(), *inst.wire
	c.mu.Unlock()
	log := c.opts.Log.WithValues("instance", id, "awsMachine", snapshot.AWSMachine.String())

	j, err := parseJoin(wire.userData)
	if err != nil {
		// A broken bootstrap: the instance runs, its node never joins.
		log.Error(err, "the simulated kubelet cannot join: the user data holds no usable kubeadm join")
		return
	}
	c.mu.Lock()
	w, ok := c.clusters[j.apiServerEndpoint]
	if !ok {
		c.scheduleJoin(id, joinRetry)
		c.mu.Unlock()
		log.Info("the kubelet's apiServerEndpoint is not a registered workload cluster; retrying (call cloudsim.Cloud.RegisterCluster)", "apiServerEndpoint", j.apiServerEndpoint)
		return
	}
	c.mu.Unlock()
	node, err := kubeletNode(snapshot, wire, j, c.opts.Region)
	if err != nil {
		log.Error(err, "the simulated kubelet cannot start: bad kubelet arguments in the join configuration")
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := w.client.Create(ctx, node); err != nil && !kerrors.IsAlreadyExists(err) {
		c.mu.Lock()
		c.scheduleJoin(id, joinRetry)
		c.mu.Unlock()
		log.Error(err, "registering the Node; retrying", "node", node.Name, "cluster", w.cluster.String())
		return
	}
	c.mu.Lock()
	inst.NodeName = node.Name
	if inst.Cluster.Namespace == "" || inst.Cluster.Name == w.cluster.Name {
		inst.Cluster = w.cluster
		inst.AWSMachine.Namespace = w.cluster.Namespace
	}
	gone := inst.State == StateShuttingDown || inst.State == StateTerminated
	snapshot = inst.copy()
	c.mu.Unlock()
	log.Info("node registered", "node", node.Name, "cluster", w.cluster.String())
	if gone {
		// Terminated while registering: the Node goes with it.
		if err := c.deleteNode(ctx, snapshot); err != nil {
			log.Error(err, "deleting the Node of an instance terminated while it joined")
		}
	}
}

// kernelReservedMiB is the memory a node's kernel and firmware keep from
// the type's nominal memory, which the kubelet therefore never reports:
// 156 MiB plus 3.5%, fitted to m5.large (8 GiB nominal, about 7.57 GiB
// reported) and m5.xlarge (16 GiB, about 15.3 GiB).
func kernelReservedMiB(nominalMiB int64) int64 { return 156 + nominalMiB*35/1000 }

// defaultMaxPods is the kubelet's default --max-pods.
const defaultMaxPods = 110

// kubeletNode is the Node the kubelet registers, with what the AWS cloud
// controller manager adds (provider ID, zone, region, instance type).
func kubeletNode(inst Instance, w instanceWire, j join, region string) (*corev1.Node, error) {
	capacity := nodeCapacity(w.facts, w.rootVolumeGiB)
	if s := j.args["max-pods"]; s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("kubeletExtraArgs max-pods %q: want a whole number", s)
		}
		capacity[corev1.ResourcePods] = *resource.NewQuantity(int64(n), resource.DecimalSI)
	}
	allocatable, err := nodeAllocatable(capacity, j.args)
	if err != nil {
		return nil, err
	}
	arch := "amd64"
	if w.facts.Arch == cloud.ArchARM64 {
		arch = "arm64"
	}
	labels := map[string]string{
		"kubernetes.io/hostname": inst.hostname, "kubernetes.io/arch": arch, "kubernetes.io/os": "linux",
		"beta.kubernetes.io/arch": arch, "beta.kubernetes.io/os": "linux",
		"node.kubernetes.io/instance-type": inst.InstanceType, "beta.kubernetes.io/instance-type": inst.InstanceType,
		"topology.kubernetes.io/zone": inst.Zone, "failure-domain.beta.kubernetes.io/zone": inst.Zone,
		"topology.kubernetes.io/region": region, "failure-domain.beta.kubernetes.io/region": region,
		"topology.k8s.aws/zone-id": w.zoneID,
	}
	for _, pair := range strings.Split(j.args["node-labels"], ",") {
		if pair == "" {
			continue
		}
		k, v, ok := strings.Cut(pair, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("kubeletExtraArgs node-labels %q: want key=value pairs separated by commas", j.args["node-labels"])
		}
		labels[k] = v
	}
	taints := append([]corev1.Taint(nil), j.taints...)
	for _, spec := range strings.Split(j.args["register-with-taints"], ",") {
		if spec == "" {
			continue
		}
		t, err := parseTaint(spec)
		if err != nil {
			return nil, fmt.Errorf("kubeletExtraArgs register-with-taints %q: %w", j.args["register-with-taints"], err)
		}
		if !containsTaint(taints, t) {
			taints = append(taints, t)
		}
	}
	providerID := j.args["provider-id"]
	if providerID == "" {
		providerID = fmt.Sprintf("aws:///%s/%s", inst.Zone, inst.ID)
	}
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: inst.hostname, Labels: labels, Annotations: map[string]string{KwokNodeAnnotation: "fake"}},
		Spec:       corev1.NodeSpec{ProviderID: providerID, Taints: taints},
		Status: corev1.NodeStatus{
			Capacity: capacity, Allocatable: allocatable,
			Addresses: []corev1.NodeAddress{
				{Type: corev1.NodeInternalIP, Address: inst.PrivateIP},
				{Type: corev1.NodeInternalDNS, Address: inst.hostname},
				{Type: corev1.NodeHostName, Address: inst.hostname},
			},
			NodeInfo: corev1.NodeSystemInfo{Architecture: arch, OperatingSystem: "linux"},
		},
	}, nil
}

// nodeCapacity is what the kubelet reports of an instance type: its
// vCPUs, its memory less the kernel's share, 110 pods, the root volume as
// ephemeral storage, and its accelerators as device plugin resources.
func nodeCapacity(it cloud.InstanceType, rootGiB int32) corev1.ResourceList {
	memMiB := it.MemoryMiB - kernelReservedMiB(it.MemoryMiB)
	out := corev1.ResourceList{
		corev1.ResourceCPU:              *resource.NewQuantity(int64(it.VCPU), resource.DecimalSI),
		corev1.ResourceMemory:           *resource.NewQuantity(memMiB*1024*1024, resource.BinarySI),
		corev1.ResourcePods:             *resource.NewQuantity(defaultMaxPods, resource.DecimalSI),
		corev1.ResourceEphemeralStorage: *resource.NewQuantity(int64(rootGiB)*1024*1024*1024, resource.BinarySI),
	}
	if it.GPUCount > 0 {
		name := corev1.ResourceName("nvidia.com/gpu")
		switch it.GPUManufacturer {
		case cloud.ManufacturerAMD:
			name = "amd.com/gpu"
		case cloud.ManufacturerHabana:
			name = "habana.ai/gaudi"
		}
		out[name] = *resource.NewQuantity(int64(it.GPUCount), resource.DecimalSI)
	}
	if it.AcceleratorCount > 0 && it.AcceleratorManufacturer == cloud.ManufacturerAWS {
		out["aws.amazon.com/neuron"] = *resource.NewQuantity(int64(it.AcceleratorCount), resource.DecimalSI)
	}
	return out
}

// nodeAllocatable is the kubelet's allocatable: capacity less
// kube-reserved, system-reserved and the hard eviction thresholds of
// memory (memory.available) and the root filesystem (nodefs.available).
// --eviction-hard replaces the defaults (memory.available<100Mi,
// nodefs.available<10%) as a whole, as the flag does.
func nodeAllocatable(capacity corev1.ResourceList, args map[string]string) (corev1.ResourceList, error) {
	kube, err := parseReserved(args["kube-reserved"])
	if err != nil {
		return nil, fmt.Errorf("kubeletExtraArgs kube-reserved: %w", err)
	}
	system, err := parseReserved(args["system-reserved"])
	if err != nil {
		return nil, fmt.Errorf("kubeletExtraArgs system-reserved: %w", err)
	}
	eviction := map[string]string{"memory.available": "100Mi", "nodefs.available": "10%"}
	if s, ok := args["eviction-hard"]; ok {
		eviction = map[string]string{}
		for _, pair := range strings.Split(s, ",") {
			if pair == "" {
				continue
			}
			k, v, ok := strings.Cut(pair, "<")
			if !ok {
				return nil, fmt.Errorf("kubeletExtraArgs eviction-hard %q: want signal<quantity pairs such as memory.available<100Mi", s)
			}
			eviction[k] = v
		}
	}
	out := capacity.DeepCopy()
	for name, q := range out {
		r := q.DeepCopy()
		if v, ok := kube[name]; ok {
			r.Sub(v)
		}
		if v, ok := system[name]; ok {
			r.Sub(v)
		}
		var signal string
		switch name {
		case corev1.ResourceMemory:
			signal = "memory.available"
		case corev1.ResourceEphemeralStorage:
			signal = "nodefs.available"
		}
		if v, ok := eviction[signal]; ok && signal != "" {
			t, err := threshold(v, q)
			if err != nil {
				return nil, fmt.Errorf("kubeletExtraArgs eviction-hard %s<%s: %w", signal, v, err)
			}
			r.Sub(t)
		}
		if r.Sign() < 0 {
			r = *resource.NewQuantity(0, q.Format)
		}
		out[name] = r
	}
	return out, nil
}

// threshold is an eviction threshold as a quantity; a percentage is of
// the capacity, computed as the kubelet does (a float32 fraction).
func threshold(v string, capacity resource.Quantity) (resource.Quantity, error) {
	if p, ok := strings.CutSuffix(v, "%"); ok {
		f, err := strconv.ParseFloat(p, 32)
		if err != nil || f < 0 || f > 100 {
			return resource.Quantity{}, fmt.Errorf("want a percentage from 0%% to 100%%")
		}
		fraction := float32(f) / 100
		return *resource.NewQuantity(int64(float64(capacity.Value())*float64(fraction)), resource.BinarySI), nil
	}
	q, err := resource.ParseQuantity(v)
	if err != nil {
		return resource.Quantity{}, err
	}
	return q, nil
}

func parseReserved(s string) (corev1.ResourceList, error) {
	out := corev1.ResourceList{}
	for _, pair := range strings.Split(s, ",") {
		if pair == "" {
			continue
		}
		k, v, ok := strings.Cut(pair, "=")
		if !ok {
			return nil, fmt.Errorf("%q: want resource=quantity pairs such as cpu=100m,memory=256Mi", s)
		}
		q, err := resource.ParseQuantity(v)
		if err != nil {
			return nil, fmt.Errorf("%s=%s: %w", k, v, err)
		}
		out[corev1.ResourceName(k)] = q
	}
	return out, nil
}

// parseTaint reads key[=value]:Effect, the kubelet's taint syntax.
func parseTaint(spec string) (corev1.Taint, error) {
	kv, effect, ok := strings.Cut(spec, ":")
	if !ok {
		return corev1.Taint{}, fmt.Errorf("taint %q: want key[=value]:Effect", spec)
	}
	switch e := corev1.TaintEffect(effect); e {
	case corev1.TaintEffectNoSchedule, corev1.TaintEffectPreferNoSchedule, corev1.TaintEffectNoExecute:
	default:
		return corev1.Taint{}, fmt.Errorf("taint %q: effect %q is not NoSchedule, PreferNoSchedule or NoExecute", spec, effect)
	}
	k, v, _ := strings.Cut(kv, "=")
	return corev1.Taint{Key: k, Value: v, Effect: corev1.TaintEffect(effect)}, nil
}

func containsTaint(taints []corev1.Taint, t corev1.Taint) bool {
	for _, x := range taints {
		if x.Key == t.Key && x.Effect == t.Effect {
			return true
		}
	}
	return false
}
