package svctest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/barge-dev/barge/overlay/egress"
	"github.com/barge-dev/barge/overlay/netnstest"
	"github.com/barge-dev/barge/overlay/podnet"
	"github.com/vishvananda/netlink"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// ClusterCIDR is the pod network of every test; ServiceCIDR the Service
// range.
var (
	ClusterCIDR = netip.MustParsePrefix("10.244.0.0/16")
	ServiceCIDR = netip.MustParsePrefix("10.96.0.0/16")
)

// API is how a helper reaches the test's API server: the address
// forwarded into its namespace and the admin credentials' files.
type API struct {
	Host     string `json:"host"`
	CAFile   string `json:"caFile"`
	CertFile string `json:"certFile"`
	KeyFile  string `json:"keyFile"`
}

// Client builds a clientset from a.
func (a API) Client() (kubernetes.Interface, error) {
	cfg := &rest.Config{
		Host:            a.Host,
		TLSClientConfig: rest.TLSClientConfig{CAFile: a.CAFile, CertFile: a.CertFile, KeyFile: a.KeyFile},
		QPS:             1000, Burst: 1000,
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("svctest: client for %s: %w", a.Host, err)
	}
	return cs, nil
}

// Node is a test node: a host namespace with a pod network and a helper
// process ("agent") inside it.
type Node struct {
	Name    string
	Host    *netnstest.Host
	Agent   *netnstest.Helper
	PodCIDR netip.Prefix
	Gateway netip.Addr
	API     API
	net     *netnstest.Net
	t       testing.TB
}

type podnetArg struct {
	StateDir string       `json:"stateDir"`
	PodCIDR  netip.Prefix `json:"podCIDR"`
}

type attachArg struct {
	Pod   podnet.PodRef `json:"pod"`
	Netns string        `json:"netns"`
}

// Handlers returns a TestMain's handler set: the pod network operations
// every node needs, plus the component's own.
func Handlers(extra func() map[string]netnstest.Handler) func() map[string]netnstest.Handler {
	return func() map[string]netnstest.Handler {
		var (
			mu   sync.Mutex
			pods *podnet.Network
		)
		hs := map[string]netnstest.Handler{
			"podnet": func(ctx context.Context, log *slog.Logger, raw json.RawMessage) (any, error) {
				var a podnetArg
				if err := json.Unmarshal(raw, &a); err != nil {
					return nil, err
				}
				mu.Lock()
				defer mu.Unlock()
				n, err := podnet.New(ctx, podnet.Config{StateDir: a.StateDir, PodCIDR: a.PodCIDR, Logger: log})
				if err != nil {
					return nil, err
				}
				pods = n
				if err := egress.Ensure(ctx, egress.Config{PodCIDR: a.PodCIDR, ClusterCIDR: ClusterCIDR}); err != nil {
					return nil, err
				}
				return nil, nil
			},
			"attach": func(ctx context.Context, log *slog.Logger, raw json.RawMessage) (any, error) {
				var a attachArg
				if err := json.Unmarshal(raw, &a); err != nil {
					return nil, err
				}
				mu.Lock()
				n := pods
				mu.Unlock()
				if n == nil {
					return nil, fmt.Errorf("attach before podnet")
				}
				return n.Attach(ctx, a.Pod, a.Netns)
			},
		}
		if extra != nil {
			for k, v := range extra() {
				hs[k] = v
			}
		}
		return hs
	}
}

