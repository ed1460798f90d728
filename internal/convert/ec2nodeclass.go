package convert

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	infrav1 "sigs.k8s.io/cluster-api-provider-aws/v2/api/v1beta2"
	bootstrapv1 "sigs.k8s.io/cluster-api/api/bootstrap/kubeadm/v1beta2"

	"github.com/joinery-dev/joinery/api/v1alpha1"
)

// PlaceholderInstanceType is the AWSMachineTemplate's instanceType, which
// CAPA requires; Joinery replaces it (and the market) on every machine it
// launches.
const PlaceholderInstanceType = "m5.large"

// classResult is what an EC2NodeClass becomes.
type classResult struct {
	machine          *infrav1.AWSMachineTemplate
	machineComment   string
	bootstrap        *bootstrapv1.KubeadmConfigTemplate
	bootstrapComment string
	// kubelet is the part of spec.kubelet a Joinery NodePool carries.
	kubelet *v1alpha1.KubeletConfiguration
	// amiIDs are the AMIs the template pins (the first is used).
	amiIDs []string
	// reservationTerms are the class's capacityReservationSelectorTerms,
	// which its NodePools carry.
	reservationTerms []v1alpha1.CapacityReservationSelectorTerm
}

var awsAccountID = regexp.MustCompile(`^[0-9]{12}$`)

