// Package explain answers "why" about Joinery's decisions from what the
// controllers recorded: the decision annotation on each Machine (offering,
// fallbacks, cheaper offerings passed over and why, the pods it is for),
// the disruption annotations (replaced by what, kept because of what),
// Events on Machines, NodePools and pods, and NodePool status. It never
// runs the solver again: an explanation is what happened, not a guess.
package explain

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/duration"
	"k8s.io/client-go/tools/clientcmd"
	clusterv1 "sigs.k8s.io/cluster-api/api/core/v1beta2"
	"sigs.k8s.io/cluster-api/util/kubeconfig"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/joinery-dev/joinery/api/v1alpha1"
	"github.com/joinery-dev/joinery/controllers/disruption"
	"github.com/joinery-dev/joinery/controllers/provisioning"
	"github.com/joinery-dev/joinery/internal/clusterstate"
	"github.com/joinery-dev/joinery/solver"
)

// Explainer reads a management cluster and, through CAPI's kubeconfig
// Secrets, its workload clusters.
type Explainer struct {
	// Client reads the management cluster.
	Client client.Client
	// Workload returns a client for a CAPI Cluster's workload cluster.
	Workload func(ctx context.Context, cluster types.NamespacedName) (client.Client, error)
	// Now is the clock ages are measured against.
	Now func() time.Time
}

func (e *Explainer) now() time.Time {
	if e.Now != nil {
		return e.Now()
	}
	return time.Now()
}

func (e *Explainer) age(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return duration.HumanDuration(e.now().Sub(t))
}

// Machine explains one Machine Joinery created: why this offering, what
// was cheaper and why not, where it is in its life, and what disruption
// thinks of it.
func (e *Explainer) Machine(ctx context.Context, w io.Writer, key types.NamespacedName) error {
	m := &clusterv1.Machine{}
	if err := e.Client.Get(ctx, key, m); err != nil {
		return fmt.Errorf("reading Machine %s: %w", key, err)
	}
	d, err := provisioning.ReadDecision(m)
	if err != nil {
		return fmt.Errorf("%w (was it created by Joinery? its NodePool label %s is %q)", err, v1alpha1.LabelNodePool, m.Labels[v1alpha1.LabelNodePool])
	}
	fmt.Fprintf(w, "Machine %s/%s in cluster %s, NodePool %s\n", m.Namespace, m.Name, m.Spec.ClusterName, d.NodePool)
	fmt.Fprintf(w, "  Phase: %s%s\n", m.Status.Phase, e.machineState(ctx, m))

	fmt.Fprintf(w, "\nWhy this offering\n")
	fmt.Fprintf(w, "  Decided %s ago for %s: %s.\n", e.age(d.DecidedAt.Time), plural(d.PodCount, "pending pod"), podList(d.Pods, d.PodCount))
	if line := headroomLine(d); line != "" {
		fmt.Fprintf(w, "  %s\n", line)
	}
	chosen := "the cheapest offering that carries those pods within every constraint"
	for _, r := range d.Rejected {
		if r.Reason == solver.RejectedForSpotRisk {
			chosen += ", spot prices weighed by interruption risk: price × (1 + weight × risk), risk 0..1 from EC2's spot placement score and the interruptions Joinery saw (--spot-risk-weight)"
		}
	}
	fmt.Fprintf(w, "  Chosen: %s, %s.\n", describeOffering(d.Offering), chosen)
	if d.SpotMaxPrice != "" {
		fmt.Fprintf(w, "  Spot price cap: $%s/h (spotMarketOptions.maxPrice of the pool's AWSMachineTemplate): spot offerings above it were not chosen, and EC2 is asked for no more.\n", d.SpotMaxPrice)
	}
	if len(d.Fallbacks) > 0 {
		fmt.Fprintf(w, "  Fallbacks, if the cloud refuses it (%d recorded, cheapest first): %s\n", len(d.Fallbacks), offeringList(d.Fallbacks, 3))
	}
	if len(d.Rejected) == 0 {
		fmt.Fprintf(w, "  Cheaper offerings passed over: none; nothing the pool allows costs less.\n")
	} else {
		fmt.Fprintf(w, "  Cheaper offerings passed over:\n")
		for _, r := range d.Rejected {
			fmt.Fprintf(w, "    - %s: %s, %s\n", r.Reason, plural(r.Count, "offering"), cheapest(r))
		}
	}

	fmt.Fprintf(w, "\nDisruption\n")
	switch {
	case m.Annotations[disruption.AnnotationReplacedBy] != "":
		fmt.Fprintf(w, "  Being replaced by %s: %s\n", m.Annotations[disruption.AnnotationReplacedBy], m.Annotations[disruption.AnnotationDisruption])
	case !m.DeletionTimestamp.IsZero():
		fmt.Fprintf(w, "  Being deleted (since %s ago); CAPI drains its node.\n", e.age(m.DeletionTimestamp.Time))
	case m.Annotations[disruption.AnnotationNotDisrupted] != "":
		since, _ := time.Parse(time.RFC3339, m.Annotations[disruption.AnnotationNotDisruptedSince])
		fmt.Fprintf(w, "  Kept: %s (recorded %s ago).\n", m.Annotations[disruption.AnnotationNotDisrupted], e.age(since))
	default:
		fmt.Fprintf(w, "  Not looked at yet: disruption considers a Machine once its node is Ready and no pods are pending in the cluster.\n")
	}

	events, err := e.events(ctx, e.Client, m.Namespace, "Machine", m.Name)
	if err != nil {
		return err
	}
	pool := &v1alpha1.NodePool{}
	if err := e.Client.Get(ctx, types.NamespacedName{Namespace: m.Namespace, Name: d.NodePool}, pool); err == nil {
		poolEvents, err := e.events(ctx, e.Client, m.Namespace, "NodePool", pool.Name)
		if err != nil {
			return err
		}
		for _, ev := range poolEvents {
			if strings.Contains(ev.Message, m.Name) {
				events = append(events, ev)
			}
		}
		sort.SliceStable(events, func(i, j int) bool { return eventTime(&events[i]).Before(eventTime(&events[j])) })
	}
	e.printEvents(w, events)
	return nil
}

