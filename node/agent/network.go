package agent

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/barge-dev/barge/node/gossip"
	"github.com/barge-dev/barge/overlay"
	"github.com/barge-dev/barge/overlay/egress"
	"github.com/barge-dev/barge/overlay/ipip"
	"github.com/barge-dev/barge/overlay/vxlan"
)

// peerResync is how often the full peer set is programmed again without
// a gossip change: it repairs routes or entries removed by hand and
// retries a SetPeers that failed.
const peerResync = 30 * time.Second

// Overlay carries pod traffic between nodes (overlay/vxlan or
// overlay/ipip) with peers learnt from gossip alone, so the data plane
// keeps converging while the API servers are down. It needs Gossip.
type Overlay struct {
	// Mode is gossip.OverlayVXLAN or gossip.OverlayIPIP (IPIP falls back
	// to a userspace tunnel where the kernel has no ipip module).
	Mode gossip.OverlayMode
}

func (o *Overlay) check() error {
	switch o.Mode {
	case gossip.OverlayVXLAN, gossip.OverlayIPIP:
		return nil
	}
	return fmt.Errorf("agent: overlay mode %q: want vxlan or ipip", o.Mode)
}

// network is the node's overlay backend and gossip member.
type network struct {
	a       *Agent
	mode    gossip.OverlayMode
	local   overlay.LocalNode
	backend overlay.Backend // nil without Overlay
	attrs   overlay.Attrs
	pool    *gossip.Pool
}

// setupOverlay sets the backend up in the node's namespace and returns
// the pod MTU it asks for (cfg.MTU when that is lower). Without Overlay
// it returns cfg.MTU.
func (a *Agent) setupOverlay(ctx context.Context, cidr netip.Prefix) (*network, int, error) {
	n := &network{a: a, local: overlay.LocalNode{Name: a.cfg.NodeName, UnderlayIP: netip.MustParseAddr(a.cfg.NodeIP), PodCIDR: cidr}}
	if a.cfg.Overlay == nil {
		return n, a.cfg.MTU, nil
	}
	n.mode = a.cfg.Overlay.Mode
	switch n.mode {
	case gossip.OverlayVXLAN:
		n.backend = vxlan.New(vxlan.Config{Logger: a.log})
	case gossip.OverlayIPIP:
		n.backend = ipip.New(ipip.Config{Logger: a.log})
	}
	var attrs overlay.Attrs
	err := a.rt.InHostNetns(func() error {
		var err error
		attrs, err = n.backend.Setup(ctx, n.local)
		return err
	})
	if err != nil {
		return nil, 0, fmt.Errorf("agent: overlay %s: %w", n.mode, err)
	}
	mtu := attrs.MTU
	if a.cfg.MTU > 0 && a.cfg.MTU < mtu {
		mtu = a.cfg.MTU
	}
	a.log.Info("overlay set up", "mode", attrs.Mode, "device", attrs.Device, "mtu", mtu, "vtepMAC", attrs.VTEPMAC.String())
	n.attrs = attrs
	return n, mtu, nil
}

// start, once the pod bridge exists, masquerades pod traffic leaving the
// cluster, joins gossip with the node's metadata, and keeps the
// backend's peers in step with the pool until ctx ends (in a.wg).
func (n *network) start(ctx context.Context) error {
	a := n.a
	if n.backend != nil {
		err := a.rt.InHostNetns(func() error {
			return egress.Ensure(ctx, egress.Config{PodCIDR: n.local.PodCIDR, ClusterCIDR: a.cfg.ClusterCIDR})
		})
		if err != nil {
			return fmt.Errorf("agent: pod egress: %w", err)
		}
	}
	if a.cfg.Gossip == nil {
		return nil
	}
	meta := gossip.Meta{UnderlayIP: n.local.UnderlayIP, PodCIDR: n.local.PodCIDR.Masked(), Overlay: n.mode}
	if n.mode == gossip.OverlayVXLAN {
		meta.VTEPMAC = n.attrs.VTEPMAC
	}
	pool, err := a.startGossip(meta)
	if err != nil {
		return err
	}
	n.pool = pool
	if n.backend != nil {
		a.wg.Go(func() { n.syncPeers(ctx) })
	}
	return nil
}

// close stops the member without a goodbye (see startGossip) and the
// backend's own work; the kernel's data path stays for the next agent.
func (n *network) close() {
	if n.pool != nil {
		if err := n.pool.Shutdown(); err != nil {
			n.a.log.Warn("gossip shutdown", "err", err)
		}
	}
	if n.backend != nil {
		if err := n.backend.Close(); err != nil {
			n.a.log.Warn("overlay close", "err", err)
		}
	}
}

// syncPeers hands the backend the full peer set from the pool's view
// after every gossip change (a burst of changes is one SetPeers) and
// every peerResync.
func (n *network) syncPeers(ctx context.Context) {
	_, sub := n.pool.Subscribe()
	defer sub.Close()
	tick := time.NewTicker(peerResync)
	defer tick.Stop()
	var lastSkipped string
	for {
		peers, skipped := overlayPeers(n.local.Name, n.mode, n.pool.Members())
		if s := strings.Join(skipped, "; "); s != lastSkipped {
			if s != "" {
				n.a.log.Warn("gossip members left out of the overlay", "members", s)
			}
			lastSkipped = s
		}
		err := n.a.rt.InHostNetns(func() error { return n.backend.SetPeers(ctx, peers) })
		if err != nil && ctx.Err() == nil {
			// Rejected peers are reported after the others are programmed.
			n.a.log.Warn("overlay peers", "err", err)
		} else {
			n.a.log.Debug("overlay peers programmed", "peers", len(peers))
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case _, ok := <-sub.C():
			if !ok {
				return
			}
		drain:
			for {
				select {
				case _, ok := <-sub.C():
					if !ok {
						return
					}
				default:
					break drain
				}
			}
		}
	}
}

// overlayPeers is the peer set gossip describes: every other agent
// speaking mode that has a pod CIDR, alive, suspected or dead (a dead
// member is most likely an agent restarting under running pods; its
// routes go when memberlist forgets it), but not one that left. skipped
// names the agents left out for another reason, and why.
func overlayPeers(self string, mode gossip.OverlayMode, members []gossip.Member) (peers []overlay.Peer, skipped []string) {
	for _, m := range members {
		if m.Name == self || m.State == gossip.StateLeft {
			continue
		}
		if m.MetaErr != "" {
			skipped = append(skipped, m.Name+": unreadable metadata: "+m.MetaErr)
			continue
		}
		if m.Meta.Role != gossip.RoleAgent {
			continue
		}
		switch {
		case m.Meta.Overlay == gossip.OverlayNone || !m.Meta.PodCIDR.IsValid():
			// An agent without an overlay (yet): nothing to route to.
			continue
		case m.Meta.Overlay != mode:
			skipped = append(skipped, fmt.Sprintf("%s: overlay %s, this node's is %s", m.Name, m.Meta.Overlay, mode))
			continue
		}
		peers = append(peers, overlay.Peer{
			Name:       m.Name,
			UnderlayIP: m.Meta.UnderlayIP,
			PodCIDR:    m.Meta.PodCIDR,
			VTEPMAC:    slices.Clone(m.Meta.VTEPMAC),
		})
	}
	return peers, skipped
}
