package kubeletapi

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
)

// streamContext returns the request with a context that ends when the
// client goes away. The streaming protocols hijack the connection, and
// net/http does not cancel a hijacked request's context when its
// connection closes; without this an attach without stdin, or an exec
// whose client was killed, would run on with nobody listening. The
// multiplexer reads the connection all the time, so a closed connection
// shows at once as a failed read.
func streamContext(w http.ResponseWriter, r *http.Request) (http.ResponseWriter, *http.Request, context.CancelFunc) {
	ctx, cancel := context.WithCancel(r.Context())
	return &hijackWatch{ResponseWriter: w, cancel: cancel}, r.WithContext(ctx), cancel
}

type hijackWatch struct {
	http.ResponseWriter
	cancel context.CancelFunc
}

func (h *hijackWatch) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := h.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("connection cannot be hijacked")
	}
	c, rw, err := hj.Hijack()
	if err != nil {
		return nil, nil, err
	}
	wc := &watchedConn{Conn: c, cancel: h.cancel}
	// The upgraders read through the returned reader: bytes the server
	// had buffered first, then the watched connection.
	return wc, bufio.NewReadWriter(bufio.NewReader(&drainThen{buf: rw.Reader, c: wc}), rw.Writer), nil
}

func (h *hijackWatch) Flush() {
	if f, ok := h.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// watchedConn cancels its context on the first failed read or on close.
type watchedConn struct {
	net.Conn
	cancel context.CancelFunc
	once   sync.Once
}

func (c *watchedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if err != nil {
		c.once.Do(c.cancel)
	}
	return n, err
}

func (c *watchedConn) Close() error {
	c.once.Do(c.cancel)
	return c.Conn.Close()
}

// drainThen reads what the server's reader had buffered before the
// hijack, then the watched connection.
type drainThen struct {
	buf *bufio.Reader
	c   net.Conn
}

func (d *drainThen) Read(p []byte) (int, error) {
	if d.buf != nil {
		if d.buf.Buffered() > 0 {
			// With bytes buffered, bufio reads only those.
			return d.buf.Read(p)
		}
		d.buf = nil
	}
	return d.c.Read(p)
}
