package dns

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	mdns "github.com/miekg/dns"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// Defaults of Config.
const (
	DefaultZone = "cluster.local"
	// DefaultTTL is CoreDNS' kubernetes plugin default: short, so a
	// changed Service is seen soon.
	DefaultTTL = 5
	// DefaultForwardTimeout bounds each upstream's answer.
	DefaultForwardTimeout = 2 * time.Second
)

// Config is what the agent hands the DNS server.
type Config struct {
	Client kubernetes.Interface
	// Listen is the address served, UDP and TCP (the node bridge's
	// gateway address, port 53, for the agent).
	Listen netip.AddrPort
	// ServiceIP is the cluster DNS Service's address (10.96.0.10): when
	// set, its port 53 is DNATed to Listen on this node. Zero leaves
	// nftables alone.
	ServiceIP netip.Addr
	// Zone is the cluster domain; "" is DefaultZone.
	Zone string
	// Upstreams answer every name outside the cluster, tried in order
	// (the node's own resolvers). None: such names get SERVFAIL at once.
	Upstreams []netip.AddrPort
	// ReverseCIDRs are the ranges (Services, pods) whose reverse names
	// are the cluster's: a miss there is NXDOMAIN, not a forward.
	ReverseCIDRs []netip.Prefix
	// TTL of every answer; 0 is DefaultTTL.
	TTL uint32
	// ForwardTimeout bounds one upstream exchange; 0 is
	// DefaultForwardTimeout.
	ForwardTimeout time.Duration
	Logger         *slog.Logger
	// Started, if set, is called once both listeners are up and the
	// informers have synced.
	Started func()
}

func (c *Config) check() error {
	var errs []error
	if c.Client == nil {
		errs = append(errs, errors.New("no API client"))
	}
	if !c.Listen.IsValid() || !c.Listen.Addr().Is4() {
		errs = append(errs, fmt.Errorf("listen address %v is not IPv4 address:port", c.Listen))
	}
	if c.ServiceIP.IsValid() && !c.ServiceIP.Is4() {
		errs = append(errs, fmt.Errorf("service IP %v is not IPv4", c.ServiceIP))
	}
	if c.Zone != "" {
		if _, ok := mdns.IsDomainName(c.Zone); !ok {
			errs = append(errs, fmt.Errorf("zone %q is not a domain name", c.Zone))
		}
	}
	for _, u := range c.Upstreams {
		if !u.IsValid() {
			errs = append(errs, fmt.Errorf("upstream %v is not address:port", u))
		}
		if u == c.Listen || (c.ServiceIP.IsValid() && u.Addr() == c.ServiceIP) {
			errs = append(errs, fmt.Errorf("upstream %v is this server: queries would loop", u))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("dns: config: %w", err)
	}
	return nil
}

// Run serves cluster DNS on cfg.Listen until ctx ends.
func Run(ctx context.Context, cfg Config) error {
	if err := cfg.check(); err != nil {
		return err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Zone == "" {
		cfg.Zone = DefaultZone
	}
	if cfg.TTL == 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.ForwardTimeout == 0 {
		cfg.ForwardTimeout = DefaultForwardTimeout
	}
	log := cfg.Logger

	factory := informers.NewSharedInformerFactory(cfg.Client, 0)
	svcInf := factory.Core().V1().Services().Informer()
	sliceInf := factory.Discovery().V1().EndpointSlices().Informer()
	if err := svcInf.AddIndexers(serviceIndexers()); err != nil {
		return fmt.Errorf("dns: service index: %w", err)
	}
	if err := sliceInf.AddIndexers(sliceIndexers()); err != nil {
		return fmt.Errorf("dns: endpointslice index: %w", err)
	}
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	if !cache.WaitForCacheSync(ctx.Done(), svcInf.HasSynced, sliceInf.HasSynced) {
		return fmt.Errorf("dns: informers did not sync: %w", context.Cause(ctx))
	}

	h := &handler{
		res: &resolver{
			zone:     mdns.Fqdn(strings.ToLower(cfg.Zone)),
			ttl:      cfg.TTL,
			services: svcInf.GetIndexer(),
			slices:   sliceInf.GetIndexer(),
			reverse:  cfg.ReverseCIDRs,
		},
		upstreams: cfg.Upstreams,
		timeout:   cfg.ForwardTimeout,
		log:       log,
	}
	udp, err := net.ListenPacket("udp4", cfg.Listen.String())
	if err != nil {
		return fmt.Errorf("dns: listen udp %v: %w", cfg.Listen, err)
	}
	tcp, err := net.Listen("tcp4", cfg.Listen.String())
	if err != nil {
		udp.Close()
		return fmt.Errorf("dns: listen tcp %v: %w", cfg.Listen, err)
	}
	servers := []*mdns.Server{
		{PacketConn: udp, Net: "udp", Handler: h, UDPSize: mdns.DefaultMsgSize},
		{Listener: tcp, Net: "tcp", Handler: h, ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second},
	}
	var wg sync.WaitGroup
	errc := make(chan error, len(servers))
	for _, s := range servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.ActivateAndServe(); err != nil {
				errc <- fmt.Errorf("dns: serve %s %v: %w", s.Net, cfg.Listen, err)
			}
		}()
	}
	stop := func() {
		for _, s := range servers {
			_ = s.Shutdown()
		}
		wg.Wait()
	}
	if cfg.ServiceIP.IsValid() {
		if err := ensureDNAT(ctx, cfg.ServiceIP, cfg.Listen); err != nil {
			stop()
			return err
		}
	}
	log.Info("cluster DNS serving", "listen", cfg.Listen, "zone", cfg.Zone, "serviceIP", cfg.ServiceIP, "upstreams", cfg.Upstreams)
	if cfg.Started != nil {
		cfg.Started()
	}
	select {
	case <-ctx.Done():
		stop()
		return nil
	case err := <-errc:
		stop()
		return err
	}
}

