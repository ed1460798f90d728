package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/joinery-dev/joinery/internal/manager"
	"github.com/joinery-dev/joinery/internal/testenv"
)

// managerEnv makes the test binary run Joinery's manager instead of the
// tests: the suite runs Joinery as a process of its own, which it can
// kill -9 like a real deployment's pod, without building another binary.
const managerEnv = "JOINERY_E2E_RUN_MANAGER"

func TestMain(m *testing.M) {
	if os.Getenv(managerEnv) == "1" {
		os.Exit(runManager(os.Args[1:]))
	}
	os.Exit(m.Run())
}

func runManager(args []string) int {
	opts := manager.DefaultOptions()
	flags := pflag.NewFlagSet("manager", pflag.ContinueOnError)
	manager.BindFlags(flags, &opts)
	kubeconfig := flags.String("kubeconfig", "", "management cluster kubeconfig")
	if err := flags.Parse(args); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	ctrl.SetLogger(zap.New(zap.UseDevMode(true)))
	cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	ctx := ctrl.SetupSignalHandler()
	mgr, err := manager.New(ctx, cfg, opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := mgr.Start(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// joineryProcess is Joinery's manager running as a child of the suite.
type joineryProcess struct {
	args    []string
	logPath string

	mu     sync.Mutex
	cmd    *exec.Cmd
	done   chan struct{}
	starts int
}

func newJoineryProcess(dir string, args ...string) *joineryProcess {
	return &joineryProcess{args: args, logPath: filepath.Join(dir, "joinery.log")}
}

func (j *joineryProcess) start() error {
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
	fmt.Fprintf(log, "\n===== start %d at %s =====\n", j.starts, time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(os.Args[0], j.args...)
	cmd.Env = append(os.Environ(), managerEnv+"=1")
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

// kill sends SIGKILL: no deferred function, no cleanup runs.
func (j *joineryProcess) kill() { j.signal(syscall.SIGKILL, 0) }

// stop asks the manager to stop, and kills it after 15 s.
func (j *joineryProcess) stop() { j.signal(syscall.SIGTERM, 15*time.Second) }

func (j *joineryProcess) signal(sig syscall.Signal, grace time.Duration) {
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

func (j *joineryProcess) running() bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.cmd != nil
}

// tail returns the end of the manager's log.
func (j *joineryProcess) tail(n int64) string {
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

// waitStopped is for DeferCleanup.
func (j *joineryProcess) waitStopped(context.Context) { j.stop() }
