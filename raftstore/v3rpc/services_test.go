package v3rpc

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestKVOverGRPC(t *testing.T) {
	_, _, cli := setup(t)
	ctx := context.Background()
	put, err := cli.Put(ctx, "a", "1")
	if err != nil {
		t.Fatal(err)
	}
	wantHeader(t, "put", put.Header, 2)
	get, err := cli.Get(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	if len(get.Kvs) != 1 || string(get.Kvs[0].Value) != "1" {
		t.Fatalf("get %v", get.Kvs)
	}
	// clientv3 recognises our errors as its own.
	_, err = cli.Txn(ctx).Then(clientv3.OpPut("a", "1"), clientv3.OpPut("a", "2")).Commit()
	if !errors.Is(err, rpctypes.ErrDuplicateKey) {
		t.Fatalf("duplicate txn: %v", err)
	}
	_, err = cli.Put(ctx, "a", string(make([]byte, DefaultMaxRequestBytes)))
	if !errors.Is(err, rpctypes.ErrRequestTooLarge) {
		t.Fatalf("large put: %v", err)
	}
}

func TestRangeStream(t *testing.T) {
	b, _, cli := setup(t)
	big := string(make([]byte, 300<<10))
	for _, k := range []string{"a", "b", "c", "d", "e"} {
		b.put(k, big)
	}
	ch, err := cli.GetStream(context.Background(), "a", clientv3.WithRange("z"))
	if err != nil {
		t.Fatal(err)
	}
	chunks := 0
	var keys []string
	var last *clientv3.RangeStreamResponse
	for r := range ch {
		if err := r.Err(); err != nil {
			t.Fatal(err)
		}
		chunks++
		for _, kv := range r.Kvs {
			keys = append(keys, string(kv.Key))
		}
		last = &r
	}
	if len(keys) != 5 || chunks < 2 {
		t.Fatalf("%d keys in %d chunks", len(keys), chunks)
	}
	if last.Header == nil || last.Header.ClusterId != testClusterID || last.Count != 5 {
		t.Fatalf("final chunk %v", last.RangeResponse.Header)
	}
}

func TestLease(t *testing.T) {
	b, _, cli := setup(t)
	ctx := context.Background()
	if _, err := cli.Grant(ctx, 30); err != nil { // ID 0: the fake keeps it as 0
		t.Fatal(err)
	}
	b.setLease(7, 10)

	tests := []struct {
		name    string
		id      clientv3.LeaseID
		wantTTL int64
		wantErr error
	}{
		{"alive", 7, 10, nil},
		{"unknown, ttl 0", 8, 0, rpctypes.ErrLeaseNotFound},
		{"unknown, not found error", 404, 0, rpctypes.ErrLeaseNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := cli.KeepAliveOnce(ctx, tc.id)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err %v, want %v", err, tc.wantErr)
			}
			if err == nil && (resp.TTL != tc.wantTTL || resp.ID != tc.id) {
				t.Fatalf("resp %+v", resp)
			}
			if err == nil {
				wantHeader(t, "keepalive", resp.ResponseHeader, 1)
			}
		})
	}

	ttl, err := cli.TimeToLive(ctx, 12345)
	if err != nil || ttl.TTL != -1 {
		t.Fatalf("unknown lease ttl: %v %v", ttl, err)
	}
	if _, err := cli.Revoke(ctx, 12345); !errors.Is(err, rpctypes.ErrLeaseNotFound) {
		t.Fatalf("revoke unknown: %v", err)
	}
}