// machineState is the node and infrastructure part of a Machine's phase.
func (e *Explainer) machineState(ctx context.Context, m *clusterv1.Machine) string {
	var parts []string
	if m.Status.NodeRef.IsDefined() {
		parts = append(parts, "node "+m.Status.NodeRef.Name)
	} else {
		parts = append(parts, fmt.Sprintf("no node yet, %s after creation", e.age(m.CreationTimestamp.Time)))
		ref := m.Spec.InfrastructureRef
		if mapping, err := e.Client.RESTMapper().RESTMapping(schema.GroupKind{Group: ref.APIGroup, Kind: ref.Kind}); err == nil && ref.Name != "" {
			infra := &unstructured.Unstructured{}
			infra.SetGroupVersionKind(mapping.GroupVersionKind)
			if e.Client.Get(ctx, types.NamespacedName{Namespace: m.Namespace, Name: ref.Name}, infra) == nil {
				if msg := notReadyMessage(infra); msg != "" {
					parts = append(parts, ref.Kind+" "+ref.Name+": "+msg)
				}
			}
		}
	}
	if id := m.Spec.ProviderID; id != "" {
		parts = append(parts, id)
	}
	return " (" + strings.Join(parts, "; ") + ")"
}

// notReadyMessage is the message of the first condition of an
// infrastructure object that is not True (CAPA reports capacity errors
// there).
func notReadyMessage(u *unstructured.Unstructured) string {
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		cm, ok := c.(map[string]any)
		if !ok || cm["status"] == "True" {
			continue
		}
		msg, _ := cm["message"].(string)
		reason, _ := cm["reason"].(string)
		if msg != "" || reason != "" {
			return fmt.Sprintf("%v %s: %s", cm["type"], reason, msg)
		}
	}
	return ""
}

