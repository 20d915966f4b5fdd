package proxy_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/barge-dev/barge/node/proxy"
	"github.com/barge-dev/barge/node/svctest"
	"github.com/barge-dev/barge/overlay/netnstest"
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
	for stage, n := range []int{100, 1000, 5000} {
		// Create Services made..n-1, each with one endpoint.
		err := svctest.ForEach(made, n, 16, func(i int) error {
			name := fmt.Sprintf("s%d", i)
			s := &v1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"}, Spec: v1.ServiceSpec{Ports: []v1.ServicePort{port}}}
			if _, err := e.c.CoreV1().Services("default").Create(ctx(t), s, metav1.CreateOptions{}); err != nil {
				return err
			}
			sl := svctest.EndpointSlice("default", name, name+"-1", port, svctest.Endpoint{IP: benchIP(i, 0), Node: "h1"})
			return svctest.Apply(ctx(t), e.c, sl)
		})
		if err != nil {
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

		e.node.Agent.MustCall("restart-monitor", nil, nil)
		const rounds = 40
		var lat []time.Duration
		for k := 1; k <= rounds; k++ {
			// r numbers rounds across the sizes, so that no round writes
			// the address an earlier one did: such an update changes
			// nothing, and its "sync" takes no time at all.
			r := stage*rounds + k
			i := (k * 7919) % n
			name := fmt.Sprintf("s%d", i)
			ip := benchIP(i, r)
			sl := svctest.EndpointSlice("default", name, name+"-1", port, svctest.Endpoint{IP: ip, Node: "h1"})
			e.node.Agent.MustCall("watch-endpoint", waitArg{Chain: "default/" + name + "/tcp/http", IP: ip.String()}, nil)
			start := time.Now()
			if err := svctest.Apply(ctx(t), e.c, sl); err != nil {
				t.Fatal(err)
			}
			e.node.Agent.MustCall("await-endpoint", nil, nil)
			lat = append(lat, time.Since(start))
		}
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		p := func(q float64) time.Duration { return lat[int(q*float64(len(lat)-1)+0.5)] }
		t.Logf("services=%d endpointslice update → rules in place: p50=%v p90=%v p99=%v max=%v (n=%d)",
			n, p(0.5).Round(time.Millisecond), p(0.9).Round(time.Millisecond), p(0.99).Round(time.Millisecond), lat[len(lat)-1].Round(time.Millisecond), len(lat))
	}
}

// benchIP is a distinct made-up endpoint address for Service i, round r
// (0 to 120; never dialled): 10.100.0.0–10.220.255.255, clear of the
// Service and pod ranges.
func benchIP(i, r int) netip.Addr {
	i++
	return netip.AddrFrom4([4]byte{10, byte(100 + r), byte(i >> 8), byte(i)})
}

// ruleMonitor follows `nft monitor` inside the node, so the sync bench
// sees a rule the moment its transaction commits instead of polling the
// ruleset: at 5,000 Services one `nft list chain` costs the whole
// table's cache and polled every millisecond it took a core from the
// proxier it was timing.
type ruleMonitor struct {
	startMu sync.Mutex    // one start at a time
	cmd     *exec.Cmd     // the running monitor
	done    chan struct{} // closed when it exits

	mu     sync.Mutex
	target waitArg
	found  chan struct{}
	seen   []string // the target chain's lines, for the error
}

// probeTable is what the monitor's readiness probe adds and deletes.
const probeTable = "barge-monitor-probe"

// ensure starts a fresh `nft monitor` and returns once it reports
// events: a probe table is added and deleted until the monitor prints
// it. The bench starts one per table size, after the Services are made,
// because a monitor that lived through the creation of thousands of
// Services is minutes behind (nft decodes and prints every rule) or has
// lost events to a full netlink socket.
func (m *ruleMonitor) ensure(ctx context.Context) error {
	m.startMu.Lock()
	defer m.startMu.Unlock()
	if m.cmd != nil {
		_ = m.cmd.Process.Kill()
		<-m.done
	}
	cmd := exec.Command("nft", "monitor")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("nft monitor: %w", err)
	}
	done, probed := make(chan struct{}), make(chan struct{})
	m.cmd, m.done = cmd, done
	go func() {
		m.read(bufio.NewReaderSize(out, 1<<20), probed)
		_ = cmd.Wait()
		close(done)
	}()
	for {
		if out, err := exec.CommandContext(ctx, "nft", "add table ip "+probeTable+"; delete table ip "+probeTable).CombinedOutput(); err != nil {
			return fmt.Errorf("nft probe: %w: %s", err, out)
		}
		select {
		case <-probed:
			return nil
		case <-done:
			return errors.New("nft monitor exited before its probe")
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (m *ruleMonitor) read(r *bufio.Reader, probed chan struct{}) {
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		if probed != nil && strings.Contains(line, "add table ip "+probeTable) {
			close(probed)
			probed = nil
		}
		m.mu.Lock()
		t, found := m.target, m.found
		if found != nil && strings.Contains(line, t.Chain) && len(m.seen) < 20 {
			m.seen = append(m.seen, line[:min(len(line), 300)])
		}
		if found != nil && strings.HasPrefix(line, "add rule ip "+proxy.Table+" service-") &&
			strings.Contains(line, "-"+t.Chain+" ") && mentionsEndpoint(line, t.IP) {
			close(found)
			m.found = nil
		}
		m.mu.Unlock()
	}
}

// watch sets what await waits for; events from now on count.
func (m *ruleMonitor) watch(ctx context.Context, a waitArg) (chan struct{}, error) {
	m.startMu.Lock()
	running := m.cmd != nil
	m.startMu.Unlock()
	if !running {
		if err := m.ensure(ctx); err != nil {
			return nil, err
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.target = a
	m.found = make(chan struct{})
	m.seen = nil
	return m.found, nil
}

// monitorHandlers are "restart-monitor" (a fresh nft monitor),
// "watch-endpoint" (start watching for the Service chain's rule that
// sends to IP) and "await-endpoint" (wait for it).
func monitorHandlers() map[string]netnstest.Handler {
	m := &ruleMonitor{}
	var found chan struct{}
	var mu sync.Mutex
	return map[string]netnstest.Handler{
		"restart-monitor": func(ctx context.Context, _ *slog.Logger, _ json.RawMessage) (any, error) {
			return nil, m.ensure(ctx)
		},
		"watch-endpoint": func(ctx context.Context, _ *slog.Logger, raw json.RawMessage) (any, error) {
			var a waitArg
			if err := json.Unmarshal(raw, &a); err != nil {
				return nil, err
			}
			f, err := m.watch(ctx, a)
			if err != nil {
				return nil, err
			}
			mu.Lock()
			found = f
			mu.Unlock()
			return nil, nil
		},
		"await-endpoint": func(ctx context.Context, _ *slog.Logger, _ json.RawMessage) (any, error) {
			mu.Lock()
			f := found
			mu.Unlock()
			if f == nil {
				return nil, fmt.Errorf("await-endpoint before watch-endpoint")
			}
			select {
			case <-f:
				return nil, nil
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(time.Minute):
				m.mu.Lock()
				defer m.mu.Unlock()
				return nil, fmt.Errorf("no rule for %s in a minute; its lines: %q", m.target.Chain, m.seen)
			}
		},
	}
}
