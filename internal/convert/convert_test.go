package convert

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	infrav1 "sigs.k8s.io/cluster-api-provider-aws/v2/api/v1beta2"
	bootstrapv1 "sigs.k8s.io/cluster-api/api/bootstrap/kubeadm/v1beta2"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	"github.com/joinery-dev/joinery/api/v1alpha1"
	"github.com/joinery-dev/joinery/internal/admission"
)

var update = flag.Bool("update", false, "rewrite the testdata/*.golden.yaml files")

var clusterOpts = Options{ClusterName: "workload-1", Namespace: "team-a"}

// decoded is the output read back, each document strictly decoded into
// the type the apiserver (or CAPI/CAPA) would decode it into.
type decoded struct {
	pools     map[string]*v1alpha1.NodePool
	machines  map[string]*infrav1.AWSMachineTemplate
	bootstrap map[string]*bootstrapv1.KubeadmConfigTemplate
}

// decodeOutput admits every NodePool with the CRD's schema and CEL rules,
// as `kubectl apply` would, and decodes every template strictly.
func decodeOutput(t *testing.T, out []byte) decoded {
	t.Helper()
	validator, err := admission.ForEmbeddedCRD("joinery.dev_nodepools.yaml", v1alpha1.GroupVersion.Version)
	if err != nil {
		t.Fatal(err)
	}
	d := decoded{pools: map[string]*v1alpha1.NodePool{}, machines: map[string]*infrav1.AWSMachineTemplate{}, bootstrap: map[string]*bootstrapv1.KubeadmConfigTemplate{}}
	reader := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(out)))
	for doc := 1; ; doc++ {
		raw, err := reader.Read()
		if err == io.EOF {
			return d
		}
		if err != nil {
			t.Fatal(err)
		}
		var head struct{ APIVersion, Kind string }
		if err := yaml.Unmarshal(raw, &head); err != nil {
			t.Fatalf("document %d: %v", doc, err)
		}
		var target interface{ GetName() string }
		switch head.APIVersion + " " + head.Kind {
		case "joinery.dev/v1alpha1 NodePool":
			obj := map[string]any{}
			if err := yaml.Unmarshal(raw, &obj); err != nil {
				t.Fatal(err)
			}
			if errs := validator.Admit(context.Background(), obj); len(errs) > 0 {
				t.Errorf("document %d: NodePool rejected by the CRD's admission: %v\n%s", doc, errs.ToAggregate(), raw)
			}
			pool := &v1alpha1.NodePool{}
			target = pool
			defer func() { d.pools[pool.Name] = pool }()
		case "infrastructure.cluster.x-k8s.io/v1beta2 AWSMachineTemplate":
			m := &infrav1.AWSMachineTemplate{}
			target = m
			defer func() { d.machines[m.Name] = m }()
		case "bootstrap.cluster.x-k8s.io/v1beta2 KubeadmConfigTemplate":
			b := &bootstrapv1.KubeadmConfigTemplate{}
			target = b
			defer func() { d.bootstrap[b.Name] = b }()
		default:
			t.Fatalf("document %d: unexpected %s %s", doc, head.APIVersion, head.Kind)
		}
		data, err := yaml.YAMLToJSON(raw)
		if err != nil {
			t.Fatal(err)
		}
		strictErrs, err := kjson.UnmarshalStrict(data, target)
		if err != nil || len(strictErrs) > 0 {
			t.Errorf("document %d (%s): does not decode strictly: %v %v", doc, head.Kind, err, strictErrs)
		}
	}
}

func convertFiles(t *testing.T, opts Options, files ...string) (*Result, []byte) {
	t.Helper()
	in, err := LoadFiles(nil, files...)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Convert(in, opts)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := res.WriteYAML(&buf); err != nil {
		t.Fatal(err)
	}
	return res, buf.Bytes()
}

func warningStrings(res *Result) string {
	var lines []string
	for _, w := range res.Warnings {
		lines = append(lines, w.String())
	}
	return strings.Join(lines, "\n")
}

