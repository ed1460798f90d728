package cloudsim

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/ptr"
	infrav1 "sigs.k8s.io/cluster-api-provider-aws/v2/api/v1beta2"
	clusterv1beta1 "sigs.k8s.io/cluster-api/api/core/v1beta1"
	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"
	v1beta1conditions "sigs.k8s.io/cluster-api/util/deprecated/v1beta1/conditions"
	v1beta1patch "sigs.k8s.io/cluster-api/util/deprecated/v1beta1/patch"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/joinery-dev/joinery/api/v1alpha1"
)

// KwokNodeAnnotation marks the Nodes the simulator creates as managed by
// kwok, which keeps them Ready and runs their pods.
const KwokNodeAnnotation = "kwok.x-k8s.io/node"

// AWSClusterFinalizer is CAPA's AWSCluster finalizer.
const AWSClusterFinalizer = "awscluster.infrastructure.cluster.x-k8s.io"

func newAWSMachineKey(key types.NamespacedName) *infrav1.AWSMachine {
	m := &infrav1.AWSMachine{}
	m.Namespace, m.Name = key.Namespace, key.Name
	return m
}

// SetupWithManager registers the simulated CAPA controllers (AWSCluster and
// AWSMachine) with a manager whose scheme knows CAPI and CAPA types.
func (c *Cloud) SetupWithManager(mgr ctrl.Manager, options controller.Options) error {
	c.client = mgr.GetClient()
	cr := &awsClusterReconciler{cloud: c, client: mgr.GetClient()}
	if err := ctrl.NewControllerManagedBy(mgr).Named("cloudsim-awscluster").WithOptions(options).
		For(&infrav1.AWSCluster{}).Complete(cr); err != nil {
		return fmt.Errorf("setting up the simulated AWSCluster controller: %w", err)
	}
	mr := &awsMachineReconciler{cloud: c, client: mgr.GetClient(), recorder: mgr.GetEventRecorderFor("cloudsim-awsmachine")}
	err := ctrl.NewControllerManagedBy(mgr).Named("cloudsim-awsmachine").WithOptions(options).
		For(&infrav1.AWSMachine{}).
		// A Machine's bootstrap data secret name gates the launch.
		Watches(&clusterv1.Machine{}, handler.EnqueueRequestsFromMapFunc(machineToAWSMachine), builder.WithPredicates()).
		// The Cluster's infrastructure becoming provisioned gates it too.
		Watches(&clusterv1.Cluster{}, handler.EnqueueRequestsFromMapFunc(mr.clusterToAWSMachines)).
		WatchesRawSource(source.Channel(c.trigger, &handler.EnqueueRequestForObject{})).
		Complete(mr)
	if err != nil {
		return fmt.Errorf("setting up the simulated AWSMachine controller: %w", err)
	}
	return nil
}

func machineToAWSMachine(_ context.Context, o client.Object) []reconcile.Request {
	m, ok := o.(*clusterv1.Machine)
	if !ok || m.Spec.InfrastructureRef.Kind != "AWSMachine" || m.Spec.InfrastructureRef.APIGroup != infrav1.GroupVersion.Group {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: m.Namespace, Name: m.Spec.InfrastructureRef.Name}}}
}

type awsClusterReconciler struct {
	cloud  *Cloud
	client client.Client
}

// Reconcile plays CAPA's AWSCluster controller once the network exists: the
// cluster infrastructure is ready and its failure domains are the zones of
// its private subnets (or, without subnets, the region's first three zones,
// CAPA's default AZ usage limit).
func (r *awsClusterReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	log := r.cloud.opts.Log.WithValues("awsCluster", req.String())
	awsCluster := &infrav1.AWSCluster{}
	if err := r.client.Get(ctx, req.NamespacedName, awsCluster); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !awsCluster.DeletionTimestamp.IsZero() {
		if controllerutil.RemoveFinalizer(awsCluster, AWSClusterFinalizer) {
			return ctrl.Result{}, client.IgnoreNotFound(r.client.Update(ctx, awsCluster))
		}
		return ctrl.Result{}, nil
	}
	if !hasOwner(awsCluster.OwnerReferences, "Cluster") {
		log.V(1).Info("waiting for the Cluster controller to set the owner reference")
		return ctrl.Result{}, nil
	}
	helper, err := v1beta1patch.NewHelper(awsCluster, r.client)
	if err != nil {
		return ctrl.Result{}, err
	}
	controllerutil.AddFinalizer(awsCluster, AWSClusterFinalizer)
	awsCluster.Status.FailureDomains = clusterv1beta1.FailureDomains{}
	for _, zone := range clusterZones(awsCluster, r.cloud.opts.Region) {
		awsCluster.Status.FailureDomains[zone] = clusterv1beta1.FailureDomainSpec{ControlPlane: true}
	}
	awsCluster.Status.Ready = true
	for _, t := range []clusterv1beta1.ConditionType{infrav1.VpcReadyCondition, infrav1.SubnetsReadyCondition} {
		v1beta1conditions.MarkTrue(awsCluster, t)
	}
	v1beta1conditions.SetSummary(awsCluster, v1beta1conditions.WithConditions(infrav1.VpcReadyCondition, infrav1.SubnetsReadyCondition))
	if err := helper.Patch(ctx, awsCluster); err != nil {
		return ctrl.Result{}, fmt.Errorf("patching AWSCluster %s: %w", req, err)
	}
	return ctrl.Result{}, nil
}

