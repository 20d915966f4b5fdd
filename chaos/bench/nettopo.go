package bench

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

	"github.com/barge-dev/barge/overlay/podnet"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// netTopo is the bench's own two-host network: an underlay namespace
// with a bridge and host namespaces joined to it by veth pairs, addressed
// from 198.18.0.0/15. Nothing is added to the root namespace, so nothing
// the bench sends can leave the machine.
type netTopo struct {
	prefix   string
	underlay string
	hosts    []netHost
}

type netHost struct {
	name  string
	netns string
	addr  netip.Addr
}

func newNetTopo(n int) (_ *netTopo, err error) {
	var b [2]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, err
	}
	t := &netTopo{prefix: "bgbn" + hex.EncodeToString(b[:]) + "-"}
	defer func() {
		if err != nil {
			t.remove()
		}
	}()
	if t.underlay, err = podnet.CreateNetns("", t.prefix+"u"); err != nil {
		return nil, err
	}
	err = inHandle(t.underlay, func(h *netlink.Handle) error {
		lo, err := h.LinkByName("lo")
		if err != nil {
			return err
		}
		if err := h.LinkSetUp(lo); err != nil {
			return err
		}
		br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "br0"}}
		if err := h.LinkAdd(br); err != nil {
			return err
		}
		return h.LinkSetUp(br)
	})
	if err != nil {
		return nil, fmt.Errorf("bench: underlay: %w", err)
	}
	subnet := [4]byte{198, 18 + b[0]&1, b[1], 0}
	for i := 1; i <= n; i++ {
		name := fmt.Sprintf("h%d", i)
		path, err := podnet.CreateNetns("", t.prefix+name)
		if err != nil {
			return nil, err
		}
		a := subnet
		a[3] = byte(10 + i)
		host := netHost{name: name, netns: path, addr: netip.AddrFrom4(a)}
		if err := t.wire(host); err != nil {
			return nil, fmt.Errorf("bench: host %s: %w", name, err)
		}
		t.hosts = append(t.hosts, host)
	}
	return t, nil
}

func (t *netTopo) wire(host netHost) error {
	hns, err := netns.GetFromPath(host.netns)
	if err != nil {
		return err
	}
	defer hns.Close()
	err = inHandle(t.underlay, func(h *netlink.Handle) error {
		br, err := h.LinkByName("br0")
		if err != nil {
			return err
		}
		v := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: host.name, MasterIndex: br.Attrs().Index}, PeerName: "eth0", PeerNamespace: netlink.NsFd(hns)}
		if err := h.LinkAdd(v); err != nil {
			return err
		}
		l, err := h.LinkByName(host.name)
		if err != nil {
			return err
		}
		return h.LinkSetUp(l)
	})
	if err != nil {
		return err
	}
	return inHandle(host.netns, func(h *netlink.Handle) error {
		for _, n := range []string{"lo", "eth0"} {
			l, err := h.LinkByName(n)
			if err != nil {
				return err
			}
			if n == "eth0" {
				if err := h.AddrAdd(l, &netlink.Addr{IPNet: &net.IPNet{IP: host.addr.AsSlice(), Mask: net.CIDRMask(24, 32)}}); err != nil {
					return err
				}
			}
			if err := h.LinkSetUp(l); err != nil {
				return err
			}
		}
		return nil
	})
}

// remove deletes every namespace of the topology (pods' included: they
// carry the same prefix), and with them every link inside.
func (t *netTopo) remove() error {
	ents, err := os.ReadDir(podnet.DefaultNetnsDir)
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), t.prefix) {
			errs = append(errs, podnet.DeleteNetns(filepath.Join(podnet.DefaultNetnsDir, e.Name())))
		}
	}
	return errors.Join(errs...)
}

func inHandle(nsPath string, fn func(*netlink.Handle) error) error {
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

// inNetns runs fn on a locked OS thread switched into the namespace at
// nsPath. Sockets fn opens stay in that namespace; processes fn starts
// are born in it. A thread that cannot switch back is left locked, so
// the runtime retires it instead of reusing it elsewhere.
func inNetns(nsPath string, fn func() error) error {
	target, err := netns.GetFromPath(nsPath)
	if err != nil {
		return err
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
			errc <- err
			return
		}
		ferr := fn()
		if err := netns.Set(orig); err != nil {
			errc <- errors.Join(ferr, err)
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

func startInNetns(nsPath string, cmd *exec.Cmd) error {
	return inNetns(nsPath, cmd.Start)
}
