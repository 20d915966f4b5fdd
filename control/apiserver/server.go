package apiserver

import (
	"context"
	"crypto/sha256"
	"encoding/base32"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/spf13/pflag"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/apiserver/pkg/server/egressselector"
	utilfeature "k8s.io/apiserver/pkg/util/feature"
	restclient "k8s.io/client-go/rest"
	basecompatibility "k8s.io/component-base/compatibility"
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
	"k8s.io/kubernetes/cmd/kube-apiserver/app/options"
)

// Server is one built kube-apiserver, ready to run.
type Server struct {
	cfg      Config
	addr     string
	run      func(ctx context.Context) error
	loopback *restclient.Config
}

// New builds kube-apiserver's server chain from cfg, the way
// kube-apiserver's own command does (options → config → aggregator,
// built-in APIs, apiextensions), and returns it unstarted.
func New(ctx context.Context, cfg Config) (*Server, error) {
	if err := cfg.complete(); err != nil {
		return nil, err
	}
	ln := cfg.Listener
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", cfg.Addr); err != nil {
			return nil, fmt.Errorf("apiserver: listen: %w", err)
		}
	}
	s, err := build(ctx, cfg, ln)
	if err != nil {
		ln.Close()
		return nil, err
	}
	return s, nil
}

func build(ctx context.Context, cfg Config, ln net.Listener) (*Server, error) {
	tcp, ok := ln.Addr().(*net.TCPAddr)
	if !ok {
		return nil, fmt.Errorf("apiserver: listener %s is not TCP", ln.Addr())
	}
	args, err := cfg.args(tcp.IP.String(), tcp.Port)
	if err != nil {
		return nil, err
	}

	opts := options.NewServerRunOptions()
	// Each API server in a process gets its own version registry, as
	// kube-apiserver's own test server does (the process-wide default can
	// be set only once), over the process-wide feature gate: that is the
	// one Kubernetes' code reads, so --feature-gates must land there.
	// Every server of a process sets it to the same values.
	globals := basecompatibility.NewComponentGlobalsRegistry()
	if err := globals.Register(basecompatibility.DefaultKubeComponent, newReportedVersion(cfg.BargeVersion),
		utilfeature.DefaultMutableFeatureGate); err != nil {
		return nil, fmt.Errorf("apiserver: %w", err)
	}
	opts.GenericServerRunOptions.ComponentGlobalsRegistry = globals

	fs := pflag.NewFlagSet("kube-apiserver", pflag.ContinueOnError)
	for _, set := range opts.Flags().FlagSets {
		fs.AddFlagSet(set)
	}
	if err := fs.Parse(args); err != nil {
		return nil, fmt.Errorf("apiserver: kube-apiserver flags: %w", err)
	}
	if err := globals.Set(); err != nil {
		return nil, fmt.Errorf("apiserver: %w", err)
	}
	opts.SecureServing.Listener = ln
	if cfg.LocalStore != nil {
		dial := cfg.LocalStore
		opts.Etcd.StorageConfig.Transport.EgressLookup = func(egressselector.NetworkContext) (utilnet.DialFunc, error) {
			return utilnet.DialFunc(dial), nil
		}
	}

	completed, err := opts.Complete(ctx)
	if err != nil {
		return nil, fmt.Errorf("apiserver: %w", err)
	}
	if errs := completed.Validate(); len(errs) != 0 {
		return nil, fmt.Errorf("apiserver: %w", utilerrors.NewAggregate(errs))
	}
	config, err := app.NewConfig(completed)
	if err != nil {
		return nil, fmt.Errorf("apiserver: %w", err)
	}
	// The identity lease and storage version records key on this ID;
	// each delegate server holds its own copy of the generic config.
	id := apiServerID(cfg.Identity)
	config.KubeAPIs.ControlPlane.Generic.APIServerID = id
	config.ApiExtensions.GenericConfig.APIServerID = id
	config.Aggregator.GenericConfig.APIServerID = id
	// The aggregator serves every request first; its chain is the outer one.
	config.Aggregator.GenericConfig.BuildHandlerChainFunc = withFence(config.Aggregator.GenericConfig.BuildHandlerChainFunc)
	done, err := config.Complete()
	if err != nil {
		return nil, fmt.Errorf("apiserver: %w", err)
	}
	chain, err := app.CreateServerChain(done)
	if err != nil {
		return nil, fmt.Errorf("apiserver: %w", err)
	}
	prepared, err := chain.PrepareRun()
	if err != nil {
		return nil, fmt.Errorf("apiserver: %w", err)
	}
	return &Server{
		cfg:      cfg,
		addr:     net.JoinHostPort(tcp.IP.String(), strconv.Itoa(tcp.Port)),
		run:      prepared.Run,
		loopback: restclient.CopyConfig(config.KubeAPIs.ControlPlane.Generic.LoopbackClientConfig),
	}, nil
}

// apiServerID has the shape of kube-apiserver's own IDs (apiserver- and
// a base32 hash), from barge's member name instead of the hostname.
func apiServerID(identity string) string {
	sum := sha256.Sum256([]byte("barge\x00" + identity))
	return "apiserver-" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(sum[:16]))
}

// Addr is the address the server listens on.
func (s *Server) Addr() string { return s.addr }

// LoopbackConfig is a privileged (system:masters) client configuration
// for this server, for the components running beside it.
func (s *Server) LoopbackConfig() *restclient.Config { return restclient.CopyConfig(s.loopback) }

// Run serves until ctx ends, then shuts down gracefully.
func (s *Server) Run(ctx context.Context) error { return s.run(ctx) }
