package gossip

import (
	"fmt"
	"time"

	"github.com/hashicorp/memberlist"
)

// Timing is the failure detector's tuning: SWIM probes plus Lifeguard's
// suspicion timeouts. A member that misses a direct and the indirect
// probes becomes suspect; it is declared dead when the suspicion timeout
// runs out without a refutation. The timeout starts at
// SuspicionMaxTimeoutMult times the minimum and falls to the minimum,
// SuspicionMult × ProbeInterval (× log10 of the pool size above 10
// members), as other members independently confirm the suspicion.
type Timing struct {
	ProbeInterval           time.Duration
	ProbeTimeout            time.Duration
	IndirectChecks          int
	SuspicionMult           int
	SuspicionMaxTimeoutMult int
	GossipInterval          time.Duration
	GossipNodes             int
	GossipToTheDeadTime     time.Duration
	RetransmitMult          int
	PushPullInterval        time.Duration
	// DeadNodeReclaimTime lets a restarted member take its name back
	// from a different address after this long (0: never).
	DeadNodeReclaimTime time.Duration
}

// Profiles. ProfileBarge is the default; see the package documentation
// for how it was chosen and what it measures.
const (
	ProfileBarge = "barge"
	ProfileLAN   = "lan"   // memberlist.DefaultLANConfig
	ProfileLocal = "local" // memberlist.DefaultLocalConfig
)

// TimingProfile returns the timing named by profile ("" is ProfileBarge).
func TimingProfile(profile string) (Timing, error) {
	switch profile {
	case "", ProfileBarge:
		return Timing{
			// Half of memberlist's LAN interval: with 5 members a dead
			// one is probed by somebody within about 100 ms.
			ProbeInterval: 500 * time.Millisecond,
			// Loopback and LAN round trips are well under a millisecond;
			// Lifeguard's awareness stretches this on a member that is
			// itself slow, so a loaded node does not accuse others.
			ProbeTimeout:   250 * time.Millisecond,
			IndirectChecks: 3,
			// 4 × 500 ms = 2 s minimum suspicion: a member paused for one
			// second wakes up, sees the suspicion and refutes it with a
			// second to spare; the maximum, 3 × that, only applies while
			// nobody else confirms.
			SuspicionMult:           4,
			SuspicionMaxTimeoutMult: 3,
			GossipInterval:          100 * time.Millisecond,
			GossipNodes:             4,
			GossipToTheDeadTime:     15 * time.Second,
			RetransmitMult:          4,
			PushPullInterval:        15 * time.Second,
			DeadNodeReclaimTime:     10 * time.Second,
		}, nil
	case ProfileLAN:
		return timingOf(memberlist.DefaultLANConfig()), nil
	case ProfileLocal:
		return timingOf(memberlist.DefaultLocalConfig()), nil
	}
	return Timing{}, fmt.Errorf("gossip timing profile %q: want barge, lan or local", profile)
}

func timingOf(c *memberlist.Config) Timing {
	return Timing{
		ProbeInterval:           c.ProbeInterval,
		ProbeTimeout:            c.ProbeTimeout,
		IndirectChecks:          c.IndirectChecks,
		SuspicionMult:           c.SuspicionMult,
		SuspicionMaxTimeoutMult: c.SuspicionMaxTimeoutMult,
		GossipInterval:          c.GossipInterval,
		GossipNodes:             c.GossipNodes,
		GossipToTheDeadTime:     c.GossipToTheDeadTime,
		RetransmitMult:          c.RetransmitMult,
		PushPullInterval:        c.PushPullInterval,
		DeadNodeReclaimTime:     c.DeadNodeReclaimTime,
	}
}

func (t Timing) validate() error {
	switch {
	case t.ProbeInterval <= 0 || t.ProbeTimeout <= 0 || t.GossipInterval <= 0:
		return fmt.Errorf("gossip timing: probe interval %v, probe timeout %v and gossip interval %v must be positive", t.ProbeInterval, t.ProbeTimeout, t.GossipInterval)
	case t.ProbeTimeout >= t.ProbeInterval:
		return fmt.Errorf("gossip timing: probe timeout %v must be shorter than the probe interval %v", t.ProbeTimeout, t.ProbeInterval)
	case t.SuspicionMult < 1 || t.SuspicionMaxTimeoutMult < 1:
		return fmt.Errorf("gossip timing: suspicion multipliers %d and %d must be at least 1", t.SuspicionMult, t.SuspicionMaxTimeoutMult)
	}
	return nil
}

func (t Timing) apply(c *memberlist.Config) {
	c.ProbeInterval = t.ProbeInterval
	c.ProbeTimeout = t.ProbeTimeout
	c.IndirectChecks = t.IndirectChecks
	c.SuspicionMult = t.SuspicionMult
	c.SuspicionMaxTimeoutMult = t.SuspicionMaxTimeoutMult
	c.GossipInterval = t.GossipInterval
	c.GossipNodes = t.GossipNodes
	c.GossipToTheDeadTime = t.GossipToTheDeadTime
	c.RetransmitMult = t.RetransmitMult
	c.PushPullInterval = t.PushPullInterval
	c.DeadNodeReclaimTime = t.DeadNodeReclaimTime
}