func (c *converter) convertEC2NodeClass(src *EC2NodeClassSource) *classResult {
	class := src.class
	name := class.Metadata.Name
	object := "EC2NodeClass " + name
	machineRef := "AWSMachineTemplate " + name
	bootstrapRef := "KubeadmConfigTemplate " + name
	spec := infrav1.AWSMachineSpec{InstanceType: PlaceholderInstanceType}
	cr := &classResult{}
	s := class.Spec

	// AMI.
	for i, term := range s.AMISelectorTerms {
		field := fmt.Sprintf("spec.amiSelectorTerms[%d]", i)
		switch {
		case term.ID != "":
			cr.amiIDs = append(cr.amiIDs, term.ID)
			if len(cr.amiIDs) == 1 {
				spec.AMI.ID = ptr.To(term.ID)
			} else {
				c.warn(object, field+".id", "%q is not used: an AWSMachineTemplate has one AMI (%s); Karpenter picked among several (e.g. one per architecture), so split the EC2NodeClass into one %s per AMI and restrict each NodePool's kubernetes.io/arch", term.ID, cr.amiIDs[0], "AWSMachineTemplate")
			}
		case term.Alias != "":
			c.warn(object, field+".alias", "%q has no CAPA equivalent; set spec.ami.id on %s (an image that boots with cloud-init and has kubeadm and the kubelet, e.g. one built with image-builder, since %s bootstraps with kubeadm)", term.Alias, machineRef, bootstrapRef)
		case term.SSMParameter != "":
			c.warn(object, field+".ssmParameter", "%q has no CAPA equivalent; resolve it (aws ssm get-parameter) and set spec.ami.id on %s", term.SSMParameter, machineRef)
		case term.Name != "" && awsAccountID.MatchString(term.Owner) && len(term.Tags) == 0 && spec.ImageLookupFormat == "" && spec.AMI.ID == nil:
			// CAPA looks the newest AMI up by name pattern, owner account
			// and the instance type's architecture, as Karpenter does.
			spec.ImageLookupFormat = term.Name
			spec.ImageLookupOrg = term.Owner
		case term.Name != "":
			c.warn(object, field+".name", "%q (owner %q, tags %v) has no CAPA equivalent: CAPA looks AMIs up by a name pattern and one owner account ID only; set spec.ami.id, or spec.imageLookupFormat and spec.imageLookupOrg, on %s", term.Name, term.Owner, sortedPairs(term.Tags, "="), machineRef)
		default:
			c.warn(object, field+".tags", "%v has no CAPA equivalent: CAPA cannot select AMIs by tag; set spec.ami.id on %s", sortedPairs(term.Tags, "="), machineRef)
		}
	}
	if spec.AMI.ID != nil && spec.ImageLookupFormat != "" {
		spec.ImageLookupFormat, spec.ImageLookupOrg = "", ""
	}
	if s.AMIFamily != nil && *s.AMIFamily != "Custom" {
		c.warn(object, "spec.amiFamily", "%q has no CAPA equivalent: Karpenter generated %s user data, but the node is bootstrapped by %s with kubeadm; make sure the AMI of %s has kubeadm and the kubelet installed", *s.AMIFamily, *s.AMIFamily, bootstrapRef, machineRef)
	}
	if s.UserData != nil {
		c.warn(object, "spec.userData", "has no CAPA equivalent: CAPA's user data is the bootstrap data; move its commands to spec.template.spec.preKubeadmCommands (and files to spec.template.spec.files) of %s", bootstrapRef)
	}

	// Identity.
	switch {
	case s.InstanceProfile != nil:
		spec.IAMInstanceProfile = *s.InstanceProfile
	case s.Role != "":
		spec.IAMInstanceProfile = s.Role
		c.warn(object, "spec.role", "%q is an IAM role, but CAPA needs an instance profile name; spec.iamInstanceProfile of %s is set to %q: create an instance profile of that name holding the role (aws iam create-instance-profile, add-role-to-instance-profile) or set the name of an existing one", s.Role, machineRef, s.Role)
	}

	// Network.
	c.convertSubnets(object, machineRef, s.SubnetSelectorTerms, &spec)
	c.convertSecurityGroups(object, s.SecurityGroupSelectorTerms, &spec)
	if s.AssociatePublicIPAddress != nil {
		spec.PublicIP = ptr.To(*s.AssociatePublicIPAddress)
	}
	// Capacity reservations are selected by the NodePool in Joinery (there
	// is no node class), with the same terms: every NodePool of this class
	// gets them.
	for i, term := range s.CapacityReservationSelectorTerms {
		field := fmt.Sprintf("spec.capacityReservationSelectorTerms[%d]", i)
		cr.reservationTerms = append(cr.reservationTerms, v1alpha1.CapacityReservationSelectorTerm{ID: term.ID, Tags: term.Tags, OwnerID: term.OwnerID})
		if term.InstanceMatchCriteria != "" {
			c.warn(object, field+".instanceMatchCriteria", "%q was not converted: Joinery launches into the reservations it selects by targeting each one, whatever its match criteria; select the reservations by id or tags", term.InstanceMatchCriteria)
		}
	}
	if s.IPPrefixCount != nil {
		c.warn(object, "spec.ipPrefixCount", "has no CAPA equivalent; configure prefix delegation in the CNI (e.g. the VPC CNI's ENABLE_PREFIX_DELEGATION) and set kubelet maxPods accordingly")
	}

	// Storage.
	c.convertBlockDevices(object, machineRef, s.BlockDeviceMappings, &spec)
	if s.InstanceStorePolicy != nil {
		c.warn(object, "spec.instanceStorePolicy", "%q has no CAPA equivalent; assemble the instance-store disks in spec.template.spec.preKubeadmCommands of %s (mdadm, then mount on /var/lib/kubelet and /var/lib/containerd)", *s.InstanceStorePolicy, bootstrapRef)
	}

	// Metadata service: Karpenter's defaults (IMDSv2 required, hop limit 1)
	// are kept when the EC2NodeClass does not say; CAPA's own default
	// would allow IMDSv1.
	imds := &infrav1.InstanceMetadataOptions{
		HTTPEndpoint:            infrav1.InstanceMetadataEndpointStateEnabled,
		HTTPProtocolIPv6:        infrav1.InstanceMetadataEndpointStateDisabled,
		HTTPPutResponseHopLimit: 1,
		HTTPTokens:              infrav1.HTTPTokensStateRequired,
		InstanceMetadataTags:    infrav1.InstanceMetadataEndpointStateDisabled,
	}
	if m := s.MetadataOptions; m != nil {
		if m.HTTPEndpoint != nil {
			imds.HTTPEndpoint = infrav1.InstanceMetadataState(*m.HTTPEndpoint)
		}
		if m.HTTPProtocolIPv6 != nil {
			imds.HTTPProtocolIPv6 = infrav1.InstanceMetadataState(*m.HTTPProtocolIPv6)
		}
		if m.HTTPPutResponseHopLimit != nil {
			imds.HTTPPutResponseHopLimit = *m.HTTPPutResponseHopLimit
		}
		if m.HTTPTokens != nil {
			imds.HTTPTokens = infrav1.HTTPTokensState(*m.HTTPTokens)
		}
	}
	spec.InstanceMetadataOptions = imds

	if len(s.Tags) > 0 {
		spec.AdditionalTags = infrav1.Tags{}
		for k, v := range s.Tags {
			spec.AdditionalTags[k] = v
		}
	}
	if s.DetailedMonitoring != nil && *s.DetailedMonitoring {
		c.warn(object, "spec.detailedMonitoring", "has no CAPA equivalent; enable detailed monitoring on the instances another way (e.g. an AWS Config rule or aws ec2 monitor-instances)")
	}
	if s.EnclaveOptions != nil && ptr.Deref(s.EnclaveOptions.Enabled, false) {
		c.warn(object, "spec.enclaveOptions", "has no CAPA equivalent in AWSMachine; Nitro Enclaves cannot be enabled through %s", machineRef)
	}
	if s.Context != nil {
		c.warn(object, "spec.context", "has no CAPA equivalent; remove it")
	}

	// Kubelet: what shapes allocatable goes to the NodePools using this
	// class; the rest becomes kubelet flags in the bootstrap template.
	var kubeletArgs []bootstrapv1.Arg
	cr.kubelet, kubeletArgs = c.convertKubelet(object, "spec.kubelet", bootstrapRef, s.Kubelet, true)

	cr.machine = &infrav1.AWSMachineTemplate{
		TypeMeta:   metav1.TypeMeta{APIVersion: infrav1.GroupVersion.String(), Kind: "AWSMachineTemplate"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: c.opts.Namespace},
		Spec:       infrav1.AWSMachineTemplateSpec{Template: infrav1.AWSMachineTemplateResource{Spec: spec}},
	}
	cr.machineComment = fmt.Sprintf("From Karpenter EC2NodeClass %s (%s) by joinery convert.\n"+
		"spec.template.spec.instanceType is a placeholder: Joinery sets the instance type and market of every machine it launches.", name, src.Source)

	args := append([]bootstrapv1.Arg{{Name: "cloud-provider", Value: ptr.To("external")}}, kubeletArgs...)
	cr.bootstrap = &bootstrapv1.KubeadmConfigTemplate{
		TypeMeta:   metav1.TypeMeta{APIVersion: bootstrapv1.GroupVersion.String(), Kind: "KubeadmConfigTemplate"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: c.opts.Namespace},
		Spec: bootstrapv1.KubeadmConfigTemplateSpec{Template: bootstrapv1.KubeadmConfigTemplateResource{Spec: bootstrapv1.KubeadmConfigSpec{
			JoinConfiguration: bootstrapv1.JoinConfiguration{NodeRegistration: bootstrapv1.NodeRegistrationOptions{
				Name:             "{{ ds.meta_data.local_hostname }}",
				KubeletExtraArgs: args,
			}},
		}}},
	}
	cr.bootstrapComment = fmt.Sprintf("A stub for the machines of Karpenter EC2NodeClass %s (%s): review it.\n"+
		"Joinery adds each NodePool's labels and taints as kubelet arguments when it launches a machine.\n"+
		"cloud-provider=external expects the AWS cloud controller manager in the workload cluster.", name, src.Source)
	return cr
}