// TestConvertExamples converts the Karpenter examples in testdata and
// compares with the golden output; every NodePool must pass the CRD's
// admission and every template must decode strictly into CAPA's and
// CAPI's types.
func TestConvertExamples(t *testing.T) {
	for _, tc := range []struct {
		name      string
		files     []string
		pools     []string
		templates []string
		warnings  []string
	}{
		{
			name:      "general",
			files:     []string{"testdata/general.yaml", "testdata/budgets.yaml"},
			pools:     []string{"general", "batch"},
			templates: []string{"default"},
			warnings: []string{
				`EC2NodeClass default: spec.amiSelectorTerms[0].alias "al2023@latest" has no CAPA equivalent; set spec.ami.id on AWSMachineTemplate default`,
				`EC2NodeClass default: spec.role "KarpenterNodeRole-demo" is an IAM role, but CAPA needs an instance profile name`,
				`NodePool batch: spec.limits.nodes 100 has no Joinery equivalent`,
			},
		},
		{
			name:      "gpu",
			files:     []string{"testdata/gpu.yaml"},
			pools:     []string{"gpu"},
			templates: []string{"gpu-nodes"},
			warnings: []string{
				`EC2NodeClass gpu-nodes: spec.amiFamily "AL2023" has no CAPA equivalent`,
				`EC2NodeClass gpu-nodes: spec.userData has no CAPA equivalent`,
				`move its commands to spec.template.spec.preKubeadmCommands (and files to spec.template.spec.files) of KubeadmConfigTemplate gpu-nodes`,
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, out := convertFiles(t, clusterOpts, tc.files...)
			golden := filepath.Join("testdata", tc.name+".golden.yaml")
			if *update {
				if err := os.WriteFile(golden, out, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./internal/convert -update to create it)", err)
			}
			if !bytes.Equal(out, want) {
				t.Errorf("output differs from %s (run with -update and review the diff):\n%s", golden, out)
			}
			d := decodeOutput(t, out)
			if len(d.pools) != len(tc.pools) || len(d.machines) != len(tc.templates) || len(d.bootstrap) != len(tc.templates) {
				t.Errorf("got %d NodePools, %d AWSMachineTemplates, %d KubeadmConfigTemplates; want %d, %d, %d",
					len(d.pools), len(d.machines), len(d.bootstrap), len(tc.pools), len(tc.templates), len(tc.templates))
			}
			for _, name := range tc.pools {
				pool := d.pools[name]
				if pool == nil {
					t.Fatalf("no NodePool %s", name)
				}
				if pool.Namespace != "team-a" || pool.Spec.ClusterName != "workload-1" {
					t.Errorf("NodePool %s: namespace %q cluster %q", name, pool.Namespace, pool.Spec.ClusterName)
				}
				ref := pool.Spec.Template.Spec.InfrastructureTemplateRef
				if d.machines[ref.Name] == nil || d.bootstrap[pool.Spec.Template.Spec.BootstrapTemplateRef.Name] == nil {
					t.Errorf("NodePool %s references templates %s that are not in the output", name, ref.Name)
				}
			}
			for _, tmpl := range tc.templates {
				m := d.machines[tmpl]
				if m == nil || m.Namespace != "team-a" || m.Spec.Template.Spec.InstanceType != PlaceholderInstanceType {
					t.Errorf("AWSMachineTemplate %s: %+v", tmpl, m)
				}
			}
			warnings := warningStrings(res)
			for _, w := range tc.warnings {
				if !strings.Contains(warnings, w) {
					t.Errorf("warnings do not say %q:\n%s", w, warnings)
				}
			}
		})
	}
}

