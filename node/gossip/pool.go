package gossip

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// DefaultPort is the pool's TCP and UDP port, Serf's.
const DefaultPort = 7946

// Config configures one member of the pool.
type Config struct {
	// Name is unique in the pool: the node name for agents, the store
	// member name for servers.
	Name string
	Role Role
	// BindAddr is the IP address to listen on (TCP and UDP, one port).
	BindAddr string
	// AdvertiseAddr is the IP address others reach this member at; it
	// defaults to BindAddr, which must then not be unspecified. Set both:
	// network namespaces share one hostname, so nothing can be guessed.
	AdvertiseAddr string
	// Port for TCP and UDP; 0 takes a free port (see Pool.Addr).
	Port int
	// KeyringFile holds the pool's keys (see KeyringFile); required, as
	// gossip is never plaintext. Key rotations are written back to it.
	KeyringFile string
	// Meta is gossiped to every member. Its Role and UnderlayIP default
	// to Role and AdvertiseAddr.
	Meta Meta
	// Join lists members (IP:PORT, or IP for DefaultPort) to join at
	// start. If none answers, the pool keeps trying in the background
	// every RetryJoinInterval until one does or the pool stops.
	Join              []string
	RetryJoinInterval time.Duration
	// Timing of failure detection; the zero value is ProfileBarge.
	Timing Timing
	// Transport, when set, replaces memberlist's UDP and TCP transport on
	// BindAddr:Port (which it must then be bound to). Tests wrap one to
	// stall a member as SIGSTOP would, where members share a process.
	Transport memberlist.NodeAwareTransport
	Logger    *slog.Logger
}

// Pool is this process's member of the gossip pool. Servers and agents
// join the same pool; each process has one Pool.
type Pool struct {
	cfg     Config
	logger  *slog.Logger
	ml      *memberlist.Memberlist
	keyring *memberlist.Keyring
	addr    netip.AddrPort

	metaMu sync.Mutex
	meta   Meta
	metaB  []byte

	keyMu sync.Mutex // one keyring change (and its file write) at a time

	view *view
	rpc  *rpcTable

	ctx    context.Context
	cancel context.CancelFunc
	// goMu orders wg.Add of the goroutines messages start against the
	// wg.Wait of Shutdown.
	goMu    sync.Mutex
	stopped bool
	wg      sync.WaitGroup

	closeOnce sync.Once
}

