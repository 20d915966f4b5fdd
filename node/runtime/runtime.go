package runtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/namespaces"
	"golang.org/x/sync/singleflight"

	"github.com/barge-dev/barge/node/hostport"
	"github.com/barge-dev/barge/overlay/podnet"
)

// Labels every containerd container of a pod carries: the contract with
// node/kubeletapi, which finds containers by them.
const (
	LabelPodNamespace  = "io.kubernetes.pod.namespace"
	LabelPodName       = "io.kubernetes.pod.name"
	LabelPodUID        = "io.kubernetes.pod.uid"
	LabelContainerName = "io.kubernetes.container.name"
	LabelRestartCount  = "io.kubernetes.container.restartCount"
	LabelKind          = "barge.dev/kind"
	LabelLogPath       = "barge.dev/log-path"
	LabelNetns         = "barge.dev/netns"

	// What the runtime itself records on a container.
	labelStartedAt  = "barge.dev/started-at"
	labelFinishedAt = "barge.dev/finished-at"
	labelExitCode   = "barge.dev/exit-code"
	labelReason     = "barge.dev/reason"
	labelMessage    = "barge.dev/message"
	labelImageRef   = "barge.dev/image-ref"
	labelPodIP      = "barge.dev/pod-ip"
	labelStdin      = "barge.dev/stdin"
	labelTTY        = "barge.dev/tty"
)

// Kinds of containerd container (LabelKind).
const (
	KindSandbox   = "sandbox"
	KindContainer = "container"
	KindInit      = "init"
)

// Config configures a node's runtime.
type Config struct {
	// Address is containerd's socket.
	Address string
	// Namespace is the node's containerd namespace.
	Namespace string
	// StateDir holds logs, FIFOs, pinned network namespaces and the
	// address allocations.
	StateDir string
	// HostsDir is the registry host configuration (hosts.toml per
	// registry) pulls go through.
	HostsDir string
	// HostNetns, when set, is the network namespace that plays the node's
	// (the bridge and the host ends of the veths live there); "" is the
	// agent's own. Tests run nodes side by side this way.
	HostNetns string
	// NodeIP is the node's address: the pod IP of hostNetwork pods.
	NodeIP netip.Addr
	// OnExit is told the pod UID of every container that exits, so the
	// agent resyncs the pod at once.
	OnExit func(podUID string)
	Logger *slog.Logger
}

// Runtime runs pods on containerd. Its methods are safe for concurrent
// use.
type Runtime struct {
	cfg    Config
	log    *slog.Logger
	client *containerd.Client

	closed chan struct{} // closed by Close: waiters stop, containers run on

	mu      sync.Mutex
	net     *podnet.Network
	ports   *hostport.Map       // pods' hostPorts, with net
	streams map[string]*streams // container ID → its IO, while it runs
	waiting map[string]bool     // container IDs with a waiter

	pulls singleflight.Group // image pulls in flight (image.go)
}

// New connects to containerd (waiting up to a minute for it) and makes
// the state directories.
func New(ctx context.Context, cfg Config) (*Runtime, error) {
	if cfg.Address == "" || cfg.Namespace == "" || cfg.StateDir == "" {
		return nil, errors.New("runtime: containerd address, namespace and state directory are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.OnExit == nil {
		cfg.OnExit = func(string) {}
	}
	for _, d := range []string{"pods", "fifo", "netns", "pod-data", "ipam"} {
		if err := os.MkdirAll(filepath.Join(cfg.StateDir, d), 0o711); err != nil {
			return nil, fmt.Errorf("runtime: state directory: %w", err)
		}
	}
	client, err := containerd.New(cfg.Address, containerd.WithDefaultNamespace(cfg.Namespace), containerd.WithTimeout(60*time.Second))
	if err != nil {
		return nil, fmt.Errorf("runtime: connect to containerd at %s: %w", cfg.Address, err)
	}
	r := &Runtime{cfg: cfg, log: cfg.Logger, client: client, closed: make(chan struct{}), streams: map[string]*streams{}, waiting: map[string]bool{}}
	return r, nil
}

// Client is the containerd client, in the node's namespace.
func (r *Runtime) Client() *containerd.Client { return r.client }

// Namespace is the node's containerd namespace.
func (r *Runtime) Namespace() string { return r.cfg.Namespace }

func (r *Runtime) ctx(ctx context.Context) context.Context {
	return namespaces.WithNamespace(ctx, r.cfg.Namespace)
}

// Version is containerd's version, as a Node's nodeInfo names it
// (containerd://1.6.20).
func (r *Runtime) Version(ctx context.Context) (string, error) {
	v, err := r.client.Version(r.ctx(ctx))
	if err != nil {
		return "", fmt.Errorf("runtime: containerd version: %w", err)
	}
	return "containerd://" + trimV(v.Version), nil
}

func trimV(s string) string {
	if len(s) > 0 && s[0] == 'v' {
		return s[1:]
	}
	return s
}

// SetupNetwork opens the node's pod network on podCIDR: the bridge and the
// address allocations (which survive restarts).
func (r *Runtime) SetupNetwork(ctx context.Context, podCIDR netip.Prefix, mtu int) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.net != nil {
		return nil
	}
	var n *podnet.Network
	err := inNetns(r.cfg.HostNetns, func() error {
		var err error
		n, err = podnet.New(ctx, podnet.Config{StateDir: filepath.Join(r.cfg.StateDir, "ipam"), PodCIDR: podCIDR, MTU: mtu, Logger: r.log})
		return err
	})
	if err != nil {
		return fmt.Errorf("runtime: pod network: %w", err)
	}
	var ports *hostport.Map
	err = inNetns(r.cfg.HostNetns, func() error {
		var err error
		ports, err = hostport.New(hostport.Config{Bridge: podnet.DefaultBridge})
		return err
	})
	if err != nil {
		return fmt.Errorf("runtime: host ports: %w", err)
	}
	r.net, r.ports = n, ports
	return nil
}

func (r *Runtime) network() (*podnet.Network, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.net == nil {
		return nil, errors.New("runtime: the pod network is not set up yet (no pod CIDR)")
	}
	return r.net, nil
}

// Close disconnects from containerd. Containers keep running and their
// FIFOs stay, for the next agent to adopt.
func (r *Runtime) Close() error {
	r.mu.Lock()
	select {
	case <-r.closed:
	default:
		close(r.closed)
	}
	n := r.net
	r.net = nil
	r.mu.Unlock()
	var err error
	if n != nil {
		err = n.Close()
	}
	return errors.Join(err, r.client.Close())
}

// PodDir is where a pod's container logs live, as /var/log/pods.
func (r *Runtime) PodDir(namespace, name, uid string) string {
	return filepath.Join(r.cfg.StateDir, "pods", namespace+"_"+name+"_"+uid)
}

// PodDataDir holds a pod's own files: volumes, resolv.conf, hosts,
// termination messages.
func (r *Runtime) PodDataDir(uid string) string {
	return filepath.Join(r.cfg.StateDir, "pod-data", uid)
}

// LogPath is the log file of one run of a container.
func (r *Runtime) LogPath(namespace, name, uid, container string, restartCount int) string {
	return filepath.Join(r.PodDir(namespace, name, uid), container, fmt.Sprintf("%d.log", restartCount))
}
