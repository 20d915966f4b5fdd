package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/barge-dev/barge/raftstore/loopport"
	"github.com/barge-dev/barge/raftstore/pki"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// System names, as they appear in reports.
const (
	SystemBarge  = "barge"
	SystemEtcd   = "etcd"   // Debian's etcd 3.4
	SystemEtcd37 = "etcd37" // etcd 3.7 from the Go module barge pins (chaos/bench/etcd37)
)

// isEtcd reports whether system is one of the etcds.
func isEtcd(system string) bool { return system == SystemEtcd || system == SystemEtcd37 }

// stopGrace is how long a member gets to exit after SIGTERM before SIGKILL.
const stopGrace = 10 * time.Second

// Member is one process of a cluster. Its arguments are kept so that a
// killed member restarts with exactly the same data dir and flags.
type Member struct {
	Name       string
	ClientAddr string // host:port of the client (etcd v3 gRPC) listener
	PeerAddr   string
	APIAddr    string // a third port, for a server's Kubernetes API
	DataDir    string
	bin        string
	args       []string
	logPath    string
	cmd        *exec.Cmd
	done       chan struct{} // closed when cmd has been waited for
}

// Cluster is three members of one system on loopback.
type Cluster struct {
	System  string
	Members []*Member
	certs   string
	log     *slog.Logger
	// ports holds the members' addresses for the cluster's life, so a
	// stopped member starts again on the same ones and nothing else
	// takes them in between.
	ports *loopport.Reservation
}

// newCluster reserves addresses and lays out data dirs for three members
// of system under outDir; args builds each member's command line.
func newCluster(system, bin, outDir, certs string, log *slog.Logger,
	args func(m *Member, initial string) []string) (*Cluster, error) {
	ports, err := loopport.Reserve(9)
	if err != nil {
		return nil, err
	}
	c := &Cluster{System: system, certs: certs, log: log.With("system", system), ports: ports}
	var initial []string
	for i := 1; i <= 3; i++ {
		a := ports.Addrs[3*(i-1):]
		name := fmt.Sprintf("%s%d", system, i)
		m := &Member{Name: name, PeerAddr: a[0], ClientAddr: a[1], APIAddr: a[2], bin: bin,
			DataDir: filepath.Join(outDir, name), logPath: filepath.Join(outDir, name+".log")}
		c.Members = append(c.Members, m)
		initial = append(initial, m.initialEntry(system))
	}
	for _, m := range c.Members {
		m.args = args(m, strings.Join(initial, ","))
	}
	return c, nil
}

func (m *Member) initialEntry(system string) string {
	if isEtcd(system) {
		return m.Name + "=https://" + m.PeerAddr
	}
	return m.Name + "=" + m.PeerAddr
}

// NewEtcdCluster lays out a 3-member etcd cluster named system with
// mutual TLS on both ports, using the certificates barge wrote: the same
// trust as barge. Both etcd 3.4 and 3.7 take these flags.
func NewEtcdCluster(system, bin, outDir, certs string, log *slog.Logger) (*Cluster, error) {
	f := func(name string) string { return filepath.Join(certs, name) }
	return newCluster(system, bin, outDir, certs, log, func(m *Member, initial string) []string {
		return []string{
			"--name", m.Name, "--data-dir", m.DataDir,
			"--listen-client-urls", "https://" + m.ClientAddr, "--advertise-client-urls", "https://" + m.ClientAddr,
			"--listen-peer-urls", "https://" + m.PeerAddr, "--initial-advertise-peer-urls", "https://" + m.PeerAddr,
			"--initial-cluster", initial, "--initial-cluster-state", "new", "--initial-cluster-token", "barge-bench",
			"--cert-file", f(pki.ServerCertFile), "--key-file", f(pki.ServerKeyFile),
			"--trusted-ca-file", f(pki.CACertFile), "--client-cert-auth",
			"--peer-cert-file", f(pki.PeerCertFile), "--peer-key-file", f(pki.PeerKeyFile),
			"--peer-trusted-ca-file", f(pki.CACertFile), "--peer-client-cert-auth",
			"--logger", "zap", "--log-outputs", "stderr",
		}
	})
}

// NewBargeCluster lays out a 3-peer barge cluster as an operator would
// start it, with extra server flags appended to each member's.
func NewBargeCluster(bin, outDir, certs string, extra []string, log *slog.Logger) (*Cluster, error) {
	return newCluster(SystemBarge, bin, outDir, certs, log, func(m *Member, initial string) []string {
		return append([]string{"server", "--name", m.Name, "--data-dir", m.DataDir, "--certs", certs,
			"--peer-addr", m.PeerAddr, "--client-addr", m.ClientAddr, "--initial-cluster", initial}, extra...)
	})
}

// start launches the member's process; its output goes to a log file
// next to its data dir, for post-mortems of a failed run.
func (m *Member) start() error {
	logf, err := os.OpenFile(m.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("open log of %s: %w", m.Name, err)
	}
	cmd := exec.Command(m.bin, m.args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start %s: %w", m.Name, err)
	}
	m.cmd, m.done = cmd, make(chan struct{})
	go func(done chan struct{}) {
		_ = cmd.Wait() // a killed member exits non-zero; that is the point
		logf.Close()
		close(done)
	}(m.done)
	return nil
}

// logTail is the last n lines of the member's log, for error messages.
func (m *Member) logTail(n int) string {
	b, err := os.ReadFile(m.logPath)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], " | ")
}

// running reports whether the member's process is alive.
func (m *Member) running() bool {
	if m.cmd == nil {
		return false
	}
	select {
	case <-m.done:
		return false
	default:
		return true
	}
}

