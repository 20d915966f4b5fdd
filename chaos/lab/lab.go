package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/barge-dev/barge/raftstore/pki"
)

// Host roles.
const (
	RoleServer   = "server"
	RoleNode     = "node"
	RoleRegistry = "registry"
)

// Ports every server uses on its own address.
const (
	PeerPort   = 2380
	ClientPort = 2379
	APIPort    = 6443
	// GossipPort is every server's and agent's gossip port (node/gossip's
	// default).
	GossipPort = 7946
)

// LeaderTimeout bounds how long Up waits for the first election.
const LeaderTimeout = 30 * time.Second

// Config describes a lab to bring up.
type Config struct {
	Dir     string // everything the lab writes goes here
	Servers int    // 1, 3 or 5
	Nodes   int    // worker nodes, each running `barge agent`
	// LateNodes are more worker nodes, named after the others, whose
	// namespaces and credentials Up makes but whose agents start only at
	// Start: nodes that join later, also while the servers have no
	// quorum. Each has a fixed pod range (agent --pod-cidr, LatePodCIDR),
	// as such a node cannot wait for node IPAM.
	LateNodes int
	// Registry starts the registry host and the shared containerd even
	// without nodes; with nodes they always run.
	Registry bool
	Barge    string // path to the barge binary the servers and agents run
	// ServerArgs are appended to every `barge server` command line, and
	// kept in lab.json so Start uses them too.
	ServerArgs []string
	// AgentArgs are appended to every `barge agent` command line.
	AgentArgs []string
	// NodeCapacity is each node's --capacity; default: the machine
	// divided by the number of nodes (nodeCapacity).
	NodeCapacity string
	// Overlay is the agents' --overlay (vxlan or ipip); "" leaves the
	// agent's default, vxlan.
	Overlay string
	// TokenBootstrap joins the nodes as an operator without the CA key
	// would: with a bootstrap token (`barge certs token create`), ca.crt
	// and the gossip keyring, and the agent asks for its credential by
	// CSR, instead of `barge certs node`.
	TokenBootstrap bool
	Logger         *slog.Logger
}

// Host is one network namespace of the lab, as recorded in lab.json.
type Host struct {
	Name       string `json:"name"`
	Role       string `json:"role"`
	Netns      string `json:"netns"`
	Address    string `json:"address"`
	PID        int    `json:"pid,omitempty"`
	PeerAddr   string `json:"peerAddr,omitempty"`
	ClientAddr string `json:"clientAddr,omitempty"`
	APIAddr    string `json:"apiAddr,omitempty"`
	// GossipAddr is where the host's server or agent gossips.
	GossipAddr string `json:"gossipAddr,omitempty"`
	DataDir    string `json:"dataDir,omitempty"`
	Log        string `json:"log,omitempty"`
	// Nodes: the credential directory (`barge certs node`), containerd
	// namespace and --capacity of the agent.
	Certs     string `json:"certs,omitempty"`
	Namespace string `json:"containerdNamespace,omitempty"`
	Capacity  string `json:"capacity,omitempty"`
	// PodCIDR is the agent's --pod-cidr (late nodes). Late marks a node
	// whose agent has not been started yet: it is not waited for.
	PodCIDR string `json:"podCIDR,omitempty"`
	Late    bool   `json:"late,omitempty"`
}

// Lab is a running lab. Its exported fields are lab.json.
type Lab struct {
	ID         string   `json:"id"`
	Dir        string   `json:"dir"`
	Certs      string   `json:"certs"`
	Endpoints  []string `json:"endpoints"`
	Kubeconfig string   `json:"kubeconfig"`
	Subnet     string   `json:"subnet"`
	Barge      string   `json:"barge"`
	ServerArgs []string `json:"serverArgs,omitempty"`
	AgentArgs  []string `json:"agentArgs,omitempty"`
	Overlay    string   `json:"overlay,omitempty"`
	// BootstrapToken is the file of the nodes' bootstrap token, when
	// they join with one (Config.TokenBootstrap).
	BootstrapToken string `json:"bootstrapToken,omitempty"`
	Hosts          []Host `json:"hosts"`
	// Registry is HOST:PORT of the lab registry: REGISTRY/busybox:latest
	// works in any pod spec.
	Registry   string      `json:"registry,omitempty"`
	Containerd *Containerd `json:"containerd,omitempty"`

	log *slog.Logger
}

