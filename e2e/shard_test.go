package e2e

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/onsi/ginkgo/v2/types"
)

// The suite runs as two processes, each on a testbed of its own: the
// specs spend most of their time waiting on CAPI, CAPA and the simulated
// cloud, not on the CPU, so two halves side by side take little more than
// the longer half. Specs labelled secondProcess run in a child process
// started by TestE2E; the rest run in the test binary itself.
//
// A run that chooses its own specs (a focus, a skip or a label filter),
// or E2E_PROCESSES=1, runs everything in one process.
const (
	secondProcess = "second-process"
	// shardEnv is set in the child, so that it runs only its half and
	// starts no child of its own.
	shardEnv = "JOINERY_E2E_SHARD"
)

// secondShard is the child process running the secondProcess specs.
type secondShard struct {
	cmd    *exec.Cmd
	output *os.File
}

// splitSuite decides whether this process runs one half of the suite and
// a child the other, narrows suite to this process's half, and starts the
// child. It returns nil when the suite runs whole in this process.
func splitSuite(suite *types.SuiteConfig, reporter types.ReporterConfig) (*secondShard, error) {
	if os.Getenv(shardEnv) != "" {
		suite.LabelFilter = secondProcess
		return nil, nil
	}
	if os.Getenv("E2E_PROCESSES") == "1" || len(suite.FocusStrings) > 0 || len(suite.SkipStrings) > 0 ||
		len(suite.FocusFiles) > 0 || len(suite.SkipFiles) > 0 || suite.LabelFilter != "" || suite.DryRun {
		return nil, nil
	}
	suite.LabelFilter = "!" + secondProcess

	args := []string{"-test.run=^TestE2E$", "-test.count=1"}
	if f := flag.Lookup("test.timeout"); f != nil {
		args = append(args, "-test.timeout="+f.Value.String())
	}
	if testing.Verbose() {
		args = append(args, "-test.v")
	}
	if reporter.Verbose {
		args = append(args, "-ginkgo.v")
	}
	if reporter.NoColor {
		args = append(args, "-ginkgo.no-color")
	}
	output, err := os.CreateTemp("", "joinery-e2e-second-process-*.log")
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), shardEnv+"=2")
	if dir := os.Getenv("E2E_DIR"); dir != "" {
		cmd.Env = append(cmd.Env, "E2E_DIR="+filepath.Join(dir, "second-process"))
	}
	cmd.Stdout, cmd.Stderr = output, output
	// If this process dies, the child is told to stop, and Ginkgo's
	// interrupt handling tears its testbed down.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		output.Close()
		os.Remove(output.Name())
		return nil, fmt.Errorf("starting the e2e suite's second process: %w", err)
	}
	return &secondShard{cmd: cmd, output: output}, nil
}

// wait waits for the child, copies its report after this process's, and
// fails t when the child's specs failed.
func (s *secondShard) wait(t *testing.T) {
	err := s.cmd.Wait()
	defer os.Remove(s.output.Name())
	defer s.output.Close()
	var out bytes.Buffer
	if _, seekErr := s.output.Seek(0, io.SeekStart); seekErr == nil {
		_, _ = io.Copy(&out, s.output)
	}
	fmt.Printf("\n----- e2e second process (specs labelled %q, its own testbed) -----\n%s", secondProcess, out.Bytes())
	if err != nil {
		t.Errorf("the e2e suite's second process (specs labelled %q) failed: %v; its report is printed above", secondProcess, err)
	}
}
