package storetest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/barge-dev/barge/raftstore"
	"github.com/barge-dev/barge/raftstore/loopport"
	"github.com/barge-dev/barge/raftstore/pki"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// Member is one peer of a test cluster. Server is nil while it is down.
type Member struct {
	Name       string
	PeerAddr   string
	ClientAddr string
	DataDir    string
	Server     *raftstore.Server
	cfg        raftstore.Config
}

// Cluster is an in-process store cluster.
type Cluster struct {
	t        testing.TB
	Dir      string
	CertsDir string
	Members  []*Member
	mu       sync.Mutex
	clients  []*clientv3.Client
}

// Option adjusts every member's configuration.
type Option func(*raftstore.Config)

// WithConfig applies fn to every member's configuration.
func WithConfig(fn func(*raftstore.Config)) Option { return fn }

// NewCluster starts n peers and waits until one of them leads.
func NewCluster(t testing.TB, n int, opts ...Option) *Cluster {
	t.Helper()
	return newCluster(t, n, "", opts)
}

// NewRestoredCluster starts a new n-peer cluster whose data directories
// were prepared from a snapshot file, as `barge snapshot restore` does.
func NewRestoredCluster(t testing.TB, n int, snapshot string, opts ...Option) *Cluster {
	t.Helper()
	return newCluster(t, n, snapshot, opts)
}

func newCluster(t testing.TB, n int, snapshot string, opts []Option) *Cluster {
	t.Helper()
	dir := t.TempDir()
	c := &Cluster{t: t, Dir: dir, CertsDir: filepath.Join(dir, "certs")}
	if err := pki.InitDir(c.CertsDir, pki.InitOptions{Hosts: []string{"127.0.0.1"}, APIPort: 6443}); err != nil {
		t.Fatalf("certs: %v", err)
	}
	var initial []raftstore.Peer
	for i := 0; i < n; i++ {
		m := &Member{
			Name:       fmt.Sprintf("s%d", i+1),
			PeerAddr:   loopport.Addr(t),
			ClientAddr: loopport.Addr(t),
		}
		m.DataDir = filepath.Join(dir, m.Name)
		initial = append(initial, raftstore.Peer{Name: m.Name, Addr: m.PeerAddr})
		c.Members = append(c.Members, m)
	}
	for _, m := range c.Members {
		m.cfg = raftstore.Config{
			Name: m.Name, DataDir: m.DataDir, CertsDir: c.CertsDir,
			PeerAddr: m.PeerAddr, ClientAddr: m.ClientAddr,
			InitialCluster:   initial,
			HeartbeatTimeout: 300 * time.Millisecond, ElectionTimeout: 300 * time.Millisecond,
			CompactionMode: raftstore.CompactionOff,
			Logger:         testLogger(t, m.Name),
			RaftLog:        io.Discard,
		}
		for _, o := range opts {
			o(&m.cfg)
		}
	}
	if snapshot != "" {
		for _, m := range c.Members {
			f, err := os.Open(snapshot)
			if err != nil {
				t.Fatal(err)
			}
			_, err = raftstore.PrepareRestore(f, raftstore.RestoreConfig{DataDir: m.DataDir, Name: m.Name, InitialCluster: initial})
			f.Close()
			if err != nil {
				t.Fatalf("restore %s: %v", m.Name, err)
			}
		}
	}
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i, m := range c.Members {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m.Server, errs[i] = raftstore.Start(m.cfg)
		}()
	}
	wg.Wait()
	t.Cleanup(c.Close)
	for i, err := range errs {
		if err != nil {
			t.Fatalf("start %s: %v", c.Members[i].Name, err)
		}
	}
	c.WaitLeader()
	return c
}

func testLogger(t testing.TB, name string) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})).With("peer", name)
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}

// WaitLeader waits until a running peer leads and is ready, and returns
// its index. It waits on leadership-change events, not on a timer.
func (c *Cluster) WaitLeader() int {
	c.t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		var cases []reflect.SelectCase
		for i, m := range c.Members {
			if m.Server == nil {
				continue
			}
			ch := m.Server.LeaderChange()
			if m.Server.ReadyLeader() {
				return i
			}
			cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(ch)})
		}
		cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(deadline)})
		chosen, _, _ := reflect.Select(cases)
		if chosen == len(cases)-1 {
			c.t.Fatalf("no leader within 30s")
		}
	}
}

// Leader returns the index of the current ready leader (waiting for one).
func (c *Cluster) Leader() int { return c.WaitLeader() }