func TestLeaseKeepAliveStream(t *testing.T) {
	b, ts, cli := setup(t)
	b.setLease(5, 60)
	ctx, cancel := context.WithCancel(context.Background())
	stream, err := pb.NewLeaseClient(cli.ActiveConnection()).LeaseKeepAlive(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []int64{5, 6, 5} {
		if err := stream.Send(&pb.LeaseKeepAliveRequest{ID: id}); err != nil {
			t.Fatal(err)
		}
		r, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if want := b.lease(id); r.ID != id || r.TTL != want {
			t.Fatalf("lease %d: got %v, want ttl %d", id, r, want)
		}
	}
	// A half-close ends the stream cleanly, as in etcd.
	if err := stream.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != io.EOF {
		t.Fatalf("after half-close: %v", err)
	}
	cancel()
	eventually(t, "keepalive handler to return", func() bool { return ts.activeStreams() == 0 })
}

func TestCluster(t *testing.T) {
	_, _, cli := setup(t)
	ctx := context.Background()
	list, err := cli.MemberList(ctx)
	if err != nil || len(list.Members) != 1 {
		t.Fatalf("member list %v %v", list, err)
	}
	wantHeader(t, "member list", list.Header, 1)
	add, err := cli.MemberAdd(ctx, []string{"http://p:2380"})
	if err != nil || add.Member.ID != 99 {
		t.Fatalf("member add %v %v", add, err)
	}
	wantHeader(t, "member add", add.Header, 1)
	if _, err := cli.MemberRemove(ctx, 99); err != nil {
		t.Fatal(err)
	}
}

func TestMaintenance(t *testing.T) {
	b, ts, cli := setup(t)
	ctx := context.Background()
	ep := ts.addr

	st, err := cli.Status(ctx, ep)
	if err != nil {
		t.Fatal(err)
	}
	wantHeader(t, "status", st.Header, 1)

	hkv, err := cli.HashKV(ctx, ep, 3)
	if err != nil || hkv.Hash != 0xfeed+3 {
		t.Fatalf("hashkv %v %v", hkv, err)
	}
	h, err := pb.NewMaintenanceClient(cli.ActiveConnection()).Hash(ctx, &pb.HashRequest{})
	if err != nil || h.Hash != 0xfeed {
		t.Fatalf("hash %v %v", h, err)
	}

	alarms, err := cli.AlarmList(ctx)
	if err != nil || len(alarms.Alarms) != 0 {
		t.Fatalf("alarms %v %v", alarms, err)
	}
	if _, err := cli.AlarmDisarm(ctx, &clientv3.AlarmMember{Alarm: pb.AlarmType_NOSPACE}); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Defragment(ctx, ep); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.MoveLeader(ctx, 2); err != nil {
		t.Fatal(err)
	}
	_, err = cli.Downgrade(ctx, clientv3.DowngradeValidate, "3.5.0")
	if status.Code(err) != codes.Unimplemented {
		t.Fatalf("downgrade: %v", err)
	}

	b.setErr(rpctypes.ErrGRPCNotLeader)
	if _, err := cli.MoveLeader(ctx, 2); !errors.Is(err, rpctypes.ErrNotLeader) {
		t.Fatalf("move leader error: %v", err)
	}
}

func TestSnapshot(t *testing.T) {
	tests := []struct {
		name string
		size int
		msgs int
	}{
		{"empty", 0, 1},
		{"small", 100, 1},
		{"exactly one chunk", snapshotChunkBytes, 1},
		{"several chunks", 2*snapshotChunkBytes + 5, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := newFakeBackend(t)
			b.snapshot = make([]byte, tc.size)
			for i := range b.snapshot {
				b.snapshot[i] = byte(i * 7)
			}
			cli := newClient(t, startServer(t, b, Config{Version: "3.6.0"}))
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()

			// The raw stream: RemainingBytes is 0 on the last message only.
			stream, err := pb.NewMaintenanceClient(cli.ActiveConnection()).Snapshot(ctx, &pb.SnapshotRequest{})
			if err != nil {
				t.Fatal(err)
			}
			var msgs []*pb.SnapshotResponse
			for {
				r, err := stream.Recv()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				msgs = append(msgs, r)
			}
			if len(msgs) != tc.msgs {
				t.Fatalf("%d messages, want %d", len(msgs), tc.msgs)
			}
			for i, m := range msgs {
				want := uint64(1)
				if i == len(msgs)-1 {
					want = 0
				}
				if m.RemainingBytes != want || m.Version != "3.6.0" || len(m.Blob) > snapshotChunkBytes {
					t.Errorf("message %d: remaining %d, version %q, %d bytes", i, m.RemainingBytes, m.Version, len(m.Blob))
				}
				if (m.Header != nil) != (i == 0) {
					t.Errorf("message %d header %v", i, m.Header)
				}
			}

			// clientv3 reassembles the same bytes.
			snap, err := cli.SnapshotWithVersion(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer snap.Snapshot.Close()
			got, err := io.ReadAll(snap.Snapshot)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, b.snapshot) || snap.Version != "3.6.0" {
				t.Fatalf("got %d bytes version %q", len(got), snap.Version)
			}
		})
	}
}

func TestSnapshotBackendError(t *testing.T) {
	b := newFakeBackend(t)
	b.setErr(rpctypes.ErrGRPCNoLeader)
	cli := newClient(t, startServer(t, b, Config{}))
	stream, err := pb.NewMaintenanceClient(cli.ActiveConnection()).Snapshot(context.Background(), &pb.SnapshotRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); status.Convert(err).Message() != "etcdserver: no leader" {
		t.Fatalf("got %v", err)
	}
}

func TestGRPCServerOptions(t *testing.T) {
	if n := len(GRPCServerOptions(Config{})); n != 5 {
		t.Fatalf("%d options", n)
	}
	cfg := Config{}.withDefaults()
	if cfg.MaxRequestBytes != 1572864 || cfg.MaxTxnOps != 128 || cfg.maxMessageBytes() != 1572864+512*1024 {
		t.Fatalf("defaults %+v", cfg)
	}
}
