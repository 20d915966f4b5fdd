package nodehealth_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/barge-dev/barge/control/apitest"
	"github.com/barge-dev/barge/control/nodehealth"
	"github.com/barge-dev/barge/node/gossip"
	"github.com/barge-dev/barge/node/hollow"
)

const (
	nodeCount = 3
	replicas  = 6
)

// TestNodeHealthFromGossip: three servers and three hollow nodes in one
// gossip pool, a Deployment of six. A node paused for a second keeps its
// pods; a killed node is marked Ready=Unknown by gossip, tainted
// unreachable, and its pods are replaced on the others, while pods that
// tolerate the taint themselves (a DaemonSet's, one with its own
// toleration) stay; the node comes back Ready.
func TestNodeHealthFromGossip(t *testing.T) {
	c := apitest.New(t, 3, apitest.Options{Gossip: true})
	server := (c.Store.WaitLeader() + 1) % 3
	ctx, cancel := context.WithCancel(context.Background())
	nodes, err := hollow.Start(ctx, hollow.Config{Client: c.Config(server), Prefix: "g", Count: nodeCount,
		Gossip: &hollow.Gossip{KeyringFile: c.GossipKeyring, Join: c.GossipJoin()}})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); _ = nodes.Wait() })
	cs := c.Client(server)
	names := nodes.Names()
	victim, sleeper := names[0], names[1]

	waitFor(t, cs, "every node Ready and every server seeing every agent alive", func(ctx context.Context) (bool, error) {
		for _, n := range names {
			node, err := cs.CoreV1().Nodes().Get(ctx, n, metav1.GetOptions{})
			if err != nil || readyOf(node).Status != corev1.ConditionTrue {
				return false, nil
			}
			for _, p := range c.Gossip {
				if m, ok := p.Member(n); !ok || m.State != gossip.StateAlive || m.Meta.Role != gossip.RoleAgent {
					return false, nil
				}
			}
		}
		return true, nil
	})

	ns := "web"
	if _, err := cs.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	labels := map[string]string{"app": "web"}
	dep := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web"}, Spec: appsv1.DeploymentSpec{
		Replicas: ptr.To[int32](replicas), Selector: &metav1.LabelSelector{MatchLabels: labels}, Template: template(labels)}}
	if _, err := cs.AppsV1().Deployments(ns).Create(context.Background(), dep, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	dsLabels := map[string]string{"app": "agent"}
	ds := &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: "agent"}, Spec: appsv1.DaemonSetSpec{
		Selector: &metav1.LabelSelector{MatchLabels: dsLabels}, Template: template(dsLabels)}}
	if _, err := cs.AppsV1().DaemonSets(ns).Create(context.Background(), ds, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// A pod of the victim's that tolerates unreachable for an hour itself.
	patient := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "patient"}, Spec: template(nil).Spec}
	patient.Spec.NodeName = victim
	patient.Spec.Tolerations = []corev1.Toleration{{Key: corev1.TaintNodeUnreachable, Operator: corev1.TolerationOpExists,
		Effect: corev1.TaintEffectNoExecute, TolerationSeconds: ptr.To[int64](3600)}}
	if _, err := cs.CoreV1().Pods(ns).Create(context.Background(), patient, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, cs, "the deployment, the daemonset and the patient pod running", func(ctx context.Context) (bool, error) {
		pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, nil
		}
		web, agents, patientUp := 0, 0, false
		for _, p := range pods.Items {
			if p.Status.Phase != corev1.PodRunning || p.DeletionTimestamp != nil {
				continue
			}
			switch {
			case p.Labels["app"] == "web":
				web++
			case p.Labels["app"] == "agent":
				agents++
			case p.Name == "patient":
				patientUp = true
			}
		}
		return web == replicas && agents == nodeCount && patientUp, nil
	})

	t.Run("a second's pause evicts nothing", func(t *testing.T) {
		before := podsOn(t, cs, ns, sleeper)
		// Every server's view, from before the pause on.
		bad := make(chan string, len(c.Gossip))
		for i, p := range c.Gossip {
			_, sub := p.Subscribe()
			defer sub.Close()
			go func() {
				for ev := range sub.C() {
					if ev.Member.Name == sleeper && (ev.Kind == gossip.EventFail || ev.Kind == gossip.EventLeave) {
						bad <- fmt.Sprintf("server %d: the paused member %s: %s", i, sleeper, ev.Kind)
						return
					}
				}
			}()
		}
		if err := nodes.Pause(context.Background(), sleeper, time.Second); err != nil {
			t.Fatal(err)
		}
		// Proving that nothing happens takes a window: the longest a
		// suspicion raised during the pause could run before the pool
		// declared the member dead (the suspicion timeout's maximum),
		// plus two probe rounds. gossip reports no refutation to wait for.
		timing, _ := gossip.TimingProfile(gossip.ProfileBarge)
		window := time.Duration(timing.SuspicionMaxTimeoutMult*timing.SuspicionMult+2) * timing.ProbeInterval
		select {
		case msg := <-bad:
			t.Fatal(msg)
		case <-time.After(window):
		}
		node, err := cs.CoreV1().Nodes().Get(context.Background(), sleeper, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if r := readyOf(node); r.Status != corev1.ConditionTrue {
			t.Fatalf("paused node's Ready: %s %s: %s", r.Status, r.Reason, r.Message)
		}
		after := podsOn(t, cs, ns, sleeper)
		for uid, p := range before {
			if _, ok := after[uid]; !ok {
				t.Errorf("pod %s of the paused node was deleted", p.Name)
			}
		}
	})

	t.Run("a killed node's pods run elsewhere", func(t *testing.T) {
		victimPods := podsOn(t, cs, ns, victim)
		if err := nodes.Kill(victim); err != nil {
			t.Fatal(err)
		}
		waitFor(t, cs, "the killed node Ready=Unknown from gossip", func(ctx context.Context) (bool, error) {
			node, err := cs.CoreV1().Nodes().Get(ctx, victim, metav1.GetOptions{})
			if err != nil {
				return false, nil
			}
			r := readyOf(node)
			if r.Status == corev1.ConditionUnknown && r.Reason != nodehealth.ReasonDead {
				return false, fmt.Errorf("Ready=Unknown, but by %s: %s", r.Reason, r.Message)
			}
			return r.Status == corev1.ConditionUnknown, nil
		})
		waitFor(t, cs, "the killed node tainted unreachable:NoExecute", func(ctx context.Context) (bool, error) {
			node, err := cs.CoreV1().Nodes().Get(ctx, victim, metav1.GetOptions{})
			if err != nil {
				return false, nil
			}
			for _, taint := range node.Spec.Taints {
				if taint.Key == corev1.TaintNodeUnreachable && taint.Effect == corev1.TaintEffectNoExecute {
					return true, nil
				}
			}
			return false, nil
		})
		waitFor(t, cs, "the deployment's pods running on the other nodes", func(ctx context.Context) (bool, error) {
			pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
			if err != nil {
				return false, nil
			}
			running := 0
			for _, p := range pods.Items {
				if p.Spec.NodeName != victim && p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodRunning {
					running++
				}
			}
			return running == replicas, nil
		})
		pods, err := cs.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		byUID := map[types.UID]corev1.Pod{}
		for _, p := range pods.Items {
			byUID[p.UID] = p
		}
		for _, tc := range []struct {
			name  string
			match func(p corev1.Pod) bool
			evict bool
		}{
			{"the deployment's (default toleration, 5 s)", func(p corev1.Pod) bool { return p.Labels["app"] == "web" }, true},
			{"the daemonset's (tolerates for ever)", func(p corev1.Pod) bool { return p.Labels["app"] == "agent" }, false},
			{"one with its own hour", func(p corev1.Pod) bool { return p.Name == "patient" }, false},
		} {
			seen := 0
			for uid, was := range victimPods {
				if !tc.match(was) {
					continue
				}
				seen++
				now, exists := byUID[uid]
				if evicted := !exists || now.DeletionTimestamp != nil; evicted != tc.evict {
					t.Errorf("%s: pod %s on the killed node: evicted %v, want %v (tolerations %v)", tc.name, was.Name, evicted, tc.evict, was.Spec.Tolerations)
				}
			}
			if seen == 0 {
				t.Errorf("%s: none was on the killed node", tc.name)
			}
		}
	})

	t.Run("the node comes back Ready", func(t *testing.T) {
		if err := nodes.Revive(context.Background(), victim); err != nil {
			t.Fatal(err)
		}
		waitFor(t, cs, "the revived node Ready, untainted and alive in every server's pool", func(ctx context.Context) (bool, error) {
			node, err := cs.CoreV1().Nodes().Get(ctx, victim, metav1.GetOptions{})
			if err != nil || readyOf(node).Status != corev1.ConditionTrue {
				return false, nil
			}
			for _, taint := range node.Spec.Taints {
				if taint.Key == corev1.TaintNodeUnreachable {
					return false, nil
				}
			}
			for _, p := range c.Gossip {
				if m, ok := p.Member(victim); !ok || m.State != gossip.StateAlive {
					return false, nil
				}
			}
			return true, nil
		})
	})
}