// kill sends SIGKILL and waits for the process to be gone, so that its
// ports and data dir are free for the restart.
func (m *Member) kill() {
	if !m.running() {
		return
	}
	_ = m.cmd.Process.Kill()
	<-m.done
}

// stop asks the member to exit with SIGTERM and kills it after stopGrace.
func (m *Member) stop() {
	if !m.running() {
		return
	}
	_ = m.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-m.done:
	case <-time.After(stopGrace):
		m.kill()
	}
}

// Start launches every member.
func (c *Cluster) Start() error {
	for _, m := range c.Members {
		if err := m.start(); err != nil {
			c.Stop()
			return fmt.Errorf("%s: %w", c.System, err)
		}
	}
	c.log.Info("cluster started", "endpoints", c.Endpoints())
	return nil
}

// Stop terminates every member, in parallel so that shutdown takes one
// grace period, not three.
func (c *Cluster) Stop() {
	done := make(chan struct{})
	for _, m := range c.Members {
		go func() { m.stop(); done <- struct{}{} }()
	}
	for range c.Members {
		<-done
	}
}

// Endpoints are the client addresses, host:port as the gRPC client wants.
func (c *Cluster) Endpoints() []string {
	eps := make([]string, len(c.Members))
	for i, m := range c.Members {
		eps[i] = m.ClientAddr
	}
	return eps
}

// Client connects to every member with the admin certificate; both
// systems require a client certificate from the CA.
func (c *Cluster) Client() (*clientv3.Client, error) {
	return c.clientOf(c.Endpoints()...)
}

// memberClient connects to m alone, as `etcdctl --endpoints` with one
// address does: what it measures is that member's, not the balancer's.
func (c *Cluster) memberClient(m *Member) (*clientv3.Client, error) {
	return c.clientOf(m.ClientAddr)
}

func (c *Cluster) clientOf(endpoints ...string) (*clientv3.Client, error) {
	tlsCfg, err := pki.ClientTLS(c.certs)
	if err != nil {
		return nil, fmt.Errorf("client TLS: %w", err)
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   endpoints,
		TLS:         tlsCfg,
		DialTimeout: 5 * time.Second,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		return nil, fmt.Errorf("%s client: %w", c.System, err)
	}
	return cli, nil
}

// memberStatus is what Maintenance.Status says about one member.
type memberStatus struct {
	id, leader, term   uint64
	committed, applied uint64 // Raft indexes
	errs               []string
}

// statuses asks every member for its status with a short timeout each.
func (c *Cluster) statuses(ctx context.Context, cli *clientv3.Client) ([]memberStatus, error) {
	out := make([]memberStatus, len(c.Members))
	for i, m := range c.Members {
		sctx, cancel := context.WithTimeout(ctx, time.Second)
		st, err := cli.Status(sctx, m.ClientAddr)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("status of %s: %w", m.Name, err)
		}
		out[i] = memberStatus{id: st.Header.MemberId, leader: st.Leader, term: st.RaftTerm, errs: st.Errors,
			committed: st.RaftIndex, applied: st.RaftAppliedIndex}
	}
	return out, nil
}

// term is the highest Raft term any member reports. Every election, won
// or not, raises it, so the difference across a workload counts the
// leader changes the load provoked.
func (c *Cluster) term(ctx context.Context, cli *clientv3.Client) (uint64, error) {
	sts, err := c.statuses(ctx, cli)
	if err != nil {
		return 0, err
	}
	var t uint64
	for _, st := range sts {
		t = max(t, st.term)
	}
	return t, nil
}

// agreedLeader returns the index of the member every member agrees leads,
// or an error when they do not agree yet.
func agreedLeader(members []*Member, sts []memberStatus) (int, error) {
	lead := sts[0].leader
	for i, st := range sts {
		if st.leader == 0 || st.leader != lead {
			return -1, fmt.Errorf("%s sees leader %x, %s sees %x", members[0].Name, lead, members[i].Name, st.leader)
		}
		if len(st.errs) > 0 {
			return -1, fmt.Errorf("%s: %s", members[i].Name, strings.Join(st.errs, "; "))
		}
	}
	for i, st := range sts {
		if st.id == lead {
			return i, nil
		}
	}
	return -1, fmt.Errorf("leader %x is not one of the members", lead)
}

// WaitHealthy polls Status until all three members answer, agree on a
// leader and have each applied everything the leader had committed when
// they first agreed, or timeout passes. A member that is up but still
// catching up (replaying its log after a restart) cannot vote promptly,
// so killing the leader then would time a double fault, not a failover.
// Polling is the only way: neither system offers an event for "the
// cluster is whole again".
func (c *Cluster) WaitHealthy(ctx context.Context, cli *clientv3.Client, timeout time.Duration) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var (
		last   error
		target uint64 // the leader's commit index once all agreed
	)
	for {
		for _, m := range c.Members {
			if !m.running() {
				return -1, fmt.Errorf("%s exited; see %s, which ends: %s", m.Name, m.logPath, m.logTail(3))
			}
		}
		sts, err := c.statuses(ctx, cli)
		if err == nil {
			var lead int
			if lead, err = agreedLeader(c.Members, sts); err == nil {
				if target == 0 {
					target = sts[lead].committed
				}
				if err = caughtUp(c.Members, sts, target); err == nil {
					return lead, nil
				}
			}
		}
		last = err
		select {
		case <-ctx.Done():
			return -1, fmt.Errorf("%s not healthy after %s: %w", c.System, timeout, errors.Join(ctx.Err(), last))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// caughtUp reports a member that has not yet applied index target.
func caughtUp(members []*Member, sts []memberStatus, target uint64) error {
	for i, st := range sts {
		if st.applied < target {
			return fmt.Errorf("%s has applied index %d of %d", members[i].Name, st.applied, target)
		}
	}
	return nil
}