// convertSubnets maps subnet selector terms (ORed; tags within a term
// ANDed) to CAPA's one subnet reference, whose filters are ANDed and whose
// values within a filter are ORed. CAPA then picks a matching subnet in
// the machine's zone.
func (c *converter) convertSubnets(object, machineRef string, terms []subnetSelectorTerm, spec *infrav1.AWSMachineSpec) {
	if len(terms) == 0 {
		return
	}
	var ids []string
	for _, t := range terms {
		if t.ID != "" && len(t.Tags) == 0 {
			ids = append(ids, t.ID)
		}
	}
	if len(ids) == len(terms) {
		spec.Subnet = &infrav1.AWSResourceReference{Filters: []infrav1.Filter{{Name: "subnet-id", Values: ids}}}
		return
	}
	// Terms that each select one value of the same tag are one filter.
	if key, values, ok := sameTagKey(terms); ok && len(terms) > 1 {
		spec.Subnet = &infrav1.AWSResourceReference{Filters: []infrav1.Filter{{Name: "tag:" + key, Values: values}}}
		return
	}
	first := terms[0]
	spec.Subnet = &infrav1.AWSResourceReference{Filters: tagFilters(first.Tags)}
	if first.ID != "" {
		spec.Subnet.Filters = append([]infrav1.Filter{{Name: "subnet-id", Values: []string{first.ID}}}, spec.Subnet.Filters...)
	}
	for i := 1; i < len(terms); i++ {
		c.warn(object, fmt.Sprintf("spec.subnetSelectorTerms[%d]", i), "has no CAPA equivalent: CAPA selects subnets with one set of filters, and only spec.subnetSelectorTerms[0] was converted; tag the subnets so that one term selects them all, then edit spec.template.spec.subnet.filters of %s", machineRef)
	}
}

