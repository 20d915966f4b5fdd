package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync/atomic"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// keepAliveLeases is the number of leases the keep-alive row renews, as in
// `benchmark lease-keepalive`: enough that a lessor's per-lease cost shows.
const keepAliveLeases = 10000

// keepAliveSetup grants the row's leases and returns its operations, one
// keep-alive stream per client goroutine, and the teardown that closes
// the streams and revokes the leases, so the rows after it renew nothing.
func keepAliveSetup(ctx context.Context, clis []*clientv3.Client, clients int) (func() opFunc, func(context.Context) error, error) {
	ids, err := grantLeases(ctx, clis, keepAliveLeases)
	if err != nil {
		return nil, nil, err
	}
	// The streams outlive each operation, whose context ends with it, so
	// they hang off a context of the row that the teardown cancels.
	sctx, closeStreams := context.WithCancel(ctx)
	var shares atomic.Int64
	newOp := func() opFunc {
		k := &keepAliver{ctx: sctx, ids: share(ids, int(shares.Add(1)-1)%clients, clients)}
		return k.op
	}
	teardown := func(ctx context.Context) error {
		closeStreams()
		return revokeLeases(ctx, clis, ids)
	}
	return newOp, teardown, nil
}

// share is the s-th of n contiguous, near-equal parts of all: each client
// goroutine renews its own leases, as `benchmark lease-keepalive` does.
func share[T any](all []T, s, n int) []T {
	return all[s*len(all)/n : (s+1)*len(all)/n]
}

// keepAliver is one client goroutine of the keep-alive row: a raw
// LeaseKeepAlive stream, as etcd's benchmark tool holds, rather than
// clientv3's KeepAlive, which renews on its own schedule and so could not
// time one renewal.
type keepAliver struct {
	ctx    context.Context // the row's: parent of each stream
	ids    []clientv3.LeaseID
	next   int
	stream pb.Lease_LeaseKeepAliveClient
	cancel context.CancelFunc // ends stream; nil when there is none
}

// op renews the next lease of the goroutine's share and waits for the
// answer: one operation is one request and its response. Send and Recv
// watch only the stream's context, so the operation's deadline cancels
// the stream, and the next operation opens a new one.
func (k *keepAliver) op(ctx context.Context, cli *clientv3.Client, _ *rand.Rand) (bool, error) {
	id := k.ids[k.next%len(k.ids)]
	k.next++
	if k.stream == nil {
		if err := k.open(ctx, cli); err != nil {
			return false, err
		}
	}
	stop := context.AfterFunc(ctx, k.cancel)
	ttl, err := k.roundTrip(id)
	if !stop() || err != nil {
		k.close()
	}
	if err != nil {
		return false, err
	}
	if ttl <= 0 {
		return false, fmt.Errorf("keep-alive of lease %x: TTL %d, the lease is gone", id, ttl)
	}
	return false, nil
}

// open starts the goroutine's stream on cli's connection, giving up when
// ctx, the operation's, ends first.
func (k *keepAliver) open(ctx context.Context, cli *clientv3.Client) error {
	sctx, cancel := context.WithCancel(k.ctx)
	stop := context.AfterFunc(ctx, cancel)
	s, err := pb.NewLeaseClient(cli.ActiveConnection()).LeaseKeepAlive(sctx)
	if !stop() && err == nil {
		err = ctx.Err()
	}
	if err != nil {
		cancel()
		return fmt.Errorf("open keep-alive stream: %w", err)
	}
	k.stream, k.cancel = s, cancel
	return nil
}

func (k *keepAliver) close() {
	k.cancel()
	k.stream, k.cancel = nil, nil
}

// roundTrip sends one keep-alive and returns the TTL of its response.
func (k *keepAliver) roundTrip(id clientv3.LeaseID) (int64, error) {
	if err := k.stream.Send(&pb.LeaseKeepAliveRequest{ID: int64(id)}); err != nil {
		return 0, fmt.Errorf("send keep-alive of lease %x: %w", id, err)
	}
	resp, err := k.stream.Recv()
	if err != nil {
		return 0, fmt.Errorf("receive keep-alive of lease %x: %w", id, err)
	}
	if resp.ID != int64(id) {
		return 0, fmt.Errorf("keep-alive of lease %x answered for lease %x", id, resp.ID)
	}
	return resp.TTL, nil
}

// grantLeases grants n leases of leaseTTL, concurrently.
func grantLeases(ctx context.Context, clis []*clientv3.Client, n int) ([]clientv3.LeaseID, error) {
	ids := make([]clientv3.LeaseID, n)
	err := parallel(ctx, n, setupWorkers, opTimeout, func(ctx context.Context, w, i int) error {
		resp, err := clis[w%len(clis)].Grant(ctx, leaseTTL)
		if err != nil {
			return fmt.Errorf("grant lease %d of %d: %w", i+1, n, err)
		}
		ids[i] = resp.ID
		return nil
	})
	return ids, err
}

// revokeLeases revokes ids, concurrently.
func revokeLeases(ctx context.Context, clis []*clientv3.Client, ids []clientv3.LeaseID) error {
	return parallel(ctx, len(ids), setupWorkers, opTimeout, func(ctx context.Context, w, i int) error {
		if _, err := clis[w%len(clis)].Revoke(ctx, ids[i]); err != nil {
			return fmt.Errorf("revoke lease %x: %w", ids[i], err)
		}
		return nil
	})
}
