package hollow

import (
	"context"
	"fmt"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
)

// registerBackoff spaces the attempts to register one node: about 30 s
// in all.
func registerBackoff() wait.Backoff {
	return wait.Backoff{Duration: 100 * time.Millisecond, Factor: 2, Steps: 10, Cap: 5 * time.Second}
}

// register creates every node that does not exist yet, with a status a
// kubelet would report, and its Lease.
func (h *hollow) register(ctx context.Context) error {
	sem := make(chan struct{}, h.cfg.Workers)
	errs := make(chan error, len(h.names))
	var wg sync.WaitGroup
	for name := range h.names {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			// A store that changes leader under load refuses a write
			// or two ("leader changed"); a kubelet retries registration
			// too. A lasting error still ends Run after the backoff.
			err := retry.OnError(registerBackoff(), func(error) bool { return ctx.Err() == nil }, func() error { return h.registerNode(ctx, name) })
			if err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs // the first error, or nil
}

func (h *hollow) registerNode(ctx context.Context, name string) error {
	labels := map[string]string{corev1.LabelHostname: name, corev1.LabelOSStable: "linux", corev1.LabelArchStable: "amd64", HollowLabel: "true"}
	for k, v := range h.cfg.Labels {
		labels[k] = v
	}
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
	if _, err := h.client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("hollow: register node %s: %w", name, err)
	}
	// Node IPAM writes the node's pod CIDR meanwhile; take its version.
	if err := retry.RetryOnConflict(retry.DefaultBackoff, func() error { return h.reportStatus(ctx, name) }); err != nil {
		return err
	}
	return h.renewLease(ctx, name)
}

// reportStatus writes the node's status: capacity, Ready, and an address
// on loopback, so nothing the API server proxies to a hollow kubelet
// (logs, exec) leaves the machine: it is refused there.
func (h *hollow) reportStatus(ctx context.Context, name string) error {
	now := metav1.Now()
	cond := func(t corev1.NodeConditionType, s corev1.ConditionStatus, reason string) corev1.NodeCondition {
		return corev1.NodeCondition{Type: t, Status: s, Reason: reason, LastHeartbeatTime: now, LastTransitionTime: now}
	}
	nodes := h.client.CoreV1().Nodes()
	n, err := nodes.Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("hollow: node %s: %w", name, err)
	}
	n.Status = corev1.NodeStatus{
		Capacity:    h.cfg.Capacity.DeepCopy(),
		Allocatable: h.cfg.Capacity.DeepCopy(),
		Phase:       corev1.NodeRunning,
		Conditions: []corev1.NodeCondition{
			cond(corev1.NodeReady, corev1.ConditionTrue, "KubeletReady"),
			cond(corev1.NodeMemoryPressure, corev1.ConditionFalse, "KubeletHasSufficientMemory"),
			cond(corev1.NodeDiskPressure, corev1.ConditionFalse, "KubeletHasNoDiskPressure"),
			cond(corev1.NodePIDPressure, corev1.ConditionFalse, "KubeletHasSufficientPID"),
		},
		Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "127.0.0.1"}, {Type: corev1.NodeHostName, Address: name}},
		NodeInfo: corev1.NodeSystemInfo{
			OperatingSystem: "linux", Architecture: "amd64",
			KubeletVersion: "v1.37.2-hollow", ContainerRuntimeVersion: "hollow://0",
		},
		DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: 10250}},
	}
	if _, err := nodes.UpdateStatus(ctx, n, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("hollow: node %s status: %w", name, err)
	}
	return nil
}

// renewLeases renews every node's Lease each RenewInterval, as kubelets
// do, spread over the interval so a thousand nodes do not renew at once.
func (h *hollow) renewLeases(ctx context.Context) {
	names := make([]string, 0, len(h.names))
	for n := range h.names {
		names = append(names, n)
	}
	step := RenewInterval / time.Duration(len(names))
	tick := time.NewTicker(max(step, time.Millisecond))
	defer tick.Stop()
	for i := 0; ; i = (i + 1) % len(names) {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if !h.up(names[i]) {
			continue // killed or paused: its Lease runs out
		}
		if err := h.renewLease(ctx, names[i]); err != nil && ctx.Err() == nil {
			h.cfg.Logger.Warn("lease renewal", "node", names[i], "err", err)
		}
	}
}

func (h *hollow) renewLease(ctx context.Context, name string) error {
	leases := h.client.CoordinationV1().Leases(corev1.NamespaceNodeLease)
	now := metav1.NewMicroTime(time.Now())
	l, err := leases.Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		l = &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: corev1.NamespaceNodeLease},
			Spec: coordinationv1.LeaseSpec{
				HolderIdentity:       ptr.To(name),
				LeaseDurationSeconds: ptr.To(int32(LeaseDuration / time.Second)),
				RenewTime:            &now,
			},
		}
		if n, err := h.client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{}); err == nil {
			l.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: name, UID: n.UID}}
		}
		_, err = leases.Create(ctx, l, metav1.CreateOptions{})
		return err
	}
	if err != nil {
		return err
	}
	l.Spec.RenewTime = &now
	_, err = leases.Update(ctx, l, metav1.UpdateOptions{})
	return err
}
