package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"sync"
	"time"
)

// FailoverDialer connects the agent's API client to whichever API server
// answers: it dials the server that worked last, and on failure the
// others in order. client-go takes one host; with this as the
// rest.Config's Dial, the host names only the TLS server name (every
// server presents the cluster's one serving certificate, which names
// them all), and a killed server costs one redial instead of the node:
// an agent stuck on a dead server would stop renewing its Lease and have
// its pods evicted while the rest of the control plane is fine. k3s
// solves the same problem with a local load-balancing proxy.
type FailoverDialer struct {
	addrs   []string // host:port
	timeout time.Duration
	dialer  net.Dialer

	mu   sync.Mutex
	last int
}

// NewFailoverDialer takes the API servers as https://HOST:PORT URLs.
func NewFailoverDialer(servers []string) (*FailoverDialer, error) {
	if len(servers) == 0 {
		return nil, errors.New("agent: no API servers to dial")
	}
	d := &FailoverDialer{timeout: 3 * time.Second}
	for _, s := range servers {
		u, err := url.Parse(s)
		if err != nil || u.Scheme != "https" || u.Port() == "" || u.Hostname() == "" {
			return nil, fmt.Errorf("agent: API server %q: want https://HOST:PORT", s)
		}
		d.addrs = append(d.addrs, u.Host)
	}
	return d, nil
}

// DialContext ignores addr (the rest.Config's host) and connects to the
// first API server that accepts, starting with the last one that did.
func (d *FailoverDialer) DialContext(ctx context.Context, network, _ string) (net.Conn, error) {
	d.mu.Lock()
	first := d.last
	d.mu.Unlock()
	var errs []error
	for i := range d.addrs {
		idx := (first + i) % len(d.addrs)
		dctx, cancel := context.WithTimeout(ctx, d.timeout)
		conn, err := d.dialer.DialContext(dctx, network, d.addrs[idx])
		cancel()
		if err == nil {
			d.mu.Lock()
			d.last = idx
			d.mu.Unlock()
			return conn, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, fmt.Errorf("agent: no API server answers: %w", errors.Join(errs...))
}
