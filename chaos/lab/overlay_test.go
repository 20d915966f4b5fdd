package lab_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/barge-dev/barge/chaos/lab"
	"github.com/barge-dev/barge/chaos/labtest"
	"github.com/barge-dev/barge/node/gossip"
	"github.com/barge-dev/barge/node/runtime"
	"github.com/barge-dev/barge/overlay/netnstest"
)

// TestOverlayLab runs a lab of 3 servers and 3 nodes in each overlay
// mode, with real agents, and checks the data plane end to end from the
// test process, which enters the pods' and nodes' network namespaces:
// pod to pod across nodes over TCP and UDP (a datagram filling the pod
// MTU with DF set), unmasqueraded; pod to remote node and node to
// remote pod; a partitioned node does not disturb the others; a
// restarted agent keeps its pods connected; a gossip member with another
// key is refused; and with 2 of 3 servers killed, pods keep reaching
// each other, an agent restarted during the outage brings its node back
// by gossip alone, and a node that joins during the outage is reachable
// from the others' pods. (Peer removal and repair of hand-deleted routes
// are overlay's TestPeerRemoved and TestRestartRepairs, in each mode.)
func TestOverlayLab(t *testing.T) {
	requireRoot(t)
	for _, mode := range []struct {
		name string
		mtu  int
	}{{"vxlan", 1450}, {"ipip", 1480}} {
		t.Run(mode.name, func(t *testing.T) { overlayLab(t, mode.name, mode.mtu) })
	}
}

// labPod is a pod of the test and the echo server the test runs in its
// network namespace.
type labPod struct {
	name, node string
	netns      string
	ip         netip.Addr
	echo       netip.AddrPort
}

