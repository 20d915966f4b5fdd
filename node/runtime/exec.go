package runtime

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/cio"
)

// ErrExecTimeout is returned when a command run by Exec outlives its
// timeout (and was killed).
var ErrExecTimeout = errors.New("command timed out")

type lockedBuffer struct {
	mu  sync.Mutex
	b   bytes.Buffer
	max int
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if room := l.max - l.b.Len(); room > 0 {
		if len(p) > room {
			l.b.Write(p[:room])
		} else {
			l.b.Write(p)
		}
	}
	return len(p), nil
}

func (l *lockedBuffer) Bytes() []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]byte(nil), l.b.Bytes()...)
}

// Exec runs cmd in a running container, as exec probes and hooks do, and
// returns its output (stdout and stderr, at most 10 KiB) and exit code.
// A command still running after timeout is killed and ErrExecTimeout
// returned.
func (r *Runtime) Exec(ctx context.Context, containerID string, cmd []string, timeout time.Duration) ([]byte, int, error) {
	ctx = r.ctx(ctx)
	if len(cmd) == 0 {
		return nil, -1, errors.New("runtime: exec: no command")
	}
	c, err := r.client.LoadContainer(ctx, containerID)
	if err != nil {
		return nil, -1, fmt.Errorf("runtime: exec in %s: %w", containerID, err)
	}
	spec, err := c.Spec(ctx)
	if err != nil {
		return nil, -1, fmt.Errorf("runtime: exec in %s: %w", containerID, err)
	}
	task, err := c.Task(ctx, nil)
	if err != nil {
		return nil, -1, fmt.Errorf("runtime: exec in %s: %w", containerID, err)
	}
	pspec := *spec.Process
	pspec.Args = cmd
	pspec.Terminal = false
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	execID := "exec-" + hex.EncodeToString(b)
	out := &lockedBuffer{max: 10 << 10}
	p, err := task.Exec(ctx, execID, &pspec, cio.NewCreator(cio.WithFIFODir(filepath.Join(r.cfg.StateDir, "fifo")), cio.WithStreams(nil, out, out)))
	if err != nil {
		return nil, -1, fmt.Errorf("runtime: exec in %s: %w", containerID, err)
	}
	defer func() {
		dctx, cancel := context.WithTimeout(r.ctx(context.Background()), 10*time.Second)
		defer cancel()
		_, _ = p.Delete(dctx, containerd.WithProcessKill)
	}()
	ch, err := p.Wait(ctx)
	if err != nil {
		return nil, -1, fmt.Errorf("runtime: exec in %s: %w", containerID, err)
	}
	if err := p.Start(ctx); err != nil {
		return nil, -1, fmt.Errorf("runtime: exec in %s: %w", containerID, err)
	}
	if timeout <= 0 {
		timeout = time.Hour
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case st := <-ch:
		code, _, err := st.Result()
		if err != nil {
			return out.Bytes(), -1, fmt.Errorf("runtime: exec in %s: %w", containerID, err)
		}
		// Delete waits for the output to drain.
		_, _ = p.Delete(ctx)
		return out.Bytes(), int(code), nil
	case <-timer.C:
		_ = p.Kill(ctx, syscall.SIGKILL)
		<-ch
		return out.Bytes(), -1, ErrExecTimeout
	case <-ctx.Done():
		_ = p.Kill(r.ctx(context.Background()), syscall.SIGKILL)
		return out.Bytes(), -1, ctx.Err()
	}
}
