package raftlog

import (
	"bytes"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"go.etcd.io/raft/v3/raftpb"
)

func TestEntryRoundTrip(t *testing.T) {
	for _, l := range []*raft.Log{
		{Index: 1, Term: 1, Type: raft.LogNoop},
		{Index: 7, Term: 3, Type: raft.LogCommand, Data: []byte("put k v"), AppendedAt: time.Unix(1700000000, 5)},
		{Index: 9, Term: 4, Type: raft.LogConfiguration, Data: []byte{1, 2, 3}, Extensions: []byte("ext")},
	} {
		got, err := decodeEntry(encodeEntry(l))
		if err != nil {
			t.Fatalf("%+v: %v", l, err)
		}
		if got.Index != l.Index || got.Term != l.Term || got.Type != l.Type || !bytes.Equal(got.Data, l.Data) ||
			!bytes.Equal(got.Extensions, l.Extensions) || !got.AppendedAt.Equal(l.AppendedAt) {
			t.Fatalf("round trip of %+v gave %+v", l, got)
		}
	}
}

// FuzzDecodeEntry feeds decodeEntry arbitrary entry data: it must return
// an entry or an error, never panic, and what it accepts must encode back
// to the same bytes.
func FuzzDecodeEntry(f *testing.F) {
	f.Add(encodeEntry(&raft.Log{Index: 1, Term: 1, Type: raft.LogCommand, Data: []byte("x")}).Data)
	f.Add(encodeEntry(&raft.Log{Index: 2, Term: 1, Type: raft.LogConfiguration, Extensions: []byte("e"), AppendedAt: time.Unix(1, 1)}).Data)
	f.Add([]byte{1, 0, 0, 0})
	f.Add([]byte{1, 9, 0, 0})
	f.Add([]byte{2, 0})
	f.Add([]byte{1, 0, 0, 200, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		l, err := decodeEntry(&raftpb.Entry{Index: new(uint64(5)), Term: new(uint64(2)), Data: data})
		if err != nil {
			return
		}
		if again := encodeEntry(l).Data; !bytes.Equal(again, data) {
			// Only the uvarints may be written in a longer form than ours.
			if _, err := decodeEntry(&raftpb.Entry{Index: new(uint64(5)), Term: new(uint64(2)), Data: again}); err != nil {
				t.Fatalf("re-encoding %x gave %x, which does not decode: %v", data, again, err)
			}
		}
	})
}