// clusterZones are the zones of an AWSCluster's private subnets, sorted, or
// the region's a, b and c zones when it names no subnets.
func clusterZones(awsCluster *infrav1.AWSCluster, region string) []string {
	seen := map[string]bool{}
	var zones []string
	for _, s := range awsCluster.Spec.NetworkSpec.Subnets {
		if s.IsPublic || s.AvailabilityZone == "" || seen[s.AvailabilityZone] {
			continue
		}
		seen[s.AvailabilityZone] = true
		zones = append(zones, s.AvailabilityZone)
	}
	if len(zones) == 0 {
		if awsCluster.Spec.Region != "" {
			region = awsCluster.Spec.Region
		}
		zones = []string{region + "a", region + "b", region + "c"}
	}
	sort.Strings(zones)
	return zones
}

func hasOwner(refs []metav1.OwnerReference, kind string) bool {
	for _, r := range refs {
		if r.Kind == kind {
			return true
		}
	}
	return false
}

type awsMachineReconciler struct {
	cloud    *Cloud
	client   client.Client
	recorder record.EventRecorder
}

func (r *awsMachineReconciler) clusterToAWSMachines(ctx context.Context, o client.Object) []reconcile.Request {
	list := &infrav1.AWSMachineList{}
	if err := r.client.List(ctx, list, client.InNamespace(o.GetNamespace()), client.MatchingLabels{clusterv1.ClusterNameLabel: o.GetName()}); err != nil {
		return nil
	}
	out := make([]reconcile.Request, 0, len(list.Items))
	for _, m := range list.Items {
		out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&m)})
	}
	return out
}

// Reconcile follows CAPA v2.13's AWSMachine controller
// (controllers/awsmachine_controller.go reconcileNormal/reconcileDelete)
// with EC2 replaced by the simulator.
func (r *awsMachineReconciler) Reconcile(ctx context.Context, req ctrl.Request) (_ ctrl.Result, reterr error) {
	log := r.cloud.opts.Log.WithValues("awsMachine", req.String())
	awsMachine := &infrav1.AWSMachine{}
	if err := r.client.Get(ctx, req.NamespacedName, awsMachine); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	machine, err := r.ownerMachine(ctx, awsMachine)
	if err != nil {
		return ctrl.Result{}, err
	}
	if machine == nil {
		log.V(1).Info("waiting for the Machine controller to set the owner reference")
		return ctrl.Result{}, nil
	}
	log = log.WithValues("machine", machine.Name, "cluster", machine.Spec.ClusterName)
	cluster := &clusterv1.Cluster{}
	if err := r.client.Get(ctx, types.NamespacedName{Namespace: machine.Namespace, Name: machine.Spec.ClusterName}, cluster); err != nil {
		if apierrors.IsNotFound(err) && !awsMachine.DeletionTimestamp.IsZero() {
			cluster = nil
		} else {
			return ctrl.Result{}, fmt.Errorf("AWSMachine %s: reading Cluster %s of Machine %s: %w", req, machine.Spec.ClusterName, machine.Name, err)
		}
	}

	helper, err := v1beta1patch.NewHelper(awsMachine, r.client)
	if err != nil {
		return ctrl.Result{}, err
	}
	defer func() {
		v1beta1conditions.SetSummary(awsMachine, v1beta1conditions.WithConditions(infrav1.InstanceReadyCondition))
		if err := helper.Patch(ctx, awsMachine); err != nil && !apierrors.IsNotFound(err) {
			reterr = errors.Join(reterr, fmt.Errorf("patching AWSMachine %s: %w", req, err))
		}
	}()

	if !awsMachine.DeletionTimestamp.IsZero() {
		return r.reconcileDelete(ctx, log, awsMachine)
	}
	return r.reconcileNormal(ctx, log, awsMachine, machine, cluster)
}

