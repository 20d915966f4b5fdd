package runtime

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"k8s.io/cri-streaming/pkg/streaming/remotecommand"
)

// maxLogLine is the longest line written as one log entry; a longer one
// is split into partial (P) entries, as containerd's CRI does.
const maxLogLine = 16 << 10

// streams is a running container's IO: what the FIFOs carry goes to the
// log file in the CRI format and to every attached client; stdin, when
// the container has one, stays open across attaches.
type streams struct {
	logMu sync.Mutex
	log   *os.File

	stdinR  *io.PipeReader
	stdinW  *io.PipeWriter
	stdinMu sync.Mutex // one attached writer at a time

	mu       sync.Mutex
	attached map[int]*attachment
	next     int

	pipes []*io.PipeWriter
	wg    sync.WaitGroup
	done  chan struct{} // closed once the container's exit is recorded
	once  sync.Once
}

type attachment struct {
	stdout, stderr io.Writer
	failed         chan struct{}
	once           sync.Once
}

func newStreams(logPath string, stdin bool) (*streams, error) {
	if err := os.MkdirAll(filepath.Dir(logPath), 0o755); err != nil {
		return nil, fmt.Errorf("log directory: %w", err)
	}
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return nil, fmt.Errorf("log file: %w", err)
	}
	s := &streams{log: f, attached: map[int]*attachment{}, done: make(chan struct{})}
	if stdin {
		s.stdinR, s.stdinW = io.Pipe()
	}
	return s, nil
}

// stdin is what cio copies into the container's stdin FIFO (nil: none).
func (s *streams) stdin() io.Reader {
	if s.stdinR == nil {
		return nil
	}
	return s.stdinR
}

// writer returns the sink of one output stream ("stdout" or "stderr").
func (s *streams) writer(stream string) io.Writer {
	pr, pw := io.Pipe()
	s.pipes = append(s.pipes, pw)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.copyLines(stream, pr)
	}()
	return pw
}

// copyLines logs r's output line by line. A line longer than the buffer,
// and a last line without its newline, are logged partial (P), as
// containerd's CRI does, so readers give back exactly what was written
// ("echo -n DONE" is "DONE", not "DONE\n").
func (s *streams) copyLines(stream string, r io.Reader) {
	br := bufio.NewReaderSize(r, maxLogLine)
	for {
		chunk, err := br.ReadSlice('\n')
		if len(chunk) > 0 {
			tag, line := "P", chunk
			if line[len(line)-1] == '\n' {
				tag, line = "F", line[:len(line)-1]
			}
			s.writeLog(stream, tag, line)
			s.forward(stream, append([]byte(nil), chunk...))
		}
		if err != nil && err != bufio.ErrBufferFull {
			return
		}
	}
}

func (s *streams) writeLog(stream, tag string, line []byte) {
	s.logMu.Lock()
	defer s.logMu.Unlock()
	if s.log == nil {
		return
	}
	buf := make([]byte, 0, len(line)+48)
	buf = time.Now().UTC().AppendFormat(buf, time.RFC3339Nano)
	buf = append(buf, ' ')
	buf = append(buf, stream...)
	buf = append(buf, ' ')
	buf = append(buf, tag...)
	buf = append(buf, ' ')
	buf = append(buf, line...)
	buf = append(buf, '\n')
	_, _ = s.log.Write(buf)
}

func (s *streams) forward(stream string, p []byte) {
	s.mu.Lock()
	var targets []*attachment
	for _, a := range s.attached {
		targets = append(targets, a)
	}
	s.mu.Unlock()
	for _, a := range targets {
		w := a.stdout
		if stream == "stderr" && a.stderr != nil {
			w = a.stderr
		}
		if w == nil {
			continue
		}
		if _, err := w.Write(p); err != nil {
			a.once.Do(func() { close(a.failed) })
		}
	}
}

// close ends the copies (after containerd drained the FIFOs) and the log.
func (s *streams) close() {
	s.once.Do(func() {
		for _, pw := range s.pipes {
			pw.Close()
		}
		s.wg.Wait()
		if s.stdinW != nil {
			s.stdinW.Close()
		}
		s.logMu.Lock()
		if s.log != nil {
			s.log.Close()
			s.log = nil
		}
		s.logMu.Unlock()
		close(s.done)
	})
}

// Attach connects a client to a running container's IO, as `kubectl
// attach` does: it receives the container's output from now on, its input
// goes to the container's stdin (if the container has one), and resize
// events resize a TTY container's terminal. It returns when ctx ends, the
// client stops reading, or the container exits.
func (r *Runtime) Attach(ctx context.Context, containerID string, stdin io.Reader, stdout, stderr io.Writer, tty bool, resize <-chan remotecommand.TerminalSize) error {
	r.mu.Lock()
	s := r.streams[containerID]
	r.mu.Unlock()
	if s == nil {
		return fmt.Errorf("runtime: attach %s: container is not running", containerID)
	}
	a := &attachment{stdout: stdout, stderr: stderr, failed: make(chan struct{})}
	if tty {
		a.stderr = nil // a terminal has one stream
	}
	s.mu.Lock()
	id := s.next
	s.next++
	s.attached[id] = a
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.attached, id)
		s.mu.Unlock()
	}()
	if stdin != nil && s.stdinW != nil {
		go func() {
			s.stdinMu.Lock()
			defer s.stdinMu.Unlock()
			// The container's stdin stays open when this client's ends:
			// the next attach writes to it again.
			_, _ = io.Copy(s.stdinW, stdin)
		}()
	}
	if resize != nil {
		go func() {
			for {
				select {
				case <-ctx.Done():
					return
				case <-s.done:
					return
				case sz, ok := <-resize:
					if !ok {
						return
					}
					if err := r.resize(ctx, containerID, sz); err != nil {
						r.log.Debug("resize", "container", containerID, "err", err)
					}
				}
			}
		}()
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-a.failed:
		return errors.New("runtime: attach: the client stopped reading")
	case <-s.done:
		return nil
	}
}

func (r *Runtime) resize(ctx context.Context, id string, sz remotecommand.TerminalSize) error {
	ctx = r.ctx(ctx)
	c, err := r.client.LoadContainer(ctx, id)
	if err != nil {
		return err
	}
	t, err := c.Task(ctx, nil)
	if err != nil {
		return err
	}
	return t.Resize(ctx, uint32(sz.Width), uint32(sz.Height))
}
