package proxy_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/barge-dev/barge/node/proxy"
	"github.com/barge-dev/barge/node/svctest"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/knftables"
)

type waitArg struct {
	// Chain is the suffix of the service chain's name:
	// "<ns>/<name>/tcp/<port name>".
	Chain string `json:"chain"`
	IP    string `json:"ip"`
}

// waitHandler polls, inside the node, until the Service's chain sends
// traffic to an endpoint with the given address.
func waitHandler(ctx context.Context, _ *slog.Logger, raw json.RawMessage) (any, error) {
	var a waitArg
	if err := json.Unmarshal(raw, &a); err != nil {
		return nil, err
	}
	nft, err := knftables.New(knftables.IPv4Family, proxy.Table)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var chain, last string
	for {
		if chain == "" {
			chains, err := nft.List(ctx, "chain")
			if err != nil {
				return nil, err
			}
			for _, c := range chains {
				if strings.HasPrefix(c, "service-") && strings.HasSuffix(c, "-"+a.Chain) {
					chain = c
				}
			}
		}
		if chain != "" {
			// knftables' ListRules gives handles and comments, not the
			// rules' text; nft prints it.
			out, err := exec.CommandContext(ctx, "nft", "list", "chain", "ip", proxy.Table, chain).CombinedOutput()
			if err != nil && ctx.Err() != nil {
				return nil, fmt.Errorf("chain %q: no endpoint %s; last seen:\n%s", chain, a.IP, last)
			}
			last = string(out)
			if err != nil {
				return nil, fmt.Errorf("nft list chain %s: %w: %s", chain, err, out)
			}
			if mentionsEndpoint(string(out), a.IP) {
				return nil, nil
			}
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("chain %q: no endpoint %s: %w", a.Chain, a.IP, ctx.Err())
		case <-time.After(time.Millisecond):
		}
	}
}

// TestSyncLatency measures the time from an EndpointSlice update (the
// API call) to the new endpoint in the Service's chain on the node, with
// 100, 1,000 and 5,000 Services. It takes minutes, so it runs only with
// BARGE_PROXY_SYNC_BENCH=1; the figures are logged, never asserted.
func TestSyncLatency(t *testing.T) {
	if os.Getenv("BARGE_PROXY_SYNC_BENCH") != "1" {
		t.Skip("set BARGE_PROXY_SYNC_BENCH=1 to measure sync latency")
	}
	e := newEnv(t)
	port := v1.ServicePort{Name: "http", Port: 80, TargetPort: intstr.FromInt32(podPort), Protocol: v1.ProtocolTCP}
	made := 0
	for _, n := range []int{100, 1000, 5000} {
		// Create Services made..n-1, each with one endpoint.
		var wg sync.WaitGroup
		errc := make(chan error, n)
		work := make(chan int)
		for range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range work {
					name := fmt.Sprintf("s%d", i)
					s := &v1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"}, Spec: v1.ServiceSpec{Ports: []v1.ServicePort{port}}}
					if _, err := e.c.CoreV1().Services("default").Create(ctx(t), s, metav1.CreateOptions{}); err != nil {
						errc <- err
						continue
					}
					sl := svctest.EndpointSlice("default", name, name+"-1", port, svctest.Endpoint{IP: benchIP(i, 0), Node: "h1"})
					if err := svctest.Apply(ctx(t), e.c, sl); err != nil {
						errc <- err
					}
				}
			}()
		}
		for i := made; i < n; i++ {
			work <- i
		}
		close(work)
		wg.Wait()
		close(errc)
		for err := range errc {
			t.Fatal(err)
		}
		made = n
		// Every Service programmed: the last one created has its chain.
		e.node.Agent.MustCall("wait-endpoint", waitArg{Chain: fmt.Sprintf("default/s%d/tcp/http", n-1), IP: benchIP(n-1, 0).String()}, nil)
		svctest.Eventually(t, fmt.Sprintf("%d services in service-ips", n), func() error {
			out, err := svctest.NFT(e.node.Host.Netns, "list", "map", "ip", proxy.Table, "service-ips")
			if err != nil {
				return err
			}
			if c := strings.Count(out, "goto service-"); c < n {
				return fmt.Errorf("%d of %d", c, n)
			}
			return nil
		})

		const rounds = 40
		var lat []time.Duration
		for r := 1; r <= rounds; r++ {
			i := (r * 7919) % n
			name := fmt.Sprintf("s%d", i)
			ip := benchIP(i, r)
			sl := svctest.EndpointSlice("default", name, name+"-1", port, svctest.Endpoint{IP: ip, Node: "h1"})
			start := time.Now()
			if err := svctest.Apply(ctx(t), e.c, sl); err != nil {
				t.Fatal(err)
			}
			e.node.Agent.MustCall("wait-endpoint", waitArg{Chain: "default/" + name + "/tcp/http", IP: ip.String()}, nil)
			lat = append(lat, time.Since(start))
		}
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		p := func(q float64) time.Duration { return lat[int(q*float64(len(lat)-1)+0.5)] }
		t.Logf("services=%d endpointslice update → rules in place: p50=%v p90=%v p99=%v max=%v (n=%d)",
			n, p(0.5).Round(time.Millisecond), p(0.9).Round(time.Millisecond), p(0.99).Round(time.Millisecond), lat[len(lat)-1].Round(time.Millisecond), len(lat))
	}
}

// benchIP is a distinct made-up endpoint address for Service i, round r
// (never dialled).
func benchIP(i, r int) netip.Addr {
	i++
	return netip.AddrFrom4([4]byte{10, byte(200 + r), byte(i >> 8), byte(i)})
}
