package check

import (
	"strings"
	"testing"
)

func TestCheckWatch(t *testing.T) {
	put := func(rev int64, key, value string) WatchEvent {
		return WatchEvent{Revision: rev, Key: key, Value: value}
	}
	del := func(rev int64, key string) WatchEvent {
		return WatchEvent{Revision: rev, Key: key, Delete: true}
	}
	auth := []WatchEvent{
		put(10, "a", "a1"),
		put(11, "b", "b1"),
		put(12, "a", "a2"), // txn: three events at revision 12
		put(12, "b", "b2"),
		del(12, "c"),
		del(13, "a"),
		put(14, "c", "c1"),
	}
	tests := []struct {
		name    string
		seen    []WatchEvent
		fromRev int64
		toRev   int64
		want    []string // one substring per expected violation, in order
	}{
		{name: "exact match", seen: auth, fromRev: 10, toRev: 14},
		{name: "no upper bound", seen: auth, fromRev: 10},
		{name: "started mid-way", seen: auth[2:], fromRev: 12, toRev: 14},
		{name: "events after toRev are not judged", seen: append(append([]WatchEvent{}, auth...), put(15, "z", "z1")), fromRev: 10, toRev: 14},
		{name: "authoritative beyond the range", seen: auth[:4], fromRev: 10, toRev: 11},
		{
			name:    "missing",
			seen:    []WatchEvent{auth[0], auth[1], auth[2], auth[3], auth[5], auth[6]},
			fromRev: 10, toRev: 14,
			want: []string{`w: event rev 12 delete "c" missing`},
		},
		{
			name:    "duplicate after reconnect",
			seen:    []WatchEvent{auth[0], auth[1], auth[2], auth[1], auth[2], auth[3], auth[4], auth[5], auth[6]},
			fromRev: 10, toRev: 14,
			want: []string{`rev 11 put "b"="b1" (received #3) delivered more than once`, `rev 12 put "a"="a2" (received #4) delivered more than once`},
		},
		{
			name:    "reordered across revisions",
			seen:    []WatchEvent{auth[0], auth[5], auth[1], auth[2], auth[3], auth[4], auth[6]},
			fromRev: 10, toRev: 14,
			want: []string{`rev 13 delete "a" (received #1) out of order: received after rev 10 put "a"="a1"`},
		},
		{
			name:    "reordered within a txn",
			seen:    []WatchEvent{auth[0], auth[1], auth[3], auth[2], auth[4], auth[5], auth[6]},
			fromRev: 10, toRev: 14,
			want: []string{`rev 12 put "b"="b2" (received #2) out of order: received after rev 11 put "b"="b1"`},
		},
		{
			name:    "reversed",
			seen:    []WatchEvent{auth[6], auth[5], auth[4], auth[3], auth[2], auth[1], auth[0]},
			fromRev: 10, toRev: 14,
			want: []string{"out of order", "out of order", "out of order", "out of order", "out of order", "out of order"},
		},
		{
			name:    "phantom",
			seen:    []WatchEvent{auth[0], auth[1], put(11, "b", "bX"), auth[2], auth[3], auth[4], auth[5], auth[6]},
			fromRev: 10, toRev: 14,
			want: []string{`rev 11 put "b"="bX" (received #2) is not in the authoritative history`},
		},
		{
			name:    "before the start revision",
			seen:    auth,
			fromRev: 11, toRev: 14,
			want: []string{`rev 10 put "a"="a1" received before the watch's start revision 11`},
		},
		{
			name:    "watch that saw nothing",
			fromRev: 13, toRev: 14,
			want: []string{`rev 13 delete "a" missing`, `rev 14 put "c"="c1" missing`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := CheckWatch("w", auth, tt.seen, tt.fromRev, tt.toRev)
			if len(got) != len(tt.want) {
				t.Fatalf("got %d violations, want %d:\n%s", len(got), len(tt.want), strings.Join(got, "\n"))
			}
			for i, w := range tt.want {
				if !strings.HasPrefix(got[i], "w: ") || !strings.Contains(got[i], w) {
					t.Errorf("violation %d = %q, want it to contain %q", i, got[i], w)
				}
			}
		})
	}
}

func TestCheckWatchCapsLongLists(t *testing.T) {
	var auth []WatchEvent
	for i := range 100 {
		auth = append(auth, WatchEvent{Revision: int64(i + 1), Key: "k", Value: string(rune('a' + i%26))})
	}
	got := CheckWatch("w", auth, nil, 1, 100)
	if len(got) != maxPerKind+1 || !strings.Contains(got[len(got)-1], "and 90 more missing") {
		t.Fatalf("got %d lines, last %q", len(got), got[len(got)-1])
	}
}

func TestCheckAcknowledged(t *testing.T) {
	auth := []WatchEvent{
		{Revision: 5, Key: "a", Value: "a1"},
		{Revision: 6, Key: "b", Value: "b1"},
		{Revision: 7, Key: "c", Delete: true},
	}
	tests := []struct {
		name string
		ops  []Op
		want []string
	}{
		{name: "all present", ops: []Op{put(0, "a", 0, 1, "a1"), cas(1, "b", 0, 1, "", "b1", true)}},
		{name: "lost put", ops: []Op{put(0, "a", 0, 1, "a1"), put(2, "a", 3, 4, "a2")}, want: []string{`key "a": client 2 put "a2"`}},
		{name: "lost CAS", ops: []Op{cas(1, "b", 0, 1, "b1", "b2", true)}, want: []string{`key "b": client 1 cas "b1"→"b2" ✓`}},
		{name: "value under another key", ops: []Op{put(0, "b", 0, 1, "a1")}, want: []string{`key "b"`}},
		{
			name: "unacknowledged writes may be lost",
			ops: []Op{
				unknown(put(0, "a", 0, 0, "x")),
				failed(put(0, "a", 0, 1, "y")),
				cas(0, "a", 0, 1, "q", "z", false),
				get(0, "a", 0, 1, "a1"),
			},
		},
		{name: "delete does not count as the write", ops: []Op{put(0, "c", 0, 1, "")}, want: []string{`key "c"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := CheckAcknowledged(tt.ops, auth)
			if len(got) != len(tt.want) {
				t.Fatalf("got %q, want %d violations", got, len(tt.want))
			}
			for i, w := range tt.want {
				if !strings.Contains(got[i], w) {
					t.Errorf("violation %d = %q, want it to contain %q", i, got[i], w)
				}
			}
		})
	}
}