const stateFile = "lab.json"

// Up builds the lab described by cfg and returns once its servers have
// elected a leader. On failure it removes the namespaces and processes it
// made but leaves Dir's files, so the server logs can explain what went
// wrong; Down removes the rest.
func Up(ctx context.Context, cfg Config) (*Lab, error) {
	if cfg.Servers != 1 && cfg.Servers != 3 && cfg.Servers != 5 {
		return nil, fmt.Errorf("lab: %d servers: want 1, 3 or 5", cfg.Servers)
	}
	if cfg.Nodes < 0 || cfg.LateNodes < 0 || cfg.Nodes+cfg.LateNodes > 100 {
		return nil, fmt.Errorf("lab: %d nodes and %d late ones: want 0 to 100 in all", cfg.Nodes, cfg.LateNodes)
	}
	if cfg.Dir == "" {
		return nil, errors.New("lab: no directory given")
	}
	if cfg.Barge == "" {
		return nil, errors.New("lab: no barge binary given")
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("lab: resolve %s: %w", cfg.Dir, err)
	}
	barge, err := filepath.Abs(cfg.Barge)
	if err != nil {
		return nil, fmt.Errorf("lab: resolve %s: %w", cfg.Barge, err)
	}
	id, err := labID(dir)
	if err != nil {
		return nil, err
	}
	subnet, err := labSubnet(id)
	if err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("lab", id)

	if _, err := os.Stat(filepath.Join(dir, stateFile)); err == nil {
		return nil, fmt.Errorf("lab: %s already holds a lab (run `barge lab down --dir %s` first)", dir, dir)
	}
	existing, err := labNamespaces(ctx, id)
	if err != nil {
		return nil, err
	}
	if len(existing) > 0 {
		return nil, fmt.Errorf("lab: namespaces of lab %s are left over (%s); run `barge lab down --dir %s` first", id, strings.Join(existing, ", "), dir)
	}

	l := &Lab{
		ID:         id,
		Dir:        dir,
		Certs:      filepath.Join(dir, "certs"),
		Kubeconfig: filepath.Join(dir, "admin.kubeconfig"),
		Subnet:     subnet.String(),
		Barge:      barge,
		ServerArgs: cfg.ServerArgs,
		AgentArgs:  cfg.AgentArgs,
		Overlay:    cfg.Overlay,
		log:        log,
	}
	switch cfg.Overlay {
	case "", "vxlan", "ipip":
	default:
		return nil, fmt.Errorf("lab: overlay %q: want vxlan or ipip", cfg.Overlay)
	}
	withRuntime := cfg.Nodes+cfg.LateNodes > 0 || cfg.Registry
	if withRuntime {
		l.Containerd = newContainerd(dir)
	}
	var serverIPs []string
	for i := 1; i <= cfg.Servers; i++ {
		name := "s" + strconv.Itoa(i)
		addr := hostAddr(subnet, byte(i)).String()
		serverIPs = append(serverIPs, addr)
		l.Hosts = append(l.Hosts, Host{
			Name:       name,
			Role:       RoleServer,
			Netns:      hostNS(id, name),
			Address:    addr,
			PeerAddr:   net.JoinHostPort(addr, strconv.Itoa(PeerPort)),
			ClientAddr: net.JoinHostPort(addr, strconv.Itoa(ClientPort)),
			APIAddr:    net.JoinHostPort(addr, strconv.Itoa(APIPort)),
			GossipAddr: net.JoinHostPort(addr, strconv.Itoa(GossipPort)),
			DataDir:    filepath.Join(dir, "data", name),
			Log:        filepath.Join(dir, "logs", name+".log"),
		})
		l.Endpoints = append(l.Endpoints, "https://"+net.JoinHostPort(addr, strconv.Itoa(ClientPort)))
	}
	capacity := cfg.NodeCapacity
	if capacity == "" {
		capacity = nodeCapacity(cfg.Nodes + cfg.LateNodes)
	}
	for i := 1; i <= cfg.Nodes+cfg.LateNodes; i++ {
		name := "n" + strconv.Itoa(i)
		addr := hostAddr(subnet, byte(100+i)).String()
		l.Hosts = append(l.Hosts, Host{
			Name:       name,
			Role:       RoleNode,
			Netns:      hostNS(id, name),
			Address:    addr,
			GossipAddr: net.JoinHostPort(addr, strconv.Itoa(GossipPort)),
			DataDir:    filepath.Join(dir, "data", name),
			Log:        filepath.Join(dir, "logs", name+".log"),
			Certs:      filepath.Join(dir, "certs", "nodes", name),
			Namespace:  containerdNamespace(id, name),
			Capacity:   capacity,
		})
		if i > cfg.Nodes {
			h := &l.Hosts[len(l.Hosts)-1]
			h.Late = true
			h.PodCIDR = LatePodCIDR(i - cfg.Nodes).String()
		}
	}
	if withRuntime {
		addr := hostAddr(subnet, registryLast).String()
		l.Hosts = append(l.Hosts, Host{
			Name:    RegistryHost,
			Role:    RoleRegistry,
			Netns:   hostNS(id, RegistryHost),
			Address: addr,
			DataDir: filepath.Join(dir, "registry"),
			Log:     filepath.Join(dir, "logs", RegistryHost+".log"),
		})
		l.Registry = net.JoinHostPort(addr, strconv.Itoa(RegistryPort))
	}

	for _, d := range []string{dir, filepath.Join(dir, "data"), filepath.Join(dir, "logs")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("lab: %w", err)
		}
	}
	// A crashed earlier lab may have left certificates; a fresh CA per lab
	// keeps every run independent of the last.
	if err := pki.InitDir(l.Certs, pki.InitOptions{Hosts: serverIPs, APIPort: APIPort, Force: true}); err != nil {
		return nil, fmt.Errorf("lab: certificates: %w", err)
	}
	if err := l.writeKubeconfig(); err != nil {
		return nil, err
	}
	if err := l.gossipKeyring(ctx); err != nil {
		return nil, err
	}

	fail := func(err error) (*Lab, error) {
		// The caller's context may be what failed; tearing down must not
		// depend on it. Logs stay, to explain the failure.
		var r Removed
		if terr := teardown(context.Background(), id, dir, l.Hosts, l.Containerd, &r); terr != nil {
			log.Warn("tear down after failed up", "err", terr)
		}
		return nil, err
	}
	log.Info("building network", "subnet", subnet)
	if err := l.buildNetwork(ctx, subnet); err != nil {
		return fail(err)
	}
	for i := range l.Hosts {
		if l.Hosts[i].Role != RoleServer {
			continue
		}
		if err := l.startServer(&l.Hosts[i]); err != nil {
			return fail(err)
		}
	}
	// Saved before the election so that a crash while waiting still leaves
	// the pids for Down.
	if err := l.Save(); err != nil {
		return fail(err)
	}
	if withRuntime {
		// Containerd and the registry start while the servers elect.
		if err := l.startRuntime(ctx); err != nil {
			return fail(err)
		}
	}
	wctx, cancel := context.WithTimeout(ctx, LeaderTimeout)
	defer cancel()
	leader, err := l.waitLeader(wctx)
	if err != nil {
		return fail(fmt.Errorf("lab: no leader elected: %w (server logs in %s); end of %s:\n%s",
			err, filepath.Join(dir, "logs"), l.Hosts[0].Log, tailLog(l.Hosts[0].Log, 2048)))
	}
	log.Info("leader elected", "leader", leader, "endpoints", l.Endpoints)
	if cfg.Nodes+cfg.LateNodes > 0 {
		rctx, cancel := context.WithTimeout(ctx, NodeReadyTimeout)
		defer cancel()
		if err := l.waitAPI(rctx); err != nil {
			return fail(err)
		}
		if cfg.TokenBootstrap {
			if err := l.createBootstrapToken(ctx); err != nil {
				return fail(err)
			}
		}
		for i := range l.Hosts {
			h := &l.Hosts[i]
			if h.Role != RoleNode {
				continue
			}
			if err := l.nodeCredentials(ctx, h); err != nil {
				return fail(err)
			}
			if h.Late {
				continue
			}
			if err := l.startAgent(h); err != nil {
				return fail(err)
			}
		}
		if err := l.Save(); err != nil {
			return fail(err)
		}
		if err := l.WaitNodesReady(rctx); err != nil {
			return fail(err)
		}
		log.Info("nodes ready", "nodes", l.nodeNames())
	}
	log.Info("lab up", "leader", leader, "endpoints", l.Endpoints, "registry", l.Registry)
	return l, nil
}

