package lab

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/barge-dev/barge/node/gossip"
	"github.com/barge-dev/barge/raftstore/pki"
)

// NodeReadyTimeout bounds how long Up waits for every node to be Ready
// after the servers elected a leader: the API server starts, the node
// IPAM controller hands out pod CIDRs, and each agent registers.
const NodeReadyTimeout = 120 * time.Second

// nodeCapacity divides the machine among n nodes, so that nodes sharing
// one machine do not each claim all of it and the scheduler's view
// matches what there is: CPU in millicores and memory in bytes, each
// node a 1/n share (at least 100m), 110 pods as a kubelet's default.
func nodeCapacity(n int) string {
	if n < 1 {
		n = 1
	}
	milli := max(runtime.NumCPU()*1000/n, 100)
	s := fmt.Sprintf("cpu=%dm,pods=110", milli)
	if mem := memTotal(); mem > 0 {
		s += fmt.Sprintf(",memory=%d", mem/uint64(n))
	}
	return s
}

// memTotal reads MemTotal from /proc/meminfo, in bytes (0 if unknown).
func memTotal() uint64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) >= 2 && fs[0] == "MemTotal:" {
			kb, err := strconv.ParseUint(fs[1], 10, 64)
			if err != nil {
				return 0
			}
			return kb * 1024
		}
	}
	return 0
}

// apiServers lists the servers' API URLs for agents.
func (l *Lab) apiServers() []string {
	var s []string
	for _, h := range l.Hosts {
		if h.Role == RoleServer {
			s = append(s, "https://"+h.APIAddr)
		}
	}
	return s
}

// nodeCredentials issues h's node credential with `barge certs node`,
// so the files are exactly those `barge agent --certs` expects; with a
// bootstrap token, it gives the node only what an operator hands out
// (ca.crt and the gossip keyring) and the agent asks for the rest.
func (l *Lab) nodeCredentials(ctx context.Context, h *Host) error {
	if l.BootstrapToken != "" {
		if err := os.MkdirAll(h.Certs, 0o700); err != nil {
			return fmt.Errorf("lab: credentials of node %s: %w", h.Name, err)
		}
		for _, f := range []string{pki.CACertFile, gossip.KeyringFile} {
			b, err := os.ReadFile(filepath.Join(l.Certs, f))
			if err != nil {
				return fmt.Errorf("lab: credentials of node %s: %w", h.Name, err)
			}
			if err := os.WriteFile(filepath.Join(h.Certs, f), b, 0o600); err != nil {
				return fmt.Errorf("lab: credentials of node %s: %w", h.Name, err)
			}
		}
		return nil
	}
	_, err := run(ctx, "", l.Barge, "certs", "node", "--dir", l.Certs, "--name", h.Name, "--ip", h.Address, "--out", h.Certs, "--force")
	if err != nil {
		return fmt.Errorf("lab: credentials of node %s: %w", h.Name, err)
	}
	return nil
}

// bootstrapTokenFile is the nodes' bootstrap token in the lab directory.
const bootstrapTokenFile = "bootstrap-token"

// createBootstrapToken stores a bootstrap token for the nodes with
// `barge certs token create`, into the lab directory.
func (l *Lab) createBootstrapToken(ctx context.Context) error {
	out, err := run(ctx, "", l.Barge, "certs", "token", "create", "--kubeconfig", l.Kubeconfig, "--ttl", "24h", "--description", "lab "+l.ID)
	if err != nil {
		return fmt.Errorf("lab: bootstrap token: %w", err)
	}
	file := filepath.Join(l.Dir, bootstrapTokenFile)
	if err := os.WriteFile(file, []byte(strings.TrimSpace(out)+"\n"), 0o600); err != nil {
		return fmt.Errorf("lab: bootstrap token: %w", err)
	}
	l.BootstrapToken = file
	return nil
}

// agentArgs is the agent's command line. It enters only the host's
// network namespace (nsenter --net), not a mount namespace of its own as
// `ip netns exec` would make: the pod network namespaces and volumes it
// bind-mounts under its state directory must be visible to containerd and
// runc in the root mount namespace. nsenter execs in place, so the pid is
// the agent's.
func (l *Lab) agentArgs(h *Host) []string {
	args := []string{"--net=" + filepath.Join("/run/netns", h.Netns), "--", l.Barge, "agent",
		"--name", h.Name,
		"--certs", h.Certs,
		"--servers", strings.Join(l.apiServers(), ","),
		"--node-ip", h.Address,
		"--containerd-socket", l.Containerd.Socket,
		"--containerd-namespace", h.Namespace,
		"--state-dir", h.DataDir,
		"--registry-hosts-dir", l.Containerd.HostsDir,
	}
	if h.Capacity != "" {
		args = append(args, "--capacity", h.Capacity)
	}
	if h.GossipAddr != "" {
		args = append(args, "--gossip-addr", h.GossipAddr)
	}
	if join := l.gossipServers(""); len(join) > 0 {
		args = append(args, "--gossip-join", strings.Join(join, ","))
	}
	if l.Overlay != "" {
		args = append(args, "--overlay", l.Overlay)
	}
	if h.PodCIDR != "" {
		args = append(args, "--pod-cidr", h.PodCIDR)
	}
	if l.BootstrapToken != "" {
		args = append(args, "--bootstrap-token-file", l.BootstrapToken)
	}
	return append(args, l.AgentArgs...)
}

