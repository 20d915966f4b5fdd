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

func TestRequestsRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		reqs []*pb.InternalRaftRequest
	}{
		{"none", nil},
		{"one put", []*pb.InternalRaftRequest{{Put: &pb.PutRequest{Key: []byte("a"), Value: []byte("1")}}}},
		{"mixed", []*pb.InternalRaftRequest{
			{Put: &pb.PutRequest{Key: []byte("a"), Value: make([]byte, 300)}},
			{LeaseGrant: &pb.LeaseGrantRequest{ID: 7, TTL: 30}},
			{}, // empty messages still count as one item each
			{DeleteRange: &pb.DeleteRangeRequest{Key: []byte("a"), RangeEnd: []byte{0}}},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body, err := EncodeRequests(tc.reqs)
			if err != nil {
				t.Fatal(err)
			}
			got, err := DecodeRequests(body.GetValue())
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.reqs) {
				t.Fatalf("%d requests back, sent %d", len(got), len(tc.reqs))
			}
			for i := range got {
				if !proto.Equal(got[i], tc.reqs[i]) {
					t.Errorf("request %d: got %v, sent %v", i, got[i], tc.reqs[i])
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
	wrongField := protowire.AppendTag(nil, 2, protowire.BytesType)
	wrongField = protowire.AppendBytes(wrongField, nil)
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
				_, err = DecodeRequests(tc.body)
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
	body, _ := EncodeRequests([]*pb.InternalRaftRequest{{Put: &pb.PutRequest{Key: []byte("k"), Value: []byte("v")}}, {LeaseRevoke: &pb.LeaseRevokeRequest{ID: 3}}})
	f.Add(body.GetValue())
	put, _ := anypb.New(&pb.PutResponse{})
	res, _ := EncodeResults([]Result{{Resp: put}, {Err: rpctypes.ErrGRPCNotLeader}})
	f.Add(res.GetValue())
	f.Add([]byte{0x0a, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		reqs, err := DecodeRequests(b)
		if err != nil && !errors.Is(err, ErrBadBatch) {
			t.Fatalf("DecodeRequests: %v is not ErrBadBatch", err)
		}
		if err == nil {
			again, err := EncodeRequests(reqs)
			if err != nil {
				t.Fatalf("re-encode: %v", err)
			}
			back, err := DecodeRequests(again.GetValue())
			if err != nil || len(back) != len(reqs) {
				t.Fatalf("re-decode: %d items, %v; want %d", len(back), err, len(reqs))
			}
		}
		if _, err := DecodeResults(b); err != nil && !errors.Is(err, ErrBadBatch) {
			t.Fatalf("DecodeResults: %v is not ErrBadBatch", err)
		}
	})
}
