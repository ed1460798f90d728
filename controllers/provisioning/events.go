package provisioning

import (
	"context"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/record"
	"sigs.k8s.io/cluster-api/controllers/clustercache"
)

// workloadEvents records Events on objects of workload clusters (pods
// waiting for a Machine), one broadcaster per cluster: a person looking at
// a pending pod with kubectl describe sees which Machine it waits for.
type workloadEvents struct {
	// ctx is the manager's: broadcasters live until it stops, not for one
	// reconcile.
	ctx          context.Context
	clusterCache clustercache.ClusterCache

	mu        sync.Mutex
	recorders map[types.NamespacedName]*clusterRecorder
}

type clusterRecorder struct {
	broadcaster record.EventBroadcaster
	recorder    record.EventRecorder
}

func newWorkloadEvents(ctx context.Context, cc clustercache.ClusterCache) *workloadEvents {
	return &workloadEvents{ctx: ctx, clusterCache: cc, recorders: map[types.NamespacedName]*clusterRecorder{}}
}

// recorder returns the cluster's recorder, nil when the cluster cannot be
// reached (Events are best effort).
func (e *workloadEvents) recorder(ctx context.Context, cluster types.NamespacedName) record.EventRecorder {
	e.mu.Lock()
	defer e.mu.Unlock()
	if r := e.recorders[cluster]; r != nil {
		return r.recorder
	}
	cfg, err := e.clusterCache.GetRESTConfig(ctx, cluster)
	if err != nil {
		return nil
	}
	// An Event per pending pod in a burst: sent and answered as protobuf,
	// which built-in kinds speak, rather than JSON.
	cfg = rest.CopyConfig(cfg)
	cfg.ContentType = runtime.ContentTypeProtobuf
	cfg.AcceptContentTypes = runtime.ContentTypeProtobuf + "," + runtime.ContentTypeJSON
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil
	}
	b := record.NewBroadcaster(record.WithContext(e.ctx))
	b.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: cs.CoreV1().Events("")})
	r := &clusterRecorder{broadcaster: b, recorder: b.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "joinery"})}
	e.recorders[cluster] = r
	return r.recorder
}

func (e *workloadEvents) forget(cluster types.NamespacedName) {
	e.mu.Lock()
	r := e.recorders[cluster]
	delete(e.recorders, cluster)
	e.mu.Unlock()
	if r != nil {
		r.broadcaster.Shutdown()
	}
}
