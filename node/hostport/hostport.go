package hostport

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"

	"sigs.k8s.io/knftables"
)

// DefaultTable is the nftables table (family ip) a Map owns.
const DefaultTable = "barge-hostport"

// Mapping is one hostPort of a pod.
type Mapping struct {
	// HostIP is the node address the port is opened on; the zero value
	// is every address of the node, loopback included.
	HostIP   netip.Addr
	HostPort uint16
	// Protocol is "tcp", "udp" or "sctp".
	Protocol string
	PodIP    netip.Addr
	PodPort  uint16
}

func (m Mapping) String() string {
	host := "*"
	if m.HostIP.IsValid() {
		host = m.HostIP.String()
	}
	return fmt.Sprintf("%s:%d/%s→%s:%d", host, m.HostPort, m.Protocol, m.PodIP, m.PodPort)
}

func (m Mapping) check() error {
	switch {
	case m.Protocol != "tcp" && m.Protocol != "udp" && m.Protocol != "sctp":
		return fmt.Errorf("hostport %s: protocol %q: want tcp, udp or sctp", m, m.Protocol)
	case m.HostPort == 0 || m.PodPort == 0:
		return fmt.Errorf("hostport %s: port 0", m)
	case !m.PodIP.Is4():
		return fmt.Errorf("hostport %s: pod address is not IPv4", m)
	case m.HostIP.IsValid() && !m.HostIP.Is4():
		return fmt.Errorf("hostport %s: host address is not IPv4", m)
	}
	return nil
}

// Config says where the rules go.
type Config struct {
	// Table names the nftables table; "" is DefaultTable.
	Table string
	// Bridge is the pod bridge: a mapping reachable on a loopback
	// address (a loopback hostIP, or every address) needs
	// route_localnet there, since the translated packet leaves through
	// it with a loopback source. "" leaves the sysctl alone.
	Bridge string
}

// Map holds every pod's mappings on this node and the table that
// implements them. It must be used in the node's network namespace.
type Map struct {
	cfg  Config
	nft  knftables.Interface
	mu   sync.Mutex
	pods map[string][]Mapping
}

// New opens the table (family ip) in the caller's network namespace. It
// changes nothing until the first Set or Remove.
func New(cfg Config) (*Map, error) {
	if cfg.Table == "" {
		cfg.Table = DefaultTable
	}
	nft, err := knftables.New(knftables.IPv4Family, cfg.Table)
	if err != nil {
		return nil, fmt.Errorf("hostport: nftables: %w", err)
	}
	return &Map{cfg: cfg, nft: nft, pods: map[string][]Mapping{}}, nil
}

