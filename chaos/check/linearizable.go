package check

import (
	"fmt"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/anishathalye/porcupine"
)

// LinearizabilityResult is the verdict on a history.
type LinearizabilityResult struct {
	// Linearizable is true only if every key was checked to completion and
	// found linearizable.
	Linearizable bool `json:"linearizable"`
	// TimedOut means the checker gave up on some key without finding a
	// violation anywhere: the verdict is inconclusive, not a failure. When a
	// violation was found the verdict is conclusive and TimedOut is false
	// even if other keys were cut short.
	TimedOut bool `json:"timedOut"`
	// Keys is the number of partitions (keys) checked.
	Keys int `json:"keys"`
	// Operations is the number of operations checked, after dropping failed
	// operations and reads of unknown outcome.
	Operations int `json:"operations"`
	// Violations says, per offending key, which operations could not be
	// ordered.
	Violations []string `json:"violations,omitempty"`
}

// register is the state of one key. It is comparable so that porcupine can
// dedupe states with ==.
type register struct {
	value string
	found bool
}

func (r register) String() string {
	if !r.found {
		return "absent"
	}
	return fmt.Sprintf("%q", r.value)
}

// holds reports whether a CAS comparing against expected succeeds; "" stands
// for an absent key, as the client expresses it with CreateRevision == 0.
func (r register) holds(expected string) bool {
	if expected == "" {
		return !r.found
	}
	return r.found && r.value == expected
}

// step returns every state the register may be in after op, or nothing if
// op's observed result is impossible from s. An Unknown write yields both
// the unchanged and the written state: the client cannot tell which.
func step(s register, op Op) []register {
	switch op.Kind {
	case Get:
		if op.Found != s.found || (op.Found && op.Result != s.value) {
			return nil
		}
		return []register{s}
	case Put:
		next := register{value: op.Value, found: true}
		if op.Outcome == Unknown {
			return []register{s, next}
		}
		return []register{next}
	case CAS:
		holds := s.holds(op.Expected)
		next := register{value: op.Value, found: true}
		if op.Outcome == Unknown {
			if holds {
				return []register{s, next}
			}
			return []register{s}
		}
		if op.Succeeded != holds {
			return nil
		}
		if holds {
			return []register{next}
		}
		return []register{s}
	}
	return nil
}

func describeOp(op Op) string {
	var b strings.Builder
	switch op.Kind {
	case Get:
		if op.Found {
			fmt.Fprintf(&b, "get → %q", op.Result)
		} else {
			b.WriteString("get → absent")
		}
	case Put:
		fmt.Fprintf(&b, "put %q", op.Value)
	case CAS:
		exp := "absent"
		if op.Expected != "" {
			exp = fmt.Sprintf("%q", op.Expected)
		}
		fmt.Fprintf(&b, "cas %s→%q", exp, op.Value)
		if op.Outcome == OK {
			if op.Succeeded {
				b.WriteString(" ✓")
			} else {
				b.WriteString(" ✗")
			}
		}
	default:
		fmt.Fprintf(&b, "%v", op.Kind)
	}
	if op.Outcome == Unknown {
		b.WriteString(" (unknown outcome)")
	}
	return b.String()
}

// describeOpAt adds who and when, which is what a reader needs to find the
// operation in client logs.
func describeOpAt(op Op) string {
	end := time.Duration(op.Return).String()
	if op.Outcome == Unknown {
		end = "?"
	}
	return fmt.Sprintf("client %d %s [%v–%s]", op.ClientID, describeOp(op), time.Duration(op.Call), end)
}

func hashRegister(s interface{}) uint64 {
	r := s.(register)
	// FNV-1a: only needs to be consistent with ==.
	h := uint64(14695981039346656037)
	for i := 0; i < len(r.value); i++ {
		h ^= uint64(r.value[i])
		h *= 1099511628211
	}
	if r.found {
		h ^= 1
		h *= 1099511628211
	}
	return h
}

