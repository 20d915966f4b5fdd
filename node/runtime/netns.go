package runtime

import (
	"context"
	"fmt"
	"net"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// inNetns runs fn on an OS thread moved into the network namespace at
// path ("" runs it where it is). If the thread cannot be moved back it
// stays locked and Go discards it, so no other goroutine runs in the
// wrong namespace. fn must not start goroutines that touch the network.
func inNetns(path string, fn func() error) error {
	if path == "" {
		return fn()
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		self, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
		if err != nil {
			errc <- err
			return
		}
		defer self.Close()
		target, err := os.Open(path)
		if err != nil {
			errc <- fmt.Errorf("netns %s: %w", path, err)
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns %s: %w", path, err)
			return
		}
		ferr := fn()
		if err := unix.Setns(int(self.Fd()), unix.CLONE_NEWNET); err == nil {
			runtime.UnlockOSThread()
		}
		errc <- ferr
	}()
	return <-errc
}

// DialContext dials from the node's network namespace (Config.HostNetns),
// as the kubelet's probes dial pods from the node. The socket belongs to
// the namespace it was made in, whichever thread uses it later.
func (r *Runtime) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	if r.cfg.HostNetns == "" {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
	var c net.Conn
	err := inNetns(r.cfg.HostNetns, func() error {
		var d net.Dialer
		var err error
		c, err = d.DialContext(ctx, network, addr)
		return err
	})
	return c, err
}

// InHostNetns runs fn on a thread in the node's network namespace
// (Config.HostNetns; the caller's own when that is empty), for network
// setup the agent does beside the pods' (the overlay). As with inNetns,
// fn must not start goroutines that touch the network.
func (r *Runtime) InHostNetns(fn func() error) error { return inNetns(r.cfg.HostNetns, fn) }