// TestConvertMapsEachField checks the mapping table of
// docs/migrating-from-karpenter.md field by field.
func TestConvertMapsEachField(t *testing.T) {
	res, _ := convertFiles(t, clusterOpts, "testdata/general.yaml", "testdata/budgets.yaml", "testdata/gpu.yaml")
	pools := map[string]*v1alpha1.NodePool{}
	for _, p := range res.NodePools() {
		pools[p.Name] = p
	}
	machines := map[string]*infrav1.AWSMachineSpec{}
	for _, m := range res.AWSMachineTemplates() {
		machines[m.Name] = &m.Spec.Template.Spec
	}
	bootstraps := map[string]*bootstrapv1.KubeadmConfigTemplate{}
	for _, b := range res.KubeadmConfigTemplates() {
		bootstraps[b.Name] = b
	}
	general, batch, gpu := pools["general"], pools["batch"], pools["gpu"]
	def, gpuNodes := machines["default"], machines["gpu-nodes"]
	if general == nil || batch == nil || gpu == nil || def == nil || gpuNodes == nil {
		t.Fatalf("missing objects: pools %v, machines %v", pools, machines)
	}
	args := func(name string) string {
		var pairs []string
		for _, a := range bootstraps[name].Spec.Template.Spec.JoinConfiguration.NodeRegistration.KubeletExtraArgs {
			pairs = append(pairs, a.Name+"="+*a.Value)
		}
		return strings.Join(pairs, " ")
	}
	deref := func(p *string) string {
		if p == nil {
			return "<nil>"
		}
		return *p
	}

	for _, tc := range []struct {
		rule      string
		got, want any
	}{
		{"requirements keep operator, values and minValues", len(general.Spec.Template.Spec.Requirements), 5},
		{"minValues with Exists", *general.Spec.Template.Spec.Requirements[4].MinValues, 4},
		{"minValues with In", *gpu.Spec.Template.Spec.Requirements[2].MinValues, 2},
		{"Lt stays Lt", string(batch.Spec.Template.Spec.Requirements[2].Operator), "Lt"},
		{"template labels", string(general.Spec.Template.ObjectMeta.Labels["team"]), "platform"},
		{"template annotations", general.Spec.Template.ObjectMeta.Annotations["example.com/owner"], "platform-team"},
		{"taints", gpu.Spec.Template.Spec.Taints[0], v1alpha1.Taint{Key: "nvidia.com/gpu", Value: "true", Effect: "NoSchedule"}},
		{"startup taints", gpu.Spec.Template.Spec.StartupTaints[0].Key, "example.com/gpu-driver-not-ready"},
		{"expireAfter", batch.Spec.Template.Spec.ExpireAfter, "168h"},
		{"terminationGracePeriod", batch.Spec.Template.Spec.TerminationGracePeriod.Duration.String(), "24h0m0s"},
		{"consolidation policy", string(gpu.Spec.Disruption.ConsolidationPolicy), "WhenEmpty"},
		{"Karpenter v1.15's Balanced policy stays Balanced", string(batch.Spec.Disruption.ConsolidationPolicy), "Balanced"},
		{"consolidateAfter", gpu.Spec.Disruption.ConsolidateAfter, "10m"},
		{"budgets", len(batch.Spec.Disruption.Budgets), 3},
		{"budget schedule", deref(batch.Spec.Disruption.Budgets[1].Schedule), "0 8 * * mon-fri"},
		{"budget duration", batch.Spec.Disruption.Budgets[1].Duration.Duration.String(), "10h0m0s"},
		{"budget reasons", len(batch.Spec.Disruption.Budgets[0].Reasons), 2},
		{"limits", batch.Spec.Limits.Cpu().String(), "2k"},
		{"limits without nodes", len(batch.Spec.Limits), 1},
		{"extended resource limits", gpu.Spec.Limits.Name("nvidia.com/gpu", "").String(), "16"},
		{"weight", *gpu.Spec.Weight, int32(40)},
		{"templates named after the EC2NodeClass", gpu.Spec.Template.Spec.InfrastructureTemplateRef, v1alpha1.TemplateReference{APIGroup: "infrastructure.cluster.x-k8s.io", Kind: "AWSMachineTemplate", Name: "gpu-nodes"}},
		{"bootstrap template", gpu.Spec.Template.Spec.BootstrapTemplateRef.Kind, "KubeadmConfigTemplate"},
		{"kubelet from the EC2NodeClass", *general.Spec.Template.Spec.Kubelet.MaxPods, int32(110)},
		{"kubelet of a second pool of the class", *batch.Spec.Template.Spec.Kubelet.MaxPods, int32(110)},
		{"kubelet systemReserved", string(general.Spec.Template.Spec.Kubelet.SystemReserved["memory"]), "256Mi"},
		{"kubelet evictionHard", string(general.Spec.Template.Spec.Kubelet.EvictionHard["memory.available"]), "5%"},
		{"other kubelet settings become kubelet flags", args("default"), "cloud-provider=external cluster-dns=10.100.0.10 image-gc-high-threshold=80 image-gc-low-threshold=60"},
		{"ami id", deref(gpuNodes.AMI.ID), "ami-0a1b2c3d4e5f60718"},
		{"alias leaves the AMI unset", def.AMI.ID == nil, true},
		{"instance profile", gpuNodes.IAMInstanceProfile, "gpu-node-profile"},
		{"role becomes the instance profile name", def.IAMInstanceProfile, "KarpenterNodeRole-demo"},
		{"subnet ids", gpuNodes.Subnet.Filters, []infrav1.Filter{{Name: "subnet-id", Values: []string{"subnet-0aaa1111bbbb2222c", "subnet-0ddd3333eeee4444f"}}}},
		{"subnet tags", def.Subnet.Filters, []infrav1.Filter{{Name: "tag:karpenter.sh/discovery", Values: []string{"demo"}}}},
		{"security group by id", deref(gpuNodes.AdditionalSecurityGroups[0].ID), "sg-0123abcd4567ef890"},
		{"security group by name", gpuNodes.AdditionalSecurityGroups[1].Filters, []infrav1.Filter{{Name: "group-name", Values: []string{"gpu-nodes-extra"}}}},
		{"security group by tag", def.AdditionalSecurityGroups[0].Filters, []infrav1.Filter{{Name: "tag:karpenter.sh/discovery", Values: []string{"demo"}}}},
		{"public IP", *gpuNodes.PublicIP, false},
		{"root volume", *gpuNodes.RootVolume, infrav1.Volume{Size: 200, Type: "gp3", IOPS: 4000, Throughput: ptrTo[int64](250), Encrypted: ptrTo(true)}},
		{"other volumes", gpuNodes.NonRootVolumes, []infrav1.Volume{{DeviceName: "/dev/xvdb", Size: 500, Type: "gp3"}}},
		{"metadata options", *gpuNodes.InstanceMetadataOptions, infrav1.InstanceMetadataOptions{HTTPEndpoint: "enabled", HTTPProtocolIPv6: "disabled", HTTPPutResponseHopLimit: 2, HTTPTokens: "required", InstanceMetadataTags: "disabled"}},
		{"Karpenter's metadata defaults when unset", *def.InstanceMetadataOptions, infrav1.InstanceMetadataOptions{HTTPEndpoint: "enabled", HTTPProtocolIPv6: "disabled", HTTPPutResponseHopLimit: 1, HTTPTokens: "required", InstanceMetadataTags: "disabled"}},
		{"tags", def.AdditionalTags, infrav1.Tags{"cost-center": "1234", "environment": "staging"}},
	} {
		if !equal(tc.got, tc.want) {
			t.Errorf("%s: got %#v, want %#v", tc.rule, tc.got, tc.want)
		}
	}
}

