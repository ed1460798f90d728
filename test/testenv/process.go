package testenv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"time"
)

// child is one component process with its log file.
type child struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	logFile *os.File
	done    chan struct{}
	waitErr error
}

// spawnThread starts every child from one goroutine locked to an OS thread
// that never exits: Linux delivers the parent-death signal when the thread
// that forked a child exits, not only when the process does, and Go may
// retire an ordinary goroutine's thread.
var spawnThread = sync.OnceValue(func() chan func() {
	jobs := make(chan func())
	go func() {
		runtime.LockOSThread()
		for job := range jobs {
			job()
		}
	}()
	return jobs
})

func (c *Cluster) startChild(_ context.Context, binDir, name string, args []string) error {
	return c.StartComponent(name, filepath.Join(binDir, name), args, nil)
}

// StartComponent starts a program that belongs to the cluster (a provider's
// manager, say) as one of its components: logged to logs/<name>.log, killed
// with the test process however it dies, and stopped (SIGTERM, then SIGKILL)
// by Stop before the apiserver. env is added to this process's environment.
func (c *Cluster) StartComponent(name, path string, args, env []string) error {
	logFile, err := c.openLog(name)
	if err != nil {
		return err
	}
	cmd := exec.Command(path, args...)
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	ch := &child{name: name, cmd: cmd, logPath: logFile.Name(), logFile: logFile, done: make(chan struct{})}

	started := make(chan error, 1)
	spawnThread() <- func() { started <- cmd.Start() }
	if err := <-started; err != nil {
		_ = logFile.Close()
		return fmt.Errorf("starting %s: %w", name, err)
	}
	go func() {
		ch.waitErr = cmd.Wait()
		_ = logFile.Close()
		close(ch.done)
	}()
	c.children = append(c.children, ch)
	return nil
}

func (ch *child) exited() (bool, error) {
	select {
	case <-ch.done:
		return true, ch.waitErr
	default:
		return false, nil
	}
}

// stop sends SIGTERM, then SIGKILL after the grace period.
func (ch *child) stop(grace time.Duration) error {
	if exited, _ := ch.exited(); exited {
		return nil
	}
	_ = ch.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-ch.done:
		return nil
	case <-time.After(grace):
	}
	if err := ch.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("killing %s: %w", ch.name, err)
	}
	<-ch.done
	return nil
}

// writeParentDeathShims writes, for each binary, a script that runs the real
// one under `setpriv --pdeathsig KILL`. envtest starts etcd and
// kube-apiserver itself and sets no parent-death signal; the shims close
// that gap. setpriv is part of util-linux, present on every Debian system.
func writeParentDeathShims(shimDir, binDir string, names ...string) error {
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		return fmt.Errorf("setpriv (util-linux) is needed so that test processes die with the test binary: %w", err)
	}
	for _, name := range names {
		real := filepath.Join(binDir, name)
		if _, err := os.Stat(real); err != nil {
			return fmt.Errorf("%s is missing: run `make tools`: %w", real, err)
		}
		script := fmt.Sprintf("#!/bin/sh\nexec %s --pdeathsig KILL -- %s \"$@\"\n", setpriv, real)
		if err := os.WriteFile(filepath.Join(shimDir, name), []byte(script), 0o755); err != nil {
			return err
		}
	}
	return nil
}

// BinDir finds the directory with the control plane binaries:
// $JOINERY_BIN_DIR, else bin/ at the root of the module holding the
// working directory.
func BinDir() (string, error) {
	if dir := os.Getenv("JOINERY_BIN_DIR"); dir != "" {
		return filepath.Abs(dir)
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		if data, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && isProjectRoot(data) {
			bin := filepath.Join(dir, "bin")
			if _, err := os.Stat(filepath.Join(bin, "kube-apiserver")); err != nil {
				return "", fmt.Errorf("%s has no kube-apiserver: run `make tools` first", bin)
			}
			return bin, nil
		}
		if filepath.Dir(dir) == dir {
			return "", fmt.Errorf("no joinery module root above %s: set JOINERY_BIN_DIR to the directory `make tools` builds", wd)
		}
	}
}

func isProjectRoot(goMod []byte) bool {
	const want = "module github.com/joinery-dev/joinery\n"
	return len(goMod) >= len(want) && string(goMod[:len(want)]) == want
}

// DumpLogs writes the last maxBytes of every component's log to w, for a
// failed test to show what the cluster saw.
func (c *Cluster) DumpLogs(w io.Writer, maxBytes int64) {
	entries, err := os.ReadDir(c.logDir())
	if err != nil {
		fmt.Fprintf(w, "cluster %q: no logs: %v\n", c.Name, err)
		return
	}
	for _, e := range entries {
		path := filepath.Join(c.logDir(), e.Name())
		f, err := os.Open(path)
		if err != nil {
			continue
		}
		if info, err := f.Stat(); err == nil && info.Size() > maxBytes {
			_, _ = f.Seek(info.Size()-maxBytes, io.SeekStart)
		}
		fmt.Fprintf(w, "===== cluster %q: %s (tail) =====\n", c.Name, path)
		_, _ = io.Copy(w, f)
		_ = f.Close()
	}
}

// StartTied starts cmd so that it is killed when the test process dies,
// however it dies: SIGKILL as parent-death signal, forked from the thread
// that never exits. For processes a test starts besides the clusters (a
// manager it kills and restarts).
func StartTied(cmd *exec.Cmd) error {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	started := make(chan error, 1)
	spawnThread() <- func() { started <- cmd.Start() }
	return <-started
}