func template(labels map[string]string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: corev1.PodSpec{
		Containers:                    []corev1.Container{{Name: "c", Image: "registry.invalid/pause:1"}},
		TerminationGracePeriodSeconds: ptr.To[int64](30),
	}}
}

// podsOn are the live pods of ns on node, by UID.
func podsOn(t *testing.T, cs kubernetes.Interface, ns, node string) map[types.UID]corev1.Pod {
	t.Helper()
	pods, err := cs.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[types.UID]corev1.Pod{}
	for _, p := range pods.Items {
		if p.Spec.NodeName == node && p.DeletionTimestamp == nil {
			out[p.UID] = p
		}
	}
	if len(out) == 0 {
		t.Fatalf("no pods on node %s", node)
	}
	return out
}

func readyOf(n *corev1.Node) corev1.NodeCondition {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c
		}
	}
	return corev1.NodeCondition{Type: corev1.NodeReady}
}

// waitFor polls cond for up to 90 s; a timeout says what every node
// looked like then.
func waitFor(t *testing.T, cs kubernetes.Interface, what string, cond func(context.Context) (bool, error)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if err := wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, cond); err != nil {
		t.Fatalf("%s: %v\nnodes then:\n%s", what, err, describeNodes(cs))
	}
}

func describeNodes(cs kubernetes.Interface) string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return err.Error()
	}
	var b strings.Builder
	for _, n := range nodes.Items {
		r := readyOf(&n)
		fmt.Fprintf(&b, "  %s: Ready=%s %s (%s, heartbeat %s, transition %s) taints %v\n", n.Name, r.Status, r.Reason, r.Message,
			r.LastHeartbeatTime.Format(time.RFC3339), r.LastTransitionTime.Format(time.RFC3339), n.Spec.Taints)
	}
	return b.String()
}