// model is the per-key register model. Input and output are both the Op:
// the output half is read for results, the input half for arguments.
func model(partition bool) porcupine.Model {
	nm := porcupine.NondeterministicModel{
		Init: func() []interface{} { return []interface{}{register{}} },
		Step: func(state, input, _ interface{}) []interface{} {
			next := step(state.(register), input.(Op))
			out := make([]interface{}, len(next))
			for i, s := range next {
				out[i] = s
			}
			return out
		},
		Equal:             func(a, b interface{}) bool { return a.(register) == b.(register) },
		Hash:              hashRegister,
		DescribeOperation: func(input, _ interface{}) string { return describeOp(input.(Op)) },
		DescribeState:     func(state interface{}) string { return state.(register).String() },
	}
	if partition {
		nm.Partition = partitionOperations
	}
	return nm.ToModel()
}

func partitionOperations(history []porcupine.Operation) [][]porcupine.Operation {
	byKey := map[string][]porcupine.Operation{}
	for _, o := range history {
		k := o.Input.(Op).Key
		byKey[k] = append(byKey[k], o)
	}
	keys := make([]string, 0, len(byKey))
	for k := range byKey {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([][]porcupine.Operation, len(keys))
	for i, k := range keys {
		out[i] = byKey[k]
	}
	return out
}

// prepare drops what carries no information and turns the rest into
// porcupine operations grouped by key (keys sorted).
//
// A failed operation did nothing and a read of unknown outcome observed
// nothing, so both are dropped. A write of unknown outcome may take effect
// at any moment after its call, so it is given a return later than every
// other event: then it can be ordered anywhere after its call, and the model
// lets it have no effect at all.
func prepare(ops []Op) (keys []string, parts map[string][]porcupine.Operation, n int) {
	var kept []Op
	var last int64
	for _, op := range ops {
		switch {
		case op.Outcome == Failed:
			continue
		case op.Outcome == Unknown && op.Kind == Get:
			continue
		}
		last = max(last, op.Call)
		if op.Outcome == OK {
			last = max(last, op.Return)
		}
		kept = append(kept, op)
	}
	parts = map[string][]porcupine.Operation{}
	for _, op := range kept {
		ret := op.Return
		if op.Outcome == Unknown {
			// last+1 rather than MaxInt64 keeps the visualization's
			// timeline readable.
			ret = last + 1
		} else if ret < op.Call {
			// A clock that runs backwards would make porcupine see the
			// return before the call; an instant interval is the most
			// that can be claimed.
			ret = op.Call
		}
		op.Return = ret
		if _, ok := parts[op.Key]; !ok {
			keys = append(keys, op.Key)
		}
		parts[op.Key] = append(parts[op.Key], porcupine.Operation{
			ClientId: op.ClientID,
			Input:    op,
			Call:     op.Call,
			Output:   op,
			Return:   ret,
		})
	}
	sort.Strings(keys)
	return keys, parts, len(kept)
}

// CheckLinearizable checks that ops are linearizable as a set of independent
// per-key registers. timeout bounds the whole check (<= 0: no bound); keys
// are checked in parallel.
func CheckLinearizable(ops []Op, timeout time.Duration) LinearizabilityResult {
	keys, parts, n := prepare(ops)
	res := LinearizabilityResult{Keys: len(keys), Operations: n}
	var deadline time.Time
	if timeout > 0 {
		deadline = time.Now().Add(timeout)
	}
	remaining := func() (time.Duration, bool) {
		if deadline.IsZero() {
			return 0, true
		}
		d := time.Until(deadline)
		return d, d > 0
	}

	m := model(false)
	type verdict struct {
		result    porcupine.CheckResult
		violation string
	}
	verdicts := make([]verdict, len(keys))
	work := make(chan int)
	var wg sync.WaitGroup
	// Each porcupine check is single-threaded, so one worker per CPU keeps
	// every core busy without piling up goroutines that would only race
	// the deadline.
	for range min(runtime.GOMAXPROCS(0), max(len(keys), 1)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				d, ok := remaining()
				if !ok {
					verdicts[i].result = porcupine.Unknown
					continue
				}
				history := parts[keys[i]]
				r := porcupine.CheckOperationsTimeout(m, history, d)
				verdicts[i].result = r
				if r == porcupine.Illegal {
					verdicts[i].violation = explain(m, keys[i], history, remaining)
				}
			}
		}()
	}
	for i := range keys {
		work <- i
	}
	close(work)
	wg.Wait()

	timedOut := false
	for _, v := range verdicts {
		switch v.result {
		case porcupine.Illegal:
			res.Violations = append(res.Violations, v.violation)
		case porcupine.Unknown:
			timedOut = true
		}
	}
	res.Linearizable = len(res.Violations) == 0 && !timedOut
	res.TimedOut = len(res.Violations) == 0 && timedOut
	return res
}

