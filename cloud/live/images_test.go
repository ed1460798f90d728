package live

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/joinery-dev/joinery/cloud"
)

// describeImagesServer answers EC2 DescribeImages in EC2's query protocol
// (form-encoded request, XML response) for the images it knows, and counts
// the calls.
func describeImagesServer(t *testing.T, images map[string]string) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil || r.Form.Get("Action") != "DescribeImages" {
			http.Error(w, "unexpected request", http.StatusBadRequest)
			return
		}
		calls.Add(1)
		id := r.Form.Get("ImageId.1")
		w.Header().Set("Content-Type", "text/xml")
		item, ok := images[id]
		if !ok {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error><Code>InvalidAMIID.NotFound</Code><Message>The image id '[%s]' does not exist</Message></Error></Errors><RequestID>r1</RequestID></Response>`, id)
			return
		}
		fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>
<DescribeImagesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>r1</requestId><imagesSet>%s</imagesSet></DescribeImagesResponse>`, item)
	}))
	t.Cleanup(srv.Close)
	return srv, &calls
}

func imageItem(id, arch string, rootGiB int) string {
	return fmt.Sprintf(`<item><imageId>%s</imageId><architecture>%s</architecture><rootDeviceName>/dev/xvda</rootDeviceName>
<blockDeviceMapping><item><deviceName>/dev/xvda</deviceName><ebs><volumeSize>%d</volumeSize><volumeType>gp3</volumeType></ebs></item>
<item><deviceName>/dev/xvdb</deviceName><ebs><volumeSize>500</volumeSize></ebs></item></blockDeviceMapping></item>`, id, arch, rootGiB)
}

func TestImagesReadArchitectureAndRootDeviceOncePerImage(t *testing.T) {
	srv, calls := describeImagesServer(t, map[string]string{
		"ami-arm": imageItem("ami-arm", "arm64", 30),
		"ami-x86": imageItem("ami-x86", "x86_64", 8),
		"ami-mac": imageItem("ami-mac", "x86_64_mac", 8),
	})
	ctx := context.Background()
	client, err := NewEC2Client(ctx, "us-east-1", srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	images := NewImages(map[string]ImagesAPI{"us-east-1": client})
	for _, tc := range []struct {
		id, arch string
		rootGiB  int64
	}{{"ami-arm", cloud.ArchARM64, 30}, {"ami-x86", cloud.ArchAMD64, 8}, {"ami-arm", cloud.ArchARM64, 30}} {
		img, err := images.Image(ctx, "us-east-1", tc.id)
		if err != nil {
			t.Fatalf("%s: %v", tc.id, err)
		}
		if img.Arch != tc.arch || img.RootDeviceSize.Value() != tc.rootGiB<<30 {
			t.Errorf("%s = arch %q root %s, want %q and %dGi", tc.id, img.Arch, img.RootDeviceSize.String(), tc.arch, tc.rootGiB)
		}
	}
	if n := calls.Load(); n != 2 {
		t.Errorf("DescribeImages called %d times for 2 images, want each once (cached)", n)
	}
	for _, bad := range []struct{ region, id, want string }{
		{"us-east-1", "ami-mac", `architecture "x86_64_mac"`},
		{"us-east-1", "ami-gone", "InvalidAMIID.NotFound"},
		{"eu-west-1", "ami-arm", "no EC2 client for region eu-west-1"},
	} {
		if _, err := images.Image(ctx, bad.region, bad.id); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("Image(%s, %s) = %v, want an error containing %q", bad.region, bad.id, err, bad.want)
		}
	}
}
