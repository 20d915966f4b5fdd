package mvcc

import (
	"errors"
	"fmt"
	"testing"

	"go.etcd.io/etcd/api/v3/mvccpb"
)

func put(s *Store, kvs ...string) int64 {
	w := s.Write()
	for i := 0; i+1 < len(kvs); i += 2 {
		w.Put([]byte(kvs[i]), []byte(kvs[i+1]), 0)
	}
	rev, _ := w.End()
	return rev
}

func del(s *Store, key, end string) int64 {
	w := s.Write()
	var e []byte
	if end != "" {
		e = []byte(end)
	}
	w.DeleteRange([]byte(key), e)
	rev, _ := w.End()
	return rev
}

func keys(r *RangeResult) []string {
	var out []string
	for _, kv := range r.KVs {
		out = append(out, string(kv.Key)+"="+string(kv.Value))
	}
	return out
}

func TestRevisionsAndVersions(t *testing.T) {
	s := New()
	if got := s.Rev(); got != 1 {
		t.Fatalf("initial revision = %d, want 1", got)
	}
	r1 := put(s, "a", "1")
	r2 := put(s, "a", "2", "b", "1") // one txn, one revision
	if r1 != 2 || r2 != 3 {
		t.Fatalf("revisions = %d, %d; want 2, 3", r1, r2)
	}
	res, err := s.Range([]byte("a"), nil, RangeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	kv := res.KVs[0]
	if kv.CreateRevision != 2 || kv.ModRevision != 3 || kv.Version != 2 {
		t.Fatalf("a = create %d mod %d version %d; want 2 3 2", kv.CreateRevision, kv.ModRevision, kv.Version)
	}
	// A txn that changes nothing does not advance the revision.
	if rev := del(s, "zzz", ""); rev != 3 {
		t.Fatalf("no-op delete moved revision to %d", rev)
	}
	// Delete and re-create starts a new generation.
	del(s, "a", "")
	put(s, "a", "3")
	res, _ = s.Range([]byte("a"), nil, RangeOptions{})
	if kv := res.KVs[0]; kv.Version != 1 || kv.CreateRevision != 5 {
		t.Fatalf("recreated a = version %d create %d; want 1 5", kv.Version, kv.CreateRevision)
	}
}

func TestRangeAtRevisionAndRanges(t *testing.T) {
	s := New()
	put(s, "a", "1", "b", "1", "c", "1") // rev 2
	put(s, "b", "2")                     // rev 3
	del(s, "c", "")                      // rev 4
	tests := []struct {
		name     string
		key, end string
		opts     RangeOptions
		want     []string
		count    int64
		err      error
	}{
		{"single", "b", "", RangeOptions{}, []string{"b=2"}, 1, nil},
		{"range", "a", "c", RangeOptions{}, []string{"a=1", "b=2"}, 2, nil},
		{"from key", "b", "\x00", RangeOptions{}, []string{"b=2"}, 1, nil},
		{"all at rev 2", "a", "\x00", RangeOptions{Rev: 2}, []string{"a=1", "b=1", "c=1"}, 3, nil},
		{"limit counts all", "a", "\x00", RangeOptions{Rev: 2, Limit: 1}, []string{"a=1"}, 3, nil},
		{"count only", "a", "\x00", RangeOptions{CountOnly: true}, nil, 2, nil},
		{"future", "a", "", RangeOptions{Rev: 5}, nil, 0, ErrFutureRev},
		{"empty range", "c", "a", RangeOptions{}, nil, 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var end []byte
			if tt.end != "" {
				end = []byte(tt.end)
			}
			res, err := s.Range([]byte(tt.key), end, tt.opts)
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if err != nil {
				return
			}
			if fmt.Sprint(keys(res)) != fmt.Sprint(tt.want) || res.Count != tt.count {
				t.Fatalf("got %v count %d, want %v count %d", keys(res), res.Count, tt.want, tt.count)
			}
		})
	}
}

