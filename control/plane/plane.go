package plane

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/barge-dev/barge/control/apiserver"
	"github.com/barge-dev/barge/control/controllers"
	"github.com/barge-dev/barge/control/leader"
	"github.com/barge-dev/barge/control/nodehealth"
	"github.com/barge-dev/barge/control/servingcsr"
	"github.com/barge-dev/barge/node/gossip"
)

// Options adjust the leader-only components.
type Options struct {
	// Controllers configures the scheduler and controllers; Client and
	// CertsDir are filled in from the API server's.
	Controllers controllers.Config
	// Unfenced sends the components' writes without their term. Only for
	// the test that proves fencing matters.
	Unfenced bool
	// Gossip is this server's member of the gossip pool; with it the
	// leader also runs the node health controller (control/nodehealth)
	// on this server's view of the pool.
	Gossip *gossip.Pool
}

// Plane is a started control plane.
type Plane struct {
	api    *apiserver.Server
	cancel context.CancelFunc
	wg     sync.WaitGroup
	err    error
}

// Start builds the API server from cfg and runs it, together with the
// scheduler and controllers whenever lead says this server leads. A nil
// lead (a cluster on external etcd) means Kubernetes' Lease election
// decides.
func Start(cfg apiserver.Config, lead leader.Leadership, opts Options) (*Plane, error) {
	logger := cfg.Logger
	if logger == nil {
		logger = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	api, err := apiserver.New(ctx, cfg)
	if err != nil {
		cancel()
		return nil, err
	}
	p := &Plane{api: api, cancel: cancel}
	if lead == nil {
		lease, err := leader.NewLeaseElection(api.LoopbackConfig(), cfg.Identity, logger)
		if err != nil {
			cancel()
			return nil, err
		}
		lead = lease
		p.goFn(func() { lease.Run(ctx) })
	}
	ccfg := opts.Controllers
	ccfg.Client = api.LoopbackConfig()
	ccfg.CertsDir = cfg.CertsDir
	ccfg.Logger = logger.With("component", "controllers")
	ccfg.Extra = append(slices.Clip(ccfg.Extra), func(_ context.Context, in informers.SharedInformerFactory, client *rest.Config) (controllers.Component, error) {
		return servingcsr.New(in, client, ccfg.Logger)
	})
	if pool := opts.Gossip; pool != nil {
		ccfg.Extra = append(slices.Clip(ccfg.Extra), func(_ context.Context, in informers.SharedInformerFactory, client *rest.Config) (controllers.Component, error) {
			return nodehealth.New(pool, in, client, ccfg.Logger)
		})
	}
	informers, err := controllers.NewInformers(ctx, api.LoopbackConfig())
	if err != nil {
		cancel()
		return nil, err
	}
	p.goFn(func() {
		if r, ok := lead.(storeReader); ok && !waitQuorum(ctx, r, logger) {
			return
		}
		if err := api.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
			logger.Error("API server stopped", "err", err)
			p.err = err
		}
	})
	p.goFn(func() {
		if !waitReady(ctx, api) {
			return
		}
		if cs, err := kubernetes.NewForConfig(api.LoopbackConfig()); err == nil {
			p.goFn(func() { ensureNodeRBAC(ctx, cs, logger) })
		}
		// Followers keep the leader's caches warm too: a server that wins
		// starts its components on them at once.
		warming := time.Now()
		standby := newStandbySlot(ctx, informers, ccfg, logger)
		err := controllers.Warm(ctx, informers, ccfg)
		if err == nil {
			// The scheduler's informers start with it.
			standby.prepare()
		}
		if err != nil {
			logger.Error("warming the controllers' caches", "err", err)
		} else {
			// Said once per process: from here a win starts the
			// components at once (barge bench control waits for it).
			// Waited for aside, so that a win before then still starts
			// them (on caches that finish syncing under them).
			p.goFn(func() {
				if informers.WaitForSync(ctx) {
					logger.Info("controllers' caches warm", "in", time.Since(warming))
				}
			})
		}
		leader.Run(ctx, lead, logger, func(ctx context.Context, term uint64) {
			if opts.Unfenced {
				term = 0
			}
			b, err := controllers.Build(ctx, informers, ccfg, term, standby.take())
			if err != nil {
				logger.Error("leader-only components", "term", term, "err", err)
				return
			}
			b.Run(ctx)
			// The next term, here or after a loss and a win, starts from
			// a scheduler that has followed the cluster in between.
			p.goFn(standby.prepare)
		})
	})
	return p, nil
}

