package check

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func get(c int, key string, call, ret int64, value string) Op {
	return Op{ClientID: c, Kind: Get, Key: key, Call: call, Return: ret, Result: value, Found: value != ""}
}

func put(c int, key string, call, ret int64, value string) Op {
	return Op{ClientID: c, Kind: Put, Key: key, Call: call, Return: ret, Value: value}
}

func cas(c int, key string, call, ret int64, expected, value string, ok bool) Op {
	return Op{ClientID: c, Kind: CAS, Key: key, Call: call, Return: ret, Expected: expected, Value: value, Succeeded: ok}
}

func unknown(op Op) Op { op.Outcome, op.Return = Unknown, 0; return op }
func failed(op Op) Op  { op.Outcome = Failed; return op }

func TestCheckLinearizable(t *testing.T) {
	tests := []struct {
		name   string
		ops    []Op
		ok     bool
		badKey string
	}{
		{
			name: "concurrent history",
			ops: []Op{
				put(0, "a", 0, 10, "a1"),
				put(1, "a", 5, 20, "a2"),
				get(2, "a", 6, 25, "a1"), // linearized between the puts
				get(3, "a", 21, 30, "a2"),
				put(0, "b", 0, 5, "b1"),
				cas(1, "b", 25, 40, "b1", "b2", true),
				cas(2, "b", 26, 41, "b1", "b3", false),
				get(3, "b", 42, 50, "b2"),
				get(0, "c", 0, 1, ""),
			},
			ok: true,
		},
		{
			name: "stale read",
			ops: []Op{
				put(0, "k", 0, 10, "w0"),
				put(0, "k", 20, 30, "w1"),
				get(1, "k", 40, 50, "w0"),
			},
			badKey: "k",
		},
		{
			name: "read of a value never written",
			ops: []Op{
				put(0, "k", 0, 10, "w0"),
				get(1, "k", 20, 30, "nope"),
			},
			badKey: "k",
		},
		{
			name: "absent after write",
			ops: []Op{
				put(0, "k", 0, 10, "w0"),
				get(1, "k", 20, 30, ""),
			},
			badKey: "k",
		},
		{
			name: "CAS double success",
			ops: []Op{
				put(0, "k", 0, 10, "v0"),
				cas(1, "k", 20, 40, "v0", "v1", true),
				cas(2, "k", 21, 41, "v0", "v2", true),
			},
			badKey: "k",
		},
		{
			name: "CAS on absent key",
			ops: []Op{
				cas(1, "k", 0, 10, "", "v1", true),
				cas(2, "k", 20, 30, "", "v2", false),
				get(3, "k", 40, 50, "v1"),
			},
			ok: true,
		},
		{
			name: "CAS failing though compare held",
			ops: []Op{
				put(0, "k", 0, 10, "v0"),
				cas(1, "k", 20, 30, "v0", "v1", false),
			},
			badKey: "k",
		},
		{
			name: "unknown put never applied",
			ops: []Op{
				put(0, "k", 0, 10, "old"),
				unknown(put(1, "k", 20, 0, "new")),
				get(2, "k", 100, 110, "old"),
				get(3, "k", 200, 210, "old"),
			},
			ok: true,
		},
		{
			name: "unknown put applied",
			ops: []Op{
				put(0, "k", 0, 10, "old"),
				unknown(put(1, "k", 20, 0, "new")),
				get(2, "k", 100, 110, "old"),
				get(3, "k", 200, 210, "new"),
				get(2, "k", 300, 310, "new"),
			},
			ok: true,
		},
		{
			name: "unknown put cannot take effect before its call",
			ops: []Op{
				put(0, "k", 0, 10, "old"),
				get(2, "k", 20, 30, "new"),
				unknown(put(1, "k", 40, 0, "new")),
			},
			badKey: "k",
		},
		{
			name: "unknown put applied once, not undone",
			ops: []Op{
				put(0, "k", 0, 10, "old"),
				unknown(put(1, "k", 20, 0, "new")),
				get(2, "k", 100, 110, "new"),
				get(3, "k", 200, 210, "old"),
			},
			badKey: "k",
		},
		{
			name: "unknown CAS applied",
			ops: []Op{
				put(0, "k", 0, 10, "old"),
				unknown(cas(1, "k", 20, 0, "old", "new", false)),
				get(2, "k", 100, 110, "new"),
			},
			ok: true,
		},
		{
			name: "unknown CAS whose compare cannot hold",
			ops: []Op{
				put(0, "k", 0, 10, "old"),
				unknown(cas(1, "k", 20, 0, "other", "new", false)),
				get(2, "k", 100, 110, "new"),
			},
			badKey: "k",
		},
		{
			name: "failed ops and unknown gets are dropped",
			ops: []Op{
				put(0, "k", 0, 10, "old"),
				failed(put(1, "k", 20, 30, "new")),
				unknown(get(2, "k", 40, 0, "garbage")),
				failed(get(2, "k", 50, 60, "garbage")),
				get(3, "k", 100, 110, "old"),
			},
			ok: true,
		},
		{
			name: "concurrent get sees the old value",
			ops: []Op{
				put(0, "k", 0, 10, "old"),
				put(1, "k", 20, 40, "new"),
				get(2, "k", 25, 35, "old"),
			},
			ok: true,
		},
		{
			name: "concurrent get sees the new value",
			ops: []Op{
				put(0, "k", 0, 10, "old"),
				put(1, "k", 20, 40, "new"),
				get(2, "k", 25, 35, "new"),
			},
			ok: true,
		},
		{
			name: "intervals are closed",
			ops: []Op{
				put(1, "k", 0, 20, "new"),
				get(2, "k", 20, 30, ""),
			},
			ok: true,
		},
		{
			name: "violation on one key of many",
			ops: []Op{
				put(0, "good", 0, 10, "g1"),
				get(1, "good", 20, 30, "g1"),
				put(0, "bad", 0, 10, "b1"),
				put(0, "bad", 20, 30, "b2"),
				get(1, "bad", 40, 50, "b1"),
			},
			badKey: "bad",
		},
		{
			name: "empty history",
			ok:   true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := CheckLinearizable(tt.ops, 10*time.Second)
			if res.TimedOut {
				t.Fatalf("timed out: %+v", res)
			}
			if res.Linearizable != tt.ok {
				t.Fatalf("Linearizable = %v, want %v; violations: %q", res.Linearizable, tt.ok, res.Violations)
			}
			if tt.ok {
				if len(res.Violations) != 0 {
					t.Fatalf("unexpected violations: %q", res.Violations)
				}
				return
			}
			if len(res.Violations) != 1 {
				t.Fatalf("want 1 violation, got %q", res.Violations)
			}
			if v := res.Violations[0]; !strings.Contains(v, fmt.Sprintf("key %q", tt.badKey)) {
				t.Fatalf("violation does not name key %q: %s", tt.badKey, v)
			}
			t.Log(res.Violations[0])
		})
	}
}