// NodePool explains a pool: its state, limits, the clusters it serves,
// and each of its Machines with what disruption thinks of it.
func (e *Explainer) NodePool(ctx context.Context, w io.Writer, key types.NamespacedName) error {
	pool := &v1alpha1.NodePool{}
	if err := e.Client.Get(ctx, key, pool); err != nil {
		return fmt.Errorf("reading NodePool %s: %w", key, err)
	}
	fmt.Fprintf(w, "NodePool %s/%s\n", pool.Namespace, pool.Name)
	for _, c := range pool.Status.Conditions {
		fmt.Fprintf(w, "  %s=%s %s: %s\n", c.Type, c.Status, c.Reason, c.Message)
	}
	fmt.Fprintf(w, "  Machines: %d (%d with a ready node), $%s/h\n", pool.Status.Machines, pool.Status.Nodes, orDash(pool.Status.PricePerHour))
	if len(pool.Spec.Limits) > 0 {
		var parts []string
		for _, name := range sortedKeys(pool.Spec.Limits) {
			limit := pool.Spec.Limits[corev1.ResourceName(name)]
			parts = append(parts, name+" "+limit.String())
		}
		fmt.Fprintf(w, "  Limits, each per served cluster: %s\n", strings.Join(parts, ", "))
	}
	fmt.Fprintf(w, "  Disruption: consolidationPolicy %s, consolidateAfter %s, expireAfter %s, %s\n",
		orDash(string(pool.Spec.Disruption.ConsolidationPolicy)), orDash(pool.Spec.Disruption.ConsolidateAfter),
		orDash(pool.Spec.Template.Spec.ExpireAfter), plural(len(pool.Spec.Disruption.Budgets), "budget"))
	var machines clusterv1.MachineList
	if err := e.Client.List(ctx, &machines, client.InNamespace(pool.Namespace), client.MatchingLabels{v1alpha1.LabelNodePool: pool.Name}); err != nil {
		return fmt.Errorf("listing the pool's Machines: %w", err)
	}
	priceIn := map[string]float64{}
	for i := range machines.Items {
		if d, err := provisioning.ReadDecision(&machines.Items[i]); err == nil {
			priceIn[machines.Items[i].Spec.ClusterName] += d.Offering.PricePerHour
		}
	}
	if len(pool.Status.Clusters) == 0 {
		fmt.Fprintf(w, "  Clusters: none served yet (clusterName/clusterSelector match no CAPI Cluster in namespace %s, or the pool was not reconciled yet)\n", pool.Namespace)
	}
	for _, c := range pool.Status.Clusters {
		state := "reachable"
		if !c.Reachable {
			state = "UNREACHABLE"
		}
		msg := ""
		if c.Message != "" {
			msg = ": " + c.Message
		}
		fmt.Fprintf(w, "  Cluster %s: %s, %s at $%.4f/h%s\n", c.Name, state, plural(int(c.Machines), "machine"), priceIn[c.Name], msg)
	}
	sort.Slice(machines.Items, func(i, j int) bool { return machines.Items[i].Name < machines.Items[j].Name })
	if len(machines.Items) > 0 {
		fmt.Fprintf(w, "\nMachines\n")
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintf(tw, "  NAME\tCLUSTER\tOFFERING\t$/H\tNODE\tAGE\tDISRUPTION\n")
		for i := range machines.Items {
			m := &machines.Items[i]
			offering, price := "-", "-"
			if d, err := provisioning.ReadDecision(m); err == nil {
				offering = fmt.Sprintf("%s %s %s", d.Offering.InstanceType, d.Offering.CapacityType, d.Offering.Zone)
				if d.Offering.ReservationID != "" {
					offering += " " + d.Offering.ReservationID
				}
				price = fmt.Sprintf("%.4f", d.Offering.PricePerHour)
			}
			node := "-"
			if m.Status.NodeRef.IsDefined() {
				node = m.Status.NodeRef.Name
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\t%s\n", m.Name, m.Spec.ClusterName, offering, price, node, e.age(m.CreationTimestamp.Time), disruptionState(m))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	events, err := e.events(ctx, e.Client, pool.Namespace, "NodePool", pool.Name)
	if err != nil {
		return err
	}
	e.printEvents(w, events)
	return nil
}

func disruptionState(m *clusterv1.Machine) string {
	switch {
	case m.Annotations[disruption.AnnotationReplacedBy] != "":
		return "replaced by " + m.Annotations[disruption.AnnotationReplacedBy]
	case !m.DeletionTimestamp.IsZero():
		return "deleting"
	case m.Annotations[disruption.AnnotationNotDisrupted] != "":
		return "kept: " + m.Annotations[disruption.AnnotationNotDisrupted]
	}
	return "-"
}

// Pod explains a pod of a workload cluster: where it runs or why it
// waits, and for which Machine. cluster may be empty when only one
// cluster has a pod of that name.
func (e *Explainer) Pod(ctx context.Context, w io.Writer, cluster types.NamespacedName, pod types.NamespacedName) error {
	clusters, err := e.servedClusters(ctx, cluster)
	if err != nil {
		return err
	}
	var found *corev1.Pod
	var in *clusterv1.Cluster
	var wc client.Client
	var unreachable []string
	for i := range clusters {
		c, err := e.Workload(ctx, client.ObjectKeyFromObject(&clusters[i]))
		if err != nil {
			unreachable = append(unreachable, fmt.Sprintf("%s/%s (%v)", clusters[i].Namespace, clusters[i].Name, err))
			continue
		}
		p := &corev1.Pod{}
		if err := c.Get(ctx, pod, p); err != nil {
			if !apierrors.IsNotFound(err) {
				unreachable = append(unreachable, fmt.Sprintf("%s/%s (%v)", clusters[i].Namespace, clusters[i].Name, err))
			}
			continue
		}
		if found != nil {
			return fmt.Errorf("pod %s exists in clusters %s/%s and %s/%s: name one with --cluster", pod, in.Namespace, in.Name, clusters[i].Namespace, clusters[i].Name)
		}
		found, in, wc = p, &clusters[i], c
	}
	if found == nil {
		msg := fmt.Sprintf("pod %s not found in %s", pod, plural(len(clusters), "cluster"))
		if len(unreachable) > 0 {
			msg += "; could not read " + strings.Join(unreachable, ", ")
		}
		return fmt.Errorf("%s", msg)
	}
	p := found
	fmt.Fprintf(w, "Pod %s/%s in cluster %s/%s\n", p.Namespace, p.Name, in.Namespace, in.Name)
	fmt.Fprintf(w, "  Phase: %s, age %s\n", p.Status.Phase, e.age(p.CreationTimestamp.Time))
	if p.Spec.NodeName != "" {
		fmt.Fprintf(w, "  Runs on node %s.\n", p.Spec.NodeName)
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status != corev1.ConditionTrue {
			fmt.Fprintf(w, "  PodScheduled=%s %s: %s\n", c.Status, c.Reason, c.Message)
		}
	}

	view, err := clusterstate.ReadMachines(ctx, e.Client, wc, in)
	if err != nil {
		return err
	}
	var machine *clusterv1.Machine
	if m := machineForPod(view.Machines, p); m != nil {
		machine = m.Machine
	}
	events, err := e.events(ctx, wc, p.Namespace, "Pod", p.Name)
	if err != nil {
		return err
	}
	// The newest record wins: a pod planned on a Machine whose node then
	// filled with other pods gets a FailedProvisioning Event later.
	var failed *corev1.Event
	for i := range events {
		if events[i].Reason == "FailedProvisioning" {
			failed = &events[i]
		}
	}
	var decided time.Time
	if machine != nil {
		if d, err := provisioning.ReadDecision(machine); err == nil {
			decided = d.DecidedAt.Time
		}
	}
	failedLater := failed != nil && eventTime(failed).After(decided)
	fmt.Fprintf(w, "\nJoinery\n")
	switch {
	case p.Spec.NodeName != "" && machine != nil:
		fmt.Fprintf(w, "  Launched for this pod: Machine %s/%s; see `joinery explain machine %s/%s`.\n", machine.Namespace, machine.Name, machine.Namespace, machine.Name)
	case p.Spec.NodeName != "":
		fmt.Fprintf(w, "  Scheduled onto existing capacity; Joinery launched nothing for it.\n")
	case machine != nil && !failedLater:
		d, _ := provisioning.ReadDecision(machine)
		fmt.Fprintf(w, "  Waiting for Machine %s/%s (%s), created %s ago%s.\n", machine.Namespace, machine.Name,
			describeOffering(d.Offering), e.age(machine.CreationTimestamp.Time), e.machineState(ctx, machine))
	case isDaemonSetPod(p):
		fmt.Fprintf(w, "  A DaemonSet pod: Joinery never launches machines for these; it counts their requests on every new node.\n")
	case !unschedulable(p):
		fmt.Fprintf(w, "  Not pending for Joinery: the scheduler has not marked it Unschedulable (yet); Joinery acts only on PodScheduled=False/Unschedulable.\n")
	case failed != nil:
		fmt.Fprintf(w, "  No machine can be launched for it (%s ago): %s\n", e.age(eventTime(failed)), failed.Message)
		if machine != nil {
			fmt.Fprintf(w, "  It was planned on Machine %s/%s %s ago; the scheduler gave that room to other pods.\n", machine.Namespace, machine.Name, e.age(decided))
		}
	default:
		fmt.Fprintf(w, "  Unschedulable, and no Machine was launched for it: it waits for the current batch window to close, or the last plan put it on capacity that is still booting (%s in cluster %s).\n",
			plural(booting(view.Machines), "Machine without a node"), in.Name)
	}
	e.printEvents(w, events)
	return nil
}

// servedClusters are the CAPI Clusters a NodePool serves, or the one named.
func (e *Explainer) servedClusters(ctx context.Context, named types.NamespacedName) ([]clusterv1.Cluster, error) {
	if named.Name != "" {
		c := clusterv1.Cluster{}
		if err := e.Client.Get(ctx, named, &c); err != nil {
			return nil, fmt.Errorf("reading Cluster %s: %w", named, err)
		}
		return []clusterv1.Cluster{c}, nil
	}
	var pools v1alpha1.NodePoolList
	if err := e.Client.List(ctx, &pools); err != nil {
		return nil, fmt.Errorf("listing NodePools: %w", err)
	}
	var clusters clusterv1.ClusterList
	if err := e.Client.List(ctx, &clusters); err != nil {
		return nil, fmt.Errorf("listing Clusters: %w", err)
	}
	var out []clusterv1.Cluster
	for _, c := range clusters.Items {
		for i := range pools.Items {
			if provisioning.Serves(&pools.Items[i], &c) {
				out = append(out, c)
				break
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no NodePool serves any CAPI Cluster: Joinery launches nothing for any pod (check spec.clusterName/clusterSelector)")
	}
	return out, nil
}

// machineForPod is the Machine whose decision names the pod (decisions
// record up to 100 pods each).
func machineForPod(machines []clusterstate.Machine, p *corev1.Pod) *clusterstate.Machine {
	want := p.Namespace + "/" + p.Name
	var newest *clusterstate.Machine
	for i := range machines {
		m := &machines[i]
		d, err := provisioning.ReadDecision(m.Machine)
		if err != nil {
			continue
		}
		for _, name := range d.Pods {
			if name == want && (newest == nil || m.CreationTimestamp.After(newest.CreationTimestamp.Time)) {
				newest = m
			}
		}
	}
	return newest
}

// booting counts the Machines whose Node has not registered that are not
// being deleted: matched as the provisioning loop matches them, so a Node
// that registered before CAPI set the Machine's nodeRef is not booting.
func booting(machines []clusterstate.Machine) int {
	n := 0
	for i := range machines {
		if machines[i].Node == nil && !machines[i].Deleting() {
			n++
		}
	}
	return n
}

func unschedulable(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable {
			return true
		}
	}
	return false
}

func isDaemonSetPod(p *corev1.Pod) bool {
	for _, o := range p.OwnerReferences {
		if o.Kind == "DaemonSet" {
			return true
		}
	}
	return false
}

// events lists the Events about one object, oldest first.
func (e *Explainer) events(ctx context.Context, c client.Client, namespace, kind, name string) ([]corev1.Event, error) {
	var list corev1.EventList
	// The apiserver filters Events by involved object, so a busy namespace
	// costs nothing here.
	if err := c.List(ctx, &list, client.InNamespace(namespace), client.MatchingFields{"involvedObject.kind": kind, "involvedObject.name": name}); err != nil {
		if meta.IsNoMatchError(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("listing Events in %s: %w", namespace, err)
	}
	var out []corev1.Event
	for _, ev := range list.Items {
		if ev.InvolvedObject.Kind == kind && ev.InvolvedObject.Name == name {
			out = append(out, ev)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return eventTime(&out[i]).Before(eventTime(&out[j])) })
	return out, nil
}

func eventTime(ev *corev1.Event) time.Time {
	switch {
	case !ev.LastTimestamp.IsZero():
		return ev.LastTimestamp.Time
	case !ev.EventTime.IsZero():
		return ev.EventTime.Time
	}
	return ev.CreationTimestamp.Time
}

// maxEvents keeps the transcript readable; the newest are shown.
const maxEvents = 15

func (e *Explainer) printEvents(w io.Writer, events []corev1.Event) {
	if len(events) == 0 {
		return
	}
	fmt.Fprintf(w, "\nEvents\n")
	if len(events) > maxEvents {
		fmt.Fprintf(w, "  (%d older not shown)\n", len(events)-maxEvents)
		events = events[len(events)-maxEvents:]
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for i := range events {
		ev := &events[i]
		count := ""
		if ev.Count > 1 {
			count = fmt.Sprintf(" (x%d)", ev.Count)
		}
		fmt.Fprintf(tw, "  %s ago\t%s\t%s\t%s%s\n", e.age(eventTime(ev)), ev.Type, ev.Reason, ev.Message, count)
	}
	_ = tw.Flush()
}

// describeOffering says what an offering costs and, when a NodeOverlay
// set that price, which overlay and the list price it replaced: the
// reason a discounted family may have won.
func describeOffering(o provisioning.Offering) string {
	s := fmt.Sprintf("%s %s in %s at $%.4f/h", o.CapacityType, o.InstanceType, o.Zone, o.PricePerHour)
	if o.PriceOverlay != "" {
		s += fmt.Sprintf(" (price set by NodeOverlay %s; list $%.4f/h)", o.PriceOverlay, o.ListPricePerHour)
	}
	if o.ReservationID != "" {
		kind := "capacity reservation"
		if o.ReservationType == v1alpha1.CapacityReservationTypeBlock {
			kind = "capacity block"
		}
		s += fmt.Sprintf(" in %s %s (already paid for: priced at the on-demand price / 10,000,000)", kind, o.ReservationID)
	}
	return s + spotRisk(o)
}

// spotRisk says what a spot offering's price was weighed by, if anything.
func spotRisk(o provisioning.Offering) string {
	var parts []string
	if o.PlacementScore > 0 {
		parts = append(parts, fmt.Sprintf("placement score %d/10", o.PlacementScore))
	}
	if o.RecentInterruptions > 0 {
		parts = append(parts, fmt.Sprintf("%.1f recent interruptions (fading)", o.RecentInterruptions))
	}
	if o.InterruptionRisk > 0 {
		parts = append(parts, fmt.Sprintf("interruption risk %.2f", o.InterruptionRisk))
	}
	if len(parts) == 0 {
		return ""
	}
	return " [" + strings.Join(parts, ", ") + "]"
}

func offeringList(os []provisioning.Offering, n int) string {
	var parts []string
	for i, o := range os {
		if i == n {
			parts = append(parts, fmt.Sprintf("and %d more", len(os)-n))
			break
		}
		parts = append(parts, describeOffering(o))
	}
	return strings.Join(parts, ", ")
}

func cheapest(r provisioning.Rejected) string {
	if len(r.Offerings) == 0 {
		return "none recorded"
	}
	label := "cheapest"
	if len(r.Offerings) > 1 {
		label = fmt.Sprintf("cheapest %d", len(r.Offerings))
	}
	return label + ": " + offeringList(r.Offerings, len(r.Offerings))
}

func podList(pods []string, count int) string {
	if len(pods) == 0 {
		return "(none recorded)"
	}
	shown := pods
	if len(shown) > 5 {
		shown = shown[:5]
	}
	s := strings.Join(shown, ", ")
	if count > len(shown) {
		s += fmt.Sprintf(" and %d more", count-len(shown))
	}
	return s
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func sortedKeys(l corev1.ResourceList) []string {
	out := make([]string, 0, len(l))
	for k := range l {
		out = append(out, string(k))
	}
	sort.Strings(out)
	return out
}

// WorkloadFromSecrets reaches workload clusters as CAPI's controllers do:
// through the kubeconfig Secret of each CAPI Cluster.
func WorkloadFromSecrets(mgmt client.Client) func(context.Context, types.NamespacedName) (client.Client, error) {
	return func(ctx context.Context, cluster types.NamespacedName) (client.Client, error) {
		raw, err := kubeconfig.FromSecret(ctx, mgmt, cluster)
		if err != nil {
			return nil, fmt.Errorf("reading the kubeconfig Secret of Cluster %s: %w", cluster, err)
		}
		cfg, err := clientcmd.RESTConfigFromKubeConfig(raw)
		if err != nil {
			return nil, fmt.Errorf("the kubeconfig of Cluster %s: %w", cluster, err)
		}
		cfg.Timeout = 10 * time.Second
		return client.New(cfg, client.Options{Scheme: mgmt.Scheme()})
	}
}

// headroomLine says which of a decision's pods were CapacityBuffer chunks:
// capacity launched ahead of demand, not for pods that waited.
func headroomLine(d provisioning.Decision) string {
	if len(d.Headroom) == 0 {
		return ""
	}
	buffers := make([]string, 0, len(d.Headroom))
	chunks := 0
	for b, n := range d.Headroom {
		buffers = append(buffers, fmt.Sprintf("%s (%d)", b, n))
		chunks += n
	}
	sort.Strings(buffers)
	which := fmt.Sprintf("%d of them are", chunks)
	if chunks == d.PodCount {
		which = "all of them are"
	}
	return fmt.Sprintf("Headroom: %s chunks of CapacityBuffer %s, not pods: room launched ahead of demand so a burst lands on a node that exists.",
		which, strings.Join(buffers, ", "))
}
