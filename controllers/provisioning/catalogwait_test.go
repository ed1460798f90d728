package provisioning

import (
	"testing"
	"time"

	"github.com/joinery-dev/joinery/cloud"
)

// loadingCatalog is a catalog source whose first read from EC2 may still
// be under way, as cloud/live's Refresher.
type loadingCatalog struct {
	*cloud.Catalog
	done bool
}

func (l *loadingCatalog) FirstReadDone() bool { return l.done }

func TestPassesWaitForTheCatalogsFirstReadButNotForever(t *testing.T) {
	base, err := cloud.Embedded()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 12, 5, 8, 0, 0, 0, time.UTC)
	now := start
	loading := &loadingCatalog{Catalog: base}
	p := &Provisioner{Catalog: loading, Now: func() time.Time { return now }, setUpAt: start}

	if w := p.catalogWait(); w <= 0 {
		t.Errorf("while the first read is under way: wait %s, want a positive wait", w)
	}
	loading.done = true
	if w := p.catalogWait(); w != 0 {
		t.Errorf("after the first read: wait %s, want none", w)
	}
	loading.done = false
	now = start.Add(firstCatalogWait)
	if w := p.catalogWait(); w != 0 {
		t.Errorf("%s after start with the read still under way: wait %s, want none (an EC2 that does not answer must not stop provisioning)", firstCatalogWait, w)
	}
	fixed := &Provisioner{Catalog: base, Now: func() time.Time { return start }, setUpAt: start}
	if w := fixed.catalogWait(); w != 0 {
		t.Errorf("with a fixed catalog: wait %s, want none", w)
	}
}
