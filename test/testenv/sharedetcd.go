package testenv

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// SharedEtcd is one etcd that the apiservers of several clusters keep their
// data in, each under a key prefix of its own (kube-apiserver's
// --etcd-prefix), as hosted control planes share an etcd. A fleet benchmark
// starts its workload clusters on one: twenty clusters are then twenty
// apiservers and one etcd, not twenty of each, on a machine of two cores.
type SharedEtcd struct {
	// URL is where its clients connect.
	URL *url.URL

	etcd *envtest.Etcd
	log  *os.File

	mu       sync.Mutex
	prefixes map[string]bool
}

// StartSharedEtcd starts an etcd keeping its data and log in dir.
func StartSharedEtcd(dir string) (*SharedEtcd, error) {
	binDir, err := BinDir()
	if err != nil {
		return nil, err
	}
	shims := filepath.Join(dir, "bin")
	for _, d := range []string{shims, filepath.Join(dir, "data"), filepath.Join(dir, "logs")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	if err := writeParentDeathShims(shims, binDir, "etcd"); err != nil {
		return nil, err
	}
	log, err := os.OpenFile(filepath.Join(dir, "logs", "etcd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	e := &SharedEtcd{log: log, prefixes: map[string]bool{}, etcd: &envtest.Etcd{
		Path: filepath.Join(shims, "etcd"), DataDir: filepath.Join(dir, "data"), Out: log, Err: log,
		StartTimeout: time.Minute, StopTimeout: 20 * time.Second,
	}}
	if err := e.etcd.Start(); err != nil {
		_ = log.Close()
		return nil, fmt.Errorf("starting the shared etcd (log: %s): %w", log.Name(), err)
	}
	e.URL = e.etcd.URL
	return e, nil
}

// claim reserves the key prefix of the cluster named name: two clusters
// with one prefix would be one cluster with two apiservers.
func (e *SharedEtcd) claim(name string) (string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	prefix := "/clusters/" + name
	if e.prefixes[prefix] {
		return "", fmt.Errorf("the shared etcd already holds a cluster named %q: give each cluster on it a name of its own", name)
	}
	e.prefixes[prefix] = true
	return prefix, nil
}

// Stop stops the etcd; stop the clusters on it first.
func (e *SharedEtcd) Stop() error {
	err := e.etcd.Stop()
	_ = e.log.Close()
	return err
}
