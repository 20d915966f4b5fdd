package plane

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"

	"github.com/barge-dev/barge/control/apiserver"
	"github.com/barge-dev/barge/control/controllers"
	"github.com/barge-dev/barge/control/leader"
	"github.com/barge-dev/barge/raftstore/pki"
)

// Plane is a started control plane.
type Plane struct {
	api    *apiserver.Server
	cancel context.CancelFunc
	done   chan struct{}
	err    error
}

// Start builds the API server from cfg and runs it, together with the
// controllers whenever leadership says this peer leads.
func Start(cfg apiserver.Config, lead leader.Leadership) (*Plane, error) {
	api, err := apiserver.New(cfg)
	if err != nil {
		return nil, err
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Plane{api: api, cancel: cancel, done: make(chan struct{})}
	apiDone := make(chan struct{})
	go func() {
		defer close(apiDone)
		if err := api.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
			logger.Error("API server stopped", "err", err)
			p.err = err
		}
	}()
	go func() {
		defer close(p.done)
		leader.Run(ctx, lead, logger, func(ctx context.Context) {
			if err := runControllers(ctx, api, cfg.CertsDir, logger); err != nil {
				logger.Error("controllers", "err", err)
			}
		})
		<-apiDone
	}()
	return p, nil
}

// Addr is the API server's listen address.
func (p *Plane) Addr() string { return p.api.Addr() }

// API returns the API server.
func (p *Plane) API() *apiserver.Server { return p.api }

// Stop shuts everything down and waits for it.
func (p *Plane) Stop() error {
	p.cancel()
	<-p.done
	return p.err
}

// runControllers runs the leader-only controllers for one term.
func runControllers(ctx context.Context, api *apiserver.Server, certsDir string, logger *slog.Logger) error {
	rootCA, err := os.ReadFile(filepath.Join(certsDir, pki.CACertFile))
	if err != nil {
		return fmt.Errorf("cluster CA: %w", err)
	}
	cfg := api.LoopbackConfig()
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("client: %w", err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("client: %w", err)
	}
	// Each term gets fresh informers, so nothing cached by an earlier term
	// outlives it.
	inf := informers.NewSharedInformerFactory(client, 0)
	ns, err := controllers.NewNamespaces(client, dyn, inf, rootCA, logger)
	if err != nil {
		return err
	}
	inf.Start(ctx.Done())
	defer inf.Shutdown()
	ns.Run(ctx)
	return nil
}
