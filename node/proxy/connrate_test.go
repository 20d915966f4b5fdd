package proxy_test

import (
	"bufio"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/barge-dev/barge/node/svctest"
	"github.com/barge-dev/barge/overlay/netnstest"
)

// dialWho is one connection to a who server: connect, read its line to
// the end, close. The server writes and closes first, so it keeps the
// TIME_WAIT and the client's ports are free again at once.
func dialWho(addr netip.AddrPort) func(int) (func() error, func(), error) {
	return func(int) (func() error, func(), error) {
		return func() error {
			c, err := net.DialTimeout("tcp4", addr.String(), netnstest.IOTimeout)
			if err != nil {
				return err
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(netnstest.IOTimeout))
			_, err = bufio.NewReader(c).ReadBytes('\n')
			return err
		}, nil, nil
	}
}

// TestConnRate measures new TCP connections per second from a pod
// through a ClusterIP beside the same to a pod IP directly, on one node
// running the proxy as the agent does: rounds take turns, each path has
// its own server pod (so neither inherits the other's TIME_WAIT
// tuples), and the rows are medians. It runs only with
// BARGE_PROXY_CONN_BENCH=1; the figures are logged, never asserted.
func TestConnRate(t *testing.T) {
	if os.Getenv("BARGE_PROXY_CONN_BENCH") != "1" {
		t.Skip("set BARGE_PROXY_CONN_BENCH=1 to measure connection rates")
	}
	e := newEnv(t)
	svc := e.service("rate", nil, e.ep(1))
	vip := clusterIP(svc)
	e.waitReach(e.client.Netns, vip)

	const (
		rounds  = 5
		workers = 4
		d       = 3 * time.Second
	)
	paths := []struct {
		name string
		addr netip.AddrPort
	}{{"pod IP", netip.AddrPortFrom(e.pods[0].IP, podPort)}, {"ClusterIP", vip}}
	runs := make([][]svctest.Rate, len(paths))
	for r := range rounds {
		for i, p := range paths {
			got, err := svctest.Load(e.client.Netns, workers, d, dialWho(p.addr))
			if err != nil {
				t.Fatalf("%s %v: %v", p.name, p.addr, err)
			}
			t.Logf("round %d %-9s %v: %.0f conn/s p50 %v p99 %v (%d failed)", r+1, p.name, p.addr, got.PerSec, got.P50, got.P99, got.Errors)
			runs[i] = append(runs[i], got)
		}
	}
	rows := make([]string, len(paths))
	for i, p := range paths {
		rows[i] = p.name
	}
	svctest.LogMedians(t, "path", "conn/s", "pod IP", rows, runs)
}
