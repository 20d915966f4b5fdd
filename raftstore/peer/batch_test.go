package peer

import (
	"errors"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

func TestProposalsRoundTrip(t *testing.T) {
	put := &pb.InternalRaftRequest{Put: &pb.PutRequest{Key: []byte("a"), Value: []byte("1")}}
	tests := []struct {
		name string
		ps   []Proposal
	}{
		{"none", nil},
		{"one put", []Proposal{{Req: put}}},
		{"mixed", []Proposal{
			{Req: &pb.InternalRaftRequest{Put: &pb.PutRequest{Key: []byte("a"), Value: make([]byte, 300)}}},
			{Req: &pb.InternalRaftRequest{LeaseGrant: &pb.LeaseGrantRequest{ID: 7, TTL: 30}}},
			{Req: &pb.InternalRaftRequest{}}, // empty messages still count as one item each
			{Req: &pb.InternalRaftRequest{DeleteRange: &pb.DeleteRangeRequest{Key: []byte("a"), RangeEnd: []byte{0}}}},
		}},
		{"fenced", []Proposal{{Req: put, Fence: 7}, {Req: put}, {Req: put, Fence: 1 << 40}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body, err := EncodeProposals(tc.ps)
			if err != nil {
				t.Fatal(err)
			}
			got, err := DecodeProposals(body.GetValue())
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.ps) {
				t.Fatalf("%d proposals back, sent %d", len(got), len(tc.ps))
			}
			for i := range got {
				if !proto.Equal(got[i].Req, tc.ps[i].Req) || got[i].Fence != tc.ps[i].Fence {
					t.Errorf("proposal %d: got %v fenced to %d, sent %v fenced to %d", i, got[i].Req, got[i].Fence, tc.ps[i].Req, tc.ps[i].Fence)
				}
			}
		})
	}
}

func TestResultsRoundTrip(t *testing.T) {
	put, err := anypb.New(&pb.PutResponse{Header: &pb.ResponseHeader{Revision: 42}})
	if err != nil {
		t.Fatal(err)
	}
	in := []Result{
		{Resp: put},
		{Err: rpctypes.ErrGRPCLeaseNotFound},
		{Err: rpctypes.ErrGRPCNotLeader},
	}
	body, err := EncodeResults(in)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeResults(body.GetValue())
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(in) {
		t.Fatalf("%d results back, sent %d", len(got), len(in))
	}
	if !proto.Equal(got[0].Resp, put) || got[0].Err != nil {
		t.Errorf("result 0: got %v/%v, want the put response", got[0].Resp, got[0].Err)
	}
	for i := 1; i < len(in); i++ {
		// Clients match etcd errors by code and message, which must survive.
		if got[i].Resp != nil || rpctypes.ErrorDesc(got[i].Err) != rpctypes.ErrorDesc(in[i].Err) {
			t.Errorf("result %d: got %v, want %v", i, got[i].Err, in[i].Err)
		}
		if !errors.Is(rpctypes.Error(got[i].Err), rpctypes.Error(in[i].Err)) {
			t.Errorf("result %d: %v does not map back to %v", i, rpctypes.Error(got[i].Err), rpctypes.Error(in[i].Err))
		}
	}
}

func TestEncodeResultsRefusesEmpty(t *testing.T) {
	if _, err := EncodeResults([]Result{{}}); err == nil {
		t.Fatal("a result with neither response nor error was encoded")
	}
}

func TestDecodeMalformed(t *testing.T) {
	wrongField := protowire.AppendTag(nil, 3, protowire.BytesType)
	wrongField = protowire.AppendBytes(wrongField, nil)
	item := protowire.AppendTag(nil, batchItemField, protowire.BytesType)
	item = protowire.AppendBytes(item, nil)
	twoFences := protowire.AppendTag(append([]byte(nil), item...), batchFenceField, protowire.BytesType)
	twoFences = protowire.AppendBytes(twoFences, []byte{1, 2})
	fenceNotLast := protowire.AppendTag(nil, batchFenceField, protowire.BytesType)
	fenceNotLast = append(protowire.AppendBytes(fenceNotLast, []byte{1}), item...)
	fenceVarint := protowire.AppendTag(append([]byte(nil), item...), batchFenceField, protowire.VarintType)
	fenceVarint = protowire.AppendVarint(fenceVarint, 1)
	wrongType := protowire.AppendTag(nil, batchItemField, protowire.VarintType)
	wrongType = protowire.AppendVarint(wrongType, 1)
	truncated := protowire.AppendTag(nil, batchItemField, protowire.BytesType)
	truncated = protowire.AppendVarint(truncated, 10) // says 10 bytes follow, none do
	notAMessage := protowire.AppendTag(nil, batchItemField, protowire.BytesType)
	notAMessage = protowire.AppendBytes(notAMessage, []byte{0xff, 0xff, 0xff})
	okNoDetail := protowire.AppendTag(nil, batchItemField, protowire.BytesType)
	okNoDetail = protowire.AppendBytes(okNoDetail, nil) // a Status with code OK, no response
	tests := []struct {
		name    string
		body    []byte
		results bool
	}{
		{"wrong field", wrongField, false},
		{"more fences than proposals", twoFences, false},
		{"items after the fences", fenceNotLast, false},
		{"fences not packed", fenceVarint, false},
		{"wrong wire type", wrongType, false},
		{"truncated item", truncated, false},
		{"item not a request", notAMessage, false},
		{"dangling tag byte", []byte{0x0a}, false},
		{"OK result without its response", okNoDetail, true},
		{"truncated result", truncated, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			if tc.results {
				_, err = DecodeResults(tc.body)
			} else {
				_, err = DecodeProposals(tc.body)
			}
			if !errors.Is(err, ErrBadBatch) {
				t.Fatalf("got %v, want ErrBadBatch", err)
			}
		})
	}
}

// FuzzDecodeBatch feeds arbitrary bytes to both batch decoders: they must
// return items or ErrBadBatch, never panic, and what decodes must encode
// to something that decodes to the same items.
func FuzzDecodeBatch(f *testing.F) {
	body, _ := EncodeProposals([]Proposal{{Req: &pb.InternalRaftRequest{Put: &pb.PutRequest{Key: []byte("k"), Value: []byte("v")}}},
		{Req: &pb.InternalRaftRequest{LeaseRevoke: &pb.LeaseRevokeRequest{ID: 3}}}})
	f.Add(body.GetValue())
	fenced, _ := EncodeProposals([]Proposal{{Req: &pb.InternalRaftRequest{}, Fence: 9}})
	f.Add(fenced.GetValue())
	put, _ := anypb.New(&pb.PutResponse{})
	res, _ := EncodeResults([]Result{{Resp: put}, {Err: rpctypes.ErrGRPCNotLeader}})
	f.Add(res.GetValue())
	f.Add([]byte{0x0a, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		reqs, err := DecodeProposals(b)
		if err != nil && !errors.Is(err, ErrBadBatch) {
			t.Fatalf("DecodeProposals: %v is not ErrBadBatch", err)
		}
		if err == nil {
			again, err := EncodeProposals(reqs)
			if err != nil {
				t.Fatalf("re-encode: %v", err)
			}
			back, err := DecodeProposals(again.GetValue())
			if err != nil || len(back) != len(reqs) {
				t.Fatalf("re-decode: %d items, %v; want %d", len(back), err, len(reqs))
			}
		}
		if _, err := DecodeResults(b); err != nil && !errors.Is(err, ErrBadBatch) {
			t.Fatalf("DecodeResults: %v is not ErrBadBatch", err)
		}
	})
}
