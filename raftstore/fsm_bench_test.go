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
