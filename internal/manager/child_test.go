package manager

import (
	"strings"
	"testing"
	"time"
)

// The soak skews a replica's clock through the environment; a value that
// is no duration must stop the child with the variable named, not run it
// on the machine's clock as if nothing were asked.
func TestChildClock(t *testing.T) {
	for _, tc := range []struct {
		env     string
		skew    time.Duration
		wantErr string
	}{
		{env: ""},
		{env: "3m", skew: 3 * time.Minute},
		{env: "-90s", skew: -90 * time.Second},
		{env: "soon", wantErr: ChildClockSkewEnv + `="soon": not a Go duration`},
	} {
		t.Run(tc.env, func(t *testing.T) {
			t.Setenv(ChildClockSkewEnv, tc.env)
			clock, err := childClock()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.env == "" {
				if clock != nil {
					t.Fatal("a clock without a skew asked for")
				}
				return
			}
			if got := clock().Sub(time.Now()); got < tc.skew-time.Second || got > tc.skew+time.Second {
				t.Fatalf("clock is %s off the machine's, want %s", got, tc.skew)
			}
		})
	}
}
