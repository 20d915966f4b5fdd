package apitest

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"

	"k8s.io/kubernetes/cmd/kube-controller-manager/names"
	kubectrlmgrconfig "k8s.io/kubernetes/pkg/controller/apis/config"

	"github.com/barge-dev/barge/control/apiserver"
	"github.com/barge-dev/barge/control/controllers"
	"github.com/barge-dev/barge/control/plane"
	"github.com/barge-dev/barge/node/gossip"
	"github.com/barge-dev/barge/raftstore/pki"
	"github.com/barge-dev/barge/raftstore/storetest"
)

// klogTail sets klog's process-wide output once: goroutines of earlier
// clusters in the same test binary still log, and swapping the output
// under them is a data race.
var klogTail = sync.OnceValue(func() *klogRing {
	if os.Getenv("BARGE_TEST_KLOG") != "" {
		return nil
	}
	return quietenKlog()
})

// Cluster is a store cluster with an API server on every peer.
type Cluster struct {
	t      testing.TB
	Store  *storetest.Cluster
	Planes []*plane.Plane
	addrs  []string
	// TokenFile is the static token file every API server reads.
	TokenFile string
	// Gossip are the servers' gossip members (with Options.Gossip),
	// one per server, in a pool keyed by GossipKeyring.
	Gossip        []*gossip.Pool
	GossipKeyring string
	// dying are API servers whose peer was killed, still shutting down.
	dying sync.WaitGroup
	opts  plane.Options
}

// Options adjust the harness.
type Options struct {
	// Tokens are static bearer tokens: token → "user,uid,group1|group2".
	Tokens map[string]string
	// Plane configures every server's leader-only components.
	Plane plane.Options
	// Gossip gives every server a member of one gossip pool on
	// loopback (role server, named s1, s2, ...), and the leader the node
	// health controller on it.
	Gossip bool
}

// APIOnly runs only the controllers an API server's own behaviour rests
// on (namespace deletion, default service accounts, kube-root-ca.crt, the
// aggregated admin/edit/view roles) and no scheduler, so tests of the API
// itself see no other writer touch their objects.
func APIOnly() plane.Options {
	return plane.Options{Controllers: controllers.Config{
		NoScheduler: true,
		Tune: func(cc *kubectrlmgrconfig.KubeControllerManagerConfiguration) {
			cc.Generic.Controllers = []string{names.NamespaceController, names.ServiceAccountController,
				names.RootCACertificatePublisherController, names.ClusterRoleAggregationController}
		},
	}}
}

// quietenKlog keeps klog's output out of the test log, except fatal
// messages, and keeps its last lines (each once: one_output). Kubernetes'
// code exits the process with klog.FlushAndExit after logging the reason
// at error level; with that discarded, the test binary would end without
// a word.
func quietenKlog() *klogRing {
	fs := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(fs)
	for name, value := range map[string]string{"logtostderr": "false", "alsologtostderr": "false", "stderrthreshold": "FATAL", "one_output": "true"} {
		if err := fs.Set(name, value); err != nil {
			panic(fmt.Sprintf("apitest: klog flag %s: %v", name, err))
		}
	}
	ring := &klogRing{}
	klog.SetOutput(ring)
	klog.OsExit = func(code int) {
		fmt.Fprintf(os.Stderr, "apitest: klog exits the test binary with status %d; its last lines:\n", code)
		ring.dump(os.Stderr, &ring.all)
		fmt.Fprintf(os.Stderr, "apitest: the exit was called from:\n%s", debug.Stack())
		os.Exit(code)
	}
	return ring
}

// klogRing holds klog's last lines, and apart from them its last
// warnings and errors, which a failed test prints.
type klogRing struct {
	mu         sync.Mutex
	all, worse lineRing
}

type lineRing struct {
	lines [200][]byte
	next  int
	full  bool
}

func (r *lineRing) add(p []byte) {
	r.lines[r.next] = append(r.lines[r.next][:0], p...)
	r.next = (r.next + 1) % len(r.lines)
	r.full = r.full || r.next == 0
}