// NewNode makes host h of nt a node with pod CIDR podCIDR, its agent
// helper reaching the API server that api configures.
func NewNode(t testing.TB, nt *netnstest.Net, h *netnstest.Host, podCIDR netip.Prefix, api *rest.Config) *Node {
	t.Helper()
	n := &Node{Name: h.Name, Host: h, PodCIDR: podCIDR, net: nt, t: t}
	gw := podCIDR.Masked().Addr().Next()
	n.Gateway = gw
	n.API = API{
		Host:     "https://" + ForwardTCP(t, h.Netns, hostPort(api.Host)),
		CAFile:   api.CAFile,
		CertFile: api.CertFile,
		KeyFile:  api.KeyFile,
	}
	n.Agent = netnstest.StartHelper(t, "agent-"+h.Name, h.Netns)
	n.Agent.MustCall("podnet", podnetArg{StateDir: filepath.Join(t.TempDir(), "podnet-"+h.Name), PodCIDR: podCIDR}, nil)
	// A real node has a default route; a test host has none, and the
	// node's own connections to Service addresses look a route up
	// before the output hook translates them.
	nh := netnstest.Handle(t, h.Netns)
	eth, err := nh.LinkByName(h.Link)
	if err != nil {
		t.Fatal(err)
	}
	dst := &net.IPNet{IP: ServiceCIDR.Addr().AsSlice(), Mask: net.CIDRMask(ServiceCIDR.Bits(), 32)}
	if err := nh.RouteAdd(&netlink.Route{LinkIndex: eth.Attrs().Index, Dst: dst, Scope: netlink.SCOPE_LINK}); err != nil {
		t.Fatalf("svctest: route %v on %s: %v", ServiceCIDR, h.Name, err)
	}
	return n
}

func hostPort(url string) string {
	for _, p := range []string{"https://", "http://"} {
		if len(url) > len(p) && url[:len(p)] == p {
			return url[len(p):]
		}
	}
	return url
}

// Pod is a pod network namespace attached to a node.
type Pod struct {
	Name  string
	Node  *Node
	Netns string
	IP    netip.Addr
}

// AddPod makes a pod namespace on n and attaches it.
func (n *Node) AddPod(name string) *Pod {
	n.t.Helper()
	path, err := podnet.CreateNetns("", n.net.Prefix+n.Name+"-"+name)
	if err != nil {
		n.t.Fatal(err)
	}
	var pn podnet.PodNetwork
	n.Agent.MustCall("attach", attachArg{Pod: podnet.PodRef{ID: "uid-" + n.Name + "-" + name, Namespace: "default", Name: name}, Netns: path}, &pn)
	return &Pod{Name: name, Node: n, Netns: path, IP: pn.IP.Addr()}
}

// ForwardTCP listens on a loopback port inside the namespace at nsPath
// and forwards every connection to target, dialled from the test
// process's own namespace. It returns the listening address.
func ForwardTCP(t testing.TB, nsPath, target string) string {
	t.Helper()
	var l net.Listener
	err := netnstest.Do(nsPath, func() error {
		var err error
		l, err = net.Listen("tcp4", "127.0.0.1:0")
		return err
	})
	if err != nil {
		t.Fatalf("svctest: forwarder in %s: %v", nsPath, err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	conns := map[net.Conn]struct{}{}
	track := func(c net.Conn, add bool) {
		mu.Lock()
		defer mu.Unlock()
		if add {
			conns[c] = struct{}{}
		} else {
			delete(conns, c)
		}
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				u, err := net.DialTimeout("tcp", target, 10*time.Second)
				if err != nil {
					return
				}
				defer u.Close()
				track(c, true)
				track(u, true)
				defer track(c, false)
				defer track(u, false)
				done := make(chan struct{}, 2)
				go func() { _, _ = io.Copy(u, c); done <- struct{}{} }()
				go func() { _, _ = io.Copy(c, u); done <- struct{}{} }()
				<-done
			}()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return l.Addr().String()
}

// NFT runs nft with args inside the namespace at nsPath.
func NFT(nsPath string, args ...string) (string, error) {
	var out bytes.Buffer
	cmd := exec.Command("nft", args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := netnstest.StartIn(nsPath, cmd); err != nil {
		return "", err
	}
	if err := cmd.Wait(); err != nil {
		return out.String(), fmt.Errorf("nft %v: %w: %s", args, err, out.String())
	}
	return out.String(), nil
}

// Eventually polls cond until it returns nil, failing the test with the
// last error after a generous deadline.
func Eventually(t testing.TB, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 60s: %v", what, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
