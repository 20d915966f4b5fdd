package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// The two setups of `barge bench control`.
const (
	SetupBarge = "barge"     // 3 barge servers: Raft store, controllers on the Raft leader
	SetupEtcd  = "etcd-mode" // 3 etcd members + 3 barge servers --etcd-servers, controllers under Lease election
)

// Messages the servers log that the control bench waits for or times
// failover against (control/plane, control/controllers, control/leader,
// raftstore).
const (
	msgWarm           = "controllers' caches warm"
	msgRaftLeader     = "became leader"
	msgLeaseWon       = "won the lease"
	msgWorkStarted    = "leader-only work started"
	msgBuilt          = "controllers built"
	msgSchedStarted   = "scheduler started"
	controlLeaseName  = "barge-controllers" // control/leader.LeaseName
	controlReadyWait  = 3 * time.Minute
	controlStopGrace  = 15 * time.Second
	hollowLogInterval = 5 * time.Second
)

// ControlConfig is one `barge bench control` run.
type ControlConfig struct {
	BargeBin string
	// EtcdBin is the etcd of the etcd-mode setup, EtcdSystem its name
	// (SystemEtcd or SystemEtcd37).
	EtcdBin, EtcdSystem string
	OutDir              string
	Nodes, MaxPods      int // hollow nodes per setup, pods each takes
	Pods                int // the pods row
	Replicas            int // the Deployment rows
	MutateRate          int // mutating calls per second
	MutateFor           time.Duration
	Kills               int
	Command             string
	Log                 *slog.Logger
}

// setup is one of the two control planes under test: three servers with
// an API server each, hollow nodes, and clients of every API server.
type setup struct {
	name    string
	servers *Cluster // the barge server processes
	etcd    *Cluster // etcd mode only
	hollows []*Member
	apis    []string // API address of servers.Members[i]
	clients []kubernetes.Interface
	log     *slog.Logger
}

// benchClusterCIDR holds 4,096 node /24s: the default /16 stops node IPAM
// at 256 nodes, and the run has 1,000.
const benchClusterCIDR = "10.64.0.0/12"

// newControlSetups lays out both setups under dir; nothing starts yet.
func newControlSetups(cfg ControlConfig, certs string) (*setup, *setup, error) {
	b := &setup{name: SetupBarge, log: cfg.Log.With("setup", SetupBarge)}
	var err error
	b.servers, err = newCluster(SystemBarge, cfg.BargeBin, cfg.OutDir, certs, cfg.Log, func(m *Member, initial string) []string {
		b.apis = append(b.apis, m.APIAddr)
		return []string{"server", "--name", m.Name, "--data-dir", m.DataDir, "--certs", certs,
			"--peer-addr", m.PeerAddr, "--client-addr", m.ClientAddr, "--initial-cluster", initial, "--api-addr", m.APIAddr,
			"--cluster-cidr", benchClusterCIDR}
	})
	if err != nil {
		return nil, nil, err
	}
	e := &setup{name: SetupEtcd, log: cfg.Log.With("setup", SetupEtcd)}
	if e.etcd, err = NewEtcdCluster(cfg.EtcdSystem, cfg.EtcdBin, cfg.OutDir, certs, cfg.Log); err != nil {
		return nil, nil, err
	}
	var urls []string
	for _, ep := range e.etcd.Endpoints() {
		urls = append(urls, "https://"+ep)
	}
	// The etcd-mode servers are named kube1..3; their store flags are
	// unused (no store peer runs), so the addresses newCluster reserves
	// stay free.
	e.servers, err = newCluster("kube", cfg.BargeBin, cfg.OutDir, certs, cfg.Log, func(m *Member, _ string) []string {
		e.apis = append(e.apis, m.APIAddr)
		return []string{"server", "--name", m.Name, "--data-dir", m.DataDir, "--certs", certs,
			"--api-addr", m.APIAddr, "--etcd-servers", strings.Join(urls, ","),
			"--cluster-cidr", benchClusterCIDR}
	})
	if err != nil {
		return nil, nil, err
	}
	for _, s := range []*setup{b, e} {
		for i := range s.servers.Members {
			per := cfg.Nodes / len(s.servers.Members)
			if i < cfg.Nodes%len(s.servers.Members) {
				per++
			}
			if per == 0 {
				continue
			}
			name := fmt.Sprintf("%s-hollow%d", s.name, i+1)
			// One hollow process per API server: a killed server stalls a
			// third of the nodes until it is back, not all of them.
			s.hollows = append(s.hollows, &Member{Name: name, bin: cfg.BargeBin, logPath: filepath.Join(cfg.OutDir, name+".log"),
				args: []string{"hollow", "--kubeconfig", filepath.Join(certs, "admin.kubeconfig"), "--server", "https://" + s.apis[i],
					"--count", fmt.Sprint(per), "--prefix", fmt.Sprintf("n%d", i+1), "--max-pods", fmt.Sprint(cfg.MaxPods), "--workers", "32"}})
		}
		for _, api := range s.apis {
			c, err := kubeClient(certs, api)
			if err != nil {
				return nil, nil, err
			}
			s.clients = append(s.clients, c)
		}
	}
	return b, e, nil
}

// kubeClient is an admin client of one API server, with no client-side
// rate limit: the bench measures the servers, not client-go's limiter.
func kubeClient(certs, api string) (kubernetes.Interface, error) {
	rules := &clientcmd.ClientConfigLoadingRules{ExplicitPath: filepath.Join(certs, "admin.kubeconfig")}
	overrides := &clientcmd.ConfigOverrides{}
	overrides.ClusterInfo.Server = "https://" + api
	rc, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("kubeconfig in %s: %w", certs, err)
	}
	rc.QPS, rc.Burst = -1, 0
	rc.Timeout = 30 * time.Second
	c, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("client of %s: %w", api, err)
	}
	return c, nil
}