// Endpoints returns the client addresses of the given members (all
// running members if none are named).
func (c *Cluster) Endpoints(idx ...int) []string {
	if len(idx) == 0 {
		for i, m := range c.Members {
			if m.Server != nil {
				idx = append(idx, i)
			}
		}
	}
	var eps []string
	for _, i := range idx {
		eps = append(eps, c.Members[i].ClientAddr)
	}
	return eps
}

// Client returns an etcd client (admin certificate) for the given members
// (all if none). It is closed with the cluster.
func (c *Cluster) Client(idx ...int) *clientv3.Client {
	c.t.Helper()
	tlsCfg, err := pki.ClientTLS(c.CertsDir)
	if err != nil {
		c.t.Fatalf("client tls: %v", err)
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   c.Endpoints(idx...),
		TLS:         tlsCfg,
		DialTimeout: 5 * time.Second,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		c.t.Fatalf("client: %v", err)
	}
	c.mu.Lock()
	c.clients = append(c.clients, cli)
	c.mu.Unlock()
	return cli
}

// Ctx returns a context bounded for one test step.
func (c *Cluster) Ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	c.t.Cleanup(cancel)
	return ctx
}

// Stop stops member i gracefully.
func (c *Cluster) Stop(i int) {
	if s := c.Members[i].Server; s != nil {
		s.Stop()
		c.Members[i].Server = nil
	}
}

// Kill stops member i as a crash would.
func (c *Cluster) Kill(i int) {
	if s := c.Members[i].Server; s != nil {
		s.Kill()
		c.Members[i].Server = nil
	}
}

// Restart starts a stopped member again from its data directory.
func (c *Cluster) Restart(i int) {
	c.t.Helper()
	m := c.Members[i]
	if m.Server != nil {
		c.t.Fatalf("restart %s: still running", m.Name)
	}
	s, err := raftstore.Start(m.cfg)
	if err != nil {
		c.t.Fatalf("restart %s: %v", m.Name, err)
	}
	m.Server = s
}

// Close stops every member and client.
func (c *Cluster) Close() {
	c.mu.Lock()
	for _, cli := range c.clients {
		cli.Close()
	}
	c.clients = nil
	c.mu.Unlock()
	for i := range c.Members {
		c.Kill(i)
	}
}

// Join starts a new peer that joins the running cluster through its
// client port, as `barge server --join` does, and returns its index.
func (c *Cluster) Join(learner bool) int {
	c.t.Helper()
	m := &Member{
		Name:       fmt.Sprintf("s%d", len(c.Members)+1),
		PeerAddr:   loopport.Addr(c.t),
		ClientAddr: loopport.Addr(c.t),
	}
	m.DataDir = filepath.Join(c.Dir, m.Name)
	m.cfg = c.Members[0].cfg
	m.cfg.Name, m.cfg.DataDir = m.Name, m.DataDir
	m.cfg.PeerAddr, m.cfg.ClientAddr = m.PeerAddr, m.ClientAddr
	m.cfg.AdvertisePeerAddr, m.cfg.AdvertiseClientAddr = "", ""
	m.cfg.InitialCluster = nil
	m.cfg.Join = []string{"https://" + c.Members[c.Leader()].ClientAddr}
	m.cfg.JoinAsLearner = learner
	m.cfg.Logger = testLogger(c.t, m.Name)
	s, err := raftstore.Start(m.cfg)
	if err != nil {
		c.t.Fatalf("join %s: %v", m.Name, err)
	}
	m.Server = s
	c.Members = append(c.Members, m)
	return len(c.Members) - 1
}

// Retry runs an idempotent write as a client would through an election:
// when it fails because leadership moved or is being decided, it waits
// for a ready leader and tries again, up to 10 times. Every other error,
// or the 10th retryable one, fails the test. The retries are logged.
func (c *Cluster) Retry(op func() error) {
	c.t.Helper()
	for attempt := 1; ; attempt++ {
		err := op()
		if err == nil {
			return
		}
		if !Retryable(err) || attempt == 10 {
			c.t.Fatalf("attempt %d: %v", attempt, err)
		}
		c.t.Logf("attempt %d: %v; retrying once a leader is ready", attempt, err)
		c.WaitLeader()
	}
}

// Retryable reports whether err says only that no leader could take the
// request just then (an election under way or just finished): what the
// etcd client leaves to its caller to retry.
func Retryable(err error) bool {
	for _, e := range []error{rpctypes.ErrLeaderChanged, rpctypes.ErrNoLeader, rpctypes.ErrTimeoutDueToLeaderFail, rpctypes.ErrTimeoutDueToConnectionLost} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