// TestConvertWarns checks that each setting without an equivalent is
// reported with the object, the field and what to do.
func TestConvertWarns(t *testing.T) {
	const pool = `apiVersion: karpenter.sh/v1
kind: NodePool
metadata: {name: p}
spec:
  template:
    spec:
      nodeClassRef: {group: karpenter.k8s.aws, kind: EC2NodeClass, name: c}
      requirements:
      - {key: kubernetes.io/arch, operator: In, values: [amd64]}
`
	const class = `apiVersion: karpenter.k8s.aws/v1
kind: EC2NodeClass
metadata: {name: c}
spec:
  amiSelectorTerms: [{id: ami-0123456789abcdef0}]
  instanceProfile: nodes
  subnetSelectorTerms: [{tags: {tier: private}}]
  securityGroupSelectorTerms: [{id: sg-01234567}]
`
	for _, tc := range []struct {
		rule  string
		input string
		want  []string // every warning, in order
	}{
		{"a plain pool and class convert without warnings", pool + "---\n" + class, nil},
		{"an AMI alias", pool + "---\n" + strings.Replace(class, "{id: ami-0123456789abcdef0}", "{alias: al2023@latest}", 1), []string{
			`EC2NodeClass c: spec.amiSelectorTerms[0].alias "al2023@latest" has no CAPA equivalent; set spec.ami.id on AWSMachineTemplate c (an image that boots with cloud-init and has kubeadm and the kubelet, e.g. one built with image-builder, since KubeadmConfigTemplate c bootstraps with kubeadm)`,
		}},
		{"AMIs by tag and SSM parameter", pool + "---\n" + strings.Replace(class, "[{id: ami-0123456789abcdef0}]", "[{tags: {os: ubuntu}}, {ssmParameter: /my/ami}]", 1), []string{
			`EC2NodeClass c: spec.amiSelectorTerms[0].tags [os=ubuntu] has no CAPA equivalent: CAPA cannot select AMIs by tag; set spec.ami.id on AWSMachineTemplate c`,
			`EC2NodeClass c: spec.amiSelectorTerms[1].ssmParameter "/my/ami" has no CAPA equivalent; resolve it (aws ssm get-parameter) and set spec.ami.id on AWSMachineTemplate c`,
		}},
		{"two AMIs and a pool of both architectures", strings.Replace(pool, "values: [amd64]", "values: [amd64, arm64]", 1) + "---\n" + strings.Replace(class, "[{id: ami-0123456789abcdef0}]", "[{id: ami-0123456789abcdef0}, {id: ami-0fedcba9876543210}]", 1), []string{
			`EC2NodeClass c: spec.amiSelectorTerms[1].id "ami-0fedcba9876543210" is not used: an AWSMachineTemplate has one AMI (ami-0123456789abcdef0)`,
			`NodePool p: spec.template.spec.requirements allow both amd64 and arm64, but AWSMachineTemplate c has one AMI (ami-0123456789abcdef0), of one architecture; add the requirement kubernetes.io/arch In [<the AMI's architecture>]`,
		}},
		{"subnet terms that no filter expresses", pool + "---\n" + strings.Replace(class, "[{tags: {tier: private}}]", "[{tags: {tier: private}}, {id: subnet-0123}]", 1), []string{
			`EC2NodeClass c: spec.subnetSelectorTerms[1] has no CAPA equivalent: CAPA selects subnets with one set of filters, and only spec.subnetSelectorTerms[0] was converted`,
		}},
		{"a role without an instance profile", pool + "---\n" + strings.Replace(class, "instanceProfile: nodes", "role: NodeRole", 1), []string{
			`EC2NodeClass c: spec.role "NodeRole" is an IAM role, but CAPA needs an instance profile name; spec.iamInstanceProfile of AWSMachineTemplate c is set to "NodeRole"`,
		}},
		{"user data and other EC2-only settings", pool + "---\n" + class + "  userData: echo hi\n  instanceStorePolicy: RAID0\n  detailedMonitoring: true\n  capacityReservationSelectorTerms: [{id: cr-0123}]\n", []string{
			`EC2NodeClass c: spec.userData has no CAPA equivalent: CAPA's user data is the bootstrap data; move its commands to spec.template.spec.preKubeadmCommands (and files to spec.template.spec.files) of KubeadmConfigTemplate c`,
			`EC2NodeClass c: spec.instanceStorePolicy "RAID0" has no CAPA equivalent`,
			`EC2NodeClass c: spec.detailedMonitoring has no CAPA equivalent`,
		}},
		{"a block device from a snapshot", pool + "---\n" + class + "  blockDeviceMappings:\n  - {deviceName: /dev/xvda, rootVolume: true, ebs: {volumeSize: 100G, snapshotID: snap-0123, deleteOnTermination: false}}\n", []string{
			`EC2NodeClass c: spec.blockDeviceMappings[0].ebs.volumeSize 100G is not a whole number of GiB; CAPA sizes volumes in GiB and AWSMachineTemplate c has 94`,
			`EC2NodeClass c: spec.blockDeviceMappings[0].ebs.snapshotID "snap-0123" has no CAPA equivalent`,
			`EC2NodeClass c: spec.blockDeviceMappings[0].ebs.deleteOnTermination false has no CAPA equivalent`,
		}},
		{"a missing EC2NodeClass", pool, []string{
			`NodePool p: spec.template.spec.nodeClassRef.name EC2NodeClass c is not in the input, so neither are its AWSMachineTemplate and KubeadmConfigTemplate c nor its kubelet settings; pass it with -f too`,
		}},
		{"NodePool settings Joinery does not have", strings.Replace(pool, "      requirements:\n", `      requirements:
      - {key: karpenter.sh/capacity-type, operator: In, values: [reserved, on-demand]}
      - {key: karpenter.k8s.aws/instance-ebs-bandwidth, operator: Gt, values: ["1000"]}
      - {key: karpenter.k8s.aws/instance-family, operator: NotIn, values: [t3], minValues: 3}
`, 1) + `  replicas: 3
  limits: {nodes: "10"}
  disruption: {consolidateAfter: 30s, consolidateWhen: WhenCostJustifiesDisruption}
---
` + class, []string{
			`NodePool p: spec.replicas 3 has no Joinery equivalent`,
			`NodePool p: spec.limits.nodes 10 has no Joinery equivalent`,
			`NodePool p: spec.template.spec.requirements[1] on karpenter.k8s.aws/instance-ebs-bandwidth was not converted`,
			`NodePool p: spec.template.spec.requirements[2].minValues 3 was not converted: Joinery takes minValues with the operators In and Exists only`,
			`NodePool p: spec.template.spec.requirements[0].values "reserved" is kept, but EC2NodeClass c selects no capacity reservation (spec.capacityReservationSelectorTerms): this pool launches on-demand`,
			`NodePool p: spec.disruption.consolidateWhen "WhenCostJustifiesDisruption" has no Joinery equivalent`,
		}},
		{"a pool of reserved capacity only", strings.Replace(pool, "values: [amd64]}\n", "values: [amd64]}\n      - {key: karpenter.sh/capacity-type, operator: In, values: [reserved]}\n", 1) + "---\n" + class, []string{
			`NodePool p: spec.template.spec.requirements[1].values "reserved" is kept, but EC2NodeClass c selects no capacity reservation (spec.capacityReservationSelectorTerms): this pool launches nothing, its pods are reported with "no reserved offering"; add on-demand to fall back`,
		}},
		{"a well-known template label becomes a requirement", strings.Replace(pool, "    spec:\n      nodeClassRef", "    metadata: {labels: {topology.kubernetes.io/zone: us-east-1a}}\n    spec:\n      nodeClassRef", 1) + "---\n" + class, []string{
			`NodePool p: spec.template.metadata.labels[topology.kubernetes.io/zone] became the requirement topology.kubernetes.io/zone In [us-east-1a]`,
		}},
		{"the v1beta1 kubelet annotation", strings.Replace(pool, "metadata: {name: p}", `metadata: {name: p, annotations: {compatibility.karpenter.sh/v1beta1-kubelet-conversion: '{"maxPods":42,"clusterDNS":["10.0.0.10"]}'}}`, 1) + "---\n" + class, []string{
			`NodePool p: metadata.annotations[compatibility.karpenter.sh/v1beta1-kubelet-conversion].clusterDNS is a setting of this NodePool only, but KubeadmConfigTemplates are per EC2NodeClass; add the kubelet argument cluster-dns=10.0.0.10 to KubeadmConfigTemplate c`,
			`NodePool p: metadata.annotations[compatibility.karpenter.sh/v1beta1-kubelet-conversion] is Karpenter's v1beta1 kubelet left on the NodePool`,
		}},
		{"other kinds are ignored", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n---\n" + pool + "---\n" + class, []string{
			`in.yaml: document 1 (v1 ConfigMap x): is not a Karpenter v1 NodePool or EC2NodeClass, or a v1alpha1 NodeOverlay; ignored`,
		}},
	} {
		t.Run(tc.rule, func(t *testing.T) {
			in, err := Load("in.yaml", []byte(tc.input))
			if err != nil {
				t.Fatal(err)
			}
			res, err := Convert(in, clusterOpts)
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Warnings) != len(tc.want) {
				t.Errorf("got %d warnings, want %d:\n%s", len(res.Warnings), len(tc.want), warningStrings(res))
			}
			for i, want := range tc.want {
				if i < len(res.Warnings) && !strings.HasPrefix(res.Warnings[i].String(), want) {
					t.Errorf("warning %d:\n got %s\nwant %s...", i, res.Warnings[i], want)
				}
			}
			var out bytes.Buffer
			if err := res.WriteYAML(&out); err != nil {
				t.Fatal(err)
			}
			decodeOutput(t, out.Bytes())
		})
	}
}