// start launches the setup's stores and servers, waits until every API
// server is ready and every server's caches are warm, then starts the
// hollow nodes and waits until they are all Ready.
func (s *setup) start(ctx context.Context, nodes int) error {
	if s.etcd != nil {
		if err := s.etcd.Start(); err != nil {
			return err
		}
		cli, err := s.etcd.Client()
		if err != nil {
			return err
		}
		_, err = s.etcd.WaitHealthy(ctx, cli, controlReadyWait)
		cli.Close()
		if err != nil {
			return err
		}
	}
	if err := s.servers.Start(); err != nil {
		return err
	}
	for i := range s.servers.Members {
		if err := s.waitServer(ctx, i, 0); err != nil {
			return err
		}
	}
	for _, h := range s.hollows {
		if err := h.start(); err != nil {
			return err
		}
	}
	return s.waitNodes(ctx, nodes)
}

// stop ends every process of the setup, hollow nodes first.
func (s *setup) stop() {
	for _, h := range s.hollows {
		h.stop()
	}
	s.servers.Stop()
	if s.etcd != nil {
		s.etcd.Stop()
	}
}

// logSize is the length of a member's log now: a later wait for a
// message looks only past it, at what the current process wrote.
func logSize(m *Member) int64 {
	st, err := os.Stat(m.logPath)
	if err != nil {
		return 0
	}
	return st.Size()
}

// waitServer waits until server i's API server answers /readyz and its
// log says, past offset, that its controllers' caches are warm: only then
// is it the warm standby the failover rows assume.
func (s *setup) waitServer(ctx context.Context, i int, offset int64) error {
	m := s.servers.Members[i]
	ctx, cancel := context.WithTimeout(ctx, controlReadyWait)
	defer cancel()
	var last error
	for {
		if !m.running() {
			return fmt.Errorf("%s exited; see %s, which ends: %s", m.Name, m.logPath, m.logTail(5))
		}
		last = s.ready(ctx, i)
		if last == nil {
			if _, ok := findLog(m.logPath, offset, msgWarm); ok {
				return nil
			}
			last = errors.New("caches not warm yet")
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s %s not ready within %s: %w", s.name, m.Name, controlReadyWait, errors.Join(ctx.Err(), last))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// ready asks server i's API server for /readyz.
func (s *setup) ready(ctx context.Context, i int) error {
	rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	body, err := s.clients[i].Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(rctx)
	if err != nil {
		return err
	}
	if string(body) != "ok" {
		return fmt.Errorf("readyz: %s", body)
	}
	return nil
}

// waitNodes waits for n Ready hollow nodes.
func (s *setup) waitNodes(ctx context.Context, n int) error {
	deadline := time.Now().Add(controlReadyWait)
	logged := time.Now()
	for {
		ready, err := s.readyNodes(ctx)
		if err == nil && ready >= n {
			s.log.Info("hollow nodes ready", "nodes", ready)
			return nil
		}
		for _, h := range s.hollows {
			if !h.running() {
				return fmt.Errorf("%s exited; see %s, which ends: %s", h.Name, h.logPath, h.logTail(5))
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: %d of %d hollow nodes Ready after %s (%v)", s.name, ready, n, controlReadyWait, err)
		}
		if time.Since(logged) > hollowLogInterval {
			s.log.Info("waiting for hollow nodes", "ready", ready, "of", n)
			logged = time.Now()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func (s *setup) readyNodes(ctx context.Context) (int, error) {
	lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	list, err := s.clients[0].CoreV1().Nodes().List(lctx, metav1.ListOptions{LabelSelector: "barge.dev/hollow=true"})
	if err != nil {
		return 0, err
	}
	n := 0
	for _, node := range list.Items {
		for _, c := range node.Status.Conditions {
			if c.Type == "Ready" && c.Status == "True" && node.Spec.PodCIDR != "" {
				n++
			}
		}
	}
	return n, nil
}

// logLine is one slog text line of a server's log: its time and message.
type logLine struct {
	at  time.Time
	msg string
}

// parseLogLine reads the time= and msg= fields of a slog text line.
func parseLogLine(line string) (logLine, bool) {
	t, ok := strings.CutPrefix(line, "time=")
	if !ok {
		return logLine{}, false
	}
	ts, rest, _ := strings.Cut(t, " ")
	at, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		return logLine{}, false
	}
	_, m, ok := strings.Cut(rest, "msg=")
	if !ok {
		return logLine{}, false
	}
	if strings.HasPrefix(m, `"`) {
		end := strings.Index(m[1:], `"`)
		if end < 0 {
			return logLine{}, false
		}
		m = m[1 : end+1]
	} else {
		m, _, _ = strings.Cut(m, " ")
	}
	return logLine{at: at, msg: m}, true
}

// findLog returns the time of the first line past offset of the log at
// path whose message is msg.
func findLog(path string, offset int64, msg string) (time.Time, bool) {
	f, err := os.Open(path)
	if err != nil {
		return time.Time{}, false
	}
	defer f.Close()
	if _, err := f.Seek(offset, 0); err != nil {
		return time.Time{}, false
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		if l, ok := parseLogLine(sc.Text()); ok && l.msg == msg {
			return l.at, true
		}
	}
	return time.Time{}, false
}