// startAgent starts h's node agent detached, inside h's network
// namespace.
func (l *Lab) startAgent(h *Host) error {
	if err := os.MkdirAll(h.DataDir, 0o700); err != nil {
		return fmt.Errorf("lab: start %s: %w", h.Name, err)
	}
	pid, err := startDetached(h.Log, h.Name, "nsenter", l.agentArgs(h)...)
	if err != nil {
		return err
	}
	h.PID = pid
	h.Late = false
	l.log.Info("started agent", "host", h.Name, "pid", pid, "netns", h.Netns, "containerdNamespace", h.Namespace)
	return nil
}

// Kube returns a client-go clientset for the lab's admin kubeconfig.
func (l *Lab) Kube() (kubernetes.Interface, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", l.Kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("lab: kubeconfig %s: %w", l.Kubeconfig, err)
	}
	cfg.Timeout = 5 * time.Second
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("lab: kube client: %w", err)
	}
	return cs, nil
}

// LatePodCIDR is the pod range of the i-th late node (Config.LateNodes,
// from 1): 10.244.(200+i).0/24, far above what node IPAM hands the
// others out of 10.244.0.0/16 first.
func LatePodCIDR(i int) netip.Prefix {
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 244, byte(200 + i), 0}), 24)
}

// nodeNames lists the node hosts whose agents have been started.
func (l *Lab) nodeNames() []string {
	var n []string
	for _, h := range l.Hosts {
		if h.Role == RoleNode && !h.Late {
			n = append(n, h.Name)
		}
	}
	return n
}

func nodeReady(n *corev1.Node) string {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return string(c.Status)
		}
	}
	return string(corev1.ConditionUnknown)
}

// waitAPI polls until the API server answers and the controllers have
// made the kube-node-lease namespace agents put their Leases in, or ctx
// ends.
func (l *Lab) waitAPI(ctx context.Context) error {
	cs, err := l.Kube()
	if err != nil {
		return err
	}
	var last error
	for {
		lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, last = cs.CoreV1().Namespaces().Get(lctx, corev1.NamespaceNodeLease, metav1.GetOptions{})
		cancel()
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("lab: API not ready (namespace %s): %w (last: %v)", corev1.NamespaceNodeLease, ctx.Err(), last)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// WaitNodesReady polls the API until every node host's Node is Ready, or
// ctx ends; the error names the nodes that are not and ends with the tail
// of each one's agent log.
func (l *Lab) WaitNodesReady(ctx context.Context) error {
	want := l.nodeNames()
	if len(want) == 0 {
		return nil
	}
	cs, err := l.Kube()
	if err != nil {
		return err
	}
	var missing []string
	var last error
	for {
		lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		nodes, err := cs.CoreV1().Nodes().List(lctx, metav1.ListOptions{})
		cancel()
		missing = missing[:0]
		if err != nil {
			last = err
			missing = append(missing, want...)
		} else {
			ready := map[string]bool{}
			for i := range nodes.Items {
				ready[nodes.Items[i].Name] = nodeReady(&nodes.Items[i]) == string(corev1.ConditionTrue)
			}
			for _, n := range want {
				// A Node stays Ready for a while after its agent died (until
				// the node lifecycle controller notices): the agent must
				// be running too.
				h, _ := l.Host(n)
				if !ready[n] || !isOurs(h.PID, h.DataDir) {
					missing = append(missing, n)
				}
			}
			if len(missing) == 0 {
				return nil
			}
		}
		// An agent that exited will not become Ready: the lab does not
		// restart it, so waiting longer would only hide its error.
		var dead []string
		for _, n := range missing {
			if h, _ := l.Host(n); !isOurs(h.PID, h.DataDir) {
				dead = append(dead, n)
			}
		}
		var cause error
		if len(dead) > 0 {
			missing, cause = dead, errors.New("agent exited")
		} else {
			select {
			case <-ctx.Done():
				cause = ctx.Err()
			case <-time.After(500 * time.Millisecond):
			}
		}
		if cause != nil {
			var b strings.Builder
			fmt.Fprintf(&b, "lab: nodes not Ready: %s: %v", strings.Join(missing, ", "), cause)
			if last != nil {
				fmt.Fprintf(&b, " (last API error: %v)", last)
			}
			for _, n := range missing {
				h, _ := l.Host(n)
				state := "not running"
				if h.PID > 0 && isOurs(h.PID, h.DataDir) {
					state = "running as pid " + strconv.Itoa(h.PID)
				}
				fmt.Fprintf(&b, "\nagent %s (%s), end of %s:\n%s", n, state, h.Log, tailLog(h.Log, 1500))
			}
			return errors.New(b.String())
		}
	}
}

// nodeStatus fills the Ready and Pods columns of Status from the API.
func (l *Lab) nodeStatus(ctx context.Context, out []HostStatus) {
	if len(l.nodeNames()) == 0 {
		return
	}
	cs, err := l.Kube()
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	ready := map[string]string{}
	if nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{}); err == nil {
		for i := range nodes.Items {
			ready[nodes.Items[i].Name] = nodeReady(&nodes.Items[i])
		}
	}
	pods := map[string]int{}
	podsKnown := false
	if list, err := cs.CoreV1().Pods("").List(ctx, metav1.ListOptions{}); err == nil {
		podsKnown = true
		for _, p := range list.Items {
			if p.Spec.NodeName != "" && p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed {
				pods[p.Spec.NodeName]++
			}
		}
	}
	for i := range out {
		if out[i].Role != RoleNode {
			continue
		}
		if r, ok := ready[out[i].Name]; ok {
			out[i].Ready = r
		} else {
			out[i].Ready = "unregistered"
		}
		if podsKnown {
			n := pods[out[i].Name]
			out[i].Pods = &n
		}
	}
}
