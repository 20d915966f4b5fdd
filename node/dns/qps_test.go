package dns_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	mdns "github.com/miekg/dns"

	"github.com/barge-dev/barge/control/apitest"
	"github.com/barge-dev/barge/node/svctest"
	"github.com/barge-dev/barge/overlay/netnstest"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// staticHandler starts, inside the node, a miekg/dns server that answers
// every question with one fixed A record and no lookup: the ceiling of
// the library and the path, beside which the cluster DNS is measured.
func staticHandler(ctx context.Context, _ *slog.Logger, raw json.RawMessage) (any, error) {
	var listen netip.AddrPort
	if err := json.Unmarshal(raw, &listen); err != nil {
		return nil, err
	}
	pc, err := net.ListenPacket("udp4", listen.String())
	if err != nil {
		return nil, err
	}
	a := &mdns.A{Hdr: mdns.RR_Header{Rrtype: mdns.TypeA, Class: mdns.ClassINET, Ttl: 5}, A: net.IPv4(10, 96, 0, 1)}
	srv := &mdns.Server{PacketConn: pc, Handler: mdns.HandlerFunc(func(w mdns.ResponseWriter, q *mdns.Msg) {
		m := new(mdns.Msg).SetReply(q)
		m.Authoritative = true
		rr := *a
		rr.Hdr.Name = q.Question[0].Name
		m.Answer = []mdns.RR{&rr}
		_ = w.WriteMsg(m)
	})}
	go func() { _ = srv.ActivateAndServe() }()
	go func() {
		<-ctx.Done()
		_ = srv.Shutdown()
	}()
	return nil, nil
}

// askA is one worker's A queries to server on its own UDP socket, names
// taken in turn from the worker's offset.
func askA(server netip.AddrPort, names []string, workers int) func(int) (func() error, func(), error) {
	return func(w int) (func() error, func(), error) {
		conn, err := mdns.DialTimeout("udp", server.String(), netnstest.IOTimeout)
		if err != nil {
			return nil, nil, err
		}
		c := &mdns.Client{Net: "udp", Timeout: time.Second}
		i := w
		return func() error {
			m := new(mdns.Msg).SetQuestion(names[i%len(names)], mdns.TypeA)
			i += workers
			r, _, err := c.ExchangeWithConn(m, conn)
			switch {
			case err != nil:
				return err
			case r.Rcode != mdns.RcodeSuccess || len(r.Answer) == 0:
				return fmt.Errorf("%s: %s, %d answers", m.Question[0].Name, mdns.RcodeToString[r.Rcode], len(r.Answer))
			}
			return nil
		}, func() { conn.Close() }, nil
	}
}

// TestDNSRate measures queries per second and their latency from a pod:
// A lookups of 1,000 Services' names through the kube-dns address
// (10.96.0.10, translated to the node's server), the same server asked
// at the node's own address, and a miekg/dns server that answers without
// a lookup, rounds taking turns, rows the medians. It runs only with
// BARGE_DNS_BENCH=1; the figures are logged, never asserted.
func TestDNSRate(t *testing.T) {
	if os.Getenv("BARGE_DNS_BENCH") != "1" {
		t.Skip("set BARGE_DNS_BENCH=1 to measure DNS rates")
	}
	netnstest.RequireRoot(t)
	cl := apitest.New(t, 1, apitest.Options{Plane: apitest.APIOnly()})
	c := cl.Client(0)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	nt := netnstest.New(t, 1)
	node := svctest.NewNode(t, nt, nt.Host("h1"), netip.MustParsePrefix("10.244.1.0/24"), cl.Config(0))
	pod := node.AddPod("client")

	const services = 1000
	port := v1.ServicePort{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080), Protocol: v1.ProtocolTCP}
	err := svctest.ForEach(0, services, 16, func(i int) error {
		s := &v1.Service{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("s%d", i), Namespace: "default"}, Spec: v1.ServiceSpec{Ports: []v1.ServicePort{port}}}
		_, err := c.CoreV1().Services("default").Create(ctx, s, metav1.CreateOptions{})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	names := make([]string, services)
	for i := range names {
		// Spread over the table, not in creation order.
		names[i] = fmt.Sprintf("s%d.default.svc.cluster.local.", (i*7919)%services)
	}

	node.Agent.MustCall("dns", startArg{API: node.API, Listen: netip.AddrPortFrom(node.Gateway, 53)}, nil)
	static := netip.AddrPortFrom(node.Gateway, 5353)
	node.Agent.MustCall("static-dns", static, nil)
	last := fmt.Sprintf("s%d.default.svc.cluster.local", services-1)
	svctest.Eventually(t, "every Service in the cluster DNS", func() error {
		if r := query(t, pod.Netns, "udp", last, mdns.TypeA); len(r.Answer) != 1 {
			return fmt.Errorf("%s: %v", last, r)
		}
		return nil
	})

	const (
		rounds  = 5
		workers = 4
		d       = 3 * time.Second
	)
	paths := []struct {
		name string
		addr netip.AddrPort
	}{
		{"static miekg/dns server", static},
		{"cluster DNS at the node address", netip.AddrPortFrom(node.Gateway, 53)},
		{"cluster DNS at 10.96.0.10", netip.AddrPortFrom(clusterDNS, 53)},
	}
	runs := make([][]svctest.Rate, len(paths))
	for r := range rounds {
		for i, p := range paths {
			got, err := svctest.Load(pod.Netns, workers, d, askA(p.addr, names, workers))
			if err != nil {
				t.Fatalf("%s %v: %v", p.name, p.addr, err)
			}
			t.Logf("round %d %s: %.0f qps p50 %v p99 %v (%d failed)", r+1, p.name, got.PerSec, got.P50, got.P99, got.Errors)
			runs[i] = append(runs[i], got)
		}
	}
	rows := make([]string, len(paths))
	for i, p := range paths {
		rows[i] = p.name
	}
	svctest.LogMedians(t, "server", "queries/s", "static", rows, runs)
}
