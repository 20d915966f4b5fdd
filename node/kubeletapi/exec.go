package kubeletapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/cio"
	"github.com/containerd/containerd/namespaces"
	"k8s.io/cri-streaming/pkg/streaming/remotecommand"
	utilexec "k8s.io/utils/exec"
)

func (s *Server) exec(w http.ResponseWriter, r *http.Request) {
	w, r, cancel := streamContext(w, r)
	defer cancel()
	opts, err := remotecommand.NewOptions(r)
	if err != nil {
		s.httpError(w, r, badRequest("%v", err))
		return
	}
	cmd := r.URL.Query()["command"]
	if len(cmd) == 0 {
		s.httpError(w, r, badRequest("exec: no command given"))
		return
	}
	c, err := s.target(r, false)
	if err != nil {
		s.httpError(w, r, err)
		return
	}
	ex := &execer{s: s, c: c}
	remotecommand.ServeExec(w, r, ex, c.podName, c.podUID, c.name, cmd, opts,
		s.cfg.StreamIdleTimeout, s.cfg.StreamCreationTimeout, remotecommand.SupportedStreamingProtocols)
}

// execer runs commands in one resolved container.
type execer struct {
	s *Server
	c ctrInfo
}

// ExecInContainer runs cmd as a new process of the container's task,
// with the container's own process settings (user, environment, working
// directory, capabilities) and the caller's streams, and returns its
// exit status as a utilexec.ExitError, which the streaming server
// reports to the client as the command's exit code.
func (e *execer) ExecInContainer(ctx context.Context, _, _, _ string, cmd []string, in io.Reader, out, errw io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize, _ time.Duration) error {
	ctx = namespaces.WithNamespace(ctx, e.s.cfg.Namespace)
	task, err := e.c.c.Task(ctx, nil)
	if err != nil {
		return fmt.Errorf("container %s is not running: %w", e.c.id, err)
	}
	spec, err := e.c.c.Spec(ctx)
	if err != nil {
		return fmt.Errorf("spec of container %s: %w", e.c.id, err)
	}
	if spec.Process == nil {
		return fmt.Errorf("container %s has no process spec", e.c.id)
	}
	pspec := *spec.Process
	pspec.Args = cmd
	pspec.Terminal = tty
	pspec.ConsoleSize = nil
	if tty && !hasEnv(pspec.Env, "TERM") {
		pspec.Env = append(append([]string(nil), pspec.Env...), "TERM=xterm")
	}

	// Stdin's end reaches the process only when the shim also closes its
	// end of the FIFO (CloseIO); the process is known only after Exec
	// returns, so the EOF is passed on through a channel.
	stdinDone := make(chan struct{})
	var stdin io.Reader
	if in != nil {
		stdin = &eofNotifier{r: in, done: stdinDone}
	}
	var stdout, stderr io.Writer
	if out != nil {
		stdout = out
	}
	if errw != nil && !tty {
		stderr = errw
	}
	copts := []cio.Opt{cio.WithStreams(stdin, stdout, stderr)}
	if tty {
		copts = append(copts, cio.WithTerminal)
	}
	id, err := execID()
	if err != nil {
		return err
	}
	proc, err := task.Exec(ctx, id, &pspec, cio.NewCreator(copts...))
	if err != nil {
		return fmt.Errorf("exec %q in container %s: %w", strings.Join(cmd, " "), e.c.id, err)
	}
	// The process outlives a cancelled request only as long as it takes
	// to kill it; a fresh context keeps the clean-up from failing with
	// the request's.
	cleanupCtx := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(namespaces.WithNamespace(context.Background(), e.s.cfg.Namespace), 10*time.Second)
	}
	defer func() {
		cctx, cancel := cleanupCtx()
		defer cancel()
		if _, err := proc.Delete(cctx, containerd.WithProcessKill); err != nil && !isNotFound(err) {
			e.s.log.Warn("delete exec process", "container", e.c.id, "exec", id, "err", err)
		}
	}()
	exitc, err := proc.Wait(ctx)
	if err != nil {
		return fmt.Errorf("wait for exec %s in %s: %w", id, e.c.id, err)
	}
	if err := proc.Start(ctx); err != nil {
		return fmt.Errorf("start %q in container %s: %w", strings.Join(cmd, " "), e.c.id, err)
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	defer func() { close(stop); wg.Wait() }()
	if in != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case <-stdinDone:
				cctx, cancel := cleanupCtx()
				defer cancel()
				if err := proc.CloseIO(cctx, containerd.WithStdinCloser); err != nil && !isNotFound(err) {
					e.s.log.Debug("close exec stdin", "exec", id, "err", err)
				}
			case <-stop:
			}
		}()
	}
	if tty && resize != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case size, ok := <-resize:
					if !ok {
						return
					}
					if err := proc.Resize(ctx, uint32(size.Width), uint32(size.Height)); err != nil && ctx.Err() == nil {
						e.s.log.Debug("resize exec tty", "exec", id, "err", err)
					}
				case <-stop:
					return
				}
			}
		}()
	}
	var st containerd.ExitStatus
	select {
	case st = <-exitc:
	case <-ctx.Done():
		cctx, cancel := cleanupCtx()
		_ = proc.Kill(cctx, syscall.SIGKILL)
		cancel()
		return ctx.Err()
	}
	// Output is complete once the FIFOs are drained, which follows the
	// exit; a process that left a child holding them open does not keep
	// the session open past the request.
	drained := make(chan struct{})
	go func() { proc.IO().Wait(); close(drained) }()
	select {
	case <-drained:
	case <-ctx.Done():
	}
	code, _, err := st.Result()
	if err != nil {
		return fmt.Errorf("exec %s in %s: %w", id, e.c.id, err)
	}
	if code != 0 {
		return utilexec.CodeExitError{Err: fmt.Errorf("command terminated with exit code %d", code), Code: int(code)}
	}
	return nil
}

// eofNotifier closes done when its reader reaches the end.
type eofNotifier struct {
	r    io.Reader
	done chan struct{}
	once sync.Once
}

func (n *eofNotifier) Read(p []byte) (int, error) {
	k, err := n.r.Read(p)
	if err != nil {
		n.once.Do(func() { close(n.done) })
	}
	return k, err
}

func hasEnv(env []string, name string) bool {
	for _, e := range env {
		if strings.HasPrefix(e, name+"=") {
			return true
		}
	}
	return false
}

func execID() (string, error) {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("exec id: %w", err)
	}
	return "exec-" + hex.EncodeToString(b), nil
}
