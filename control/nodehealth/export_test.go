package nodehealth

import (
	"context"

	corev1 "k8s.io/api/core/v1"

	"github.com/barge-dev/barge/node/gossip"
)

// The tests of this package live in nodehealth_test (they use the
// control/apitest harness, which imports this package through
// control/plane); these reach the controller's steps.

func (c *Controller) Observe(m gossip.Member)                  { c.observe(m) }
func (c *Controller) Sync(ctx context.Context, n string) error { return c.sync(ctx, n) }
func (c *Controller) Cached(name string) (*corev1.Node, error) { return c.nodes.Get(name) }

func ReadyCondition(n *corev1.Node) *corev1.NodeCondition {
	_, r := readyCondition(n)
	return r
}