// startRuntime starts the shared containerd and the registry, and pushes
// busybox.
func (l *Lab) startRuntime(ctx context.Context) error {
	if err := l.Containerd.start(ctx, l); err != nil {
		return err
	}
	if err := l.Save(); err != nil {
		return err
	}
	reg, err := l.Host(RegistryHost)
	if err != nil {
		return err
	}
	if err := l.startRegistry(reg); err != nil {
		return err
	}
	if err := l.Save(); err != nil {
		return err
	}
	return l.pushImages(ctx)
}

func (l *Lab) writeKubeconfig() error {
	read := func(name string) ([]byte, error) {
		b, err := os.ReadFile(filepath.Join(l.Certs, name))
		if err != nil {
			return nil, fmt.Errorf("lab: kubeconfig: %w", err)
		}
		return b, nil
	}
	ca, err := read(pki.CACertFile)
	if err != nil {
		return err
	}
	cert, err := read(pki.AdminCertFile)
	if err != nil {
		return err
	}
	key, err := read(pki.AdminKeyFile)
	if err != nil {
		return err
	}
	var server string
	for _, h := range l.Hosts {
		if h.Role == RoleServer {
			server = "https://" + h.APIAddr
			break
		}
	}
	kc := pki.Kubeconfig(server, ca, cert, key, pki.AdminUser)
	if err := os.WriteFile(l.Kubeconfig, kc, 0o600); err != nil {
		return fmt.Errorf("lab: kubeconfig: %w", err)
	}
	return nil
}