func (r *awsMachineReconciler) ownerMachine(ctx context.Context, awsMachine *infrav1.AWSMachine) (*clusterv1.Machine, error) {
	for _, ref := range awsMachine.OwnerReferences {
		if ref.Kind != "Machine" || ref.APIVersion != clusterv1.GroupVersion.String() {
			continue
		}
		m := &clusterv1.Machine{}
		if err := r.client.Get(ctx, types.NamespacedName{Namespace: awsMachine.Namespace, Name: ref.Name}, m); err != nil {
			if apierrors.IsNotFound(err) {
				return nil, nil
			}
			return nil, fmt.Errorf("AWSMachine %s/%s: reading owner Machine %s: %w", awsMachine.Namespace, awsMachine.Name, ref.Name, err)
		}
		return m, nil
	}
	return nil, nil
}

func (r *awsMachineReconciler) reconcileNormal(ctx context.Context, log logr.Logger, awsMachine *infrav1.AWSMachine, machine *clusterv1.Machine, cluster *clusterv1.Cluster) (ctrl.Result, error) {
	if awsMachine.Status.FailureReason != nil || awsMachine.Status.FailureMessage != nil {
		log.V(1).Info("error state detected, skipping reconciliation")
		return ctrl.Result{}, nil
	}
	if !ptr.Deref(cluster.Status.Initialization.InfrastructureProvisioned, false) {
		v1beta1conditions.MarkFalse(awsMachine, infrav1.InstanceReadyCondition, infrav1.WaitingForClusterInfrastructureReason, clusterv1beta1.ConditionSeverityInfo, "")
		return ctrl.Result{}, nil
	}
	if machine.Spec.Bootstrap.DataSecretName == nil {
		v1beta1conditions.MarkFalse(awsMachine, infrav1.InstanceReadyCondition, infrav1.WaitingForBootstrapDataReason, clusterv1beta1.ConditionSeverityInfo, "")
		return ctrl.Result{}, nil
	}
	controllerutil.AddFinalizer(awsMachine, infrav1.MachineFinalizer)

	inst, found := r.cloud.instanceFor(awsMachine.UID)
	if !found {
		if v1beta1conditions.GetReason(awsMachine, infrav1.InstanceReadyCondition) != infrav1.InstanceProvisionFailedReason {
			v1beta1conditions.MarkFalse(awsMachine, infrav1.InstanceReadyCondition, infrav1.InstanceProvisionStartedReason, clusterv1beta1.ConditionSeverityInfo, "")
		}
		offering, zones, err := r.offering(ctx, awsMachine, machine, cluster)
		if err != nil {
			return ctrl.Result{}, err
		}
		launched, err := r.cloud.launch(offering, zones, client.ObjectKeyFromObject(cluster), client.ObjectKeyFromObject(awsMachine), awsMachine.UID)
		if err != nil {
			// As CAPA: the error chain of createInstance -> CreateInstance -> runInstance.
			err = fmt.Errorf("failed to create AWSMachine instance: failed to run instance: %w", err)
			log.Error(err, "unable to create instance", "offering", offering.String())
			r.recorder.Eventf(awsMachine, corev1.EventTypeWarning, "FailedCreate", "Failed to create instance: %v", err)
			v1beta1conditions.MarkFalse(awsMachine, infrav1.InstanceReadyCondition, infrav1.InstanceProvisionFailedReason, clusterv1beta1.ConditionSeverityError, "%s", err.Error())
			return ctrl.Result{RequeueAfter: r.cloud.opts.LaunchRetryInterval}, nil
		}
		inst = *launched
		r.recorder.Eventf(awsMachine, corev1.EventTypeNormal, "SuccessfulCreate", "Created new node instance with id %q", inst.ID)
	}

	inst, untilRunning := r.cloud.advance(inst.ID, time.Now())
	awsMachine.Spec.ProviderID = ptr.To(fmt.Sprintf("aws:///%s/%s", inst.Zone, inst.ID))
	awsMachine.Spec.InstanceID = ptr.To(inst.ID)
	if awsMachine.Spec.SpotMarketOptions != nil {
		awsMachine.Status.Interruptible = true
	}
	if prev := awsMachine.Status.InstanceState; prev == nil || string(*prev) != inst.State {
		log.Info("EC2 instance state changed", "state", inst.State, "instance-id", inst.ID)
	}
	awsMachine.Status.InstanceState = ptr.To(infrav1.InstanceState(inst.State))
	awsMachine.Status.Addresses = []clusterv1beta1.MachineAddress{
		{Type: clusterv1beta1.MachineInternalIP, Address: inst.PrivateIP},
		{Type: clusterv1beta1.MachineInternalDNS, Address: inst.hostname},
	}

	switch inst.State {
	case StatePending:
		awsMachine.Status.Ready = false
		v1beta1conditions.MarkFalse(awsMachine, infrav1.InstanceReadyCondition, infrav1.InstanceNotReadyReason, clusterv1beta1.ConditionSeverityWarning, "")
		return ctrl.Result{RequeueAfter: untilRunning}, nil
	case StateRunning:
		awsMachine.Status.Ready = true
		v1beta1conditions.MarkTrue(awsMachine, infrav1.InstanceReadyCondition)
		return r.register(ctx, log, inst, machine)
	default: // shutting-down, terminated: not by us, so unexpected
		awsMachine.Status.Ready = false
		log.Info("Unexpected EC2 instance termination", "state", inst.State, "instance-id", inst.ID)
		r.recorder.Eventf(awsMachine, corev1.EventTypeWarning, "InstanceUnexpectedTermination", "Unexpected EC2 instance termination")
		v1beta1conditions.MarkFalse(awsMachine, infrav1.InstanceReadyCondition, infrav1.InstanceTerminatedReason, clusterv1beta1.ConditionSeverityError, "")
		if inst.State == StateTerminated {
			awsMachine.Status.FailureReason = ptr.To("UpdateError")
			awsMachine.Status.FailureMessage = ptr.To(fmt.Sprintf("EC2 instance state %q is unexpected", inst.State))
		}
		return ctrl.Result{}, nil
	}
}