type handler struct {
	res       *resolver
	upstreams []netip.AddrPort
	timeout   time.Duration
	log       *slog.Logger
}

func (h *handler) ServeDNS(w mdns.ResponseWriter, req *mdns.Msg) {
	m := h.answer(w, req)
	if m == nil {
		return
	}
	if _, udp := w.RemoteAddr().(*net.UDPAddr); udp {
		size := mdns.MinMsgSize
		if o := req.IsEdns0(); o != nil {
			size = int(o.UDPSize())
		}
		m.Truncate(size)
	}
	if err := w.WriteMsg(m); err != nil {
		h.log.Debug("dns: write answer", "err", err)
	}
}

func (h *handler) answer(w mdns.ResponseWriter, req *mdns.Msg) *mdns.Msg {
	m := new(mdns.Msg)
	if req.Opcode != mdns.OpcodeQuery || len(req.Question) != 1 {
		return m.SetRcode(req, mdns.RcodeNotImplemented)
	}
	q := req.Question[0]
	r := h.res.resolve(q)
	if !r.ours {
		return h.forward(w, req)
	}
	m.SetReply(req)
	m.Authoritative = true
	m.RecursionAvailable = len(h.upstreams) > 0
	m.Compress = true
	m.Rcode = r.rcode
	m.Answer = r.answer
	m.Extra = r.extra
	if len(r.answer) == 0 {
		m.Ns = []mdns.RR{h.res.soa()}
	}
	if o := req.IsEdns0(); o != nil {
		m.SetEdns0(o.UDPSize(), false)
	}
	return m
}

// forward asks the upstreams in order and relays the first answer;
// with none, or none answering, the client gets SERVFAIL.
func (h *handler) forward(w mdns.ResponseWriter, req *mdns.Msg) *mdns.Msg {
	network := "udp"
	if _, ok := w.RemoteAddr().(*net.TCPAddr); ok {
		network = "tcp"
	}
	c := &mdns.Client{Net: network, Timeout: h.timeout}
	for _, u := range h.upstreams {
		ctx, cancel := context.WithTimeout(context.Background(), h.timeout)
		resp, _, err := c.ExchangeContext(ctx, req, u.String())
		cancel()
		if err == nil && resp != nil {
			resp.Id = req.Id
			return resp
		}
		h.log.Debug("dns: upstream failed", "upstream", u, "name", req.Question[0].Name, "err", err)
	}
	m := new(mdns.Msg)
	m.SetRcode(req, mdns.RcodeServerFailure)
	m.RecursionAvailable = len(h.upstreams) > 0
	return m
}
