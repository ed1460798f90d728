package testbed

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/joinery-dev/joinery/internal/manager"
	"github.com/joinery-dev/joinery/test/testenv"
)

// JoineryProcess is Joinery's manager running as a child process: the
// current binary re-executed with manager.ChildEnv set, so its main (or
// TestMain) must call manager.RunChildIfRequested first. The child dies
// with its parent, whatever kills the parent.
type JoineryProcess struct {
	args    []string
	logPath string
	env     []string

	mu     sync.Mutex
	cmd    *exec.Cmd
	done   chan struct{}
	starts int
}

// NewJoineryProcess prepares a manager run with the given flags, logging
// to dir/joinery.log (appended to across restarts).
func NewJoineryProcess(dir string, args ...string) *JoineryProcess {
	return &JoineryProcess{args: args, logPath: filepath.Join(dir, "joinery.log")}
}

// SetEnv sets variables ("K=V") of the manager's environment from its
// next start on, e.g. manager.ChildClockSkewEnv; none clears them.
func (j *JoineryProcess) SetEnv(env ...string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.env = env
}

// Start starts the manager.
func (j *JoineryProcess) Start() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.cmd != nil {
		return fmt.Errorf("joinery is already running")
	}
	log, err := os.OpenFile(j.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	j.starts++
	fmt.Fprintf(log, "\n===== start %d at %s %v =====\n", j.starts, time.Now().Format(time.RFC3339Nano), j.env)
	cmd := exec.Command(os.Args[0], j.args...)
	cmd.Env = append(append(os.Environ(), manager.ChildEnv+"=1"), j.env...)
	cmd.Stdout, cmd.Stderr = log, log
	if err := testenv.StartTied(cmd); err != nil {
		_ = log.Close()
		return fmt.Errorf("starting joinery: %w", err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		_ = log.Close()
		close(done)
	}()
	j.cmd, j.done = cmd, done
	return nil
}

// Kill sends SIGKILL: no deferred function, no cleanup runs.
func (j *JoineryProcess) Kill() { j.signal(syscall.SIGKILL, 0) }

// Stop asks the manager to stop, and kills it after 15 s.
func (j *JoineryProcess) Stop() { j.signal(syscall.SIGTERM, 15*time.Second) }

func (j *JoineryProcess) signal(sig syscall.Signal, grace time.Duration) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.cmd == nil {
		return
	}
	_ = j.cmd.Process.Signal(sig)
	if grace > 0 {
		select {
		case <-j.done:
		case <-time.After(grace):
			_ = j.cmd.Process.Kill()
		}
	}
	<-j.done
	j.cmd, j.done = nil, nil
}

// CPUTime is the CPU time the running manager process has used.
func (j *JoineryProcess) CPUTime() (time.Duration, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.cmd == nil {
		return 0, fmt.Errorf("joinery is not running")
	}
	return testenv.ProcessCPUTime(j.cmd.Process.Pid)
}

// Running reports whether the manager runs.
func (j *JoineryProcess) Running() bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.cmd != nil
}

// Tail returns the end of the manager's log.
func (j *JoineryProcess) Tail(n int64) string {
	f, err := os.Open(j.logPath)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err.Error()
	}
	off := max(0, st.Size()-n)
	buf := make([]byte, st.Size()-off)
	_, _ = f.ReadAt(buf, off)
	return string(buf)
}
