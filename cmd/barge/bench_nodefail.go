package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"

	"github.com/barge-dev/barge/chaos/lab"
	"github.com/barge-dev/barge/node/gossip"
	"github.com/barge-dev/barge/node/hollow"
	"github.com/barge-dev/barge/raftstore/loopport"
	"github.com/barge-dev/barge/raftstore/pki"
)

func newBenchNodefailCmd() *cobra.Command {
	var o nodefailOptions
	cmd := &cobra.Command{
		Use:   "nodefail",
		Short: "Time a node's death to NotReady and to its pods running elsewhere, with barge's default timings",
		Long: `Start three barge servers on loopback (separate processes, gossip on,
default node health timings) and --nodes gossiping hollow nodes in this
process, run a Deployment of --replicas, then --kills times kill one node
abruptly (its gossip member stops without a goodbye, its Lease and status
stop) and time, from the kill: its Node's Ready leaving True (NotReady),
and the Deployment's replicas all Running on the other nodes again
(moved). The node is revived and the cluster settles between kills.
Prints p50 and max of both; -o json keeps every sample.

With --lab the nodes are real agents in a lab (3 servers, --nodes
agents, the lab registry's busybox as the pods' image; root needed) and a
kill is kill -9 of the agent, its containers left running.`,
		Example: `  barge bench nodefail --kills 10
  barge bench nodefail -o json > nodefail.json
  sudo barge bench nodefail --lab --kills 10 -o json > nodefail-lab.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.output != "table" && o.output != "json" {
				return fmt.Errorf("-o %q: want table or json", o.output)
			}
			if o.nodes < 2 || o.kills < 1 || o.replicas < 1 {
				return fmt.Errorf("--nodes %d, --kills %d, --replicas %d: want at least 2, 1 and 1", o.nodes, o.kills, o.replicas)
			}
			exe, err := os.Executable()
			if err != nil {
				return fmt.Errorf("find the barge binary: %w", err)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			logger := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelInfo}))
			res, err := runNodefail(ctx, exe, o, logger)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if o.output == "json" {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(res)
			}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			r10 := func(d time.Duration) time.Duration { return d.Round(10 * time.Millisecond) }
			fmt.Fprintln(tw, "KILLS\tNODES\tREPLICAS\tSTEP (FROM THE KILL)\tP50\tMAX")
			for _, row := range []struct {
				name string
				ds   []time.Duration
			}{{"NotReady", res.NotReady}, {"tainted unreachable", res.Tainted}, {"first pod evicted", res.Evicted}, {"pods Running elsewhere", res.Moved}} {
				p50, mx := p50max(row.ds)
				fmt.Fprintf(tw, "%d\t%d\t%d\t%s\t%v\t%v\n", len(row.ds), res.Nodes, res.Replicas, row.name, r10(p50), r10(mx))
			}
			return tw.Flush()
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.kills, "kills", 10, "node kills")
	f.IntVar(&o.nodes, "nodes", 3, "nodes: hollow ones, or with --lab real agents")
	f.BoolVar(&o.lab, "lab", false, "real agents in a lab (root): a kill is kill -9 of a node's agent")
	f.IntVar(&o.replicas, "replicas", 6, "Deployment replicas")
	f.StringVarP(&o.output, "output", "o", "table", "table or json")
	f.StringVar(&o.dir, "out-dir", "", "`DIR` for certificates, data dirs and server logs (default a temporary dir, removed at the end)")
	return cmd
}

type nodefailOptions struct {
	kills, nodes, replicas int
	output, dir            string
	lab                    bool
}

// NodefailResult are the figures of one run; durations are from the kill.
type NodefailResult struct {
	Nodes    int             `json:"nodes"`
	Replicas int             `json:"replicas"`
	NotReady []time.Duration `json:"notReadyNanos"`
	// Tainted is when the unreachable NoExecute taint was on the node,
	// Evicted when the first of its replicas was being deleted.
	Tainted     []time.Duration `json:"taintedNanos"`
	Evicted     []time.Duration `json:"evictedNanos"`
	Moved       []time.Duration `json:"movedNanos"`
	NotReadyP50 time.Duration   `json:"notReadyP50Nanos"`
	NotReadyMax time.Duration   `json:"notReadyMaxNanos"`
	MovedP50    time.Duration   `json:"movedP50Nanos"`
	MovedMax    time.Duration   `json:"movedMaxNanos"`
}

// hollowNodefail starts three servers on loopback and o.nodes gossiping
// hollow nodes in this process. cleanup stops them all.
func hollowNodefail(ctx context.Context, exe, dir string, o nodefailOptions, logger *slog.Logger) (_ *nodefailCluster, cleanup func(), err error) {
	var undo []func()
	cleanup = func() {
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
	}
	defer func() {
		if err != nil {
			cleanup()
		}
	}()
	certs := filepath.Join(dir, "certs")
	if err := pki.InitDir(certs, pki.InitOptions{Hosts: []string{"127.0.0.1"}}); err != nil {
		return nil, nil, err
	}
	keyring, _, err := gossip.InitKeyring(certs)
	if err != nil {
		return nil, nil, err
	}
	type server struct{ name, peer, client, api, gossip string }
	servers := make([]server, 3)
	var initial []string
	ports, err := loopport.Reserve(4 * len(servers))
	if err != nil {
		return nil, nil, err
	}
	undo = append(undo, ports.Release)
	addrs := ports.Addrs
	for i := range servers {
		a := addrs[4*i:]
		s := server{name: fmt.Sprintf("s%d", i+1), peer: a[0], client: a[1], api: a[2], gossip: a[3]}
		servers[i] = s
		initial = append(initial, s.name+"="+s.peer)
	}
	var procs []*exec.Cmd
	undo = append(undo, func() {
		for _, p := range procs {
			_ = p.Process.Signal(syscall.SIGTERM)
		}
		for _, p := range procs {
			done := make(chan struct{})
			go func() { _ = p.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				_ = p.Process.Kill()
				<-done
			}
		}
	})
	var joins []string
	for _, s := range servers {
		joins = append(joins, s.gossip)
	}
	for _, s := range servers {
		logf, err := os.Create(filepath.Join(dir, s.name+".log"))
		if err != nil {
			return nil, nil, err
		}
		undo = append(undo, func() { logf.Close() })
		var others []string
		for _, j := range joins {
			if j != s.gossip {
				others = append(others, j)
			}
		}
		c := exec.Command(exe, "server", "--name", s.name, "--data-dir", filepath.Join(dir, s.name), "--certs", certs,
			"--peer-addr", s.peer, "--client-addr", s.client, "--api-addr", s.api, "--initial-cluster", strings.Join(initial, ","),
			"--gossip-addr", s.gossip, "--gossip-join", strings.Join(others, ","), "--log-level", "warn")
		c.Stdout, c.Stderr = logf, logf
		if err := c.Start(); err != nil {
			return nil, nil, fmt.Errorf("start %s: %w", s.name, err)
		}
		procs = append(procs, c)
	}
	rc, err := clientcmd.BuildConfigFromFlags("https://"+servers[0].api, filepath.Join(certs, pki.AdminKubeconfig))
	if err != nil {
		return nil, nil, err
	}
	rc.QPS, rc.Burst = 200, 400
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, nil, err
	}
	logger.Info("servers starting", "dir", dir)
	if err := poll(ctx, 5*time.Minute, func(ctx context.Context) (bool, error) {
		body, err := cs.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		return err == nil && string(body) == "ok", nil
	}); err != nil {
		return nil, nil, fmt.Errorf("API server never ready (logs in %s): %w", dir, err)
	}
	hctx, hcancel := context.WithCancel(ctx)
	undo = append(undo, hcancel)
	nodes, err := hollow.Start(hctx, hollow.Config{Client: rc, Prefix: "nodefail", Count: o.nodes,
		Gossip: &hollow.Gossip{KeyringFile: keyring, Join: joins}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		return nil, nil, err
	}
	undo = append(undo, func() { hcancel(); _ = nodes.Wait() })
	return &nodefailCluster{cs: cs, names: nodes.Names(), image: "registry.invalid/pause:1",
		kill: nodes.Kill, revive: nodes.Revive}, cleanup, nil
}

// labNodefail brings a lab up (3 servers, o.nodes real agents on the
// lab's containerd, default timings); a kill is kill -9 of a node's
// agent (its containers live on, as on a real node whose kubelet died)
// and a revival starts the agent again. cleanup is lab down.
func labNodefail(ctx context.Context, exe, dir string, o nodefailOptions, logger *slog.Logger) (*nodefailCluster, func(), error) {
	if os.Geteuid() != 0 {
		return nil, nil, errors.New("--lab needs root (network namespaces)")
	}
	ldir := filepath.Join(dir, "lab")
	l, err := lab.Up(ctx, lab.Config{Dir: ldir, Servers: 3, Nodes: o.nodes, Barge: exe, Logger: logger})
	if err != nil {
		return nil, nil, err
	}
	cleanup := func() {
		if err := lab.Down(ldir); err != nil {
			logger.Warn("lab down", "err", err)
		}
	}
	cs, err := l.Kube()
	if err != nil {
		cleanup()
		return nil, nil, err
	}
	var names []string
	for _, h := range l.Hosts {
		if h.Role == lab.RoleNode {
			names = append(names, h.Name)
		}
	}
	return &nodefailCluster{cs: cs, names: names,
		image: l.Registry + "/" + lab.BusyboxImage, command: []string{"sleep", "3600"},
		kill:   l.Kill,
		revive: func(_ context.Context, name string) error { return l.Start(name) },
	}, cleanup, nil
}

// nodefailCluster is what the kill loop needs of the cluster under test.
type nodefailCluster struct {
	cs      kubernetes.Interface
	names   []string
	image   string
	command []string
	kill    func(name string) error
	revive  func(ctx context.Context, name string) error
}

func runNodefail(ctx context.Context, exe string, o nodefailOptions, logger *slog.Logger) (*NodefailResult, error) {
	dir := o.dir
	if dir == "" {
		d, err := os.MkdirTemp("", "barge-bench-nodefail")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	setup := hollowNodefail
	if o.lab {
		setup = labNodefail
	}
	c, cleanup, err := setup(ctx, exe, dir, o, logger)
	if err != nil {
		return nil, err
	}
	defer cleanup()
	cs, names := c.cs, c.names
	allReady := func(ctx context.Context) (bool, error) {
		for _, n := range names {
			node, err := cs.CoreV1().Nodes().Get(ctx, n, metav1.GetOptions{})
			if err != nil || !benchNodeReady(node) || len(node.Spec.Taints) > 0 {
				return false, nil
			}
		}
		return true, nil
	}
	if err := poll(ctx, 120*time.Second, allReady); err != nil {
		return nil, fmt.Errorf("hollow nodes never Ready: %w", err)
	}
	labels := map[string]string{"app": "nodefail"}
	dep := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "nodefail"}, Spec: appsv1.DeploymentSpec{
		Replicas: ptr.To(int32(o.replicas)), Selector: &metav1.LabelSelector{MatchLabels: labels},
		Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: corev1.PodSpec{
			TerminationGracePeriodSeconds: ptr.To(int64(1)),
			Containers:                    []corev1.Container{{Name: "c", Image: c.image, Command: c.command}}}}}}
	if _, err := cs.AppsV1().Deployments("default").Create(ctx, dep, metav1.CreateOptions{}); err != nil {
		return nil, err
	}
	// running counts the replicas Running, not terminating, off node avoid.
	running := func(ctx context.Context, avoid string) (int, error) {
		pods, err := cs.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=nodefail"})
		if err != nil {
			return 0, err
		}
		n := 0
		for _, p := range pods.Items {
			if p.Spec.NodeName != avoid && p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodRunning {
				n++
			}
		}
		return n, nil
	}
	settled := func(ctx context.Context) (bool, error) {
		if ok, _ := allReady(ctx); !ok {
			return false, nil
		}
		n, err := running(ctx, "")
		return err == nil && n == o.replicas, nil
	}
	res := &NodefailResult{Nodes: o.nodes, Replicas: o.replicas}
	for k := range o.kills {
		if err := poll(ctx, 120*time.Second, settled); err != nil {
			return nil, fmt.Errorf("kill %d: cluster never settled: %w", k+1, err)
		}
		// The victim holds replicas, or the kill moves nothing.
		victim := ""
		pods, err := cs.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=nodefail"})
		if err != nil {
			return nil, err
		}
		for i := range names {
			cand := names[(k+i)%len(names)]
			for _, p := range pods.Items {
				if p.Spec.NodeName == cand {
					victim = cand
				}
			}
			if victim != "" {
				break
			}
		}
		t0 := time.Now()
		if err := c.kill(victim); err != nil {
			return nil, err
		}
		var notReady, tainted, evicted, moved time.Duration
		err = poll(ctx, 60*time.Second, func(ctx context.Context) (bool, error) {
			if notReady == 0 || tainted == 0 {
				if node, err := cs.CoreV1().Nodes().Get(ctx, victim, metav1.GetOptions{}); err == nil {
					if notReady == 0 && !benchNodeReady(node) {
						notReady = time.Since(t0)
					}
					for _, t := range node.Spec.Taints {
						if tainted == 0 && t.Key == corev1.TaintNodeUnreachable && t.Effect == corev1.TaintEffectNoExecute {
							tainted = time.Since(t0)
						}
					}
				}
			}
			if evicted == 0 {
				if pods, err := cs.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=nodefail"}); err == nil {
					for _, p := range pods.Items {
						if p.Spec.NodeName == victim && p.DeletionTimestamp != nil && evicted == 0 {
							evicted = time.Since(t0)
						}
					}
				}
			}
			if moved == 0 {
				if n, err := running(ctx, victim); err == nil && n == o.replicas {
					moved = time.Since(t0)
				}
			}
			return notReady > 0 && moved > 0, nil
		})
		if err != nil {
			var state string
			if node, gerr := cs.CoreV1().Nodes().Get(ctx, victim, metav1.GetOptions{}); gerr == nil {
				state = fmt.Sprintf("taints %v, conditions %v", node.Spec.Taints, node.Status.Conditions)
			}
			return nil, fmt.Errorf("kill %d of %s: NotReady after %v, tainted after %v, evicted after %v, moved after %v (%s): %w",
				k+1, victim, notReady, tainted, evicted, moved, state, err)
		}
		res.NotReady = append(res.NotReady, notReady)
		res.Moved = append(res.Moved, moved)
		res.Tainted = append(res.Tainted, tainted)
		res.Evicted = append(res.Evicted, evicted)
		logger.Info("node killed", "kill", k+1, "node", victim, "notReady", notReady.Round(time.Millisecond),
			"tainted", tainted.Round(time.Millisecond), "evicted", evicted.Round(time.Millisecond), "moved", moved.Round(time.Millisecond))
		if err := c.revive(ctx, victim); err != nil {
			return nil, err
		}
		// Deployment pods piled onto the others; scale down and up again
		// to spread them, so every node holds some for the next kill.
		if err := rescale(ctx, cs, o.replicas); err != nil {
			return nil, err
		}
	}
	res.NotReadyP50, res.NotReadyMax = p50max(res.NotReady)
	res.MovedP50, res.MovedMax = p50max(res.Moved)
	return res, nil
}

func rescale(ctx context.Context, cs kubernetes.Interface, replicas int) error {
	for _, n := range []int{0, replicas} {
		if err := retry.RetryOnConflict(retry.DefaultBackoff, func() error {
			s, err := cs.AppsV1().Deployments("default").GetScale(ctx, "nodefail", metav1.GetOptions{})
			if err != nil {
				return err
			}
			s.Spec.Replicas = int32(n)
			_, err = cs.AppsV1().Deployments("default").UpdateScale(ctx, "nodefail", s, metav1.UpdateOptions{})
			return err
		}); err != nil {
			return fmt.Errorf("scale to %d: %w", n, err)
		}
		if n == 0 {
			if err := poll(ctx, 120*time.Second, func(ctx context.Context) (bool, error) {
				pods, err := cs.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=nodefail"})
				return err == nil && len(pods.Items) == 0, nil
			}); err != nil {
				return fmt.Errorf("scale to 0: %w", err)
			}
		}
	}
	return nil
}

func p50max(ds []time.Duration) (time.Duration, time.Duration) {
	if len(ds) == 0 {
		return 0, 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2], s[len(s)-1]
}

func poll(ctx context.Context, limit time.Duration, cond func(context.Context) (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	err := wait.PollUntilContextCancel(ctx, 20*time.Millisecond, true, cond)
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("not within %v", limit)
	}
	return err
}

func benchNodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