func (r *lineRing) dump(w io.Writer) {
	start, n := 0, r.next
	if r.full {
		start, n = r.next, len(r.lines)
	}
	for i := range n {
		_, _ = w.Write(r.lines[(start+i)%len(r.lines)])
	}
}

// Write takes one klog line, which starts with its severity's letter.
func (k *klogRing) Write(p []byte) (int, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.all.add(p)
	if len(p) > 0 && (p[0] == 'W' || p[0] == 'E' || p[0] == 'F') {
		k.worse.add(p)
	}
	return len(p), nil
}

// dump writes one of k's rings (&k.all or &k.worse) to w.
func (k *klogRing) dump(w io.Writer, r *lineRing) {
	k.mu.Lock()
	defer k.mu.Unlock()
	r.dump(w)
}

// New starts n peers and their API servers and waits until every API
// server is ready.
func New(t testing.TB, n int, opts ...Options) *Cluster {
	t.Helper()
	// The Kubernetes libraries log through klog (and gRPC through it);
	// test output keeps only what the test itself says unless
	// BARGE_TEST_KLOG is set.
	if ring := klogTail(); ring != nil {
		// Registered first, so it runs after the cluster has stopped.
		t.Cleanup(func() {
			if t.Failed() {
				var b strings.Builder
				ring.dump(&b, &ring.worse)
				t.Logf("klog's last warnings and errors (BARGE_TEST_KLOG=1 prints all):\n%s", b.String())
			}
		})
	}
	c := &Cluster{t: t, Store: storetest.NewCluster(t, n)}
	c.TokenFile = filepath.Join(c.Store.Dir, "tokens.csv")
	var lines string
	for _, o := range opts {
		for token, rest := range o.Tokens {
			lines += token + "," + rest + "\n"
		}
		c.opts = o.Plane // the last one given wins
		if o.Gossip && c.Gossip == nil {
			c.startGossip(n)
		}
	}
	if err := os.WriteFile(c.TokenFile, []byte(lines), 0o600); err != nil {
		t.Fatal(err)
	}
	c.Planes = make([]*plane.Plane, n)
	c.addrs = make([]string, n)
	for i := range n {
		c.StartAPI(i)
	}
	t.Cleanup(c.Close)
	for i := range n {
		c.WaitReady(i)
	}
	return c
}

// StartAPI starts (or restarts, on the same address) API server i.
func (c *Cluster) StartAPI(i int) {
	c.t.Helper()
	m := c.Store.Members[i]
	if m.Server == nil {
		c.t.Fatalf("API server %d: its store peer is down", i)
	}
	addr := c.addrs[i]
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		c.t.Fatalf("API server %d: listen: %v", i, err)
	}
	opts := c.opts
	if c.Gossip != nil {
		opts.Gossip = c.Gossip[i]
	}
	p, err := plane.Start(apiserver.Config{
		Listener:     ln,
		CertsDir:     c.Store.CertsDir,
		Identity:     fmt.Sprintf("s%d", i+1),
		StateDir:     filepath.Join(c.Store.Dir, fmt.Sprintf("api%d", i)),
		LocalStore:   m.Server.DialLocal,
		TokenFile:    c.TokenFile,
		BargeVersion: "test",
		Logger:       slog.New(slog.NewTextHandler(io.Discard, nil)),
	}, m.Server, opts)
	if err != nil {
		c.t.Fatalf("API server %d: %v", i, err)
	}
	c.Planes[i] = p
	c.addrs[i] = p.Addr()
}

// startGossip starts the servers' pool: the first member, then the
// others joining it.
func (c *Cluster) startGossip(n int) {
	c.t.Helper()
	keyring, _, err := gossip.InitKeyring(c.Store.CertsDir)
	if err != nil {
		c.t.Fatal(err)
	}
	c.GossipKeyring = keyring
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	for i := range n {
		cfg := gossip.Config{Name: fmt.Sprintf("s%d", i+1), Role: gossip.RoleServer, BindAddr: "127.0.0.1",
			KeyringFile: keyring, Logger: logger}
		if i > 0 {
			cfg.Join = []string{c.Gossip[0].Addr().String()}
		}
		p, err := gossip.Start(cfg)
		if err != nil {
			c.t.Fatalf("gossip member of server %d: %v", i, err)
		}
		c.Gossip = append(c.Gossip, p)
	}
}

