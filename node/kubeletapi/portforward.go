package kubeletapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/vishvananda/netns"
	"k8s.io/cri-streaming/pkg/streaming/portforward"
)

func (s *Server) portForward(w http.ResponseWriter, r *http.Request) {
	w, r, cancel := streamContext(w, r)
	defer cancel()
	opts, err := portforward.NewV4Options(r)
	if err != nil {
		s.httpError(w, r, badRequest("%v", err))
		return
	}
	ns, name, uid := r.PathValue("namespace"), r.PathValue("pod"), r.PathValue("uid")
	pod, err := s.findPod(r.Context(), ns, name, uid)
	if err != nil {
		s.httpError(w, r, err)
		return
	}
	if pod != nil && uid == "" {
		uid = string(pod.UID)
	}
	all, err := s.podContainers(r.Context(), ns, name, uid)
	if err != nil {
		s.httpError(w, r, err)
		return
	}
	sb, err := sandboxOf(all, uid)
	if err != nil {
		s.httpError(w, r, fmt.Errorf("pod %s/%s: %w", ns, name, err))
		return
	}
	if sb.netns == "" {
		s.httpError(w, r, fmt.Errorf("pod %s/%s: sandbox %s has no %s label: %w", ns, name, sb.id, LabelNetns, errNotFound))
		return
	}
	pf := forwarder{s: s, netns: sb.netns, pod: ns + "/" + name}
	portforward.ServePortForward(w, r, pf, name, sb.podUID, opts,
		s.cfg.StreamIdleTimeout, s.cfg.StreamCreationTimeout, portforward.SupportedProtocols)
}

// forwarder connects streams to ports of one pod's network namespace.
type forwarder struct {
	s     *Server
	netns string
	pod   string
}

// PortForward copies between stream and 127.0.0.1:port in the pod's
// network namespace, as the kubelet's runtimes do, until either side
// closes.
func (f forwarder) PortForward(ctx context.Context, _, _ string, port int32, stream io.ReadWriteCloser) error {
	defer stream.Close()
	if port <= 0 || port > 65535 {
		return fmt.Errorf("port-forward to pod %s: invalid port %d", f.pod, port)
	}
	conn, err := dialInNetns(ctx, f.netns, "127.0.0.1:"+strconv.Itoa(int(port)))
	if err != nil {
		return fmt.Errorf("port-forward to pod %s port %d: %w", f.pod, port, err)
	}
	defer conn.Close()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, _ = io.Copy(conn, stream)
		// The client is done sending: half-close, so the server sees EOF
		// and may still answer.
		if tc, ok := conn.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
	}()
	_, err = io.Copy(stream, conn)
	// The pod's side is done; closing the stream ends the copy above.
	stream.Close()
	wg.Wait()
	if err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("port-forward to pod %s port %d: %w", f.pod, port, err)
	}
	return nil
}

// dialInNetns dials addr from inside the network namespace at path. A
// socket stays in the namespace it was made in, so only the dial needs
// the namespace: it runs on a locked OS thread that is moved there and
// back, and is discarded by the runtime if it cannot be moved back.
func dialInNetns(ctx context.Context, path, addr string) (net.Conn, error) {
	target, err := netns.GetFromPath(path)
	if err != nil {
		return nil, fmt.Errorf("open network namespace %s: %w", path, err)
	}
	defer target.Close()
	type result struct {
		c   net.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			ch <- result{err: fmt.Errorf("current network namespace: %w", err)}
			return
		}
		defer orig.Close()
		if err := netns.Set(target); err != nil {
			runtime.UnlockOSThread()
			ch <- result{err: fmt.Errorf("enter network namespace %s: %w", path, err)}
			return
		}
		d := net.Dialer{Timeout: 10 * time.Second}
		c, err := d.DialContext(ctx, "tcp4", addr)
		if serr := netns.Set(orig); serr == nil {
			runtime.UnlockOSThread()
		}
		ch <- result{c, err}
	}()
	r := <-ch
	return r.c, r.err
}
