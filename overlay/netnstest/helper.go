package netnstest

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// helperEnv marks a process started by StartHelper.
const helperEnv = "BARGE_NETNSTEST_HELPER"

// CallTimeout bounds one helper call, so a wedged helper fails the test
// with a message instead of hanging it until the test binary's timeout.
const CallTimeout = 2 * time.Minute

// Handler serves one operation in a helper process. arg is the caller's
// argument as JSON; the result is sent back as JSON.
type Handler func(ctx context.Context, log *slog.Logger, arg json.RawMessage) (any, error)

type request struct {
	ID  int             `json:"id"`
	Op  string          `json:"op"`
	Arg json.RawMessage `json:"arg,omitempty"`
}

type response struct {
	ID     int             `json:"id"`
	Result json.RawMessage `json:"result,omitempty"`
	Error  string          `json:"error,omitempty"`
}

// Main is a TestMain body. In a process started by StartHelper it serves
// the handlers newHandlers makes (one set per process, so they may keep
// state, as an agent does) until its standard input closes, and returns
// without running any test; otherwise it runs the tests.
func Main(m *testing.M, newHandlers func() map[string]Handler) int {
	if os.Getenv(helperEnv) == "" {
		return m.Run()
	}
	return serve(newHandlers())
}

func serve(handlers map[string]Handler) int {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 16<<20)
	out := json.NewEncoder(os.Stdout)
	for in.Scan() {
		var req request
		var resp response
		if err := json.Unmarshal(in.Bytes(), &req); err != nil {
			resp.Error = fmt.Sprintf("helper: bad request: %v", err)
		} else if h, ok := handlers[req.Op]; !ok {
			resp.ID = req.ID
			resp.Error = fmt.Sprintf("helper: no operation %q", req.Op)
		} else {
			resp.ID = req.ID
			res, err := h(ctx, log.With("op", req.Op), req.Arg)
			if err != nil {
				resp.Error = err.Error()
			} else if b, err := json.Marshal(res); err != nil {
				resp.Error = fmt.Sprintf("helper: encode result: %v", err)
			} else {
				resp.Result = b
			}
		}
		if err := out.Encode(resp); err != nil {
			log.Error("write response", "err", err)
			return 1
		}
	}
	return 0
}

// Helper is a helper process: the test binary, re-executed inside a
// host's namespace, serving calls.
type Helper struct {
	t      testing.TB
	name   string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	enc    *json.Encoder
	mu     sync.Mutex
	nextID int
	resps  chan response
	exited chan struct{}
	logf   string
}

// StartHelper starts a helper process in the namespace at nsPath. Its
// standard error (the code under test's logs) is shown if the test fails.
// It is killed in t.Cleanup if still running.
func StartHelper(t testing.TB, name, nsPath string) *Helper {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	logf := filepath.Join(t.TempDir(), name+".log")
	lf, err := os.OpenFile(logf, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"=1")
	cmd.Stderr = lf
	// The helper dies with the test binary, whatever kills it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := StartIn(nsPath, cmd); err != nil {
		t.Fatalf("netnstest: start helper %s: %v", name, err)
	}
	h := &Helper{
		t: t, name: name, cmd: cmd, stdin: stdin, enc: json.NewEncoder(stdin),
		resps: make(chan response, 1), exited: make(chan struct{}), logf: logf,
	}
	go func() {
		dec := json.NewDecoder(stdout)
		for {
			var r response
			if err := dec.Decode(&r); err != nil {
				break
			}
			h.resps <- r
		}
		_ = cmd.Wait()
		close(h.exited)
	}()
	t.Cleanup(func() {
		h.Kill()
		if t.Failed() {
			b, _ := os.ReadFile(logf)
			t.Logf("helper %s log:\n%s", name, b)
		}
	})
	return h
}

// Call runs op with arg in the helper and decodes its result into result
// (which may be nil).
func (h *Helper) Call(op string, arg, result any) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.nextID++
	req := request{ID: h.nextID, Op: op}
	if arg != nil {
		b, err := json.Marshal(arg)
		if err != nil {
			return fmt.Errorf("helper %s: %s: encode: %w", h.name, op, err)
		}
		req.Arg = b
	}
	if err := h.enc.Encode(req); err != nil {
		return fmt.Errorf("helper %s: %s: %w", h.name, op, err)
	}
	timer := time.NewTimer(CallTimeout)
	defer timer.Stop()
	select {
	case r := <-h.resps:
		if r.ID != req.ID {
			return fmt.Errorf("helper %s: %s: answer to call %d, want %d", h.name, op, r.ID, req.ID)
		}
		if r.Error != "" {
			return fmt.Errorf("helper %s: %s: %s", h.name, op, r.Error)
		}
		if result != nil {
			if err := json.Unmarshal(r.Result, result); err != nil {
				return fmt.Errorf("helper %s: %s: decode %s: %w", h.name, op, r.Result, err)
			}
		}
		return nil
	case <-h.exited:
		return fmt.Errorf("helper %s: %s: helper exited (%v)", h.name, op, h.cmd.ProcessState)
	case <-timer.C:
		return fmt.Errorf("helper %s: %s: no answer within %v", h.name, op, CallTimeout)
	}
}

// MustCall is Call that fails the test on error.
func (h *Helper) MustCall(op string, arg, result any) {
	h.t.Helper()
	if err := h.Call(op, arg, result); err != nil {
		h.t.Fatal(err)
	}
}

// Kill ends the helper with SIGKILL, as a crash would, and waits for it.
func (h *Helper) Kill() {
	select {
	case <-h.exited:
		return
	default:
	}
	_ = h.cmd.Process.Kill()
	<-h.exited
}

// Stop closes the helper's input, which ends its serving loop, and waits
// for it to exit.
func (h *Helper) Stop() error {
	h.stdin.Close()
	select {
	case <-h.exited:
	case <-time.After(CallTimeout):
		h.Kill()
		return errors.New("netnstest: helper did not exit when its input closed")
	}
	if !h.cmd.ProcessState.Success() {
		return fmt.Errorf("netnstest: helper %s: %v", h.name, h.cmd.ProcessState)
	}
	return nil
}