// Set makes pod's mappings exactly ms (none removes them). Two pods may
// not hold the same host address, port and protocol; the scheduler keeps
// them apart, so a clash here is refused, not resolved.
func (m *Map) Set(ctx context.Context, pod string, ms []Mapping) error {
	for _, x := range ms {
		if err := x.check(); err != nil {
			return fmt.Errorf("pod %s: %w", pod, err)
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for other, theirs := range m.pods {
		if other == pod {
			continue
		}
		for _, x := range ms {
			for _, y := range theirs {
				if x.HostPort == y.HostPort && x.Protocol == y.Protocol && overlaps(x.HostIP, y.HostIP) {
					return fmt.Errorf("hostport: pod %s: %s is taken by pod %s (%s)", pod, x, other, y)
				}
			}
		}
	}
	prev, had := m.pods[pod]
	if slices.Equal(prev, ms) && (had || len(ms) == 0) {
		return nil
	}
	if len(ms) == 0 {
		delete(m.pods, pod)
	} else {
		m.pods[pod] = slices.Clone(ms)
	}
	if err := m.write(ctx); err != nil {
		if had {
			m.pods[pod] = prev
		} else {
			delete(m.pods, pod)
		}
		return err
	}
	return nil
}

// Remove drops pod's mappings.
func (m *Map) Remove(ctx context.Context, pod string) error { return m.Set(ctx, pod, nil) }

func overlaps(a, b netip.Addr) bool { return !a.IsValid() || !b.IsValid() || a == b }

// write replaces the table with the current mappings in one transaction.
func (m *Map) write(ctx context.Context) error {
	all := m.sorted()
	if m.cfg.Bridge != "" && slices.ContainsFunc(all, func(x Mapping) bool { return !x.HostIP.IsValid() || x.HostIP.IsLoopback() }) {
		if err := routeLocalnet(m.cfg.Bridge); err != nil {
			return err
		}
	}
	tx := m.nft.NewTransaction()
	// Add, delete, add: the table exists afterwards with nothing of
	// before in it, whether or not it existed.
	tx.Add(&knftables.Table{Comment: knftables.PtrTo("barge pod hostPorts")})
	tx.Delete(&knftables.Table{})
	tx.Add(&knftables.Table{Comment: knftables.PtrTo("barge pod hostPorts")})
	for _, c := range []struct {
		name string
		hook knftables.BaseChainHook
		prio knftables.BaseChainPriority
	}{
		{"prerouting", knftables.PreroutingHook, knftables.DNATPriority},
		{"output", knftables.OutputHook, knftables.DNATPriority},
		{"postrouting", knftables.PostroutingHook, knftables.SNATPriority},
	} {
		tx.Add(&knftables.Chain{Name: c.name, Type: knftables.PtrTo(knftables.NATType), Hook: knftables.PtrTo(c.hook), Priority: knftables.PtrTo(c.prio)})
	}
	// route_localnet lets the bridge carry loopback sources; it must not
	// let a pod reach the node's loopback services by sending to
	// 127.0.0.1 itself (CVE-2020-8558): only translated flows and their
	// replies arrive at a loopback address from outside lo.
	tx.Add(&knftables.Chain{Name: "input", Type: knftables.PtrTo(knftables.FilterType), Hook: knftables.PtrTo(knftables.InputHook), Priority: knftables.PtrTo(knftables.FilterPriority)})
	tx.Add(&knftables.Rule{Chain: "input", Rule: `iifname != "lo" ip daddr 127.0.0.0/8 ct status & dnat == 0 ct state != { established, related } drop`})
	tx.Add(&knftables.Chain{Name: "hostports"})
	tx.Add(&knftables.Rule{Chain: "prerouting", Rule: "jump hostports"})
	tx.Add(&knftables.Rule{Chain: "output", Rule: "jump hostports"})
	// A connection to a loopback hostIP leaves for the pod with a
	// loopback source the pod cannot answer: it takes the bridge's.
	tx.Add(&knftables.Rule{Chain: "postrouting", Rule: "ip saddr 127.0.0.0/8 ct status dnat masquerade"})
	for _, r := range Rules(all) {
		tx.Add(&knftables.Rule{Chain: "hostports", Rule: r})
	}
	if err := m.nft.Run(ctx, tx); err != nil {
		return fmt.Errorf("hostport: write table ip %s: %w", m.cfg.Table, err)
	}
	return nil
}

// sorted is every mapping, specific host addresses before "every
// address", so a pod on 127.0.0.1:P and another on NODEIP:P each get
// their own.
func (m *Map) sorted() []Mapping {
	var all []Mapping
	for _, ms := range m.pods {
		all = append(all, ms...)
	}
	sort.Slice(all, func(i, j int) bool {
		a, b := all[i], all[j]
		if a.HostIP.IsValid() != b.HostIP.IsValid() {
			return a.HostIP.IsValid()
		}
		if a.HostIP != b.HostIP {
			return a.HostIP.Less(b.HostIP)
		}
		if a.HostPort != b.HostPort {
			return a.HostPort < b.HostPort
		}
		return a.Protocol < b.Protocol
	})
	return all
}

// Rules renders the hostports chain's rules for ms, in order.
func Rules(ms []Mapping) []string {
	out := make([]string, 0, len(ms))
	for _, x := range ms {
		match := "fib daddr type local"
		if x.HostIP.IsValid() {
			match = "ip daddr " + x.HostIP.String()
		}
		out = append(out, strings.Join([]string{
			match, x.Protocol, "dport", fmt.Sprint(x.HostPort),
			"dnat ip to", fmt.Sprintf("%s:%d", x.PodIP, x.PodPort),
		}, " "))
	}
	return out
}

func routeLocalnet(bridge string) error {
	p := filepath.Join("/proc/sys/net/ipv4/conf", bridge, "route_localnet")
	if err := os.WriteFile(p, []byte("1"), 0o644); err != nil {
		return fmt.Errorf("hostport: route_localnet on %s: %w", bridge, err)
	}
	return nil
}
