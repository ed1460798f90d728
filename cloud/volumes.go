package cloud

// EBSCSIDriver is the EBS CSI driver's name, the key of its attach limit.
const EBSCSIDriver = "ebs.csi.aws.com"

// Attachment counts the EBS CSI driver (kubernetes-sigs/aws-ebs-csi-driver,
// NodeService.getVolumesLimit) starts from: most Nitro types share 28
// attachments between EBS volumes, network interfaces and NVMe instance
// store volumes; Xen types attach 39 EBS volumes of their own.
const (
	nitroSharedAttachments = 28
	xenAttachments         = 39
)

// EBSVolumeLimit is how many EBS volumes the EBS CSI driver will report
// (CSINode allocatable) for a new node of the type, and false when the
// catalog cannot tell. The driver takes off the root volume and, on Nitro,
// the attached network interfaces and NVMe instance store volumes. A new
// node boots with one interface and, from Joinery's templates, one root
// volume:
//
//   - Xen: 39 - 1 root = 38.
//   - Nitro without instance store: 28 - 1 interface - 1 root = 26.
//
// Not known, so not guessed: Nitro types with instance store (the catalog
// has their size, not their volume count), bare metal (no hypervisor in the
// catalog, and their limits differ), and the types the driver lists with a
// dedicated EBS limit (7th-generation Intel and AMD and later, which attach
// 32 or more; for them 26 is an underestimate, so planning stays safe).
// Interfaces the VPC CNI attaches before the driver starts lower the real
// count; once a node registers, its CSINode's count replaces this one.
func EBSVolumeLimit(it InstanceType) (int, bool) {
	switch {
	case it.BareMetal || !it.Known(AttrBareMetal):
		return 0, false
	case it.Hypervisor == "xen":
		return xenAttachments - 1, true
	case it.Hypervisor == "nitro" && it.LocalNVMeGB == 0:
		return nitroSharedAttachments - 1 - 1, true
	}
	return 0, false
}