// Karpenter v1's capacity type reserved is admitted by the CRD: it is
// carried over as written, not rewritten to on-demand, and the
// EC2NodeClass's capacityReservationSelectorTerms become the pool's.
func TestConvertKeepsReserved(t *testing.T) {
	in, err := Load("in.yaml", []byte(`apiVersion: karpenter.sh/v1
kind: NodePool
metadata: {name: p}
spec:
  template:
    spec:
      nodeClassRef: {group: karpenter.k8s.aws, kind: EC2NodeClass, name: c}
      requirements:
      - {key: karpenter.sh/capacity-type, operator: In, values: [reserved, on-demand]}
---
apiVersion: karpenter.k8s.aws/v1
kind: EC2NodeClass
metadata: {name: c}
spec:
  amiSelectorTerms: [{id: ami-0123456789abcdef0}]
  instanceProfile: nodes
  subnetSelectorTerms: [{tags: {tier: private}}]
  securityGroupSelectorTerms: [{id: sg-01234567}]
  capacityReservationSelectorTerms:
  - {id: cr-0123456789abcdef0}
  - {tags: {team: ml}, ownerID: "123456789012", instanceMatchCriteria: targeted}
`))
	if err != nil {
		t.Fatal(err)
	}
	res, err := Convert(in, clusterOpts)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := res.WriteYAML(&out); err != nil {
		t.Fatal(err)
	}
	spec := decodeOutput(t, out.Bytes()).pools["p"].Spec.Template.Spec
	got := spec.Requirements
	if len(got) != 1 || !equal(got[0].Values, []string{"reserved", "on-demand"}) {
		t.Fatalf("requirements %+v, want capacity-type In [reserved on-demand]", got)
	}
	// The EC2NodeClass's selector terms move to the pool, as written.
	wantTerms := []v1alpha1.CapacityReservationSelectorTerm{
		{ID: "cr-0123456789abcdef0"},
		{Tags: map[string]string{"team": "ml"}, OwnerID: "123456789012"},
	}
	if !equal(spec.CapacityReservationSelectorTerms, wantTerms) {
		t.Errorf("capacityReservationSelectorTerms %+v, want %+v", spec.CapacityReservationSelectorTerms, wantTerms)
	}
	var warned bool
	for _, w := range res.Warnings {
		if strings.Contains(w.String(), "spec.capacityReservationSelectorTerms[1].instanceMatchCriteria") {
			warned = true
		}
		if strings.Contains(w.String(), "selects no capacity reservation") {
			t.Errorf("warned %q though the class selects reservations", w)
		}
	}
	if !warned {
		t.Errorf("no warning for instanceMatchCriteria, which is not converted: %v", res.Warnings)
	}
}

