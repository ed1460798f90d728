package cloud

import "testing"

// Limits for real rows of the embedded catalog, against what the EBS CSI
// driver reports on a fresh node of the type (root volume only, one ENI).
func TestEBSVolumeLimit(t *testing.T) {
	cat, err := Embedded()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		limit int
		known bool
	}{
		{"m5.large", 26, true},    // Nitro, no instance store: 28 - ENI - root
		{"c6i.4xlarge", 26, true}, // Nitro
		{"m4.large", 38, true},    // Xen: 39 - root
		{"t2.micro", 38, true},    // Xen
		{"i3en.large", 0, false},  // Nitro with NVMe instance store: count unknown
		{"m5.metal", 0, false},    // bare metal
	} {
		it, ok := cat.InstanceType(tc.name)
		if !ok {
			t.Fatalf("%s not in the catalog", tc.name)
		}
		limit, known := EBSVolumeLimit(it)
		if limit != tc.limit || known != tc.known {
			t.Errorf("%s: got %d (known %v), want %d (known %v)", tc.name, limit, known, tc.limit, tc.known)
		}
	}
}
