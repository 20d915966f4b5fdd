package check

import (
	"fmt"
)

// WatchEvent is one event of a watch, identified by revision, key, value and
// kind: values are unique per write, so equal events are the same event.
type WatchEvent struct {
	Revision int64
	Key      string
	Value    string
	Delete   bool
}

func (e WatchEvent) String() string {
	if e.Delete {
		return fmt.Sprintf("rev %d delete %q", e.Revision, e.Key)
	}
	return fmt.Sprintf("rev %d put %q=%q", e.Revision, e.Key, e.Value)
}

// maxPerKind caps how many violations of one kind are listed: a watcher that
// lost its stream would otherwise produce one line per event.
const maxPerKind = 10

// capped collects violations of one kind, keeping the first maxPerKind and
// counting the rest.
type capped struct {
	lines []string
	extra int
}

func (c *capped) add(format string, args ...any) {
	if len(c.lines) < maxPerKind {
		c.lines = append(c.lines, fmt.Sprintf(format, args...))
		return
	}
	c.extra++
}

func (c *capped) flush(out []string, name, kind string) []string {
	out = append(out, c.lines...)
	if c.extra > 0 {
		out = append(out, fmt.Sprintf("%s: … and %d more %s events", name, c.extra, kind))
	}
	return out
}

// CheckWatch compares what one watcher saw (in the order received, across
// its reconnects) with the authoritative event list of its range (ordered by
// revision). The watcher is expected to have seen every authoritative event
// with fromRev <= Revision <= toRev (toRev <= 0: no upper bound), each once
// and in the authoritative order, including the order of several events
// within one revision (a txn). Events it saw after toRev are not judged: a
// watch keeps running after the range was read.
func CheckWatch(name string, authoritative, seen []WatchEvent, fromRev, toRev int64) []string {
	inRange := func(rev int64) bool { return rev >= fromRev && (toRev <= 0 || rev <= toRev) }

	// Several identical authoritative events cannot happen in a real store,
	// but a list of positions keeps the check honest if they do.
	var expected []WatchEvent
	pos := map[WatchEvent][]int{}
	for _, e := range authoritative {
		if !inRange(e.Revision) {
			continue
		}
		pos[e] = append(pos[e], len(expected))
		expected = append(expected, e)
	}

	var early, phantom, dup, order, missing capped
	delivered := make([]bool, len(expected))
	// firsts are the first deliveries, in receive order; their authoritative
	// positions should increase.
	type delivery struct{ received, pos int }
	var firsts []delivery
	for i, e := range seen {
		if e.Revision < fromRev {
			early.add("%s: event %s received before the watch's start revision %d", name, e, fromRev)
			continue
		}
		if !inRange(e.Revision) {
			continue
		}
		ps, ok := pos[e]
		if !ok {
			phantom.add("%s: event %s (received #%d) is not in the authoritative history", name, e, i)
			continue
		}
		p := -1
		for _, q := range ps {
			if !delivered[q] {
				p = q
				break
			}
		}
		if p < 0 {
			dup.add("%s: event %s (received #%d) delivered more than once", name, e, i)
			continue
		}
		delivered[p] = true
		firsts = append(firsts, delivery{i, p})
	}
	// One event delivered early would make every later-positioned event
	// look late; blaming only the events outside a longest in-order
	// subsequence names the fewest culprits.
	positions := make([]int, len(firsts))
	for i, d := range firsts {
		positions[i] = d.pos
	}
	inOrder := longestIncreasing(positions)
	for i, d := range firsts {
		if inOrder[i] {
			continue
		}
		after := "nothing"
		if i > 0 {
			after = seen[firsts[i-1].received].String()
		}
		order.add("%s: event %s (received #%d) out of order: received after %s", name, expected[d.pos], d.received, after)
	}
	for p, ok := range delivered {
		if !ok {
			missing.add("%s: event %s missing", name, expected[p])
		}
	}

	var out []string
	out = early.flush(out, name, "early")
	out = phantom.flush(out, name, "phantom")
	out = dup.flush(out, name, "duplicate")
	out = order.flush(out, name, "out-of-order")
	out = missing.flush(out, name, "missing")
	return out
}

// CheckAcknowledged reports acknowledged writes (OK puts and OK successful
// CASes in ops) whose (Key, Value) never appears as a non-delete event in
// authoritative: the store said yes and then lost the write.
func CheckAcknowledged(ops []Op, authoritative []WatchEvent) []string {
	type kv struct{ key, value string }
	present := map[kv]bool{}
	for _, e := range authoritative {
		if !e.Delete {
			present[kv{e.Key, e.Value}] = true
		}
	}
	var out []string
	for _, op := range ops {
		if op.Outcome != OK || !(op.Kind == Put || op.Kind == CAS && op.Succeeded) {
			continue
		}
		if !present[kv{op.Key, op.Value}] {
			out = append(out, fmt.Sprintf("key %q: %s acknowledged but never in the event history", op.Key, describeOpAt(op)))
		}
	}
	return out
}

// longestIncreasing marks the members of one longest strictly increasing
// subsequence of xs (patience sorting, O(n log n)).
func longestIncreasing(xs []int) []bool {
	var tails []int // tails[k]: index of the smallest tail of a run of length k+1
	prev := make([]int, len(xs))
	for i, x := range xs {
		lo, hi := 0, len(tails)
		for lo < hi {
			mid := (lo + hi) / 2
			if xs[tails[mid]] < x {
				lo = mid + 1
			} else {
				hi = mid
			}
		}
		prev[i] = -1
		if lo > 0 {
			prev[i] = tails[lo-1]
		}
		if lo == len(tails) {
			tails = append(tails, i)
		} else {
			tails[lo] = i
		}
	}
	in := make([]bool, len(xs))
	if len(tails) > 0 {
		for i := tails[len(tails)-1]; i >= 0; i = prev[i] {
			in[i] = true
		}
	}
	return in
}
