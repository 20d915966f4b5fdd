package raftstore

import (
	"errors"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/protobuf/proto"
)

func TestCommandRoundTrip(t *testing.T) {
	reqs := []*pb.InternalRaftRequest{
		{Put: &pb.PutRequest{Key: []byte("k"), Value: []byte("v"), Lease: 7, PrevKv: true}},
		{DeleteRange: &pb.DeleteRangeRequest{Key: []byte("a"), RangeEnd: []byte("b")}},
		{Txn: &pb.TxnRequest{
			Compare: []*pb.Compare{{Key: []byte("k"), Target: pb.Compare_MOD, TargetUnion: &pb.Compare_ModRevision{ModRevision: 3}}},
			Success: []*pb.RequestOp{{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte("k")}}}},
		}},
		{LeaseGrant: &pb.LeaseGrantRequest{ID: 42, TTL: 10}},
		{Compaction: &pb.CompactionRequest{Revision: 9}},
	}
	for _, req := range reqs {
		data, err := encodeRequest(req)
		if err != nil {
			t.Fatal(err)
		}
		cmd, err := decodeCommand(data)
		if err != nil {
			t.Fatal(err)
		}
		if cmd.kind != kindRequest || !proto.Equal(cmd.req, req) {
			t.Fatalf("round trip changed %v into %v", req, cmd.req)
		}
	}
	if cmd, err := decodeCommand(encodeNoop()); err != nil || cmd.kind != kindNoop {
		t.Fatalf("noop: %v %v", cmd, err)
	}
}

func TestDecodeCommandRejects(t *testing.T) {
	tests := map[string][]byte{
		"empty":          nil,
		"one byte":       {commandFormat},
		"future format":  {commandFormat + 1, kindRequest},
		"unknown kind":   {commandFormat, 99},
		"noop with body": {commandFormat, kindNoop, 0},
		"bad protobuf":   {commandFormat, kindRequest, 0xff, 0xff, 0xff},
	}
	for name, data := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := decodeCommand(data); !errors.Is(err, ErrBadCommand) {
				t.Fatalf("err = %v, want ErrBadCommand", err)
			}
		})
	}
}

// FuzzDecodeCommand feeds arbitrary log entries to the decoder and the
// apply path: neither may panic, and a decodable entry re-encodes to an
// equivalent one.
func FuzzDecodeCommand(f *testing.F) {
	seed, _ := encodeRequest(&pb.InternalRaftRequest{Put: &pb.PutRequest{Key: []byte("k"), Value: []byte("v")}})
	f.Add(seed)
	f.Add(encodeNoop())
	txn, _ := encodeRequest(&pb.InternalRaftRequest{Txn: &pb.TxnRequest{
		Compare: []*pb.Compare{{Key: []byte("k"), RangeEnd: []byte{0}, Target: pb.Compare_VALUE, TargetUnion: &pb.Compare_Value{Value: []byte("x")}}},
		Success: []*pb.RequestOp{{Request: &pb.RequestOp_RequestTxn{RequestTxn: &pb.TxnRequest{}}}},
		Failure: []*pb.RequestOp{{Request: &pb.RequestOp_RequestDeleteRange{RequestDeleteRange: &pb.DeleteRangeRequest{Key: []byte("a"), RangeEnd: []byte{0}}}}},
	}})
	f.Add(txn)
	f.Add([]byte{1, 1, 0x22, 0x02, 0x0a, 0x00})
	f.Fuzz(func(t *testing.T, data []byte) {
		cmd, err := decodeCommand(data)
		if err != nil {
			if !errors.Is(err, ErrBadCommand) {
				t.Fatalf("error not wrapped as ErrBadCommand: %v", err)
			}
			return
		}
		if cmd.kind == kindRequest {
			again, err := encodeRequest(cmd.req)
			if err != nil {
				t.Fatal(err)
			}
			back, err := decodeCommand(again)
			if err != nil || !proto.Equal(back.req, cmd.req) {
				t.Fatalf("re-encode changed the command: %v", err)
			}
		}
		// Whatever decodes must apply without panicking.
		f := newFSM(discardLogger(), 2, watchConfigForTest())
		f.applyData(data, 1)
	})
}