func TestConvertClusterSelectorAndNamespace(t *testing.T) {
	sel := mustSelector(t, "env=dev,tier in (a,b)")
	res, out := convertFiles(t, Options{ClusterSelector: sel}, "testdata/gpu.yaml")
	pool := res.NodePools()[0]
	if pool.Spec.ClusterName != "" || pool.Spec.ClusterSelector.MatchLabels["env"] != "dev" || len(pool.Spec.ClusterSelector.MatchExpressions) != 1 {
		t.Errorf("cluster selector: %+v", pool.Spec.ClusterSelector)
	}
	if pool.Namespace != "default" || res.AWSMachineTemplates()[0].Namespace != "default" {
		t.Errorf("namespace: got %q, want default", pool.Namespace)
	}
	decodeOutput(t, out)
}

func TestOptionsAreChecked(t *testing.T) {
	in, err := LoadFiles(nil, "testdata/gpu.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		opts Options
		want string
	}{
		{Options{}, "set --cluster-name NAME or --cluster-selector k=v"},
		{Options{ClusterName: "a", ClusterSelector: mustSelector(t, "a=b")}, "only one of"},
		{Options{ClusterName: "Not_A_Name"}, `--cluster-name "Not_A_Name"`},
		{Options{ClusterName: "a", Namespace: "Bad NS"}, `--namespace "Bad NS"`},
	} {
		if _, err := Convert(in, tc.opts); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want %q", tc.opts, err, tc.want)
		}
	}
}