func (l *Lab) buildNetwork(ctx context.Context, subnet netip.Prefix) error {
	// Refusing an already-routed subnet keeps a colliding lab (or anything
	// else on the machine using this range) from being cut off or hijacked.
	out, err := ip(ctx, "", "-4", "route", "show", "to", "match", hostAddr(subnet, 254).String())
	if err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line != "" && !strings.HasPrefix(line, "default") {
			return fmt.Errorf("lab: subnet %s is already routed on this machine (%s); is another lab using it?", subnet, line)
		}
	}

	u := underlayNS(l.ID)
	br := bridgeName(l.ID)
	steps := [][]string{
		{"", "netns", "add", u},
		{u, "link", "set", "lo", "up"},
		{u, "link", "add", br, "type", "bridge"},
		{u, "link", "set", br, "up"},
	}
	for _, h := range l.Hosts {
		port := portName(l.ID, h.Name)
		steps = append(steps,
			[]string{"", "netns", "add", h.Netns},
			[]string{h.Netns, "link", "set", "lo", "up"},
			[]string{u, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", h.Netns},
			[]string{u, "link", "set", port, "master", br, "up"},
			[]string{h.Netns, "addr", "add", h.Address + "/24", "dev", "eth0"},
			[]string{h.Netns, "link", "set", "eth0", "up"},
		)
	}
	rv := rootVeth(l.ID)
	steps = append(steps,
		[]string{"", "link", "add", rv, "type", "veth", "peer", "name", rootVethPeer(l.ID), "netns", u},
		[]string{u, "link", "set", rootVethPeer(l.ID), "master", br, "up"},
		// The address brings exactly the on-link /24 route with it; no
		// other route is added, so nothing leaves the machine.
		[]string{"", "addr", "add", hostAddr(subnet, 254).String() + "/24", "dev", rv},
		[]string{"", "link", "set", rv, "up"},
	)
	for _, s := range steps {
		if _, err := ip(ctx, s[0], s[1:]...); err != nil {
			return fmt.Errorf("lab: build network: %w", err)
		}
	}
	return nil
}

