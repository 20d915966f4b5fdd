package kubeletapi

import (
	"context"
	"fmt"
	"io"
	"net/http"

	"k8s.io/cri-streaming/pkg/streaming/remotecommand"
)

func (s *Server) attach(w http.ResponseWriter, r *http.Request) {
	w, r, cancel := streamContext(w, r)
	defer cancel()
	if s.cfg.Attacher == nil {
		http.Error(w, "attach is not supported by this node", http.StatusNotImplemented)
		return
	}
	opts, err := remotecommand.NewOptions(r)
	if err != nil {
		s.httpError(w, r, badRequest("%v", err))
		return
	}
	c, err := s.target(r, false)
	if err != nil {
		s.httpError(w, r, err)
		return
	}
	remotecommand.ServeAttach(w, r, attacher{s: s, c: c}, c.podName, c.podUID, c.name, opts,
		s.cfg.StreamIdleTimeout, s.cfg.StreamCreationTimeout, remotecommand.SupportedStreamingProtocols)
}

// attacher hands one resolved container to the runtime's Attacher.
type attacher struct {
	s *Server
	c ctrInfo
}

func (a attacher) AttachContainer(ctx context.Context, _, _, _ string, in io.Reader, out, errw io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize) error {
	// Typed nils would reach the runtime as non-nil interfaces.
	var stdin io.Reader
	var stdout, stderr io.Writer
	if in != nil {
		stdin = in
	}
	if out != nil {
		stdout = out
	}
	if errw != nil && !tty {
		stderr = errw
	}
	if err := a.s.cfg.Attacher.Attach(ctx, a.c.id, stdin, stdout, stderr, tty, resize); err != nil {
		return fmt.Errorf("attach to container %s: %w", a.c.id, err)
	}
	return nil
}
