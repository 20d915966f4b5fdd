package raftstore

import (
	"bytes"
	"sort"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
)

func filterKVs(kvs []*mvccpb.KeyValue, rr *pb.RangeRequest) []*mvccpb.KeyValue {
	out := kvs[:0]
	for _, kv := range kvs {
		if rr.MinModRevision != 0 && kv.ModRevision < rr.MinModRevision {
			continue
		}
		if rr.MaxModRevision != 0 && kv.ModRevision > rr.MaxModRevision {
			continue
		}
		if rr.MinCreateRevision != 0 && kv.CreateRevision < rr.MinCreateRevision {
			continue
		}
		if rr.MaxCreateRevision != 0 && kv.CreateRevision > rr.MaxCreateRevision {
			continue
		}
		out = append(out, kv)
	}
	return out
}

// sortKVs orders results as etcd does; ties keep key order (stable sort
// over key-ordered input).
func sortKVs(kvs []*mvccpb.KeyValue, target pb.RangeRequest_SortTarget, order pb.RangeRequest_SortOrder) {
	if order == pb.RangeRequest_NONE {
		return
	}
	var less func(a, b *mvccpb.KeyValue) bool
	switch target {
	case pb.RangeRequest_KEY:
		less = func(a, b *mvccpb.KeyValue) bool { return bytes.Compare(a.Key, b.Key) < 0 }
	case pb.RangeRequest_VERSION:
		less = func(a, b *mvccpb.KeyValue) bool { return a.Version < b.Version }
	case pb.RangeRequest_CREATE:
		less = func(a, b *mvccpb.KeyValue) bool { return a.CreateRevision < b.CreateRevision }
	case pb.RangeRequest_MOD:
		less = func(a, b *mvccpb.KeyValue) bool { return a.ModRevision < b.ModRevision }
	case pb.RangeRequest_VALUE:
		less = func(a, b *mvccpb.KeyValue) bool { return bytes.Compare(a.Value, b.Value) < 0 }
	}
	if order == pb.RangeRequest_DESCEND {
		sort.SliceStable(kvs, func(i, j int) bool { return less(kvs[j], kvs[i]) })
	} else {
		sort.SliceStable(kvs, func(i, j int) bool { return less(kvs[i], kvs[j]) })
	}
}
