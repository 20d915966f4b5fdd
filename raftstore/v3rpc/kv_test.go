package v3rpc

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

func opPut(key string) *pb.RequestOp {
	return &pb.RequestOp{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte(key)}}}
}

func opDel(key, end string) *pb.RequestOp {
	return &pb.RequestOp{Request: &pb.RequestOp_RequestDeleteRange{RequestDeleteRange: &pb.DeleteRangeRequest{Key: []byte(key), RangeEnd: []byte(end)}}}
}

func opGet(key string) *pb.RequestOp {
	return &pb.RequestOp{Request: &pb.RequestOp_RequestRange{RequestRange: &pb.RangeRequest{Key: []byte(key)}}}
}

func opTxn(then, els []*pb.RequestOp) *pb.RequestOp {
	return &pb.RequestOp{Request: &pb.RequestOp_RequestTxn{RequestTxn: &pb.TxnRequest{Success: then, Failure: els}}}
}

func ops(n int, mk func(i int) *pb.RequestOp) []*pb.RequestOp {
	out := make([]*pb.RequestOp, n)
	for i := range out {
		out[i] = mk(i)
	}
	return out
}

func newKV(t *testing.T) (*kvServer, *fakeBackend) {
	b := newFakeBackend(t)
	return &kvServer{b: b, cfg: Config{MaxRequestBytes: 1024, MaxTxnOps: 8}.withDefaults()}, b
}

