package e2e

import (
	"os"
	"testing"

	"github.com/joinery-dev/joinery/internal/manager"
)

func TestMain(m *testing.M) {
	// The suite runs Joinery's manager as a child process: this binary,
	// re-executed (see manager.ChildEnv and testbed.JoineryProcess).
	manager.RunChildIfRequested()
	os.Exit(m.Run())
}