// standbySlot holds the standby scheduler of this server's next term.
type standbySlot struct {
	ctx    context.Context
	in     *controllers.Informers
	cfg    controllers.Config
	logger *slog.Logger

	mu   sync.Mutex
	next *controllers.Standby
}

func newStandbySlot(ctx context.Context, in *controllers.Informers, cfg controllers.Config, logger *slog.Logger) *standbySlot {
	s := &standbySlot{ctx: ctx, in: in, cfg: cfg, logger: logger}
	context.AfterFunc(ctx, func() { s.take().Close() })
	return s
}

// prepare builds a standby unless one is waiting; a failure leaves the
// next term to build its scheduler itself.
func (s *standbySlot) prepare() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.next != nil || s.ctx.Err() != nil {
		return
	}
	sb, err := controllers.NewStandby(s.ctx, s.in, s.cfg)
	if err != nil {
		s.logger.Warn("standby scheduler; the next term builds its own", "err", err)
		return
	}
	s.next = sb
}

// take hands the waiting standby (or nil) to a term.
func (s *standbySlot) take() *controllers.Standby {
	s.mu.Lock()
	defer s.mu.Unlock()
	sb := s.next
	s.next = nil
	return sb
}

// storeReader is the local store peer (raftstore.Server) when this API
// server runs on it.
type storeReader interface {
	Range(ctx context.Context, req *etcdserverpb.RangeRequest) (*etcdserverpb.RangeResponse, error)
}

// waitQuorum holds the API server back until the local store serves a
// linearizable read. kube-apiserver's post-start hooks give up after
// 30 s (bootstrapping RBAC roles, for one) and a failed hook exits the
// process with klog.Fatal, which here would take the store peer down
// with it: a server started before a majority of its peers would die
// half a minute later instead of waiting for them.
func waitQuorum(ctx context.Context, store storeReader, logger *slog.Logger) bool {
	start, said := time.Now(), time.Now()
	for {
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := store.Range(rctx, &etcdserverpb.RangeRequest{Key: []byte("/registry/health"), Limit: 1, CountOnly: true})
		cancel()
		if err == nil {
			if waited := time.Since(start); waited > time.Second {
				logger.Info("store has a quorum; starting the API server", "waited", waited.Round(time.Millisecond))
			}
			return true
		}
		if time.Since(said) >= 10*time.Second {
			logger.Warn("waiting for the store to reach a quorum before starting the API server", "waited", time.Since(start).Round(time.Second), "err", err)
			said = time.Now()
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// waitReady waits for the API server to answer /readyz: the components'
// clients talk to it.
func waitReady(ctx context.Context, api *apiserver.Server) bool {
	client, err := kubernetes.NewForConfig(api.LoopbackConfig())
	if err != nil {
		return false
	}
	err = wait.PollUntilContextCancel(ctx, 50*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		body, err := client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		return err == nil && string(body) == "ok", nil
	})
	return err == nil
}

func (p *Plane) goFn(fn func()) {
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		fn()
	}()
}

// Addr is the API server's listen address.
func (p *Plane) Addr() string { return p.api.Addr() }

// API returns the API server.
func (p *Plane) API() *apiserver.Server { return p.api }

// Stop shuts everything down and waits for it.
func (p *Plane) Stop() error {
	p.cancel()
	p.wg.Wait()
	return p.err
}