func overlayLab(t *testing.T, mode string, mtu int) {
	dir, err := os.MkdirTemp("", "lab")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	l := labtest.Up(t, lab.Config{Dir: dir, Servers: 3, Nodes: 3, LateNodes: 1, Overlay: mode, Barge: bargeBin, Logger: testLogger(t)})
	cs, err := l.Kube()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	const ns = "overlay"
	waitFor(t, "namespace created", 30*time.Second, func() (bool, string) {
		_, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
		return err == nil, fmt.Sprint(err)
	})

	// One pod per node, tolerating an unreachable node for ever, so the
	// partition below does not evict it.
	var pods []*labPod
	for _, n := range []string{"n1", "n2", "n3"} {
		p := &labPod{name: "p-" + n, node: n}
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: p.name, Namespace: ns},
			Spec: corev1.PodSpec{
				NodeName: n,
				Containers: []corev1.Container{{
					Name: "c", Image: l.Registry + "/" + lab.BusyboxImage, Command: []string{"sleep", "3600"},
				}},
				Tolerations: []corev1.Toleration{
					{Key: corev1.TaintNodeUnreachable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute},
					{Key: corev1.TaintNodeNotReady, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute},
				},
			},
		}
		waitFor(t, "pod "+p.name+" created", 60*time.Second, func() (bool, string) {
			// The default ServiceAccount appears shortly after the controllers start.
			_, err := cs.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{})
			return err == nil, fmt.Sprint(err)
		})
		pods = append(pods, p)
	}
	for _, p := range pods {
		p.ip = netip.MustParseAddr(waitRunning(t, cs, ns, p.name))
		got, err := cs.CoreV1().Pods(ns).Get(ctx, p.name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		h, err := l.Host(p.node)
		if err != nil {
			t.Fatal(err)
		}
		p.netns = filepath.Join(h.DataDir, "netns", runtime.SandboxID(got))
		p.echo = netnstest.ServeEcho(t, p.netns, netip.AddrPortFrom(p.ip, 0)).Addr
	}
	// An echo server on each node's own address, for pod → remote node.
	nodeEcho := map[string]netip.AddrPort{}
	for _, n := range []string{"n1", "n2", "n3"} {
		h, err := l.Host(n)
		if err != nil {
			t.Fatal(err)
		}
		nodeEcho[n] = netnstest.ServeEcho(t, hostNetns(h), netip.AddrPortFrom(netip.MustParseAddr(h.Address), 0)).Addr
	}

	between := func(a, b *labPod) error { return podExchange(a, b, mtu) }
	all := func(what string) {
		t.Helper()
		waitFor(t, what, 30*time.Second, func() (bool, string) {
			for _, a := range pods {
				for _, b := range pods {
					if a == b {
						continue
					}
					if err := between(a, b); err != nil {
						return false, err.Error()
					}
				}
				for n, e := range nodeEcho {
					if n == a.node {
						continue
					}
					if _, err := netnstest.TCPExchange(a.netns, e, []byte("to a node")); err != nil {
						return false, fmt.Sprintf("%s → node %s: %v", a.name, n, err)
					}
					h, _ := l.Host(n)
					if _, err := netnstest.TCPExchange(hostNetns(h), a.echo, []byte("from a node")); err != nil {
						return false, fmt.Sprintf("node %s → %s: %v", n, a.name, err)
					}
				}
			}
			return true, ""
		})
	}
	all("pods, and nodes, reach each other across nodes")
	// The servers run no agent, yet reach every pod through the routes
	// they keep from gossip (--pod-routes): what the API server's proxy
	// and webhooks need.
	for _, h := range l.Hosts {
		if h.Role != lab.RoleServer {
			continue
		}
		waitFor(t, "server "+h.Name+" reaches every pod", 30*time.Second, func() (bool, string) {
			for _, p := range pods {
				if _, err := netnstest.TCPExchange(hostNetns(&h), p.echo, []byte("from a server")); err != nil {
					return false, fmt.Sprintf("%s → %s: %v", h.Name, p.name, err)
				}
			}
			return true, ""
		})
	}

	// A gossip member with another key is refused by the lab's pool.
	refuseWrongKey(t, l)

	// A partitioned node: the others stay Ready and keep talking.
	if err := l.Partition([]string{"n3"}, nil, false); err != nil {
		t.Fatal(err)
	}
	waitNodeReady(t, cs, "n3", "Unknown", 60*time.Second)
	for _, n := range []string{"n1", "n2"} {
		if st := nodeReadyStatus(t, cs, n); st != "True" {
			t.Errorf("%s is %s while n3 is partitioned", n, st)
		}
	}
	if err := between(pods[0], pods[1]); err != nil {
		t.Errorf("n1 → n2 while n3 is partitioned: %v", err)
	}
	if err := l.Heal(); err != nil {
		t.Fatal(err)
	}
	// The agent sees its Node marked Unknown once it reaches the API
	// again and posts its status at once, not at its next minutely post.
	waitNodeReady(t, cs, "n3", "True", 45*time.Second)
	all("connectivity after the partition healed")

	// A restarted agent: its pods are reachable again.
	if err := l.Kill("n2"); err != nil {
		t.Fatal(err)
	}
	if err := l.Start("n2"); err != nil {
		t.Fatal(err)
	}
	all("connectivity after n2's agent restarted")

	// No quorum: two of three servers killed.
	for _, s := range []string{"s1", "s2"} {
		if err := l.Kill(s); err != nil {
			t.Fatal(err)
		}
	}
	all("connectivity without quorum")
	// An agent restarted during the outage sets its network up from the
	// pod CIDR it remembered, before any API server answers.
	if err := l.Kill("n1"); err != nil {
		t.Fatal(err)
	}
	if err := l.Start("n1"); err != nil {
		t.Fatal(err)
	}
	all("connectivity without quorum after n1's agent restarted")
	// A node joins during the outage: the others' pods reach its pod
	// network's gateway, with routes from gossip alone.
	if err := l.Start("n4"); err != nil {
		t.Fatal(err)
	}
	n4, err := l.Host("n4")
	if err != nil {
		t.Fatal(err)
	}
	gw := lab.LatePodCIDR(1).Addr().Next()
	var gwEcho netip.AddrPort
	waitFor(t, "n4's pod bridge up", 60*time.Second, func() (bool, string) {
		var e *netnstest.Echo
		err := netnstest.Do(hostNetns(n4), func() error {
			// ServeEcho fails the test on error: try a bind first.
			c, err := net.Listen("tcp4", netip.AddrPortFrom(gw, 0).String())
			if err != nil {
				return err
			}
			return c.Close()
		})
		if err != nil {
			return false, err.Error()
		}
		e = netnstest.ServeEcho(t, hostNetns(n4), netip.AddrPortFrom(gw, 0))
		gwEcho = e.Addr
		return true, ""
	})
	waitFor(t, "the others' pods reach n4 without quorum", 30*time.Second, func() (bool, string) {
		for _, p := range pods {
			if _, err := netnstest.TCPExchange(p.netns, gwEcho, []byte("to n4")); err != nil {
				return false, fmt.Sprintf("%s → n4 (%v): %v", p.name, gwEcho, err)
			}
			if _, err := netnstest.TCPExchange(hostNetns(n4), p.echo, []byte("from n4")); err != nil {
				return false, fmt.Sprintf("n4 → %s: %v", p.name, err)
			}
		}
		return true, ""
	})

	// Quorum back: n4 registers with its pod CIDR and every node is Ready.
	for _, s := range []string{"s1", "s2"} {
		if err := l.Start(s); err != nil {
			t.Fatal(err)
		}
	}
	rctx, cancel := context.WithTimeout(ctx, lab.NodeReadyTimeout)
	defer cancel()
	if err := l.WaitNodesReady(rctx); err != nil {
		t.Fatal(err)
	}
	node, err := cs.CoreV1().Nodes().Get(ctx, "n4", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if want := lab.LatePodCIDR(1).String(); node.Spec.PodCIDR != want {
		t.Errorf("n4's pod CIDR is %q, want its --pod-cidr %s", node.Spec.PodCIDR, want)
	}
	all("connectivity once quorum is back")
}

// podExchange checks a → b over TCP (the source address must be a's:
// pod traffic is not masqueraded) and over UDP with a datagram that
// fills the pod MTU, DF set.
func podExchange(a, b *labPod, mtu int) error {
	seen, err := netnstest.TCPExchange(a.netns, b.echo, []byte("hello from "+a.name))
	if err != nil {
		return fmt.Errorf("%s → %s tcp: %w", a.name, b.name, err)
	}
	if host, _, _ := strings.Cut(seen, ":"); host != a.ip.String() {
		return fmt.Errorf("%s → %s: seen as %s, want %s (pod to pod is not masqueraded)", a.name, b.name, seen, a.ip)
	}
	payload := make([]byte, mtu-28) // IPv4 and UDP headers
	for i := range payload {
		payload[i] = byte(i)
	}
	got, err := netnstest.UDPExchange(a.netns, b.echo, payload)
	if err != nil {
		return fmt.Errorf("%s → %s udp, %d bytes with DF: %w", a.name, b.name, mtu, err)
	}
	if len(got) != len(payload) {
		return fmt.Errorf("%s → %s udp: %d bytes back, want %d", a.name, b.name, len(got), len(payload))
	}
	return nil
}

// refuseWrongKey joins the lab's pool from the root namespace with a
// keyring of its own: the join fails and no server lists the intruder.
func refuseWrongKey(t *testing.T, l *lab.Lab) {
	t.Helper()
	key, err := gossip.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := gossip.ParseKey(key)
	if err != nil {
		t.Fatal(err)
	}
	keyring := filepath.Join(t.TempDir(), gossip.KeyringFile)
	if err := gossip.WriteKeyring(keyring, [][]byte{raw}); err != nil {
		t.Fatal(err)
	}
	subnet := netip.MustParsePrefix(l.Subnet)
	root := subnet.Addr().As4()
	root[3] = 254 // the root namespace's address in the lab (lab.Partition)
	pool, err := gossip.Start(gossip.Config{
		Name: "intruder", Role: gossip.RoleAgent, BindAddr: netip.AddrFrom4(root).String(),
		KeyringFile: keyring, Logger: testLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Shutdown()
	n1, err := l.Host("n1")
	if err != nil {
		t.Fatal(err)
	}
	if n, err := pool.Join(n1.GossipAddr); err == nil {
		t.Fatalf("a member with another key joined the lab's pool (%d contacted)", n)
	}
	if st := hostStatus(t, l, "n1"); st.Gossip != "alive" {
		t.Errorf("n1 is %q in gossip after the refused join", st.Gossip)
	}
}

func hostNetns(h *lab.Host) string { return filepath.Join("/run/netns", h.Netns) }

func nodeReadyStatus(t *testing.T, cs kubernetes.Interface, name string) string {
	t.Helper()
	n, err := cs.CoreV1().Nodes().Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		return err.Error()
	}
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return string(c.Status)
		}
	}
	return "no Ready condition"
}

func waitNodeReady(t *testing.T, cs kubernetes.Interface, name, want string, timeout time.Duration) {
	t.Helper()
	waitFor(t, name+" Ready="+want, timeout, func() (bool, string) {
		st := nodeReadyStatus(t, cs, name)
		return st == want, st
	})
}