// offering is what RunInstances is asked for: the AWSMachine's instance
// type and market, in the zone CAPA would pick (the Machine's failure
// domain, else the zone of the AWSMachine's subnet, else the cluster's
// first zone), and the cluster's zones.
func (r *awsMachineReconciler) offering(ctx context.Context, awsMachine *infrav1.AWSMachine, machine *clusterv1.Machine, cluster *clusterv1.Cluster) (Offering, []string, error) {
	o := Offering{InstanceType: awsMachine.Spec.InstanceType, CapacityType: CapacityTypeOnDemand}
	if awsMachine.Spec.SpotMarketOptions != nil || awsMachine.Spec.MarketType == infrav1.MarketTypeSpot {
		o.CapacityType = CapacityTypeSpot
	}
	awsCluster := &infrav1.AWSCluster{}
	ref := cluster.Spec.InfrastructureRef
	if err := r.client.Get(ctx, types.NamespacedName{Namespace: cluster.Namespace, Name: ref.Name}, awsCluster); err != nil {
		return o, nil, fmt.Errorf("AWSMachine %s/%s: reading AWSCluster %s of Cluster %s: %w", awsMachine.Namespace, awsMachine.Name, ref.Name, cluster.Name, err)
	}
	zones := clusterZones(awsCluster, r.cloud.opts.Region)
	switch {
	case machine.Spec.FailureDomain != "":
		o.Zone = machine.Spec.FailureDomain
	case awsMachine.Spec.Subnet != nil && awsMachine.Spec.Subnet.ID != nil:
		for _, s := range awsCluster.Spec.NetworkSpec.Subnets {
			if s.ID == *awsMachine.Spec.Subnet.ID || s.ResourceID == *awsMachine.Spec.Subnet.ID {
				o.Zone = s.AvailabilityZone
			}
		}
	}
	if o.Zone == "" {
		o.Zone = zones[0]
	}
	return o, zones, nil
}

