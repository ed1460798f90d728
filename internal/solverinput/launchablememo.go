package solverinput

import (
	"encoding/json"
	"sync"
	"unsafe"

	"github.com/joinery-dev/joinery/cloud"
)

// launchableMemo keeps sized types per (offered slice, kubelet and node
// settings, architecture). Every planning pass of every cluster sizes every
// pool's types, and a fleet's pools mostly share settings: sizing a region's
// ~900 types was 40% of the manager's CPU in the 5-cluster benchmark. The
// offered slices come from the provisioning controller's offerings cache,
// so one region and zone set is one slice until the catalog changes.
//
// An entry holds its offered slice, so the slice cannot be freed and its
// address reused by other offerings while the entry lives: the address and
// length identify its content for the memo's purposes (callers do not
// modify an offered slice after handing it out).
type launchableMemo struct {
	mu      sync.Mutex
	entries map[launchableKey]*launchableEntry
	order   []launchableKey // insertion order, for eviction
	limit   int
}

type launchableKey struct {
	offered  *cloud.InstanceTypeOfferings
	length   int
	settings string
}

type launchableEntry struct {
	offered []cloud.InstanceTypeOfferings // kept alive, see launchableMemo
	types   []LaunchableType
	byName  map[string]*LaunchableType
}

func newLaunchableEntry(offered []cloud.InstanceTypeOfferings, types []LaunchableType) *launchableEntry {
	e := &launchableEntry{offered: offered, types: types, byName: make(map[string]*LaunchableType, len(types))}
	for i := range types {
		e.byName[types[i].Name] = &types[i]
	}
	return e
}

// launchable is the process's memo. 256 entries hold every (zone set,
// pool settings) pair of a large fleet; an entry is shared, not copied.
var launchable = &launchableMemo{limit: 256}

func settingsKey(kubelet cloud.KubeletConfig, opts cloud.NodeOptions, arch string) (string, error) {
	b, err := json.Marshal(struct {
		Kubelet cloud.KubeletConfig
		VMMem   float64
		Root    string
		Arch    string
	}{kubelet, opts.VMMemoryOverheadPercent, opts.RootVolumeSize.String(), arch})
	return string(b), err
}

func (m *launchableMemo) get(offered []cloud.InstanceTypeOfferings, settings string, compute func() []LaunchableType) *launchableEntry {
	if len(offered) == 0 {
		return newLaunchableEntry(offered, compute())
	}
	key := launchableKey{offered: unsafe.SliceData(offered), length: len(offered), settings: settings}
	m.mu.Lock()
	if e, ok := m.entries[key]; ok {
		m.mu.Unlock()
		return e
	}
	m.mu.Unlock()
	// Computed outside the lock: two passes may size the same key at
	// once, and both results are equal.
	e := newLaunchableEntry(offered, compute())
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.entries == nil {
		m.entries = map[launchableKey]*launchableEntry{}
	}
	if _, ok := m.entries[key]; !ok {
		if len(m.order) >= m.limit {
			delete(m.entries, m.order[0])
			m.order = m.order[1:]
		}
		m.order = append(m.order, key)
	}
	m.entries[key] = e
	return e
}
