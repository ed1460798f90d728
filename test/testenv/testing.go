package testenv

import (
	"context"
	"os"
	"testing"
)

// New starts a cluster for a Go test and stops it when the test ends,
// printing the components' logs first if the test failed.
func New(t testing.TB, opts Options) *Cluster {
	t.Helper()
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	c, err := Start(context.Background(), opts)
	if err != nil {
		if c != nil {
			c.DumpLogs(os.Stderr, 16<<10)
		}
		t.Fatalf("%v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			c.DumpLogs(os.Stderr, 16<<10)
		}
		if err := c.Stop(); err != nil {
			t.Errorf("stopping cluster %q: %v", c.Name, err)
		}
	})
	return c
}