func sameTagKey(terms []subnetSelectorTerm) (string, []string, bool) {
	var key string
	var values []string
	for _, t := range terms {
		if t.ID != "" || len(t.Tags) != 1 {
			return "", nil, false
		}
		for k, v := range t.Tags {
			if (key != "" && k != key) || v == "*" {
				return "", nil, false
			}
			key = k
			values = append(values, v)
		}
	}
	return key, values, true
}

// tagFilters turns a selector's tags into EC2 filters; "*" selects any value.
func tagFilters(tags map[string]string) []infrav1.Filter {
	var filters []infrav1.Filter
	for _, k := range sortedKeys(tags) {
		if tags[k] == "*" {
			filters = append(filters, infrav1.Filter{Name: "tag-key", Values: []string{k}})
		} else {
			filters = append(filters, infrav1.Filter{Name: "tag:" + k, Values: []string{tags[k]}})
		}
	}
	return filters
}

// convertSecurityGroups maps each term to one additional security group
// reference: CAPA attaches every group each reference resolves to.
func (c *converter) convertSecurityGroups(object string, terms []securityGroupSelectorTerm, spec *infrav1.AWSMachineSpec) {
	for _, t := range terms {
		ref := infrav1.AWSResourceReference{}
		switch {
		case t.ID != "" && len(t.Tags) == 0 && t.Name == "":
			ref.ID = ptr.To(t.ID)
		default:
			if t.ID != "" {
				ref.Filters = append(ref.Filters, infrav1.Filter{Name: "group-id", Values: []string{t.ID}})
			}
			if t.Name != "" {
				ref.Filters = append(ref.Filters, infrav1.Filter{Name: "group-name", Values: []string{t.Name}})
			}
			ref.Filters = append(ref.Filters, tagFilters(t.Tags)...)
		}
		spec.AdditionalSecurityGroups = append(spec.AdditionalSecurityGroups, ref)
	}
}

// convertBlockDevices maps the root volume to rootVolume and the others
// to nonRootVolumes.
func (c *converter) convertBlockDevices(object, machineRef string, mappings []blockDeviceMapping, spec *infrav1.AWSMachineSpec) {
	root := -1
	for i, m := range mappings {
		if m.RootVolume {
			root = i
		}
	}
	if root < 0 {
		// Without the flag, the AMI's root device (as the EKS AMIs name it).
		for i, m := range mappings {
			if d := ptr.Deref(m.DeviceName, ""); d == "/dev/xvda" || d == "/dev/sda1" {
				root = i
				break
			}
		}
	}
	for i, m := range mappings {
		field := fmt.Sprintf("spec.blockDeviceMappings[%d]", i)
		if m.EBS == nil {
			c.warn(object, field, "has no ebs settings and was not converted; add the volume to %s by hand", machineRef)
			continue
		}
		vol, ok := c.convertVolume(object, field, machineRef, m)
		if !ok {
			continue
		}
		if i == root {
			vol.DeviceName = ""
			spec.RootVolume = vol
			continue
		}
		if vol.DeviceName == "" {
			c.warn(object, field+".deviceName", "is not set; CAPA needs a device name for every non-root volume: set it in spec.template.spec.nonRootVolumes of %s", machineRef)
		}
		spec.NonRootVolumes = append(spec.NonRootVolumes, *vol)
	}
}