func TestLoadReportsWhereInputIsWrong(t *testing.T) {
	for _, tc := range []struct {
		rule  string
		input string
		want  []string
	}{
		{"a misspelt NodePool field names the field", `
apiVersion: karpenter.sh/v1
kind: NodePool
metadata: {name: general}
spec:
  template:
    spec:
      requirement: []`, []string{"in.yaml: document 1 (NodePool general)", `unknown field "spec.template.spec.requirement"`, "not a field of Karpenter v1 NodePool"}},
		{"a misspelt EC2NodeClass field names the field", `
apiVersion: karpenter.k8s.aws/v1
kind: EC2NodeClass
metadata: {name: default}
spec:
  amiSelectorTerms: [{alias: al2023@latest, ids: x}]`, []string{"document 1 (EC2NodeClass default)", `unknown field "spec.amiSelectorTerms[0].ids"`}},
		{"a v1beta1 object asks for a migration", `
apiVersion: karpenter.sh/v1beta1
kind: NodePool
metadata: {name: old}`, []string{"document 1 (NodePool old)", "karpenter.sh/v1beta1 NodePool is Karpenter v1beta1", "migrate to v1 first"}},
		{"a kind in the wrong group", `
apiVersion: karpenter.sh/v1
kind: EC2NodeClass
metadata: {name: c}`, []string{"(EC2NodeClass c)", "apiVersion karpenter.sh/v1 is wrong for kind EC2NodeClass", "karpenter.k8s.aws/v1 EC2NodeClass"}},
		{"a wrong value type", `
apiVersion: karpenter.sh/v1
kind: NodePool
metadata: {name: p}
spec: {weight: heavy}`, []string{"document 1 (NodePool p)", "spec.weight"}},
		{"a nameless object", `
apiVersion: karpenter.sh/v1
kind: NodePool
metadata: {}`, []string{"document 1 (NodePool)", "metadata.name is required"}},
		{"no kind", `
metadata: {name: p}`, []string{"document 1", "apiVersion and kind are required"}},
		{"an object defined twice", `
apiVersion: karpenter.k8s.aws/v1
kind: EC2NodeClass
metadata: {name: c}
---
apiVersion: karpenter.k8s.aws/v1
kind: EC2NodeClass
metadata: {name: c}`, []string{"document 2 (EC2NodeClass c)", "defined twice: first in ", "in.yaml document 1"}},
		{"an item of a List", `
apiVersion: v1
kind: List
items:
- apiVersion: karpenter.sh/v1
  kind: NodePool
  metadata: {name: p}
  spec: {template: {spec: {taint: []}}}`, []string{"document 1 (NodePool p)", "items[0]", `unknown field "spec.template.spec.taint"`}},
		{"every problem is reported, not only the first", `
apiVersion: karpenter.sh/v1
kind: NodePool
metadata: {}
---
apiVersion: karpenter.sh/v1
kind: NodePool
metadata: {name: p}
spec: {wieght: 3}`, []string{"document 1 (NodePool)", "document 2 (NodePool p)", `unknown field "spec.wieght"`}},
	} {
		t.Run(tc.rule, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "in.yaml")
			if err := os.WriteFile(path, []byte(tc.input), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := LoadFiles(nil, path)
			if err == nil {
				t.Fatal("no error")
			}
			var inputErr *InputError
			if !errors.As(err, &inputErr) {
				t.Errorf("error is not an InputError: %T", err)
			}
			for _, want := range tc.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
		})
	}
}