func TestCheckLinearizableCounts(t *testing.T) {
	ops := []Op{
		put(0, "a", 0, 10, "a1"),
		failed(put(0, "a", 20, 30, "a2")),
		unknown(get(1, "b", 0, 0, "")),
		unknown(put(1, "c", 0, 0, "c1")),
		get(2, "a", 40, 50, "a1"),
	}
	res := CheckLinearizable(ops, time.Second)
	if !res.Linearizable || res.Keys != 2 || res.Operations != 3 {
		t.Fatalf("got %+v, want linearizable over 2 keys and 3 operations", res)
	}
}

func TestWriteVisualization(t *testing.T) {
	ops := []Op{
		put(0, "a", 0, 10, "a1"),
		put(0, "a", 20, 30, "a2"),
		get(1, "a", 40, 50, "a1"),
		put(2, "b", 0, 10, "b1"),
		unknown(put(2, "b", 20, 0, "b2")),
		get(3, "b", 40, 50, "b1"),
	}
	path := filepath.Join(t.TempDir(), "lin.html")
	if err := WriteVisualization(ops, path); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(data) == 0 || !strings.Contains(strings.ToLower(string(data)), "<html") {
		t.Fatalf("not an HTML file (%d bytes)", len(data))
	}
	if !strings.Contains(string(data), `put \"a2\"`) && !strings.Contains(string(data), `put \u0022a2\u0022`) {
		t.Errorf("visualization does not describe the operations")
	}
}

