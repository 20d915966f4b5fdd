package plane

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	"github.com/barge-dev/barge/control/apiserver"
	"github.com/barge-dev/barge/control/controllers"
	"github.com/barge-dev/barge/control/leader"
	"github.com/barge-dev/barge/raftstore/pki"
)

// Plane is a started control plane.
type Plane struct {
	api    *apiserver.Server
	cancel context.CancelFunc
	wg     sync.WaitGroup
	err    error
}

// Start builds the API server from cfg and runs it, together with the
// controllers whenever lead says this peer leads. A nil lead (a cluster
// on external etcd) means Kubernetes' Lease election decides.
func Start(cfg apiserver.Config, lead leader.Leadership) (*Plane, error) {
	logger := cfg.Logger
	if logger == nil {
		logger = slog.Default()
	}
	rootCA, err := os.ReadFile(filepath.Join(cfg.CertsDir, pki.CACertFile))
	if err != nil {
		return nil, fmt.Errorf("cluster CA: %w", err)
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
		goWG(&p.wg, func() { lease.Run(ctx) })
	}
	goWG(&p.wg, func() {
		if err := api.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
			logger.Error("API server stopped", "err", err)
			p.err = err
		}
	})
	goWG(&p.wg, func() {
		leader.Run(ctx, lead, logger, func(ctx context.Context) {
			err := controllers.Run(ctx, controllers.Config{Client: api.LoopbackConfig(), RootCA: rootCA, Logger: logger})
			if err != nil {
				logger.Error("controllers", "err", err)
			}
		})
	})
	return p, nil
}

func goWG(wg *sync.WaitGroup, fn func()) {
	wg.Add(1)
	go func() {
		defer wg.Done()
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
