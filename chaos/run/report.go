package run

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/barge-dev/barge/chaos/check"
)

// Report is the outcome of a run, written as JSON and summarised on stdout.
type Report struct {
	Seed            int64    `json:"seed"`
	Duration        string   `json:"duration"`
	Servers         int      `json:"servers"`
	Faults          []string `json:"faults"`
	ReadConsistency string   `json:"readConsistency"`
	Schedule        []Step   `json:"schedule"`

	Operations struct {
		OK      int `json:"ok"`
		Failed  int `json:"failed"`
		Unknown int `json:"unknown"`
	} `json:"operations"`
	WatchEvents        int                         `json:"watchEvents"`
	Linearizability    check.LinearizabilityResult `json:"linearizability"`
	Visualization      string                      `json:"visualization,omitempty"`
	Hashes             map[string]string           `json:"hashes"`
	FaultLog           []FaultReport               `json:"faultLog"`
	Failover           *Percentiles                `json:"failover,omitempty"`
	LongestWriteOutage string                      `json:"longestWriteOutage"`
	Violations         []string                    `json:"violations"`

	longestOutage time.Duration
}

// FaultReport is one injected fault and what it did.
type FaultReport struct {
	Fault           string        `json:"fault"`
	Target          string        `json:"target"`
	At              time.Duration `json:"at"`
	HealedAt        time.Duration `json:"healedAt"`
	RemovedLeader   bool          `json:"removedLeader"`
	FirstWriteAfter string        `json:"firstWriteAfter,omitempty"`
	Error           string        `json:"error,omitempty"`
}

// Percentiles summarises failover times.
type Percentiles struct {
	Count int    `json:"count"`
	P50   string `json:"p50"`
	P99   string `json:"p99"`
	Max   string `json:"max"`
}

func (r *Report) violate(format string, args ...any) {
	r.Violations = append(r.Violations, fmt.Sprintf(format, args...))
}

// OK reports whether the run found no violation.
func (r *Report) OK() bool { return len(r.Violations) == 0 }

// WriteJSON writes the report to path.
func (r *Report) WriteJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// Summary writes the readable summary.
func (r *Report) Summary(w io.Writer) {
	fmt.Fprintf(w, "chaos run: %d servers, %s, faults %s, seed %d, %s reads\n", r.Servers, r.Duration, strings.Join(r.Faults, ","), r.Seed, r.ReadConsistency)
	fmt.Fprintf(w, "operations: %d ok, %d failed, %d unknown; %d watch events\n", r.Operations.OK, r.Operations.Failed, r.Operations.Unknown, r.WatchEvents)
	lin := "linearizable"
	switch {
	case r.Linearizability.TimedOut:
		lin = "checker timed out (inconclusive)"
	case !r.Linearizability.Linearizable:
		lin = "NOT linearizable"
	}
	fmt.Fprintf(w, "history: %d operations over %d keys: %s\n", r.Linearizability.Operations, r.Linearizability.Keys, lin)
	fmt.Fprintf(w, "faults injected: %d", len(r.FaultLog))
	if r.Failover != nil {
		fmt.Fprintf(w, "; leader lost %d times, first write after p50 %s p99 %s max %s", r.Failover.Count, r.Failover.P50, r.Failover.P99, r.Failover.Max)
	}
	fmt.Fprintf(w, "\nlongest window without a successful write: %s\n", r.LongestWriteOutage)
	if r.OK() {
		fmt.Fprintln(w, "result: OK, no violations")
		return
	}
	fmt.Fprintf(w, "result: %d VIOLATIONS\n", len(r.Violations))
	for i, v := range r.Violations {
		if i == 20 {
			fmt.Fprintf(w, "  ... %d more in the report\n", len(r.Violations)-20)
			break
		}
		fmt.Fprintf(w, "  - %s\n", v)
	}
	if r.Visualization != "" {
		fmt.Fprintf(w, "porcupine visualisation: %s\n", r.Visualization)
	}
}