// Start creates the member, starts listening and joins cfg.Join.
func Start(cfg Config) (*Pool, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Timing == (Timing{}) {
		cfg.Timing, _ = TimingProfile(ProfileBarge)
	}
	if cfg.RetryJoinInterval == 0 {
		cfg.RetryJoinInterval = 2 * time.Second
	}
	if cfg.AdvertiseAddr == "" {
		cfg.AdvertiseAddr = cfg.BindAddr
	}
	if cfg.Meta.Role == "" {
		cfg.Meta.Role = cfg.Role
	}
	var errs []error
	if cfg.Name == "" {
		errs = append(errs, errors.New("gossip: name is required"))
	}
	switch cfg.Role {
	case RoleServer, RoleAgent:
	default:
		errs = append(errs, fmt.Errorf("gossip: role %q: want server or agent", cfg.Role))
	}
	bind, err := netip.ParseAddr(cfg.BindAddr)
	if err != nil {
		errs = append(errs, fmt.Errorf("gossip: bind address %q: want an IP address: %w", cfg.BindAddr, err))
	}
	adv, err := netip.ParseAddr(cfg.AdvertiseAddr)
	if err != nil {
		errs = append(errs, fmt.Errorf("gossip: advertise address %q: want an IP address: %w", cfg.AdvertiseAddr, err))
	} else if adv.IsUnspecified() {
		errs = append(errs, fmt.Errorf("gossip: advertise address %s is unspecified: give the address other members reach this one at", adv))
	}
	if cfg.Port < 0 || cfg.Port > 65535 {
		errs = append(errs, fmt.Errorf("gossip: port %d out of range", cfg.Port))
	}
	if cfg.Meta.Role != cfg.Role {
		errs = append(errs, fmt.Errorf("gossip: metadata role %q differs from the member's role %q", cfg.Meta.Role, cfg.Role))
	}
	if err := cfg.Timing.validate(); err != nil {
		errs = append(errs, err)
	}
	if cfg.KeyringFile == "" {
		errs = append(errs, errors.New("gossip: a keyring file is required: gossip is always encrypted"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if !cfg.Meta.UnderlayIP.IsValid() {
		cfg.Meta.UnderlayIP = adv
	}
	metaB, err := EncodeMeta(cfg.Meta)
	if err != nil {
		return nil, err
	}
	keys, err := ReadKeyring(cfg.KeyringFile)
	if err != nil {
		return nil, err
	}
	keyring, err := memberlist.NewKeyring(keys, keys[0])
	if err != nil {
		return nil, fmt.Errorf("gossip keyring %s: %w", cfg.KeyringFile, err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	p := &Pool{
		cfg:     cfg,
		logger:  cfg.Logger.With("component", "gossip"),
		keyring: keyring,
		meta:    cfg.Meta,
		metaB:   metaB,
		rpc:     newRPCTable(),
		ctx:     ctx,
		cancel:  cancel,
	}
	p.view = newView(p.logger)

	mc := memberlist.DefaultLANConfig()
	cfg.Timing.apply(mc)
	mc.Name = cfg.Name
	mc.BindAddr = bind.String()
	mc.BindPort = cfg.Port
	mc.AdvertiseAddr = adv.String()
	mc.AdvertisePort = cfg.Port
	mc.Keyring = keyring
	mc.GossipVerifyIncoming = true
	mc.GossipVerifyOutgoing = true
	mc.Delegate = (*delegate)(p)
	mc.Events = (*events)(p)
	mc.Ping = (*pings)(p)
	mc.Logger = log.New(&logBridge{p: p}, "", 0)
	if cfg.Transport != nil {
		mc.Transport = cfg.Transport
	}
	ml, err := memberlist.Create(mc)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("gossip: start member %s on %s: %w", cfg.Name, net.JoinHostPort(bind.String(), strconv.Itoa(cfg.Port)), err)
	}
	p.ml = ml
	// memberlist settles the port (a free one for port 0, or the given
	// transport's) and advertises it on the local node.
	p.addr = netip.AddrPortFrom(adv, ml.LocalNode().Port)
	p.logger.Info("gossip member started", "name", cfg.Name, "addr", p.addr.String(), "role", string(cfg.Role))

	if len(cfg.Join) > 0 {
		if _, err := p.Join(cfg.Join...); err != nil {
			p.logger.Warn("gossip join failed; retrying in the background", "join", cfg.Join, "err", err)
			p.goFn(p.retryJoin)
		}
	}
	return p, nil
}

// goFn runs fn in a goroutine that Shutdown waits for, unless the pool
// has already stopped.
func (p *Pool) goFn(fn func()) {
	p.goMu.Lock()
	defer p.goMu.Unlock()
	if p.stopped {
		return
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		fn()
	}()
}

func (p *Pool) retryJoin() {
	t := time.NewTicker(p.cfg.RetryJoinInterval)
	defer t.Stop()
	for {
		select {
		case <-p.ctx.Done():
			return
		case <-t.C:
		}
		n, err := p.Join(p.cfg.Join...)
		if err == nil {
			p.logger.Info("gossip joined", "contacted", n)
			return
		}
		p.logger.Debug("gossip join retry failed", "err", err)
	}
}

// Join contacts the given members (IP:PORT, or IP for DefaultPort) and
// merges their view of the pool. It returns how many answered, and an
// error naming each failure when none did; a member without the pool's
// key never gets an answer.
func (p *Pool) Join(addrs ...string) (int, error) {
	norm := make([]string, 0, len(addrs))
	for _, a := range addrs {
		if _, _, err := net.SplitHostPort(a); err != nil {
			a = net.JoinHostPort(a, strconv.Itoa(DefaultPort))
		}
		norm = append(norm, a)
	}
	n, err := p.ml.Join(norm)
	if n == 0 && err == nil {
		err = errors.New("no member to join")
	}
	if n > 0 {
		return n, nil
	}
	return 0, fmt.Errorf("gossip: join %v: %w", norm, err)
}

// Name is this member's name.
func (p *Pool) Name() string { return p.cfg.Name }

// Addr is the address other members reach this one at.
func (p *Pool) Addr() netip.AddrPort { return p.addr }

// Meta is this member's current metadata.
func (p *Pool) Meta() Meta {
	p.metaMu.Lock()
	defer p.metaMu.Unlock()
	return p.meta
}

// UpdateMeta replaces this member's metadata and gossips it; the other
// members see an EventUpdate. It returns once the update is sent to the
// pool or ctx ends.
func (p *Pool) UpdateMeta(ctx context.Context, m Meta) error {
	if m.Role != p.cfg.Role {
		return fmt.Errorf("gossip: metadata role %q differs from the member's role %q", m.Role, p.cfg.Role)
	}
	b, err := EncodeMeta(m)
	if err != nil {
		return err
	}
	p.metaMu.Lock()
	p.meta, p.metaB = m, b
	p.metaMu.Unlock()
	// memberlist waits without limit for a timeout of zero or less.
	timeout := 5 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		if timeout = time.Until(dl); timeout <= 0 {
			return fmt.Errorf("gossip: update metadata: %w", context.DeadlineExceeded)
		}
	}
	if err := p.ml.UpdateNode(timeout); err != nil {
		return fmt.Errorf("gossip: update metadata: %w", err)
	}
	return nil
}

// Members is this member's view of the pool, sorted by name: alive and
// suspect members, and those that left or failed until they are
// forgotten (Timing.GossipToTheDeadTime after memberlist reaps them).
func (p *Pool) Members() []Member { return p.view.members() }

// Member returns one member by name.
func (p *Pool) Member(name string) (Member, bool) { return p.view.member(name) }

// Subscribe returns the members as now known and a subscription that
// receives every change after that snapshot, in order; nothing is
// dropped for a slow reader. Close the subscription when done.
func (p *Pool) Subscribe() ([]Member, *Subscription) { return p.view.subscribe() }

// HealthScore is memberlist's Lifeguard awareness of this member's own
// health: 0 is healthy, higher means it is missing its own deadlines.
func (p *Pool) HealthScore() int { return p.ml.GetHealthScore() }

// Leave tells the pool this member is leaving, so that the others see
// EventLeave and StateLeft rather than a failure, then stops it. Within
// timeout it tells every alive member directly and waits for each to
// acknowledge, gossips the Leaving flag in its metadata (for any it
// missed), then says memberlist's goodbye.
func (p *Pool) Leave(timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	if missed := p.announceLeave(ctx); len(missed) > 0 {
		p.logger.Warn("gossip: members did not acknowledge that this one leaves; they may count it as failed", "members", missed)
	}
	m := p.Meta()
	m.Leaving = true
	if err := p.UpdateMeta(ctx, m); err != nil {
		p.logger.Warn("gossip: could not gossip the leaving flag", "err", err)
	}
	cancel()
	err := p.ml.Leave(timeout)
	if serr := p.Shutdown(); err == nil {
		err = serr
	}
	return err
}

// Shutdown stops the member without telling anyone, as a crash would:
// the others detect a failure. Use Leave for a graceful stop.
func (p *Pool) Shutdown() error {
	var err error
	p.closeOnce.Do(func() {
		p.cancel()
		err = p.ml.Shutdown()
		p.goMu.Lock()
		p.stopped = true
		p.goMu.Unlock()
		p.wg.Wait()
		p.view.close()
	})
	return err
}

// delegate, events and pings are memberlist's hooks into the pool, kept
// off Pool's method set.
type (
	delegate Pool
	events   Pool
	pings    Pool
)

func (d *delegate) NodeMeta(limit int) []byte {
	p := (*Pool)(d)
	p.metaMu.Lock()
	defer p.metaMu.Unlock()
	if len(p.metaB) > limit { // EncodeMeta's check makes this unreachable
		return nil
	}
	return bytes.Clone(p.metaB)
}

func (d *delegate) NotifyMsg(b []byte) { (*Pool)(d).handleMsg(bytes.Clone(b)) }

func (d *delegate) GetBroadcasts(overhead, limit int) [][]byte { return nil }
func (d *delegate) LocalState(join bool) []byte                { return nil }
func (d *delegate) MergeRemoteState(buf []byte, join bool)     {}

// memberlist calls these with its node lock held and a pointer into its
// own state: copy at once, never block.
func (e *events) NotifyJoin(n *memberlist.Node)   { (*Pool)(e).view.event(EventJoin, n) }
func (e *events) NotifyUpdate(n *memberlist.Node) { (*Pool)(e).view.event(EventUpdate, n) }

// NotifyLeave comes both for a goodbye and for a failure, and the Node's
// State field is not set (memberlist keeps the state beside it), so the
// leave notice, or else the Leaving flag of the last metadata, tells them
// apart.
func (e *events) NotifyLeave(n *memberlist.Node) {
	if m, err := DecodeMeta(n.Meta); (err == nil && m.Leaving) || (*Pool)(e).view.isLeaving(n.Name) {
		(*Pool)(e).view.event(EventLeave, n)
	} else {
		(*Pool)(e).view.event(EventFail, n)
	}
}

func (pg *pings) AckPayload() []byte { return nil }

// NotifyPingComplete is called when this member's probe of other was
// answered; other.Name never changes, so reading it here is safe.
func (pg *pings) NotifyPingComplete(other *memberlist.Node, _ time.Duration, _ []byte) {
	(*Pool)(pg).view.acked(other.Name)
}
