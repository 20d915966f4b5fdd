package lab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Process states reported by Status.
const (
	StateRunning = "running"
	StatePaused  = "paused"
	StateStopped = "stopped"
)

// killTimeout bounds the wait for a SIGKILLed process to disappear; the
// kernel needs milliseconds, so running into it means something is wrong.
const killTimeout = 10 * time.Second

func (l *Lab) serverArgs(h *Host) []string {
	var cluster []string
	for _, s := range l.Hosts {
		if s.Role == RoleServer {
			cluster = append(cluster, s.Name+"="+s.PeerAddr)
		}
	}
	args := []string{"netns", "exec", h.Netns, l.Barge, "server",
		"--name", h.Name,
		"--data-dir", h.DataDir,
		"--certs", l.Certs,
		"--peer-addr", h.PeerAddr,
		"--client-addr", h.ClientAddr,
		"--api-addr", h.APIAddr,
		"--initial-cluster", strings.Join(cluster, ","),
	}
	return append(args, l.ServerArgs...)
}

// startServer starts h's barge server detached from the caller: its own
// process group keeps a Ctrl-C of `barge lab up` (or of a test) from
// reaching it, and nothing ties its life to ours. `ip netns exec` execs in
// place, so the pid is the server's.
func (l *Lab) startServer(h *Host) error {
	if err := os.MkdirAll(h.DataDir, 0o700); err != nil {
		return fmt.Errorf("lab: start %s: %w", h.Name, err)
	}
	if err := os.MkdirAll(filepath.Dir(h.Log), 0o755); err != nil {
		return fmt.Errorf("lab: start %s: %w", h.Name, err)
	}
	logf, err := os.OpenFile(h.Log, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("lab: start %s: %w", h.Name, err)
	}
	defer logf.Close() // the child holds its own copy
	fmt.Fprintf(logf, "--- lab: starting %s at %s\n", h.Name, time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command("ip", l.serverArgs(h)...)
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("lab: start %s: ip %s: %w", h.Name, strings.Join(cmd.Args[1:], " "), err)
	}
	h.PID = cmd.Process.Pid
	// While this process lives it is the server's parent; reaping it keeps
	// a killed server from lingering as a zombie. If this process exits
	// first, init adopts and reaps it.
	go func() { _ = cmd.Wait() }()
	l.log.Info("started server", "host", h.Name, "pid", h.PID, "netns", h.Netns)
	return nil
}

// Exec returns a command that runs argv inside host's namespace.
func (l *Lab) Exec(ctx context.Context, host string, argv []string) *exec.Cmd {
	ns := hostNS(l.ID, host)
	if h, err := l.Host(host); err == nil {
		ns = h.Netns
	}
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns}, argv...)...)
}

// server returns the named server host.
func (l *Lab) server(name string) (*Host, error) {
	h, err := l.Host(name)
	if err != nil {
		return nil, err
	}
	if h.Role != RoleServer {
		return nil, fmt.Errorf("lab: %s is a %s; only servers run a process", name, h.Role)
	}
	return h, nil
}

// Kill SIGKILLs host's server (its whole process group) and waits until it
// is gone. Killing a stopped server is not an error.
func (l *Lab) Kill(host string) error {
	h, err := l.server(host)
	if err != nil {
		return err
	}
	if h.PID <= 0 || !isOurServer(h.PID, h.DataDir) {
		return nil
	}
	if err := killGroup(h.PID); err != nil {
		return fmt.Errorf("lab: kill %s (pid %d): %w", host, h.PID, err)
	}
	l.log.Info("killed server", "host", host, "pid", h.PID)
	return nil
}

// Start restarts host's server with the flags it was first started with;
// its data directory is kept, so it rejoins as the same member.
func (l *Lab) Start(host string) error {
	h, err := l.server(host)
	if err != nil {
		return err
	}
	if h.PID > 0 && isOurServer(h.PID, h.DataDir) {
		return fmt.Errorf("lab: start %s: already running as pid %d", host, h.PID)
	}
	if err := l.startServer(h); err != nil {
		return err
	}
	return l.Save()
}

// Pause freezes host's server with SIGSTOP: its sockets stay open but it
// answers nothing, like a long GC pause or a hung VM.
func (l *Lab) Pause(host string) error { return l.signal(host, syscall.SIGSTOP) }

// Resume continues a paused server with SIGCONT.
func (l *Lab) Resume(host string) error { return l.signal(host, syscall.SIGCONT) }

func (l *Lab) signal(host string, sig syscall.Signal) error {
	h, err := l.server(host)
	if err != nil {
		return err
	}
	if h.PID <= 0 || !isOurServer(h.PID, h.DataDir) {
		return fmt.Errorf("lab: %s %s: server is not running", sig, host)
	}
	if err := syscall.Kill(-h.PID, sig); err != nil {
		return fmt.Errorf("lab: %s %s (pid %d): %w", sig, host, h.PID, err)
	}
	l.log.Info("signalled server", "host", host, "signal", sig.String())
	return nil
}

// procState returns the state letter of /proc/PID/stat, or 0 when the
// process does not exist.
func procState(pid int) byte {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// The command name is in parentheses and may hold spaces; the state
	// follows the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return 0
	}
	return s[i+2]
}

func alive(pid int) bool {
	st := procState(pid)
	return st != 0 && st != 'Z' && st != 'X'
}

// isOurServer guards every signal sent to a pid from lab.json: after a
// reboot or a long time the pid may belong to an unrelated process, whose
// command line will not name this host's data directory.
func isOurServer(pid int, dataDir string) bool {
	if dataDir == "" || !alive(pid) {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return false
	}
	for _, a := range strings.Split(string(b), "\x00") {
		if a == dataDir {
			return true
		}
	}
	return false
}

func stateOf(pid int, dataDir string) string {
	if pid <= 0 || !isOurServer(pid, dataDir) {
		return StateStopped
	}
	switch procState(pid) {
	case 'T', 't':
		return StatePaused
	default:
		return StateRunning
	}
}

// killGroup SIGKILLs the process group led by pid and waits for pid to go.
func killGroup(pid int) error {
	if err := syscall.Kill(-pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return err
	}
	return waitGone(pid)
}

func killPID(pid int) error {
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return err
	}
	return waitGone(pid)
}

func waitGone(pid int) error {
	deadline := time.Now().Add(killTimeout)
	for alive(pid) {
		if time.Now().After(deadline) {
			return fmt.Errorf("pid %d still alive %s after SIGKILL", pid, killTimeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return nil
}
