package hollow

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/util/retry"

	"github.com/barge-dev/barge/node/gossip"
)

// nodeState is what a hollow node is doing: up, killed or paused, and its
// gossip member.
type nodeState struct {
	name string

	mu     sync.Mutex
	down   bool      // killed: no Lease, no status, no pods, no gossip
	paused time.Time // stopped until then, as by SIGSTOP
	member *member
}

// up reports whether the node acts as a live kubelet now.
func (s *nodeState) up() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.down && !time.Now().Before(s.paused)
}

func (h *hollow) up(name string) bool {
	st := h.names[name]
	return st != nil && st.up()
}

func (h *hollow) state(name string) (*nodeState, error) {
	st := h.names[name]
	if st == nil {
		return nil, fmt.Errorf("hollow: no node %q", name)
	}
	return st, nil
}

// Names are the nodes' names, sorted.
func (n *Nodes) Names() []string {
	out := make([]string, 0, len(n.h.names))
	for name := range n.h.names {
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}

// Pool is the node's gossip member (nil without gossip, or while killed).
func (n *Nodes) Pool(name string) *gossip.Pool {
	st := n.h.names[name]
	if st == nil {
		return nil
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.member == nil {
		return nil
	}
	return st.member.pool
}

// Kill stops the node abruptly, as kill -9 of its agent would: its gossip
// member stops without a goodbye (the pool declares it dead), and its
// Lease, node status and pods are no longer looked after.
func (n *Nodes) Kill(name string) error {
	st, err := n.h.state(name)
	if err != nil {
		return err
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.down {
		return fmt.Errorf("hollow: node %s is already down", name)
	}
	st.down = true
	if st.member != nil {
		_ = st.member.pool.Shutdown()
	}
	n.h.cfg.Logger.Info("hollow node killed", "node", name)
	return nil
}

// Revive brings a killed node back, as a restarted agent: its gossip
// member rejoins on its old address, and it reports its status, renews
// its Lease and looks after its pods again.
func (n *Nodes) Revive(ctx context.Context, name string) error {
	st, err := n.h.state(name)
	if err != nil {
		return err
	}
	st.mu.Lock()
	if !st.down {
		st.mu.Unlock()
		return fmt.Errorf("hollow: node %s is not down", name)
	}
	if g := n.h.cfg.Gossip; g != nil {
		m, err := startMember(g, name, st.member.port, n.h.cfg.Logger)
		if err != nil {
			st.mu.Unlock()
			return err
		}
		st.member = m
	}
	st.down = false
	st.mu.Unlock()
	n.h.cfg.Logger.Info("hollow node revived", "node", name)
	return n.h.resume(ctx, name)
}

// Pause stops the node for d, as SIGSTOP and SIGCONT of its agent would:
// its gossip member neither sends nor takes in anything (what arrives
// waits and is handled afterwards), and its Lease, status and pods wait.
// It returns once the node runs again.
func (n *Nodes) Pause(ctx context.Context, name string, d time.Duration) error {
	st, err := n.h.state(name)
	if err != nil {
		return err
	}
	st.mu.Lock()
	if st.down {
		st.mu.Unlock()
		return fmt.Errorf("hollow: node %s is down", name)
	}
	st.paused = time.Now().Add(d)
	if st.member != nil {
		st.member.stall.stall()
	}
	st.mu.Unlock()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
	st.mu.Lock()
	st.paused = time.Time{}
	if st.member != nil {
		st.member.stall.release()
	}
	st.mu.Unlock()
	return n.h.resume(ctx, name)
}

// resume catches a node up on what it missed while down or paused.
func (h *hollow) resume(ctx context.Context, name string) error {
	if err := retry.RetryOnConflict(retry.DefaultBackoff, func() error { return h.reportStatus(ctx, name) }); err != nil {
		return err
	}
	if err := h.renewLease(ctx, name); err != nil {
		return fmt.Errorf("hollow: node %s lease: %w", name, err)
	}
	pods, err := h.pods.List(labels.Everything())
	if err != nil {
		return err
	}
	for _, p := range pods {
		if p.Spec.NodeName == name {
			h.queue.Add(p.Namespace + "/" + p.Name)
		}
	}
	return nil
}

// stopMembers stops every gossip member without a goodbye: the test or
// benchmark is over.
func (h *hollow) stopMembers() {
	for _, st := range h.names {
		st.mu.Lock()
		if st.member != nil && !st.down {
			_ = st.member.pool.Shutdown()
		}
		st.mu.Unlock()
	}
}

// workNode posts one node's status again if it is up and the API server's
// copy says it is not Ready.
func (h *hollow) workNode(ctx context.Context) bool {
	name, quit := h.nodeQueue.Get()
	if quit {
		return false
	}
	defer h.nodeQueue.Done(name)
	if !h.up(name) {
		h.nodeQueue.Forget(name) // resume reports it
		return true
	}
	if n, err := h.nodes.Get(name); err != nil || nodeIsReady(n) {
		h.nodeQueue.Forget(name)
		return true
	}
	if err := retry.RetryOnConflict(retry.DefaultBackoff, func() error { return h.reportStatus(ctx, name) }); err != nil {
		if ctx.Err() == nil {
			h.cfg.Logger.Debug("node status", "node", name, "err", err)
		}
		h.nodeQueue.AddRateLimited(name)
		return true
	}
	h.nodeQueue.Forget(name)
	return true
}

func nodeIsReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
