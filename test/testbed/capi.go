package testbed

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	kubeadmconfig "sigs.k8s.io/cluster-api/bootstrap/kubeadm/reconcilers/kubeadmconfig"
	"sigs.k8s.io/cluster-api/controllers/clustercache"
	"sigs.k8s.io/cluster-api/core/reconcilers/cluster"
	"sigs.k8s.io/cluster-api/core/reconcilers/machine"
	"sigs.k8s.io/cluster-api/core/reconcilers/machinehealthcheck"
	"sigs.k8s.io/cluster-api/core/setup"
	"sigs.k8s.io/cluster-api/util/index"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
)

// controllerName is the name CAPI's informers and workload clients are
// registered under (the user agent of its requests).
const controllerName = "joinery-testbed-capi"

// managerCacheAndClientOptions are those of CAPI's managers (core/setup):
// only Secrets labelled with a cluster name are cached, and the default
// client reads Secrets and ConfigMaps from the apiserver. Unlike CAPI's core
// manager, the cache keeps the data of every cached Secret, not only of
// kubeconfigs: the kubeadm bootstrap reconciler, which runs in the same
// manager here, reads the cluster CA through it.
func managerCacheAndClientOptions(scheme *runtime.Scheme) (cache.Options, client.Options) {
	opts := setup.ManagerCacheOptions(scheme, controllerName, "", 10*time.Minute)
	for obj, byObject := range opts.ByObject {
		if _, ok := obj.(*corev1.Secret); ok {
			byObject.Transform = cache.TransformStripManagedFields()
			opts.ByObject[obj] = byObject
		}
	}
	return opts, setup.ManagerClientOptions()
}

func controllerOptions(concurrency int) controller.Options {
	return controller.Options{MaxConcurrentReconciles: concurrency}
}

// setupCAPI wires CAPI's own reconcilers into mgr as CAPI's core manager
// (core/main.go setupReconcilers) and kubeadm bootstrap manager
// (bootstrap/kubeadm/main.go) do, with their default flag values:
// ClusterCache, Cluster, Machine, MachineHealthCheck and KubeadmConfig.
// It returns a function that stops the ClusterCache's connections to the
// workload clusters, which outlive the manager otherwise.
func setupCAPI(ctx context.Context, mgr ctrl.Manager, concurrency int) (shutdown func(), err error) {
	ctx = ctrl.LoggerInto(ctx, mgr.GetLogger())
	if err := index.AddDefaultIndexes(ctx, mgr); err != nil {
		return nil, fmt.Errorf("adding CAPI's indexes: %w", err)
	}
	secretCachingClient, err := setup.CreateSecretCachingClient(mgr)
	if err != nil {
		return nil, fmt.Errorf("creating CAPI's secret caching client: %w", err)
	}
	clusterCache, err := clustercache.SetupWithManager(ctx, mgr, clustercache.Options{
		SecretClient: secretCachingClient,
		Cache:        setup.ClusterCacheCacheOptions(),
		Client:       setup.ClusterCacheClientOptions(controllerName, 20, 30),
	}, controllerOptions(concurrency))
	if err != nil {
		return nil, fmt.Errorf("setting up CAPI's ClusterCache: %w", err)
	}
	shutdown = func() {}
	if s, ok := clusterCache.(interface{ Shutdown() }); ok {
		shutdown = s.Shutdown
	}
	if err := (&cluster.Reconciler{
		Client:                      mgr.GetClient(),
		APIReader:                   mgr.GetAPIReader(),
		ClusterCache:                clusterCache,
		RemoteConnectionGracePeriod: 50 * time.Second,
	}).SetupWithManager(ctx, mgr, controllerOptions(concurrency)); err != nil {
		return shutdown, fmt.Errorf("setting up CAPI's Cluster reconciler: %w", err)
	}
	if err := (&machine.Reconciler{
		Client:                      mgr.GetClient(),
		APIReader:                   mgr.GetAPIReader(),
		ClusterCache:                clusterCache,
		RemoteConditionsGracePeriod: 5 * time.Minute,
	}).SetupWithManager(ctx, mgr, controllerOptions(concurrency)); err != nil {
		return shutdown, fmt.Errorf("setting up CAPI's Machine reconciler: %w", err)
	}
	// MachineHealthCheck: it marks Machines unhealthy (HealthCheckSucceeded,
	// OwnerRemediated) and leaves standalone ones, like Joinery's, to
	// their owner to remediate.
	if err := (&machinehealthcheck.Reconciler{
		Client:       mgr.GetClient(),
		ClusterCache: clusterCache,
	}).SetupWithManager(ctx, mgr, controllerOptions(concurrency)); err != nil {
		return shutdown, fmt.Errorf("setting up CAPI's MachineHealthCheck reconciler: %w", err)
	}
	if err := (&kubeadmconfig.Reconciler{
		Client:              mgr.GetClient(),
		SecretCachingClient: secretCachingClient,
		APIReader:           mgr.GetAPIReader(),
		ClusterCache:        clusterCache,
		TokenTTL:            kubeadmconfig.DefaultTokenTTL,
	}).SetupWithManager(ctx, mgr, controllerOptions(concurrency)); err != nil {
		return shutdown, fmt.Errorf("setting up CAPI's KubeadmConfig reconciler: %w", err)
	}
	return shutdown, nil
}
