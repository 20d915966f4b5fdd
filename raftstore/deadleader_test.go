package raftstore_test

import (
	"fmt"
	"testing"

	"github.com/barge-dev/barge/raftstore/storetest"
	"github.com/prometheus/client_golang/prometheus"
)

// TestFastElectionAfterLeaderDeath: when the leader's process dies, a
// survivor finds its port refusing connections and elects at once
// (deadleader.go); a dead follower changes nothing for the others.
func TestFastElectionAfterLeaderDeath(t *testing.T) {
	for _, n := range []int{3, 5} {
		t.Run(fmt.Sprintf("%d peers", n), func(t *testing.T) {
			c := storetest.NewCluster(t, n)
			ctx := c.Ctx()
			leader := c.WaitLeader()

			if n == 5 { // 3 of 5 are left after both deaths
				follower := (leader + 1) % n
				c.Kill(follower)
				c.Retry(func() error { _, err := c.Client().Put(ctx, "k", "after a follower died"); return err })
				if got := fastElections(t, c); got != 0 {
					t.Fatalf("a follower's death started %v fast elections, want 0", got)
				}
			}

			c.Kill(leader)
			next := c.WaitLeader()
			if next == leader {
				t.Fatalf("killed leader %d still leads", leader)
			}
			c.Retry(func() error { _, err := c.Client().Put(ctx, "k", "after the leader died"); return err })
			if got := fastElections(t, c); got < 1 {
				t.Fatalf("no survivor elected early after the leader's process died (fast elections %v)", got)
			}
		})
	}
}

// fastElections sums barge_raft_fast_elections_total over the running
// members.
func fastElections(t *testing.T, c *storetest.Cluster) float64 {
	t.Helper()
	var sum float64
	for _, m := range c.Members {
		if m.Server == nil {
			continue
		}
		reg := prometheus.NewRegistry()
		reg.MustRegister(m.Server.Collectors()...)
		sum += gather(t, reg)["barge_raft_fast_elections_total"]
	}
	return sum
}
