package raftstore

import (
	"testing"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestForwardError(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   error
		want error
	}{
		{"dial refused", status.Error(codes.Unavailable, `connection error: desc = "transport: Error while dialing: dial tcp 127.0.0.1:1: connect: connection refused"`), rpctypes.ErrGRPCNotLeader},
		{"connection lost", status.Error(codes.Unavailable, "error reading from server: EOF"), rpctypes.ErrGRPCLeaderChanged},
		{"etcd timeout stays", rpctypes.ErrGRPCTimeout, rpctypes.ErrGRPCTimeout},
		{"not leader stays", rpctypes.ErrGRPCNotLeader, rpctypes.ErrGRPCNotLeader},
		{"other code stays", rpctypes.ErrGRPCKeyNotFound, rpctypes.ErrGRPCKeyNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := forwardError(tc.in); got.Error() != tc.want.Error() {
				t.Fatalf("forwardError(%v) = %v, want %v", tc.in, got, tc.want)
			}
		})
	}
}