func (c *converter) convertVolume(object, field, machineRef string, m blockDeviceMapping) (*infrav1.Volume, bool) {
	ebs := m.EBS
	vol := &infrav1.Volume{DeviceName: ptr.Deref(m.DeviceName, "")}
	if ebs.VolumeSize == nil {
		c.warn(object, field+".ebs.volumeSize", "is not set (the volume comes from snapshot %q); CAPA needs a size in GiB: add the volume to %s by hand", ptr.Deref(ebs.SnapshotID, ""), machineRef)
		return nil, false
	}
	const gib = 1 << 30
	bytes := ebs.VolumeSize.Value()
	vol.Size = (bytes + gib - 1) / gib
	if bytes%gib != 0 {
		c.warn(object, field+".ebs.volumeSize", "%s is not a whole number of GiB; CAPA sizes volumes in GiB and %s has %d", ebs.VolumeSize.String(), machineRef, vol.Size)
	}
	if vol.Size < 8 {
		c.warn(object, field+".ebs.volumeSize", "%s is below CAPA's minimum of 8 GiB; %s has 8", ebs.VolumeSize.String(), machineRef)
		vol.Size = 8
	}
	vol.Type = infrav1.VolumeType(ptr.Deref(ebs.VolumeType, ""))
	vol.IOPS = ptr.Deref(ebs.IOPS, 0)
	if ebs.Throughput != nil {
		vol.Throughput = ptr.To(*ebs.Throughput)
	}
	if ebs.Encrypted != nil {
		vol.Encrypted = ptr.To(*ebs.Encrypted)
	}
	vol.EncryptionKey = ptr.Deref(ebs.KMSKeyID, "")
	if ebs.SnapshotID != nil {
		c.warn(object, field+".ebs.snapshotID", "%q has no CAPA equivalent: CAPA creates empty volumes; bake the data into the AMI or restore it in preKubeadmCommands", *ebs.SnapshotID)
	}
	if ebs.VolumeInitializationRate != nil {
		c.warn(object, field+".ebs.volumeInitializationRate", "has no CAPA equivalent; remove it")
	}
	if ebs.DeleteOnTermination != nil && !*ebs.DeleteOnTermination {
		c.warn(object, field+".ebs.deleteOnTermination", "false has no CAPA equivalent: CAPA deletes its volumes with the instance; keep data on a PersistentVolume instead")
	}
	return vol, true
}

// Patterns of the Joinery NodePool's kubelet values.
var (
	reservedQuantity  = regexp.MustCompile(`^[0-9]+(\.[0-9]+)?(m|Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$`)
	evictionThreshold = regexp.MustCompile(`^(([0-9]+(\.[0-9]+)?%)|([0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?))$`)
)

