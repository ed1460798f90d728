package provisioning

import (
	"context"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/cache"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/flowcontrol"
	"k8s.io/utils/clock"
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

// A burst's pods are told which Machine they wait for at Karpenter's pace
// (its scheduling events' PodNominationRateLimiter: 5 per second, 10 at
// once), per workload cluster as each is a cluster Karpenter would serve
// alone. An Event per pod was a tenth of the manager's CPU in a burst and
// as many writes to a workload apiserver as it had pods; `joinery explain
// pod` names a pod's Machine from the Machines' decisions (up to
// maxRecordedPods a Machine).
const (
	nominationsPerSecond = 5
	nominationsAtOnce    = 10
)

// failedToldFor is how long a pod's FailedProvisioning Event is not sent
// again with the same message (Karpenter's PodFailedToScheduleEvent dedupes
// for as long): every replan of a pod that fits nowhere finds the same
// reason, and each Event sent again is a write to the workload apiserver.
const failedToldFor = 5 * time.Minute

// clusterRecorder records the Events of one workload cluster.
type clusterRecorder struct {
	broadcaster record.EventBroadcaster
	recorder    record.EventRecorder
	// nominations paces the pods' Nominated Events; nil: unpaced.
	nominations flowcontrol.RateLimiter
	// toldFailed holds, per pod, the FailedProvisioning message it was
	// last sent, for failedToldFor; nil: every one is sent.
	toldFailed *cache.Expiring
}

func newClusterRecorder(b record.EventBroadcaster, r record.EventRecorder, clk clock.WithTicker) *clusterRecorder {
	return &clusterRecorder{
		broadcaster: b, recorder: r,
		nominations: flowcontrol.NewTokenBucketRateLimiterWithClock(nominationsPerSecond, nominationsAtOnce, clk),
		toldFailed:  cache.NewExpiringWithClock(clk),
	}
}

// nominated tells a pod which Machine it waits for, unless the cluster's
// nominations are paced out.
func (r *clusterRecorder) nominated(pod *corev1.Pod, format string, args ...any) {
	if r.toldFailed != nil {
		// A failure after this decision is news even if told before it.
		r.toldFailed.Delete(podKey(pod))
	}
	if r.nominations != nil && !r.nominations.TryAccept() {
		return
	}
	r.recorder.Eventf(pod, corev1.EventTypeNormal, "Nominated", format, args...)
}

// failedProvisioning tells a pod why no Machine is launched for it, unless
// it was told the same within failedToldFor and nothing was decided for
// it since.
func (r *clusterRecorder) failedProvisioning(pod *corev1.Pod, msg string) {
	if r.toldFailed != nil {
		key := podKey(pod)
		if told, ok := r.toldFailed.Get(key); ok && told == msg {
			return
		}
		r.toldFailed.Set(key, msg, failedToldFor)
	}
	r.recorder.Event(pod, corev1.EventTypeWarning, "FailedProvisioning", msg)
}

// podKey names a pod across its re-creations under one name.
func podKey(pod *corev1.Pod) string {
	return pod.Namespace + "/" + pod.Name + "/" + string(pod.UID)
}

func newWorkloadEvents(ctx context.Context, cc clustercache.ClusterCache) *workloadEvents {
	return &workloadEvents{ctx: ctx, clusterCache: cc, recorders: map[types.NamespacedName]*clusterRecorder{}}
}

// recorder returns the cluster's recorder, nil when the cluster cannot be
// reached (Events are best effort).
func (e *workloadEvents) recorder(ctx context.Context, cluster types.NamespacedName) *clusterRecorder {
	e.mu.Lock()
	defer e.mu.Unlock()
	if r := e.recorders[cluster]; r != nil {
		return r
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
	r := newClusterRecorder(b, b.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "joinery"}), clock.RealClock{})
	e.recorders[cluster] = r
	return r
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
