package netpol

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"time"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"sigs.k8s.io/knftables"
)

// Table is the nftables table (family ip) netpol owns.
const Table = "barge-netpol"

// Config is what the agent hands the policy enforcer.
type Config struct {
	Client kubernetes.Interface
	// NodeName picks the pods enforced here (spec.nodeName).
	NodeName string
	// Table overrides Table (tests).
	Table  string
	Logger *slog.Logger
	// Synced, if set, is called after every sync that wrote the rules
	// (with the time the sync began), and is how tests and benchmarks
	// learn a change is in place.
	Synced func(started time.Time, err error)
}

// Run enforces NetworkPolicy for the node's pods until ctx ends. On
// return the rules stay as they were: pods stay fenced while the agent
// restarts.
func Run(ctx context.Context, cfg Config) error {
	if cfg.Client == nil {
		return errors.New("netpol: config: no API client")
	}
	if cfg.NodeName == "" {
		return errors.New("netpol: config: no node name")
	}
	if cfg.Table == "" {
		cfg.Table = Table
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if err := enableBridgeNetfilter(); err != nil {
		return err
	}
	nft, err := knftables.New(knftables.IPv4Family, cfg.Table)
	if err != nil {
		return fmt.Errorf("netpol: nftables: %w", err)
	}
	factory := informers.NewSharedInformerFactory(cfg.Client, 0)
	pods := factory.Core().V1().Pods()
	nss := factory.Core().V1().Namespaces()
	pols := factory.Networking().V1().NetworkPolicies()
	kick := make(chan struct{}, 1)
	h := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { notify(kick) },
		UpdateFunc: func(any, any) { notify(kick) },
		DeleteFunc: func(any) { notify(kick) },
	}
	for _, inf := range []cache.SharedIndexInformer{pods.Informer(), nss.Informer(), pols.Informer()} {
		if _, err := inf.AddEventHandler(h); err != nil {
			return fmt.Errorf("netpol: event handler: %w", err)
		}
	}
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	if !cache.WaitForCacheSync(ctx.Done(), pods.Informer().HasSynced, nss.Informer().HasSynced, pols.Informer().HasSynced) {
		return fmt.Errorf("netpol: informers did not sync: %w", context.Cause(ctx))
	}
	s := &syncer{nft: nft, log: cfg.Logger}
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	defer retry.Stop()
	for {
		started := time.Now()
		c := cluster{node: cfg.NodeName}
		var lerr error
		if c.pods, lerr = pods.Lister().List(labels.Everything()); lerr == nil {
			if c.namespaces, lerr = nss.Lister().List(labels.Everything()); lerr == nil {
				c.policies, lerr = pols.Lister().List(labels.Everything())
			}
		}
		err := lerr
		if err == nil {
			err = s.sync(ctx, c)
		}
		if cfg.Synced != nil {
			cfg.Synced(started, err)
		}
		if err != nil && ctx.Err() == nil {
			cfg.Logger.Error("netpol: sync failed; retrying", "err", err)
			retry.Reset(time.Second)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-kick:
		case <-retry.C:
		}
	}
}

func notify(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// syncer writes states, remembering the last one written.
type syncer struct {
	nft     knftables.Interface
	log     *slog.Logger
	applied *state
}

const (
	forwardChain = "forward"
	ingressMap   = "ingress"
	egressMap    = "egress"
)

func (s *syncer) sync(ctx context.Context, c cluster) error {
	want, errs := compute(c)
	for _, err := range errs {
		s.log.Warn("netpol: policy not fully enforceable", "err", err)
	}
	tx := s.nft.NewTransaction()
	old := s.applied
	if old == nil {
		// The first write replaces whatever a previous agent left.
		tx.Add(&knftables.Table{})
		tx.Delete(&knftables.Table{})
		tx.Add(&knftables.Table{Comment: knftables.PtrTo("barge NetworkPolicy")})
		for _, m := range []string{ingressMap, egressMap} {
			tx.Add(&knftables.Map{Name: m, Type: "ipv4_addr : verdict"})
		}
		tx.Add(&knftables.Chain{
			Name:     forwardChain,
			Type:     knftables.PtrTo(knftables.FilterType),
			Hook:     knftables.PtrTo(knftables.ForwardHook),
			Priority: knftables.PtrTo(knftables.FilterPriority + "-5"),
		})
		for _, r := range []string{
			"ct state established,related accept",
			"ip saddr vmap @" + egressMap,
			"ip daddr vmap @" + ingressMap,
		} {
			tx.Add(&knftables.Rule{Chain: forwardChain, Rule: r})
		}
		old = &state{chains: map[string][]string{}, ingress: map[string]string{}, egress: map[string]string{}}
	}
	// New and changed chains first, so map elements can point at them.
	for name, rules := range want.chains {
		if have, ok := old.chains[name]; ok && slices.Equal(have, rules) {
			continue
		}
		tx.Add(&knftables.Chain{Name: name})
		tx.Flush(&knftables.Chain{Name: name})
		for _, r := range rules {
			tx.Add(&knftables.Rule{Chain: name, Rule: r})
		}
	}
	elems := func(m string, have, want map[string]string) {
		for ip, ch := range have {
			if want[ip] != ch {
				tx.Delete(&knftables.Element{Map: m, Key: []string{ip}})
			}
		}
		for ip, ch := range want {
			if have[ip] != ch {
				tx.Add(&knftables.Element{Map: m, Key: []string{ip}, Value: []string{"jump " + ch}})
			}
		}
	}
	elems(ingressMap, old.ingress, want.ingress)
	elems(egressMap, old.egress, want.egress)
	// Chains nothing points at any more go last.
	for name := range old.chains {
		if _, ok := want.chains[name]; !ok {
			tx.Flush(&knftables.Chain{Name: name})
			tx.Delete(&knftables.Chain{Name: name})
		}
	}
	if tx.NumOperations() == 0 {
		return nil
	}
	if err := s.nft.Run(ctx, tx); err != nil {
		// What is in the kernel is unknown now: start over next time.
		s.applied = nil
		return fmt.Errorf("netpol: write table: %w", err)
	}
	s.applied = &want
	return nil
}

// bridgeNetfilter is the sysctl that sends bridged IPv4 traffic through
// the IPv4 netfilter hooks, per network namespace: without it traffic
// between two pods on the node's bridge never reaches the forward hook.
const bridgeNetfilter = "/proc/sys/net/bridge/bridge-nf-call-iptables"

func enableBridgeNetfilter() error {
	b, err := os.ReadFile(bridgeNetfilter)
	if err == nil && len(b) > 0 && b[0] == '1' {
		return nil
	}
	if err := os.WriteFile(bridgeNetfilter, []byte("1\n"), 0o644); err != nil {
		return fmt.Errorf("netpol: enable bridged traffic filtering (%s): %w", bridgeNetfilter, err)
	}
	return nil
}
