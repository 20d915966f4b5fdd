package agent

import (
	"bufio"
	"context"
	"fmt"
	"os"
	goruntime "runtime"
	"strconv"
	"strings"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
)

func everything() labels.Selector { return labels.Everything() }

// machineCapacity is what this machine has: CPUs, memory, 110 pods (the
// kubelet's default maxPods).
func machineCapacity() corev1.ResourceList {
	mem := int64(0)
	if f, err := os.Open("/proc/meminfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "MemTotal:"); ok {
				kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
				mem = kb * 1024
			}
		}
		f.Close()
	}
	return corev1.ResourceList{
		corev1.ResourceCPU:    *resource.NewQuantity(int64(goruntime.NumCPU()), resource.DecimalSI),
		corev1.ResourceMemory: *resource.NewQuantity(mem, resource.BinarySI),
		corev1.ResourcePods:   *resource.NewQuantity(110, resource.DecimalSI),
	}
}

func (a *Agent) capacity() corev1.ResourceList {
	c := machineCapacity()
	for k, v := range a.cfg.Capacity {
		c[k] = v
	}
	return c
}

// register creates the node's Node (NodeRestriction lets a node create
// only itself, with no node-role labels) and writes its first status.
func (a *Agent) register(ctx context.Context) error {
	lbls := map[string]string{
		corev1.LabelHostname:   a.cfg.NodeName,
		corev1.LabelOSStable:   goruntime.GOOS,
		corev1.LabelArchStable: goruntime.GOARCH,
	}
	for k, v := range a.cfg.Labels {
		lbls[k] = v
	}
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: a.cfg.NodeName, Labels: lbls}}
	if p := a.cfg.PodCIDR; p.IsValid() {
		// As the kubelet's --pod-cidr: node IPAM marks a range the Node
		// comes with as taken instead of handing out another.
		node.Spec.PodCIDR = p.String()
		node.Spec.PodCIDRs = []string{p.String()}
	}
	nodes := a.client.CoreV1().Nodes()
	for {
		_, err := nodes.Create(ctx, node, metav1.CreateOptions{})
		if err == nil || apierrors.IsAlreadyExists(err) {
			break
		}
		a.log.Warn("registering the node; retrying", "err", err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("agent: register node %s: %w", a.cfg.NodeName, err)
		case <-time.After(2 * time.Second):
		}
	}
	// Controllers write the new Node too (pod CIDR, taints): conflicts
	// and a slow API server are retried until the first status lands.
	for {
		err := a.updateStatus(ctx)
		if err == nil {
			break
		}
		a.log.Warn("writing the first node status; retrying", "err", err)
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Second):
		}
	}
	if err := a.renewLease(ctx); err != nil {
		a.log.Warn("node lease", "err", err)
	}
	return nil
}

// heartbeat renews the node's Lease every RenewInterval, as kubelets do,
// and rewrites its status every StatusInterval.
func (a *Agent) heartbeat(ctx context.Context, notReady <-chan struct{}) {
	lease := time.NewTicker(a.cfg.RenewInterval)
	defer lease.Stop()
	status := time.NewTicker(a.cfg.StatusInterval)
	defer status.Stop()
	lastPost := time.Now() // register posted the first status
	var again <-chan time.Time
	post := func() {
		again = nil
		lastPost = time.Now()
		status.Reset(a.cfg.StatusInterval)
		if err := a.updateStatus(ctx); err != nil && ctx.Err() == nil {
			a.log.Warn("node status", "err", err)
		}
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-lease.C:
			if err := a.renewLease(ctx); err != nil && ctx.Err() == nil {
				a.log.Warn("node lease renewal", "err", err)
			}
		case <-status.C:
			post()
		case <-notReady:
			// Node health (or the node lifecycle controller) marked the
			// node not Ready, and it runs: say so now rather than at the
			// next status post, as the kubelet does within its 10 s
			// status check. At most once per RenewInterval, so an agent
			// the servers' gossip cannot hear does not fight node health
			// on every write.
			if wait := time.Until(lastPost.Add(a.cfg.RenewInterval)); wait > 0 {
				if again == nil {
					again = time.After(wait)
				}
				continue
			}
			post()
		case <-again:
			post()
		}
	}
}

// watchOwnNode reports on the returned channel (buffered, never blocking
// the informer) whenever the node's own Node is seen with Ready other
// than True. The informer runs in a.wg until ctx ends.
func (a *Agent) watchOwnNode(ctx context.Context) (<-chan struct{}, error) {
	notReady := make(chan struct{}, 1)
	lw := cache.NewListWatchFromClient(a.client.CoreV1().RESTClient(), "nodes", metav1.NamespaceAll,
		fields.OneTermEqualSelector("metadata.name", a.cfg.NodeName))
	inf := cache.NewSharedIndexInformer(lw, &corev1.Node{}, 0, cache.Indexers{})
	check := func(obj any) {
		n, ok := obj.(*corev1.Node)
		if !ok || nodeIsReady(n) {
			return
		}
		select {
		case notReady <- struct{}{}:
		default:
		}
	}
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    check,
		UpdateFunc: func(_, obj any) { check(obj) },
	}); err != nil {
		return nil, fmt.Errorf("agent: watch node %s: %w", a.cfg.NodeName, err)
	}
	a.wg.Go(func() { inf.RunWithContext(ctx) })
	return notReady, nil
}

func nodeIsReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func (a *Agent) renewLease(ctx context.Context) error {
	leases := a.client.CoordinationV1().Leases(corev1.NamespaceNodeLease)
	now := metav1.NewMicroTime(time.Now())
	name := a.cfg.NodeName
	l, err := leases.Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		l = &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: corev1.NamespaceNodeLease},
			Spec: coordinationv1.LeaseSpec{
				HolderIdentity:       ptr.To(name),
				LeaseDurationSeconds: ptr.To(int32(a.cfg.LeaseDuration / time.Second)),
				RenewTime:            &now,
			},
		}
		if n, err := a.client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{}); err == nil {
			l.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: name, UID: n.UID}}
		}
		_, err = leases.Create(ctx, l, metav1.CreateOptions{})
		if err != nil {
			return fmt.Errorf("agent: create node lease: %w", err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("agent: node lease: %w", err)
	}
	l.Spec.RenewTime = &now
	l.Spec.HolderIdentity = ptr.To(name)
	if _, err := leases.Update(ctx, l, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("agent: renew node lease: %w", err)
	}
	return nil
}

// updateStatus writes the node's status as a kubelet does: capacity,
// allocatable, conditions, addresses, nodeInfo, images, the kubelet port.
func (a *Agent) updateStatus(ctx context.Context) error {
	rtVersion, err := a.rt.Version(ctx)
	if err != nil {
		rtVersion = "containerd://unknown"
	}
	images, err := a.rt.Images(ctx)
	if err != nil {
		a.log.Warn("listing images for node status", "err", err)
	}
	capacity := a.capacity()
	a.mu.Lock()
	a.allocatable = capacity.DeepCopy()
	a.mu.Unlock()
	bootID, _ := os.ReadFile("/proc/sys/kernel/random/boot_id")
	machineID, _ := os.ReadFile("/etc/machine-id")
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	nodes := a.client.CoreV1().Nodes()
	err = retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		n, err := nodes.Get(ctx, a.cfg.NodeName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		now := metav1.Now()
		cond := func(t corev1.NodeConditionType, s corev1.ConditionStatus, reason, msg string) corev1.NodeCondition {
			c := corev1.NodeCondition{Type: t, Status: s, Reason: reason, Message: msg, LastHeartbeatTime: now, LastTransitionTime: now}
			for _, old := range n.Status.Conditions {
				if old.Type == t && old.Status == s {
					c.LastTransitionTime = old.LastTransitionTime
				}
			}
			return c
		}
		n.Status.Capacity = capacity
		n.Status.Allocatable = capacity.DeepCopy()
		n.Status.Phase = corev1.NodeRunning
		n.Status.Conditions = []corev1.NodeCondition{
			cond(corev1.NodeMemoryPressure, corev1.ConditionFalse, "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
			cond(corev1.NodeDiskPressure, corev1.ConditionFalse, "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
			cond(corev1.NodePIDPressure, corev1.ConditionFalse, "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
			cond(corev1.NodeReady, corev1.ConditionTrue, "KubeletReady", "barge agent is posting ready status"),
		}
		n.Status.Addresses = []corev1.NodeAddress{
			{Type: corev1.NodeInternalIP, Address: a.cfg.NodeIP},
			{Type: corev1.NodeHostName, Address: a.cfg.NodeName},
		}
		n.Status.DaemonEndpoints = corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: a.cfg.KubeletPort}}
		n.Status.NodeInfo = corev1.NodeSystemInfo{
			MachineID:               strings.TrimSpace(string(machineID)),
			BootID:                  strings.TrimSpace(string(bootID)),
			KernelVersion:           strings.TrimSpace(string(kernel)),
			OSImage:                 osImage(),
			OperatingSystem:         goruntime.GOOS,
			Architecture:            goruntime.GOARCH,
			ContainerRuntimeVersion: rtVersion,
			KubeletVersion:          a.cfg.Version,
		}
		n.Status.Images = images
		_, err = nodes.UpdateStatus(ctx, n, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		return fmt.Errorf("agent: node %s status: %w", a.cfg.NodeName, err)
	}
	return nil
}

func osImage() string {
	b, err := os.ReadFile("/etc/os-release")
	if err != nil {
		return "Linux"
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "PRETTY_NAME="); ok {
			return strings.Trim(v, `"`)
		}
	}
	return "Linux"
}

func (a *Agent) nodeAllocatable() corev1.ResourceList {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.allocatable.DeepCopy()
}