func TestKVValidation(t *testing.T) {
	ctx := context.Background()
	big := make([]byte, 2048)
	tests := []struct {
		name string
		call func(s *kvServer) error
		want error
	}{
		{"range empty key", func(s *kvServer) error { _, err := s.Range(ctx, &pb.RangeRequest{}); return err }, rpctypes.ErrGRPCEmptyKey},
		{"range bad sort order", func(s *kvServer) error {
			_, err := s.Range(ctx, &pb.RangeRequest{Key: []byte("a"), SortOrder: 9})
			return err
		}, rpctypes.ErrGRPCInvalidSortOption},
		{"range bad sort target", func(s *kvServer) error {
			_, err := s.Range(ctx, &pb.RangeRequest{Key: []byte("a"), SortTarget: 9})
			return err
		}, rpctypes.ErrGRPCInvalidSortOption},
		{"range ok", func(s *kvServer) error {
			_, err := s.Range(ctx, &pb.RangeRequest{Key: []byte("a"), SortOrder: pb.RangeRequest_DESCEND, SortTarget: pb.RangeRequest_VALUE})
			return err
		}, nil},
		{"put empty key", func(s *kvServer) error { _, err := s.Put(ctx, &pb.PutRequest{Value: []byte("v")}); return err }, rpctypes.ErrGRPCEmptyKey},
		{"put ignore value with value", func(s *kvServer) error {
			_, err := s.Put(ctx, &pb.PutRequest{Key: []byte("a"), Value: []byte("v"), IgnoreValue: true})
			return err
		}, rpctypes.ErrGRPCValueProvided},
		{"put ignore lease with lease", func(s *kvServer) error {
			_, err := s.Put(ctx, &pb.PutRequest{Key: []byte("a"), Lease: 5, IgnoreLease: true})
			return err
		}, rpctypes.ErrGRPCLeaseProvided},
		{"put too large", func(s *kvServer) error {
			_, err := s.Put(ctx, &pb.PutRequest{Key: []byte("a"), Value: big})
			return err
		}, rpctypes.ErrGRPCRequestTooLarge},
		{"put ok", func(s *kvServer) error {
			_, err := s.Put(ctx, &pb.PutRequest{Key: []byte("a"), Value: []byte("v")})
			return err
		}, nil},
		{"delete empty key", func(s *kvServer) error { _, err := s.DeleteRange(ctx, &pb.DeleteRangeRequest{}); return err }, rpctypes.ErrGRPCEmptyKey},
		{"delete too large", func(s *kvServer) error {
			_, err := s.DeleteRange(ctx, &pb.DeleteRangeRequest{Key: big})
			return err
		}, rpctypes.ErrGRPCRequestTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := newKV(t)
			if err := tc.call(s); !errors.Is(err, tc.want) && !(err == nil && tc.want == nil) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func TestTxnValidation(t *testing.T) {
	cmp := func(key string) *pb.Compare { return &pb.Compare{Key: []byte(key)} }
	tests := []struct {
		name string
		req  *pb.TxnRequest
		want error
	}{
		{"empty txn", &pb.TxnRequest{}, nil},
		{"max ops ok", &pb.TxnRequest{Success: ops(8, func(i int) *pb.RequestOp { return opPut(fmt.Sprint(i)) })}, nil},
		{"too many compares", &pb.TxnRequest{Compare: make([]*pb.Compare, 9)}, rpctypes.ErrGRPCTooManyOps},
		{"too many success", &pb.TxnRequest{Success: ops(9, func(i int) *pb.RequestOp { return opGet("a") })}, rpctypes.ErrGRPCTooManyOps},
		{"too many failure", &pb.TxnRequest{Failure: ops(9, func(i int) *pb.RequestOp { return opGet("a") })}, rpctypes.ErrGRPCTooManyOps},
		{"nested txn over remaining budget", &pb.TxnRequest{
			Success: ops(5, func(i int) *pb.RequestOp {
				if i == 0 {
					return opTxn(ops(4, func(j int) *pb.RequestOp { return opGet("x") }), nil)
				}
				return opGet("a")
			}),
		}, rpctypes.ErrGRPCTooManyOps},
		{"compare empty key", &pb.TxnRequest{Compare: []*pb.Compare{cmp("a"), cmp("")}}, rpctypes.ErrGRPCEmptyKey},
		{"op empty key", &pb.TxnRequest{Failure: []*pb.RequestOp{opGet("")}}, rpctypes.ErrGRPCEmptyKey},
		{"op invalid put", &pb.TxnRequest{Success: []*pb.RequestOp{{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte("a"), Lease: 1, IgnoreLease: true}}}}}, rpctypes.ErrGRPCLeaseProvided},
		{"empty op", &pb.TxnRequest{Success: []*pb.RequestOp{{}}}, rpctypes.ErrGRPCKeyNotFound},
		{"nested empty key", &pb.TxnRequest{Success: []*pb.RequestOp{opTxn(nil, []*pb.RequestOp{opDel("", "")})}}, rpctypes.ErrGRPCEmptyKey},
		{"duplicate put", &pb.TxnRequest{Success: []*pb.RequestOp{opPut("a"), opPut("b"), opPut("a")}}, rpctypes.ErrGRPCDuplicateKey},
		{"same key in success and failure", &pb.TxnRequest{Success: []*pb.RequestOp{opPut("a")}, Failure: []*pb.RequestOp{opPut("a")}}, nil},
		{"put and delete same key", &pb.TxnRequest{Success: []*pb.RequestOp{opDel("a", ""), opPut("a")}}, rpctypes.ErrGRPCDuplicateKey},
		{"put inside delete range", &pb.TxnRequest{Success: []*pb.RequestOp{opPut("b"), opDel("a", "c")}}, rpctypes.ErrGRPCDuplicateKey},
		{"put at delete range end", &pb.TxnRequest{Success: []*pb.RequestOp{opPut("c"), opDel("a", "c")}}, nil},
		{"put before delete range", &pb.TxnRequest{Success: []*pb.RequestOp{opPut("a"), opDel("b", "c")}}, nil},
		// etcd takes range_end "\x00" literally here; see checkIntervals.
		{"put after from-key delete", &pb.TxnRequest{Success: []*pb.RequestOp{opPut("b"), opDel("a", "\x00")}}, nil},
		{"overlapping deletes", &pb.TxnRequest{Success: []*pb.RequestOp{opDel("a", "c"), opDel("b", "d")}}, nil},
		{"reads do not conflict", &pb.TxnRequest{Success: []*pb.RequestOp{opGet("a"), opPut("a"), opGet("a")}}, nil},
		{"nested put duplicates outer put", &pb.TxnRequest{Success: []*pb.RequestOp{opPut("a"), opTxn([]*pb.RequestOp{opPut("a")}, nil)}}, rpctypes.ErrGRPCDuplicateKey},
		{"nested put inside outer delete", &pb.TxnRequest{Success: []*pb.RequestOp{opDel("a", "z"), opTxn(nil, []*pb.RequestOp{opPut("m")})}}, rpctypes.ErrGRPCDuplicateKey},
		{"outer put inside nested delete", &pb.TxnRequest{Success: []*pb.RequestOp{opTxn([]*pb.RequestOp{opDel("a", "z")}, nil), opPut("m")}}, rpctypes.ErrGRPCDuplicateKey},
		{"nested then and else share key", &pb.TxnRequest{Success: []*pb.RequestOp{opTxn([]*pb.RequestOp{opPut("a")}, []*pb.RequestOp{opPut("a")})}}, nil},
		{"two nested txns put same key", &pb.TxnRequest{Success: []*pb.RequestOp{
			opTxn([]*pb.RequestOp{opPut("a")}, nil),
			opTxn(nil, []*pb.RequestOp{opPut("a")}),
		}}, rpctypes.ErrGRPCDuplicateKey},
		{"duplicate inside nested txn", &pb.TxnRequest{Failure: []*pb.RequestOp{opTxn([]*pb.RequestOp{opPut("a"), opPut("a")}, nil)}}, rpctypes.ErrGRPCDuplicateKey},
		{"doubly nested conflict", &pb.TxnRequest{Success: []*pb.RequestOp{
			opDel("k", ""),
			opTxn([]*pb.RequestOp{opTxn([]*pb.RequestOp{opPut("k")}, nil)}, nil),
		}}, rpctypes.ErrGRPCDuplicateKey},
		{"too large", &pb.TxnRequest{Success: []*pb.RequestOp{{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte("a"), Value: make([]byte, 2000)}}}}}, rpctypes.ErrGRPCRequestTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := newKV(t)
			_, err := s.Txn(context.Background(), tc.req)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func TestKVHeaders(t *testing.T) {
	ctx := context.Background()
	s, b := newKV(t)
	b.put("x", "1")
	b.put("x", "2") // store at revision 3

	rr, err := s.Range(ctx, &pb.RangeRequest{Key: []byte("x")})
	if err != nil {
		t.Fatal(err)
	}
	wantHeader(t, "range", rr.Header, 3)

	pr, err := s.Put(ctx, &pb.PutRequest{Key: []byte("y"), Value: []byte("v")})
	if err != nil {
		t.Fatal(err)
	}
	wantHeader(t, "put", pr.Header, 4)

	// A write's own revision survives even when the store has moved on.
	b.txnResp = &pb.TxnResponse{
		Header: &pb.ResponseHeader{Revision: 2},
		Responses: []*pb.ResponseOp{
			{Response: &pb.ResponseOp_ResponseRange{ResponseRange: &pb.RangeResponse{}}},
			{Response: &pb.ResponseOp_ResponsePut{ResponsePut: &pb.PutResponse{Header: &pb.ResponseHeader{Revision: 2}}}},
			{Response: &pb.ResponseOp_ResponseTxn{ResponseTxn: &pb.TxnResponse{
				Responses: []*pb.ResponseOp{
					{Response: &pb.ResponseOp_ResponseDeleteRange{ResponseDeleteRange: &pb.DeleteRangeResponse{}}},
				},
			}}},
		},
	}
	tr, err := s.Txn(ctx, &pb.TxnRequest{})
	if err != nil {
		t.Fatal(err)
	}
	wantHeader(t, "txn", tr.Header, 2)
	wantHeader(t, "txn range", tr.Responses[0].GetResponseRange().Header, 2)
	wantHeader(t, "txn put", tr.Responses[1].GetResponsePut().Header, 2)
	nested := tr.Responses[2].GetResponseTxn()
	wantHeader(t, "nested txn", nested.Header, 2)
	wantHeader(t, "nested delete", nested.Responses[0].GetResponseDeleteRange().Header, 2)
}

func wantHeader(t *testing.T, what string, h *pb.ResponseHeader, rev int64) {
	t.Helper()
	want := &pb.ResponseHeader{ClusterId: testClusterID, MemberId: testMemberID, RaftTerm: testTerm, Revision: rev}
	if !proto.Equal(h, want) {
		t.Errorf("%s header = %v, want %v", what, h, want)
	}
}

func TestBackendErrors(t *testing.T) {
	plain := errors.New("disk on fire")
	tests := []struct {
		name     string
		err      error
		wantCode codes.Code
		wantMsg  string
	}{
		{"etcd error", rpctypes.ErrGRPCNoLeader, codes.Unavailable, "etcdserver: no leader"},
		{"wrapped etcd error", fmt.Errorf("proposing: %w", rpctypes.ErrGRPCCompacted), codes.OutOfRange, "etcdserver: mvcc: required revision has been compacted"},
		{"canceled", fmt.Errorf("wait: %w", context.Canceled), codes.Canceled, ""},
		{"deadline", context.DeadlineExceeded, codes.DeadlineExceeded, ""},
		{"other", plain, codes.Unknown, "disk on fire"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, b := newKV(t)
			b.setErr(tc.err)
			_, err := s.Range(context.Background(), &pb.RangeRequest{Key: []byte("a")})
			st, _ := status.FromError(err)
			if st.Code() != tc.wantCode {
				t.Fatalf("code %v, want %v (err %v)", st.Code(), tc.wantCode, err)
			}
			if tc.wantMsg != "" && !strings.HasSuffix(st.Message(), tc.wantMsg) {
				t.Fatalf("message %q, want %q", st.Message(), tc.wantMsg)
			}
			if tc.name == "wrapped etcd error" && st.Message() != tc.wantMsg {
				// clientv3 maps errors by exact message.
				t.Fatalf("wrapped status not unwrapped: %q", st.Message())
			}
		})
	}
}