// convertKubelet splits Karpenter's kubelet settings into the Joinery
// NodePool's kubelet (what shapes allocatable, which Joinery plans with)
// and kubelet flags for the KubeadmConfigTemplate (the rest). When
// argsExpressible is false the flags cannot be placed (the settings are a
// NodePool's, but the template is shared) and become warnings.
func (c *converter) convertKubelet(object, field, bootstrapRef string, k *kubeletConfiguration, argsExpressible bool) (*v1alpha1.KubeletConfiguration, []bootstrapv1.Arg) {
	if k == nil {
		return nil, nil
	}
	out := &v1alpha1.KubeletConfiguration{}
	if k.MaxPods != nil {
		if *k.MaxPods >= 1 && *k.MaxPods <= 1000 {
			out.MaxPods = ptr.To(*k.MaxPods)
		} else {
			c.warn(object, field+".maxPods", "%d is outside Joinery's 1-1000 and was not converted; set spec.template.spec.kubelet.maxPods on the NodePool", *k.MaxPods)
		}
	}
	if k.PodsPerCore != nil && *k.PodsPerCore != 0 { // 0 means no per-core cap
		if *k.PodsPerCore >= 1 && *k.PodsPerCore <= 1000 {
			out.PodsPerCore = ptr.To(*k.PodsPerCore)
		} else {
			c.warn(object, field+".podsPerCore", "%d is outside Joinery's 1-1000 and was not converted", *k.PodsPerCore)
		}
	}
	reserved := func(name string, in map[string]string) map[string]v1alpha1.ReservedQuantity {
		var m map[string]v1alpha1.ReservedQuantity
		for _, key := range sortedKeys(in) {
			if !reservedQuantity.MatchString(in[key]) {
				c.warn(object, fmt.Sprintf("%s.%s[%s]", field, name, key), "%q is not a plain quantity (like 100m or 1Gi) and was not converted; set it on the NodePool's spec.template.spec.kubelet.%s", in[key], name)
				continue
			}
			if m == nil {
				m = map[string]v1alpha1.ReservedQuantity{}
			}
			m[key] = v1alpha1.ReservedQuantity(in[key])
		}
		return m
	}
	out.SystemReserved = reserved("systemReserved", k.SystemReserved)
	out.KubeReserved = reserved("kubeReserved", k.KubeReserved)
	for _, key := range sortedKeys(k.EvictionHard) {
		if !evictionThreshold.MatchString(k.EvictionHard[key]) {
			c.warn(object, fmt.Sprintf("%s.evictionHard[%s]", field, key), "%q is not a quantity or percentage and was not converted", k.EvictionHard[key])
			continue
		}
		if out.EvictionHard == nil {
			out.EvictionHard = map[string]v1alpha1.EvictionThreshold{}
		}
		out.EvictionHard[key] = v1alpha1.EvictionThreshold(k.EvictionHard[key])
	}

	var args []bootstrapv1.Arg
	arg := func(source, flag, value string) {
		if argsExpressible {
			args = append(args, bootstrapv1.Arg{Name: flag, Value: ptr.To(value)})
			return
		}
		c.warn(object, field+"."+source, "is a setting of this NodePool only, but KubeadmConfigTemplates are per EC2NodeClass; add the kubelet argument %s=%s to %s (or a copy of it for this NodePool)", flag, value, bootstrapRef)
	}
	if len(k.ClusterDNS) > 0 {
		arg("clusterDNS", "cluster-dns", strings.Join(k.ClusterDNS, ","))
	}
	if len(k.EvictionSoft) > 0 {
		arg("evictionSoft", "eviction-soft", strings.Join(sortedPairs(k.EvictionSoft, "<"), ","))
	}
	if len(k.EvictionSoftGracePeriod) > 0 {
		arg("evictionSoftGracePeriod", "eviction-soft-grace-period", strings.Join(sortedPairs(k.EvictionSoftGracePeriod, "="), ","))
	}
	if k.EvictionMaxPodGracePeriod != nil {
		arg("evictionMaxPodGracePeriod", "eviction-max-pod-grace-period", strconv.Itoa(int(*k.EvictionMaxPodGracePeriod)))
	}
	if k.ImageGCHighThresholdPercent != nil {
		arg("imageGCHighThresholdPercent", "image-gc-high-threshold", strconv.Itoa(int(*k.ImageGCHighThresholdPercent)))
	}
	if k.ImageGCLowThresholdPercent != nil {
		arg("imageGCLowThresholdPercent", "image-gc-low-threshold", strconv.Itoa(int(*k.ImageGCLowThresholdPercent)))
	}
	if k.CPUCFSQuota != nil {
		arg("cpuCFSQuota", "cpu-cfs-quota", strconv.FormatBool(*k.CPUCFSQuota))
	}
	if out.MaxPods == nil && out.PodsPerCore == nil && out.SystemReserved == nil && out.KubeReserved == nil && out.EvictionHard == nil {
		out = nil
	}
	return out, args
}

func sortedKeys[K ~string, V any](m map[K]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, string(k))
	}
	sort.Strings(keys)
	return keys
}

func sortedPairs(m map[string]string, sep string) []string {
	pairs := make([]string, 0, len(m))
	for _, k := range sortedKeys(m) {
		pairs = append(pairs, k+sep+m[k])
	}
	return pairs
}
