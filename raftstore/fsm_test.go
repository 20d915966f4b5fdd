package raftstore

import (
	"fmt"
	"testing"

	"github.com/hashicorp/raft"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// BenchmarkFSMApplyPut is the apply path of one put as every peer runs it:
// decode the log entry, write the MVCC store, notify the (idle) watch hub.
// It bounds how fast any peer can apply, whatever Raft and the disk do.
func BenchmarkFSMApplyPut(b *testing.B) {
	f := newFSM(discardLogger(), 2, watchConfigForTest())
	val := make([]byte, 256)
	entries := make([][]byte, 10000)
	for i := range entries {
		data, err := encodeRequest(&pb.InternalRaftRequest{Put: &pb.PutRequest{Key: fmt.Appendf(nil, "bench/k/%05d", i), Value: val}})
		if err != nil {
			b.Fatal(err)
		}
		entries[i] = data
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		res := f.Apply(&raft.Log{Index: uint64(i + 1), Type: raft.LogCommand, Data: entries[i%len(entries)]})
		if r := res.(applyResult); r.err != nil {
			b.Fatal(r.err)
		}
	}
}

// TestFSMSignalsBigLog: the FSM asks for a snapshot once the entries it
// applied since the last one pass the byte limit, and a snapshot starts
// the count again.
func TestFSMSignalsBigLog(t *testing.T) {
	f := newFSM(discardLogger(), 2, watchConfigForTest())
	f.logBytesLimit = 4 << 10
	data, err := encodeRequest(&pb.InternalRaftRequest{Put: &pb.PutRequest{Key: []byte("k"), Value: make([]byte, 1000)}})
	if err != nil {
		t.Fatal(err)
	}
	signalled := func() bool {
		select {
		case <-f.bigLog:
			return true
		default:
			return false
		}
	}
	index := uint64(0)
	apply := func(n int) {
		for range n {
			index++
			f.Apply(&raft.Log{Index: index, Type: raft.LogCommand, Data: data})
		}
	}
	apply(3) // about 3 KiB: under the limit
	if signalled() {
		t.Fatal("signalled under the limit")
	}
	apply(2)
	if !signalled() {
		t.Fatalf("not signalled after %d bytes, limit %d", f.logBytes.Load(), f.logBytesLimit)
	}
	if _, err := f.Snapshot(); err != nil {
		t.Fatal(err)
	}
	if got := f.logBytes.Load(); got != 0 {
		t.Fatalf("log bytes %d after a snapshot, want 0", got)
	}
	apply(3)
	if signalled() {
		t.Fatal("signalled under the limit after a snapshot")
	}
}