// GossipJoin are the servers' gossip addresses, for members to join.
func (c *Cluster) GossipJoin() []string {
	var out []string
	for _, p := range c.Gossip {
		out = append(out, p.Addr().String())
	}
	return out
}

// StopAPI stops API server i.
func (c *Cluster) StopAPI(i int) {
	if p := c.Planes[i]; p != nil {
		_ = p.Stop()
		c.Planes[i] = nil
	}
}

// KillPeer crashes store peer i and abandons its API server, as the
// kill of a server process would: the API server is not waited for
// (with its store gone, its graceful shutdown waits out its requests'
// timeouts), only told to stop; Close waits for it.
func (c *Cluster) KillPeer(i int) {
	c.Store.Kill(i)
	if p := c.Planes[i]; p != nil {
		c.Planes[i] = nil
		c.dying.Add(1)
		go func() {
			defer c.dying.Done()
			_ = p.Stop()
		}()
	}
}

// Close stops every API server, then the store.
func (c *Cluster) Close() {
	for i := range c.Planes {
		c.StopAPI(i)
	}
	c.dying.Wait()
	for _, p := range c.Gossip {
		_ = p.Shutdown()
	}
}

// Addr is API server i's address.
func (c *Cluster) Addr(i int) string { return c.addrs[i] }

// readyTimeout bounds an API server's start. On an idle machine it is
// ready in seconds; with several test binaries starting API servers at
// once under -race on two cores, the RBAC bootstrap alone has been seen
// to take over a minute, so this is a bound against a hang, not a figure.
const readyTimeout = 3 * time.Minute

// WaitReady waits until API server i answers /readyz with ok.
func (c *Cluster) WaitReady(i int) {
	c.t.Helper()
	client := c.Client(i)
	deadline := time.Now().Add(readyTimeout)
	var last error
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		body, err := client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		cancel()
		if err == nil && string(body) == "ok" {
			return
		}
		last = fmt.Errorf("%v: %s", err, body)
		time.Sleep(100 * time.Millisecond)
	}
	c.t.Fatalf("API server %d not ready: %v", i, last)
}

// Config is a client configuration for API server i as the admin
// (system:masters).
func (c *Cluster) Config(i int) *rest.Config {
	return c.certConfig(i, filepath.Join(c.Store.CertsDir, pki.AdminCertFile), filepath.Join(c.Store.CertsDir, pki.AdminKeyFile))
}

// UserConfig issues a client certificate for user in groups and returns a
// configuration for API server i that uses it.
func (c *Cluster) UserConfig(i int, user string, groups ...string) *rest.Config {
	c.t.Helper()
	ca, err := pki.LoadCA(c.Store.CertsDir)
	if err != nil {
		c.t.Fatal(err)
	}
	leaf, err := ca.IssueClient(user, groups, time.Hour)
	if err != nil {
		c.t.Fatal(err)
	}
	cfg := c.certConfig(i, "", "")
	cfg.CertData, cfg.KeyData = leaf.CertPEM, leaf.KeyPEM
	return cfg
}

// TokenConfig is a configuration for API server i with a bearer token.
func (c *Cluster) TokenConfig(i int, token string) *rest.Config {
	cfg := c.certConfig(i, "", "")
	cfg.BearerToken = token
	return cfg
}

func (c *Cluster) certConfig(i int, cert, key string) *rest.Config {
	return &rest.Config{
		Host: "https://" + c.addrs[i],
		TLSClientConfig: rest.TLSClientConfig{
			CAFile:   filepath.Join(c.Store.CertsDir, pki.CACertFile),
			CertFile: cert,
			KeyFile:  key,
		},
		QPS: 1000, Burst: 1000,
	}
}

// Client is an admin clientset for API server i.
func (c *Cluster) Client(i int) kubernetes.Interface {
	c.t.Helper()
	cs, err := kubernetes.NewForConfig(c.Config(i))
	if err != nil {
		c.t.Fatal(err)
	}
	return cs
}

// Ctx returns a context bounded for one test step.
func (c *Cluster) Ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	c.t.Cleanup(cancel)
	return ctx
}
