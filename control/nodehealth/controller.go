package nodehealth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"github.com/barge-dev/barge/node/gossip"
)

// Reasons of the Ready condition this controller writes.
const (
	ReasonDead = "NodeGossipDead"
	ReasonLeft = "NodeGossipLeft"
)

// Name is the controller's name, as logs and the leader's components
// list show it.
const Name = "node-health-gossip"

// workers bound the concurrent condition writes: one node's write is a
// single request, and a mass failure is rate-limited further down by the
// node lifecycle controller's eviction rate anyway.
const workers = 4

// Pool is the gossip pool as the controller reads it (*gossip.Pool).
type Pool interface {
	Name() string
	Subscribe() ([]gossip.Member, *gossip.Subscription)
}

// Controller writes Ready=Unknown on the Node of an agent that gossip
// declares dead or that left. One Controller serves one term.
type Controller struct {
	pool   Pool
	client kubernetes.Interface
	nodes  corelisters.NodeLister
	synced cache.InformerSynced
	queue  workqueue.TypedRateLimitingInterface[string]
	logger *slog.Logger

	mu      sync.Mutex
	members map[string]gossip.Member // agents, by name, as last seen
	// written holds, per node, the death (the member's Since) whose
	// Unknown this term wrote or found already written: each death is
	// acted on once.
	written map[string]time.Time
}

// New builds the controller on a term's informers and its fenced client.
// Nothing happens before Run.
func New(pool Pool, in informers.SharedInformerFactory, client *rest.Config, logger *slog.Logger) (*Controller, error) {
	if pool == nil {
		return nil, errors.New("nodehealth: a gossip pool is required")
	}
	if logger == nil {
		logger = slog.Default()
	}
	cs, err := kubernetes.NewForConfig(client)
	if err != nil {
		return nil, fmt.Errorf("nodehealth: %w", err)
	}
	nodes := in.Core().V1().Nodes()
	c := &Controller{
		pool:    pool,
		client:  cs,
		nodes:   nodes.Lister(),
		queue:   workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](), workqueue.TypedRateLimitingQueueConfig[string]{Name: Name}),
		logger:  logger.With("controller", Name),
		members: map[string]gossip.Member{},
		written: map[string]time.Time{},
	}
	enqueue := func(obj any) {
		if n, ok := obj.(*corev1.Node); ok {
			c.enqueueIfMember(n.Name)
		}
	}
	reg, err := nodes.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj any) { enqueue(obj) },
	})
	if err != nil {
		return nil, fmt.Errorf("nodehealth: %w", err)
	}
	c.synced = reg.HasSynced
	return c, nil
}

// Name is the controller's name.
func (c *Controller) Name() string { return Name }

// Run follows the pool and the Nodes until ctx ends.
func (c *Controller) Run(ctx context.Context) {
	members, sub := c.pool.Subscribe()
	var wg sync.WaitGroup
	defer func() {
		sub.Close()
		c.queue.ShutDown()
		wg.Wait()
	}()
	for _, m := range members {
		c.observe(m)
	}
	wg.Go(func() {
		for ev := range sub.C() {
			c.observe(ev.Member)
		}
	})
	if !cache.WaitForCacheSync(ctx.Done(), c.synced) {
		return
	}
	c.logger.Info("following the gossip pool", "server", c.pool.Name(), "agents", c.agentCount())
	for range workers {
		wg.Go(func() {
			for c.work(ctx) {
			}
		})
	}
	<-ctx.Done()
}

func (c *Controller) agentCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.members)
}

// observe records a member's latest state and looks at its node.
func (c *Controller) observe(m gossip.Member) {
	if m.MetaErr != "" || m.Meta.Role != gossip.RoleAgent {
		return
	}
	c.mu.Lock()
	c.members[m.Name] = m
	c.mu.Unlock()
	c.queue.Add(m.Name)
}

func (c *Controller) enqueueIfMember(name string) {
	c.mu.Lock()
	_, ok := c.members[name]
	c.mu.Unlock()
	if ok {
		c.queue.Add(name)
	}
}

func (c *Controller) work(ctx context.Context) bool {
	name, quit := c.queue.Get()
	if quit {
		return false
	}
	defer c.queue.Done(name)
	if err := c.sync(ctx, name); err != nil {
		if ctx.Err() == nil {
			c.logger.Warn("writing node condition; retrying", "node", name, "err", err)
		}
		c.queue.AddRateLimited(name)
		return true
	}
	c.queue.Forget(name)
	return true
}

// sync makes one node's Ready condition agree with its member's state.
func (c *Controller) sync(ctx context.Context, name string) error {
	m, ok := c.member(name)
	if !ok {
		return nil
	}
	switch m.State {
	case gossip.StateDead, gossip.StateLeft:
	default:
		// Alive (or only suspected by this server): Ready is the agent's
		// to report; forget the death so that the next one is acted on.
		c.mu.Lock()
		delete(c.written, name)
		c.mu.Unlock()
		return nil
	}
	if c.wasWritten(name, m.Since) {
		return nil
	}
	node, err := c.nodes.Get(name)
	if apierrors.IsNotFound(err) {
		return nil // a member with no Node (yet): the Node's add event brings it back
	}
	if err != nil {
		return err
	}
	idx, ready := readyCondition(node)
	if ready == nil || ready.Status != corev1.ConditionTrue {
		// Unknown or False already: the node lifecycle controller taints
		// it; a node with no Ready yet is in its startup grace.
		c.markWritten(name, m.Since)
		return nil
	}
	// The member may have come back while this waited in the queue.
	if now, ok := c.member(name); !ok || !now.Since.Equal(m.Since) {
		return nil
	}
	n := node.DeepCopy()
	cond := &n.Status.Conditions[idx]
	cond.Status = corev1.ConditionUnknown
	cond.Reason, cond.Message = reasonOf(m, c.pool.Name())
	// The heartbeat time stays the agent's: it is when the agent last
	// reported, and the node lifecycle controller tells transitions by it.
	cond.LastTransitionTime = metav1.Now()
	if _, err := c.client.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{}); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("node %s: %w", name, err)
	}
	c.markWritten(name, m.Since)
	c.logger.Info("node marked Ready=Unknown from gossip", "node", name, "reason", cond.Reason, "member", m.Addr.String(), "since", m.Since)
	return nil
}

func (c *Controller) member(name string) (gossip.Member, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	m, ok := c.members[name]
	return m, ok
}

func (c *Controller) wasWritten(name string, since time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	at, ok := c.written[name]
	return ok && at.Equal(since)
}

func (c *Controller) markWritten(name string, since time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.written[name] = since
}

// reasonOf is the condition's reason and message for a member that died
// or left, as server saw it.
func reasonOf(m gossip.Member, server string) (string, string) {
	when := m.Since.UTC().Format(time.RFC3339Nano)
	if m.State == gossip.StateLeft {
		return ReasonLeft, fmt.Sprintf("gossip member %s (%s) left the pool at %s, as seen by server %s", m.Name, m.Addr, when, server)
	}
	return ReasonDead, fmt.Sprintf("gossip member %s (%s) was declared dead at %s, as seen by server %s", m.Name, m.Addr, when, server)
}

func readyCondition(n *corev1.Node) (int, *corev1.NodeCondition) {
	for i := range n.Status.Conditions {
		if n.Status.Conditions[i].Type == corev1.NodeReady {
			return i, &n.Status.Conditions[i]
		}
	}
	return -1, nil
}
