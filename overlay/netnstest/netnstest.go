package netnstest

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/barge-dev/barge/overlay/podnet"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// RequireRoot skips a test that needs root, or fails it when
// BARGE_REQUIRE_ROOT=1 (as CI sets): a skipped test is not a passing one.
// It is chaos/labtest.RequireRoot's rule, repeated here because overlay
// imports no other barge package.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("BARGE_REQUIRE_ROOT") == "1" {
		t.Fatal("this test needs root (network namespaces) and BARGE_REQUIRE_ROOT=1 forbids skipping")
	}
	t.Skip("needs root for network namespaces")
}

// Do runs fn on an OS thread switched into the network namespace at
// nsPath. Sockets fn creates stay in that namespace after Do returns and
// may be used from any goroutine; goroutines fn starts do not run in it.
func Do(nsPath string, fn func() error) error {
	target, err := netns.GetFromPath(nsPath)
	if err != nil {
		return fmt.Errorf("netnstest: open netns %s: %w", nsPath, err)
	}
	defer target.Close()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer orig.Close()
		if err := netns.Set(target); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("netnstest: enter %s: %w", nsPath, err)
			return
		}
		ferr := fn()
		// A thread that cannot go back stays locked and dies with this
		// goroutine rather than run other goroutines in the wrong place.
		if err := netns.Set(orig); err != nil {
			errc <- errors.Join(ferr, err)
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// StartIn starts cmd inside the network namespace at nsPath: the child is
// forked from a thread switched into it, and inherits it.
func StartIn(nsPath string, cmd *exec.Cmd) error {
	return Do(nsPath, cmd.Start)
}

// Net is a set of test hosts on one underlay bridge.
type Net struct {
	// Prefix begins every namespace name of this Net (and should begin
	// any the test makes itself, so cleanup finds them).
	Prefix   string
	Underlay string // path of the underlay namespace
	Subnet   netip.Prefix
	Hosts    []*Host
	t        testing.TB
	nextAddr int
}

// Host is one namespace on the underlay.
type Host struct {
	Name  string
	Netns string     // path
	Addr  netip.Addr // on eth0, /24
	// Link names the host's underlay interface inside its namespace.
	Link string
}

// New builds n hosts h1…hn on a fresh underlay and removes everything in
// t.Cleanup. The underlay lives only in namespaces: no address or route
// is added to the root namespace.
func New(t testing.TB, n int) *Net {
	t.Helper()
	RequireRoot(t)
	var b [3]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	id := hex.EncodeToString(b[:])
	nt := &Net{
		Prefix:   "ovt" + id + "-",
		Subnet:   netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 18 + b[0]&1, b[1], 0}), 24),
		t:        t,
		nextAddr: 11,
	}
	t.Cleanup(nt.cleanup)
	u, err := podnet.CreateNetns("", nt.Prefix+"u")
	if err != nil {
		t.Fatal(err)
	}
	nt.Underlay = u
	err = withHandle(u, func(h *netlink.Handle) error {
		lo, err := h.LinkByName("lo")
		if err != nil {
			return err
		}
		if err := h.LinkSetUp(lo); err != nil {
			return err
		}
		br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "br0"}}
		if err := h.LinkAdd(br); err != nil {
			return fmt.Errorf("add bridge: %w", err)
		}
		return h.LinkSetUp(br)
	})
	if err != nil {
		t.Fatalf("netnstest: underlay: %v", err)
	}
	for i := 1; i <= n; i++ {
		nt.AddHost(fmt.Sprintf("h%d", i))
	}
	return nt
}

// AddHost adds a host namespace with eth0 on the underlay bridge and the
// next free address of the subnet.
func (nt *Net) AddHost(name string) *Host {
	t := nt.t
	t.Helper()
	path, err := podnet.CreateNetns("", nt.Prefix+name)
	if err != nil {
		t.Fatal(err)
	}
	a := nt.Subnet.Addr().As4()
	a[3] = byte(nt.nextAddr)
	nt.nextAddr++
	host := &Host{Name: name, Netns: path, Addr: netip.AddrFrom4(a), Link: "eth0"}
	hostNS, err := netns.GetFromPath(path)
	if err != nil {
		t.Fatal(err)
	}
	defer hostNS.Close()
	err = withHandle(nt.Underlay, func(h *netlink.Handle) error {
		br, err := h.LinkByName("br0")
		if err != nil {
			return err
		}
		v := &netlink.Veth{
			LinkAttrs:     netlink.LinkAttrs{Name: name, MasterIndex: br.Attrs().Index},
			PeerName:      "eth0",
			PeerNamespace: netlink.NsFd(hostNS),
		}
		if err := h.LinkAdd(v); err != nil {
			return fmt.Errorf("add veth %s: %w", name, err)
		}
		l, err := h.LinkByName(name)
		if err != nil {
			return err
		}
		return h.LinkSetUp(l)
	})
	if err != nil {
		t.Fatalf("netnstest: host %s: %v", name, err)
	}
	err = withHandle(path, func(h *netlink.Handle) error {
		for _, n := range []string{"lo", "eth0"} {
			l, err := h.LinkByName(n)
			if err != nil {
				return err
			}
			if n == "eth0" {
				addr := &netlink.Addr{IPNet: &net.IPNet{IP: host.Addr.AsSlice(), Mask: net.CIDRMask(24, 32)}}
				if err := h.AddrAdd(l, addr); err != nil {
					return err
				}
			}
			if err := h.LinkSetUp(l); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("netnstest: host %s: %v", name, err)
	}
	nt.Hosts = append(nt.Hosts, host)
	return host
}

// Host returns the named host.
func (nt *Net) Host(name string) *Host {
	for _, h := range nt.Hosts {
		if h.Name == name {
			return h
		}
	}
	nt.t.Fatalf("netnstest: no host %s", name)
	return nil
}

// cleanup deletes every namespace whose name carries the prefix: the
// hosts, the underlay and whatever namespaces the test made under the same
// prefix (pods). Links inside go with their namespaces.
func (nt *Net) cleanup() {
	ents, err := os.ReadDir(podnet.DefaultNetnsDir)
	if err != nil {
		nt.t.Errorf("netnstest: cleanup: %v", err)
		return
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), nt.Prefix) {
			if err := podnet.DeleteNetns(filepath.Join(podnet.DefaultNetnsDir, e.Name())); err != nil {
				nt.t.Errorf("netnstest: cleanup: %v", err)
			}
		}
	}
}

// Handle returns a netlink handle working inside the namespace at
// nsPath, closed in t.Cleanup; tests inspect a host's routes and
// neighbours through it, independently of the code under test.
func Handle(t testing.TB, nsPath string) *netlink.Handle {
	t.Helper()
	ns, err := netns.GetFromPath(nsPath)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return h
}

func withHandle(nsPath string, fn func(*netlink.Handle) error) error {
	ns, err := netns.GetFromPath(nsPath)
	if err != nil {
		return err
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return err
	}
	defer h.Close()
	return fn(h)
}