// Load reads the lab.json in dir.
func Load(dir string) (*Lab, error) {
	b, err := os.ReadFile(filepath.Join(dir, stateFile))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("lab: no lab in %s (no %s): %w", dir, stateFile, err)
		}
		return nil, fmt.Errorf("lab: %w", err)
	}
	var l Lab
	if err := json.Unmarshal(b, &l); err != nil {
		return nil, fmt.Errorf("lab: %s: %w", filepath.Join(dir, stateFile), err)
	}
	l.log = slog.New(slog.DiscardHandler).With("lab", l.ID)
	return &l, nil
}

// SetLogger sets where the lab's own progress messages go.
func (l *Lab) SetLogger(log *slog.Logger) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	l.log = log.With("lab", l.ID)
}

// Save writes lab.json atomically, so a reader never sees half a file.
func (l *Lab) Save() error {
	b, err := json.MarshalIndent(l, "", "  ")
	if err != nil {
		return fmt.Errorf("lab: encode state: %w", err)
	}
	path := filepath.Join(l.Dir, stateFile)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("lab: save: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("lab: save: %w", err)
	}
	return nil
}

// Host returns the named host.
func (l *Lab) Host(name string) (*Host, error) {
	for i := range l.Hosts {
		if l.Hosts[i].Name == name {
			return &l.Hosts[i], nil
		}
	}
	return nil, fmt.Errorf("lab: no host %q (hosts: %s)", name, strings.Join(l.names(), ", "))
}

func (l *Lab) names() []string {
	var n []string
	for _, h := range l.Hosts {
		n = append(n, h.Name)
	}
	return n
}

// Servers returns the server host names in order.
func (l *Lab) Servers() []string {
	var n []string
	for _, h := range l.Hosts {
		if h.Role == RoleServer {
			n = append(n, h.Name)
		}
	}
	return n
}

// ClientAddr returns the IP:PORT of host's etcd API, or "" for a node.
func (l *Lab) ClientAddr(host string) string {
	h, err := l.Host(host)
	if err != nil {
		return ""
	}
	return h.ClientAddr
}

// CertsDir returns the lab's certificate directory.
func (l *Lab) CertsDir() string { return l.Certs }

func linkExists(ctx context.Context, name string) bool {
	_, err := ip(ctx, "", "link", "show", "dev", name)
	return err == nil
}

// labNamespaces lists the namespaces named for lab id.
func labNamespaces(ctx context.Context, id string) ([]string, error) {
	out, err := ip(ctx, "", "netns", "list")
	if err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	var nss []string
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) > 0 && strings.HasPrefix(f[0], nsPrefix(id)) {
			nss = append(nss, f[0])
		}
	}
	slices.Sort(nss)
	return nss, nil
}

// tailLog returns the end of a log file for error messages.
func tailLog(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > n {
		_, _ = f.Seek(-n, io.SeekEnd)
	}
	b, _ := io.ReadAll(f)
	return string(b)
}