// register plays the kubelet: once the instance has run for JoinDelay, it
// creates the Node with the labels and taints of the kubeadm join
// configuration in the bootstrap data, unless the instance never joins.
func (r *awsMachineReconciler) register(ctx context.Context, log logr.Logger, inst Instance, machine *clusterv1.Machine) (ctrl.Result, error) {
	if inst.neverJoin || inst.NodeName != "" {
		return ctrl.Result{}, nil
	}
	if wait := time.Until(inst.RunningTime.Add(r.cloud.opts.JoinDelay)); wait > 0 {
		return ctrl.Result{RequeueAfter: wait}, nil
	}
	workload, ok := r.cloud.workloadClient(inst.Cluster)
	if !ok {
		log.Info("the simulated cloud does not know the workload cluster; its nodes cannot join until cloudsim.Cloud.RegisterCluster is called", "cluster", inst.Cluster.String())
		return ctrl.Result{RequeueAfter: 5 * time.Second}, nil
	}
	join, err := r.joinConfiguration(ctx, machine)
	if err != nil {
		return ctrl.Result{}, err
	}
	capacity, allocatable, typeLabels, _ := r.cloud.opts.InstanceTypes.InstanceTypeInfo(inst.InstanceType)
	labels := map[string]string{}
	for k, v := range join.labels {
		labels[k] = v
	}
	for k, v := range typeLabels {
		labels[k] = v
	}
	labels[v1alpha1.LabelHostname] = inst.hostname
	labels[v1alpha1.LabelZone] = inst.Zone
	labels[v1alpha1.LabelRegion] = r.cloud.opts.Region
	labels[v1alpha1.LabelCapacityType] = inst.CapacityType
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name:        inst.hostname,
			Labels:      labels,
			Annotations: map[string]string{KwokNodeAnnotation: "fake"},
		},
		Spec: corev1.NodeSpec{ProviderID: fmt.Sprintf("aws:///%s/%s", inst.Zone, inst.ID), Taints: join.taints},
		Status: corev1.NodeStatus{
			Capacity:    capacity,
			Allocatable: allocatable,
			Addresses: []corev1.NodeAddress{
				{Type: corev1.NodeInternalIP, Address: inst.PrivateIP},
				{Type: corev1.NodeInternalDNS, Address: inst.hostname},
				{Type: corev1.NodeHostName, Address: inst.hostname},
			},
			NodeInfo: corev1.NodeSystemInfo{
				Architecture: labels[v1alpha1.LabelArch], OperatingSystem: "linux", KubeletVersion: machine.Spec.Version,
			},
		},
	}
	if err := workload.Create(ctx, node); err != nil && !apierrors.IsAlreadyExists(err) {
		return ctrl.Result{}, fmt.Errorf("registering Node %s of instance %s in workload cluster %s: %w", node.Name, inst.ID, inst.Cluster, err)
	}
	r.cloud.setNodeName(inst.ID, node.Name)
	log.Info("node registered", "node", node.Name, "instance", inst.ID)
	return ctrl.Result{}, nil
}

func (r *awsMachineReconciler) reconcileDelete(ctx context.Context, log logr.Logger, awsMachine *infrav1.AWSMachine) (ctrl.Result, error) {
	inst, found := r.cloud.instanceFor(awsMachine.UID)
	if !found {
		log.Info("no EC2 instance for the deleted AWSMachine; removing the finalizer")
		controllerutil.RemoveFinalizer(awsMachine, infrav1.MachineFinalizer)
		return ctrl.Result{}, nil
	}
	if inst.State != StateTerminated {
		log.Info("Terminating EC2 instance", "instance-id", inst.ID)
		if err := r.cloud.terminate(ctx, inst.ID, "AWSMachine deleted"); err != nil {
			v1beta1conditions.MarkFalse(awsMachine, infrav1.InstanceReadyCondition, "DeletingFailed", clusterv1beta1.ConditionSeverityWarning, "%s", err.Error())
			r.recorder.Eventf(awsMachine, corev1.EventTypeWarning, "FailedTerminate", "Failed to terminate instance %q: %v", inst.ID, err)
			return ctrl.Result{}, err
		}
		r.recorder.Eventf(awsMachine, corev1.EventTypeNormal, "SuccessfulTerminate", "Terminated instance %q", inst.ID)
	}
	v1beta1conditions.MarkFalse(awsMachine, infrav1.InstanceReadyCondition, clusterv1beta1.DeletedReason, clusterv1beta1.ConditionSeverityInfo, "")
	controllerutil.RemoveFinalizer(awsMachine, infrav1.MachineFinalizer)
	return ctrl.Result{}, nil
}
