package run

import (
	"fmt"
	"math/rand/v2"
	"time"
)

// Fault kinds a run can inject.
const (
	FaultKill            = "kill"             // SIGKILL a server; heal restarts it
	FaultRestart         = "restart"          // SIGKILL and restart at once
	FaultPause           = "pause"            // SIGSTOP a server; heal resumes it
	FaultPartition       = "partition"        // cut a server off from the others
	FaultLeaderPartition = "leader-partition" // cut the current leader off
	FaultOneWay          = "one-way"          // drop traffic into a server only
)

// AllFaults lists every fault kind.
func AllFaults() []string {
	return []string{FaultKill, FaultRestart, FaultPause, FaultPartition, FaultLeaderPartition, FaultOneWay}
}

// Step is one scheduled fault: inject at At, heal Hold later.
type Step struct {
	At     time.Duration `json:"at"`
	Hold   time.Duration `json:"hold"`
	Fault  string        `json:"fault"`
	Target int           `json:"target"` // server index; ignored for leader-partition
}

// Schedule derives the fault timeline from the seed alone, so the same
// seed always yields the same faults at the same offsets (targets that
// depend on the cluster's state, such as "the leader", are resolved when
// the step runs).
func Schedule(seed int64, faults []string, servers int, duration time.Duration) ([]Step, error) {
	for _, f := range faults {
		ok := false
		for _, k := range AllFaults() {
			ok = ok || f == k
		}
		if !ok {
			return nil, fmt.Errorf("unknown fault %q (want one of %v)", f, AllFaults())
		}
	}
	if len(faults) == 0 {
		return nil, nil
	}
	rng := rand.New(rand.NewPCG(uint64(seed), uint64(seed)^0x9e3779b97f4a7c15))
	var steps []Step
	t := 2 * time.Second // let the workload warm up
	for {
		hold := time.Duration(1500+rng.IntN(2500)) * time.Millisecond
		gap := time.Duration(1000+rng.IntN(2000)) * time.Millisecond
		if t+hold+2*time.Second > duration {
			return steps, nil
		}
		steps = append(steps, Step{At: t, Hold: hold, Fault: faults[rng.IntN(len(faults))], Target: rng.IntN(servers)})
		t += hold + gap
	}
}