func TestLoadReadsStdinAndLists(t *testing.T) {
	list := `apiVersion: v1
kind: List
items:
- apiVersion: karpenter.k8s.aws/v1
  kind: EC2NodeClass
  metadata: {name: c, resourceVersion: "12", uid: 0b1f}
  spec: {amiSelectorTerms: [{id: ami-0123}], role: r, subnetSelectorTerms: [{id: subnet-1}], securityGroupSelectorTerms: [{id: sg-1}]}
  status: {amis: [{id: ami-0123}]}
`
	in, err := LoadFiles(strings.NewReader(list), "-")
	if err != nil {
		t.Fatal(err)
	}
	if len(in.EC2NodeClasses) != 1 || in.EC2NodeClasses[0].Name() != "c" || in.EC2NodeClasses[0].File != "<stdin>" {
		t.Errorf("got %+v", in.EC2NodeClasses)
	}
}

func TestConvertRejectsWhatTheNodePoolCRDRejects(t *testing.T) {
	in, err := Load("in.yaml", []byte(`apiVersion: karpenter.sh/v1
kind: NodePool
metadata: {name: p}
spec:
  template:
    spec:
      nodeClassRef: {group: karpenter.k8s.aws, kind: EC2NodeClass, name: c}
      requirements: [{key: karpenter.k8s.aws/instance-cpu, operator: Gt, values: [many]}]
  disruption: {consolidateAfter: 1m, budgets: [{nodes: lots}]}
`))
	if err != nil {
		t.Fatal(err)
	}
	_, err = Convert(in, clusterOpts)
	var inputErr *InputError
	if !errors.As(err, &inputErr) {
		t.Fatalf("want an InputError, got %v", err)
	}
	for _, want := range []string{"in.yaml: document 1 (NodePool p)", "the converted Joinery NodePool would be rejected", "spec.disruption.budgets[0].nodes"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

func TestShortDuration(t *testing.T) {
	for in, want := range map[string]string{"720h0m0s": "720h", "1h30m": "1h30m", "90s": "1m30s", "0s": "0s", "1.5s": "2s", "48h": "48h"} {
		if got := shortDurationString(in); got != want {
			t.Errorf("%s: got %s, want %s", in, got, want)
		}
	}
}

func equal(a, b any) bool { return reflect.DeepEqual(a, b) }

func ptrTo[T any](v T) *T { return &v }

func mustSelector(t *testing.T, s string) *metav1.LabelSelector {
	t.Helper()
	sel, err := metav1.ParseToLabelSelector(s)
	if err != nil {
		t.Fatal(err)
	}
	return sel
}
