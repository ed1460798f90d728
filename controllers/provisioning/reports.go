package provisioning

import (
	"sync"

	"k8s.io/apimachinery/pkg/types"
)

// ConditionLaunchConfigurationValid is the NodePool condition that is
// False while the pool's templates keep it from launching in some cluster
// (a launch EC2 or CAPA refused for its configuration, or a template
// setting Joinery cannot honour), with the field to fix in its message.
const ConditionLaunchConfigurationValid = "LaunchConfigurationValid"

// ClusterReport is what the last provisioning pass found for one pool in
// one cluster.
type ClusterReport struct {
	Reachable    bool
	LimitReached bool
	// Message explains an unreachable cluster, a limit reached or a
	// configuration error, in words.
	Message string
	// LaunchProblem says what in the pool's templates fights the decision
	// or made a launch fail for configuration; LaunchBlocked that the pool
	// launches nothing in the cluster because of it.
	LaunchProblem string
	LaunchBlocked bool
	// LaunchFailed says some launch of the pool failed in the last pass
	// (a Machine whose objects could not be made, named in LaunchProblem);
	// the pool's other launches went on.
	LaunchFailed bool
}

// Reports hands the provisioning loop's findings to the pool status
// controller. It is memory only: after a restart the next pass reports
// again.
type Reports struct {
	mu       sync.Mutex
	byPool   map[types.NamespacedName]map[string]ClusterReport
	onChange func(pool types.NamespacedName)
}

// NewReports returns an empty set of reports.
func NewReports() *Reports {
	return &Reports{byPool: map[types.NamespacedName]map[string]ClusterReport{}}
}

// OnChange registers a function called (outside the lock) when a pool's
// report changes.
func (r *Reports) OnChange(f func(pool types.NamespacedName)) {
	r.mu.Lock()
	r.onChange = f
	r.mu.Unlock()
}

// Set records a pool's report for a cluster.
func (r *Reports) Set(pool types.NamespacedName, cluster string, report ClusterReport) {
	r.mu.Lock()
	clusters := r.byPool[pool]
	if clusters == nil {
		clusters = map[string]ClusterReport{}
		r.byPool[pool] = clusters
	}
	old, had := clusters[cluster]
	clusters[cluster] = report
	notify := r.onChange
	r.mu.Unlock()
	if notify != nil && (!had || old != report) {
		notify(pool)
	}
}

// ForgetCluster drops a cluster from every pool's reports.
func (r *Reports) ForgetCluster(cluster types.NamespacedName) {
	r.mu.Lock()
	var changed []types.NamespacedName
	for pool, clusters := range r.byPool {
		if pool.Namespace != cluster.Namespace {
			continue
		}
		if _, ok := clusters[cluster.Name]; ok {
			delete(clusters, cluster.Name)
			changed = append(changed, pool)
		}
	}
	notify := r.onChange
	r.mu.Unlock()
	if notify != nil {
		for _, pool := range changed {
			notify(pool)
		}
	}
}

// Get returns a copy of a pool's reports by cluster name.
func (r *Reports) Get(pool types.NamespacedName) map[string]ClusterReport {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]ClusterReport, len(r.byPool[pool]))
	for k, v := range r.byPool[pool] {
		out[k] = v
	}
	return out
}