func TestCompaction(t *testing.T) {
	s := New()
	put(s, "a", "1") // 2
	put(s, "a", "2") // 3
	put(s, "b", "1") // 4
	del(s, "b", "")  // 5
	put(s, "a", "3") // 6
	if err := s.Compact(5); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Range([]byte("a"), nil, RangeOptions{Rev: 4}); !errors.Is(err, ErrCompacted) {
		t.Fatalf("range below compaction: err = %v, want ErrCompacted", err)
	}
	res, err := s.Range([]byte("a"), nil, RangeOptions{Rev: 5})
	if err != nil || keys(res)[0] != "a=2" {
		t.Fatalf("range at compaction point = %v, %v; want a=2", res, err)
	}
	if err := s.Compact(5); !errors.Is(err, ErrCompacted) {
		t.Fatalf("compact again: err = %v", err)
	}
	if err := s.Compact(9); !errors.Is(err, ErrFutureRev) {
		t.Fatalf("compact future: err = %v", err)
	}
	// b's tombstone at 5 is gone entirely; a keeps 2 (visible at 5) and 3.
	if _, ok := s.tree.Get(keyIndex{key: "b"}); ok {
		t.Fatal("deleted key b survived compaction")
	}
	ki, _ := s.tree.Get(keyIndex{key: "a"})
	if len(ki.versions) != 2 {
		t.Fatalf("a has %d versions after compaction, want 2", len(ki.versions))
	}
	if _, _, err := s.EventsSince(nil, []byte{0}, 5, 0); !errors.Is(err, ErrCompacted) {
		t.Fatalf("events from the compaction point: err = %v", err)
	}
}

func TestEventsSince(t *testing.T) {
	s := New()
	put(s, "a", "1")           // 2
	put(s, "b", "1")           // 3
	put(s, "a", "2")           // 4
	del(s, "a", "")            // 5
	put(s, "x", "1", "a", "9") // 6
	evs, next, err := s.EventsSince([]byte("a"), []byte("c"), 3, 0)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, ev := range evs {
		prev := "-"
		if ev.PrevKv != nil {
			prev = string(ev.PrevKv.Value)
		}
		got = append(got, fmt.Sprintf("%d.%d %s %s prev=%s", ev.Rev.Main, ev.Rev.Sub, ev.Type, ev.Kv.Key, prev))
	}
	want := []string{"3.0 PUT b prev=-", "4.0 PUT a prev=1", "5.0 DELETE a prev=2", "6.1 PUT a prev=-"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("events\n got %v\nwant %v", got, want)
	}
	if next != 7 {
		t.Fatalf("next = %d, want 7", next)
	}
	// A bound cuts at a revision boundary.
	evs, next, _ = s.EventsSince(nil, []byte{0}, 2, 2)
	if len(evs) != 2 || next != 4 {
		t.Fatalf("bounded: %d events next %d; want 2 events next 4", len(evs), next)
	}
}

func TestViewIsolation(t *testing.T) {
	s := New()
	put(s, "a", "1")
	v := s.View()
	h1, _, _ := v.Hash(0)
	put(s, "a", "2", "b", "1")
	del(s, "a", "")
	if err := s.Compact(s.Rev()); err != nil {
		t.Fatal(err)
	}
	h2, _, _ := v.Hash(0)
	if h1 != h2 || v.Rev() != 2 || v.LiveKeys() != 1 {
		t.Fatalf("view changed under writes: hash %x→%x rev %d keys %d", h1, h2, v.Rev(), v.LiveKeys())
	}
	res, err := rangeTree(v.tree, v.rev, v.compactRev, []byte("a"), nil, RangeOptions{})
	if err != nil || len(res.KVs) != 1 || string(res.KVs[0].Value) != "1" {
		t.Fatalf("view range = %v %v; want a=1", res, err)
	}
}

func TestWriteSeesOwnChanges(t *testing.T) {
	s := New()
	put(s, "a", "1")
	w := s.Write()
	w.Put([]byte("b"), []byte("2"), 0)
	res, err := w.Range([]byte("a"), []byte("z"), RangeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.KVs) != 2 || res.Rev != 3 {
		t.Fatalf("in-txn range = %v rev %d; want 2 keys at rev 3", keys(res), res.Rev)
	}
	rev, evs := w.End()
	if rev != 3 || len(evs) != 1 || evs[0].Type != mvccpb.PUT {
		t.Fatalf("End = %d %v", rev, evs)
	}
}

func BenchmarkPut(b *testing.B) {
	s := New()
	val := make([]byte, 256)
	keys := make([][]byte, 10000)
	for i := range keys {
		keys[i] = []byte(fmt.Sprintf("key-%05d", i))
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		w := s.Write()
		w.Put(keys[i%len(keys)], val, 0)
		w.End()
	}
}
