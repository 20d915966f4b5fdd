package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/barge-dev/barge/node/gossip"
	"github.com/barge-dev/barge/overlay"
	"github.com/barge-dev/barge/overlay/hostgw"
)

// podRoutesResync repairs routes removed by hand and retries a failed
// sync without a gossip change.
const podRoutesResync = 30 * time.Second

// syncPodRoutes keeps, in the server's own namespace, a route to every
// agent's pod CIDR through its underlay address (overlay/hostgw), from
// gossip alone, so the API server reaches pods: pods/proxy, webhooks and
// aggregated API servers served by pods. A failed member keeps its route
// (its pods may still run); one that left loses it.
func syncPodRoutes(ctx context.Context, pool *gossip.Pool, log *slog.Logger) {
	_, sub := pool.Subscribe()
	defer sub.Close()
	tick := time.NewTicker(podRoutesResync)
	defer tick.Stop()
	var lastErr string
	for {
		var peers []overlay.Peer
		for _, m := range pool.Members() {
			if m.State == gossip.StateLeft || m.MetaErr != "" || m.Meta.Role != gossip.RoleAgent || !m.Meta.PodCIDR.IsValid() {
				continue
			}
			peers = append(peers, overlay.Peer{Name: m.Name, UnderlayIP: m.Meta.UnderlayIP, PodCIDR: m.Meta.PodCIDR})
		}
		err := hostgw.Set(peers, log)
		if e := errString(err); e != lastErr {
			if err != nil {
				log.Warn("pod routes", "err", err)
			}
			lastErr = e
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case _, ok := <-sub.C():
			if !ok {
				return
			}
		}
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
