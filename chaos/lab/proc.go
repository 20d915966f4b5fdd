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
	// Every server gossips, so node health sees agents die within
	// seconds; each joins the others (none to join for a lone server).
	// The servers share the underlay with the nodes, so they route to
	// pods directly (--pod-routes): the API server's proxy and webhooks
	// reach them.
	if h.GossipAddr != "" {
		args = append(args, "--gossip-addr", h.GossipAddr, "--pod-routes")
		if join := l.gossipServers(h.Name); len(join) > 0 {
			args = append(args, "--gossip-join", strings.Join(join, ","))
		}
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
	pid, err := startDetached(h.Log, h.Name, "ip", l.serverArgs(h)...)
	if err != nil {
		return err
	}
	h.PID = pid
	l.log.Info("started server", "host", h.Name, "pid", h.PID, "netns", h.Netns)
	return nil
}

// startDetached starts argv in its own process group with output appended
// to logPath, and returns its pid. While this process lives it is the
// child's parent; reaping it keeps a killed child from lingering as a
// zombie. If this process exits first, init adopts and reaps it.
func startDetached(logPath, what string, name string, args ...string) (int, error) {
	if err := os.MkdirAll(filepath.Dir(logPath), 0o755); err != nil {
		return 0, fmt.Errorf("lab: start %s: %w", what, err)
	}
	logf, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return 0, fmt.Errorf("lab: start %s: %w", what, err)
	}
	defer logf.Close() // the child holds its own copy
	fmt.Fprintf(logf, "--- lab: starting %s at %s\n", what, time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(name, args...)
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("lab: start %s: %s %s: %w", what, name, strings.Join(args, " "), err)
	}
	go func() { _ = cmd.Wait() }()
	return cmd.Process.Pid, nil
}

// Exec returns a command that runs argv inside host's namespace.
func (l *Lab) Exec(ctx context.Context, host string, argv []string) *exec.Cmd {
	ns := hostNS(l.ID, host)
	if h, err := l.Host(host); err == nil {
		ns = h.Netns
	}
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns}, argv...)...)
}

// process is one thing the lab runs that kill, start, pause and resume
// act on: a host's server, agent or registry, or the shared containerd.
type process struct {
	name  string
	pid   *int
	dir   string // the directory its command line names (see isOurs)
	start func(context.Context) error
}

// process returns what runs under name.
func (l *Lab) process(name string) (*process, error) {
	if name == ContainerdName && l.Containerd != nil {
		c := l.Containerd
		return &process{name: name, pid: &c.PID, dir: c.Dir, start: func(ctx context.Context) error { return c.start(ctx, l) }}, nil
	}
	h, err := l.Host(name)
	if err != nil {
		if l.Containerd != nil {
			return nil, fmt.Errorf("%w, or %s", err, ContainerdName)
		}
		return nil, err
	}
	p := &process{name: name, pid: &h.PID, dir: h.DataDir}
	switch h.Role {
	case RoleServer:
		p.start = func(context.Context) error { return l.startServer(h) }
	case RoleNode:
		if l.Containerd == nil {
			return nil, fmt.Errorf("lab: node %s runs no agent (lab without containerd)", name)
		}
		p.start = func(context.Context) error { return l.startAgent(h) }
	case RoleRegistry:
		p.start = func(context.Context) error { return l.startRegistry(h) }
	default:
		return nil, fmt.Errorf("lab: %s is a %s and runs no process", name, h.Role)
	}
	return p, nil
}

func (p *process) running() bool { return *p.pid > 0 && isOurs(*p.pid, p.dir) }

// Kill SIGKILLs what runs under name (its whole process group) and waits
// until it is gone. Killing a stopped process is not an error.
func (l *Lab) Kill(name string) error {
	p, err := l.process(name)
	if err != nil {
		return err
	}
	if !p.running() {
		return nil
	}
	if err := killGroup(*p.pid); err != nil {
		return fmt.Errorf("lab: kill %s (pid %d): %w", name, *p.pid, err)
	}
	l.log.Info("killed", "name", name, "pid", *p.pid)
	return nil
}

// Start restarts what runs under name with the flags it was first
// started with; its data directory is kept, so a server rejoins as the
// same member and an agent re-adopts its pods.
func (l *Lab) Start(name string) error {
	p, err := l.process(name)
	if err != nil {
		return err
	}
	if p.running() {
		return fmt.Errorf("lab: start %s: already running as pid %d", name, *p.pid)
	}
	if err := p.start(context.Background()); err != nil {
		return err
	}
	return l.Save()
}

// Pause freezes what runs under name with SIGSTOP: its sockets stay open
// but it answers nothing, like a long GC pause or a hung VM.
func (l *Lab) Pause(name string) error { return l.signal(name, syscall.SIGSTOP) }

// Resume continues a paused process with SIGCONT.
func (l *Lab) Resume(name string) error { return l.signal(name, syscall.SIGCONT) }

func (l *Lab) signal(name string, sig syscall.Signal) error {
	p, err := l.process(name)
	if err != nil {
		return err
	}
	if !p.running() {
		return fmt.Errorf("lab: %s %s: not running", sig, name)
	}
	if err := syscall.Kill(-*p.pid, sig); err != nil {
		return fmt.Errorf("lab: %s %s (pid %d): %w", sig, name, *p.pid, err)
	}
	// Signals to a group are delivered asynchronously: wait until a
	// paused process shows as stopped, so a status read after Pause sees it.
	deadline := time.Now().Add(killTimeout)
	for sig == syscall.SIGSTOP && procState(*p.pid) != 'T' && procState(*p.pid) != 't' && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	l.log.Info("signalled", "name", name, "signal", sig.String())
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

// isOurs guards every signal sent to a pid from lab.json: after a reboot
// or a long time the pid may belong to an unrelated process, whose command
// line will not name this host's data directory (or a file in it).
func isOurs(pid int, dataDir string) bool {
	if dataDir == "" || !alive(pid) {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return false
	}
	for _, a := range strings.Split(string(b), "\x00") {
		if a == dataDir || strings.HasPrefix(a, dataDir+"/") {
			return true
		}
	}
	return false
}

func stateOf(pid int, dataDir string) string {
	if pid <= 0 || !isOurs(pid, dataDir) {
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