// simulate runs a sequential store and wraps each operation's instant in an
// interval overlapping its neighbours, so the history is linearizable by
// construction but full of concurrency.
func simulate(seed uint64, n, keys, clients int) []Op {
	rng := rand.New(rand.NewPCG(seed, 0))
	state := map[string]string{}
	const spacing = 10
	ops := make([]Op, 0, n)
	for i := range n {
		at := int64(i+1) * 1000 * spacing
		// Each client's operations are clients*spacing apart; intervals
		// reach at most half of that either side, so a client never
		// overlaps itself.
		half := int64(clients * spacing * 1000 / 2)
		op := Op{
			ClientID: i % clients,
			Key:      fmt.Sprintf("k%02d", rng.IntN(keys)),
			Call:     at - rng.Int64N(half),
			Return:   at + rng.Int64N(half),
		}
		cur, found := state[op.Key]
		switch p := rng.IntN(100); {
		case p < 40:
			op.Kind, op.Result, op.Found = Get, cur, found
		case p < 70:
			op.Kind, op.Value = Put, fmt.Sprintf("v%d", i)
		default:
			op.Kind, op.Value = CAS, fmt.Sprintf("v%d", i)
			// Mostly compare against the current value, as a client that
			// just read would.
			if rng.IntN(3) > 0 {
				op.Expected = cur
			} else if rng.IntN(2) == 0 {
				op.Expected = fmt.Sprintf("v%d", rng.IntN(i+1))
			}
			op.Succeeded = (op.Expected == "" && !found) || (found && op.Expected == cur)
		}
		applies := op.Kind == Put || op.Kind == CAS && op.Succeeded
		switch p := rng.IntN(100); {
		case p < 2 && op.Kind != Get:
			// Lost answer: half of these took effect.
			op.Outcome = Unknown
			applies = applies && rng.IntN(2) == 0
		case p < 4:
			op.Outcome = Failed
			applies = false
			op.Result, op.Found, op.Succeeded = "", false, false
		}
		if applies {
			state[op.Key] = op.Value
		}
		ops = append(ops, op)
	}
	return ops
}

func TestCheckLinearizableLargeHistory(t *testing.T) {
	ops := simulate(1, 5000, 50, 8)
	start := time.Now()
	res := CheckLinearizable(ops, time.Minute)
	took := time.Since(start)
	t.Logf("%d keys, %d operations checked in %v", res.Keys, res.Operations, took)
	if !res.Linearizable || res.TimedOut {
		t.Fatalf("simulated history rejected: %+v", res)
	}
	if res.Keys != 50 {
		t.Errorf("Keys = %d, want 50", res.Keys)
	}
	if took > 10*time.Second {
		t.Errorf("check took %v, want well under the timeout", took)
	}

	// Corrupting one read must be caught, and only on its key.
	for i := len(ops) - 1; i >= 0; i-- {
		if ops[i].Kind == Get && ops[i].Outcome == OK && ops[i].Found {
			ops[i].Result = "never written"
			res := CheckLinearizable(ops, time.Minute)
			if res.Linearizable || len(res.Violations) != 1 || !strings.Contains(res.Violations[0], fmt.Sprintf("%q", ops[i].Key)) {
				t.Fatalf("corrupted read of %s not caught: %+v", ops[i].Key, res)
			}
			break
		}
	}
}

func TestHistory(t *testing.T) {
	h := NewHistory()
	if time.Since(h.Start()) < 0 {
		t.Fatal("start in the future")
	}
	done := make(chan struct{})
	for c := range 4 {
		go func() {
			for i := range 100 {
				h.Add(put(c, "k", int64(i), int64(i), fmt.Sprintf("%d-%d", c, i)))
			}
			done <- struct{}{}
		}()
	}
	for range 4 {
		<-done
	}
	ops := h.Ops()
	if len(ops) != 400 {
		t.Fatalf("got %d ops, want 400", len(ops))
	}
	ops[0].Key = "changed"
	if h.Ops()[0].Key == "changed" {
		t.Fatal("Ops does not return a copy")
	}
}

func TestCheckLinearizableTimeoutIsInconclusive(t *testing.T) {
	res := CheckLinearizable(simulate(2, 500, 10, 4), time.Nanosecond)
	if res.Linearizable || !res.TimedOut || len(res.Violations) != 0 {
		t.Fatalf("got %+v, want an inconclusive verdict", res)
	}
}