// explainFloor is how long the explanation of a violation may take even
// once the overall deadline has passed: a violation is worth describing.
const explainFloor = 5 * time.Second

// explain re-checks an illegal key verbosely to say where it breaks: the
// longest prefix porcupine could linearize, what the register held after it,
// and which operations could have come next but none of which fit.
func explain(m porcupine.Model, key string, history []porcupine.Operation, remaining func() (time.Duration, bool)) string {
	head := fmt.Sprintf("key %q: not linearizable (%d operations)", key, len(history))
	d, _ := remaining()
	if d != 0 {
		d = max(d, explainFloor)
	}
	r, info := porcupine.CheckOperationsVerbose(m, history, d)
	if r != porcupine.Illegal {
		return head
	}
	var longest []porcupine.Operation
	for _, part := range info.PartialLinearizationsOperations() {
		for _, lin := range part {
			if len(lin) > len(longest) {
				longest = lin
			}
		}
	}
	var b strings.Builder
	b.WriteString(head)

	states := []register{{}}
	done := map[Op]int{}
	for _, o := range longest {
		op := o.Input.(Op)
		done[op]++
		var next []register
		for _, s := range states {
			for _, n := range step(s, op) {
				if !containsRegister(next, n) {
					next = append(next, n)
				}
			}
		}
		states = next
	}
	if len(longest) == 0 {
		b.WriteString("; no operation can come first")
	} else {
		fmt.Fprintf(&b, "; the longest linearizable prefix (%d of %d) ends with %s", len(longest), len(history), describeOpAt(longest[len(longest)-1].Input.(Op)))
	}
	desc := make([]string, len(states))
	for i, s := range states {
		desc[i] = s.String()
	}
	fmt.Fprintf(&b, "; register then holds %s", strings.Join(desc, " or "))

	// The candidates for the next step are the pending operations that
	// were called before any pending operation returned; none of them fits.
	var pending []Op
	for _, o := range history {
		op := o.Input.(Op)
		if done[op] > 0 {
			done[op]--
			continue
		}
		pending = append(pending, op)
	}
	sort.Slice(pending, func(i, j int) bool { return pending[i].Call < pending[j].Call })
	firstReturn := int64(1<<63 - 1)
	for _, op := range pending {
		firstReturn = min(firstReturn, op.Return)
	}
	var next []string
	for _, op := range pending {
		if op.Call > firstReturn {
			break
		}
		if len(next) == 4 {
			next = append(next, "…")
			break
		}
		next = append(next, describeOpAt(op))
	}
	if len(next) > 0 {
		fmt.Fprintf(&b, "; none of these can follow: %s", strings.Join(next, "; "))
	}
	return b.String()
}

func containsRegister(rs []register, r register) bool {
	for _, x := range rs {
		if x == r {
			return true
		}
	}
	return false
}

// visualizeTimeout bounds the search behind a visualization; a cut-short
// search still renders the partial linearizations it found.
const visualizeTimeout = 2 * time.Minute

// WriteVisualization writes porcupine's interactive HTML view of the whole
// history, one partition per key, to path.
func WriteVisualization(ops []Op, path string) error {
	keys, parts, _ := prepare(ops)
	var history []porcupine.Operation
	for _, k := range keys {
		history = append(history, parts[k]...)
	}
	m := model(true)
	_, info := porcupine.CheckOperationsVerbose(m, history, visualizeTimeout)
	return porcupine.VisualizePath(m, info, path)
}
