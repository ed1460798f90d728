package soak

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"time"
)

// history is the soak's journal: every action, fault and observation worth
// reading when an invariant breaks, one timestamped line each. A breach
// quotes the lines just before it.
type history struct {
	path string

	mu     sync.Mutex
	f      *os.File
	recent []string
}

const recentLines = 40

func newHistory(path string) (*history, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	return &history{path: path, f: f}, nil
}

func (h *history) Printf(format string, args ...any) {
	line := time.Now().UTC().Format("15:04:05.000") + " " + fmt.Sprintf(format, args...)
	h.mu.Lock()
	defer h.mu.Unlock()
	fmt.Fprintln(h.f, line)
	h.recent = append(h.recent, line)
	if len(h.recent) > recentLines {
		h.recent = h.recent[len(h.recent)-recentLines:]
	}
}

// before is what happened just before now, for a breach's report.
func (h *history) before() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return strings.Join(h.recent, "\n")
}

func (h *history) Close() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.f.Close()
}

// faultLog remembers which instances and nodes the soak itself broke, so
// the checker does not blame Joinery for what a fault did to them.
type faultLog struct {
	mu        sync.Mutex
	instances map[string]string // instance ID -> fault
	nodes     map[string]string // node name -> fault
}

func newFaultLog() *faultLog {
	return &faultLog{instances: map[string]string{}, nodes: map[string]string{}}
}

func (f *faultLog) add(instanceID, fault string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.instances[instanceID] = fault
}

func (f *faultLog) addNode(node, fault string) {
	if node == "" {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nodes[node] = fault
}

func (f *faultLog) instance(id string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.instances[id]
}

func (f *faultLog) node(name string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.nodes[name]
}
