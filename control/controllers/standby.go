package controllers

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync/atomic"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/events"
	"k8s.io/kubernetes/pkg/scheduler"
	"k8s.io/kubernetes/pkg/scheduler/profile"
)

// Standby is kube-scheduler built before the term it will serve, its
// event handlers active from the start: its cache and queue follow the
// cluster while this server follows, so a term that begins runs it at
// once. Built at the start of a term instead, it would first replay every
// pod into a new cache, which at 10,000 pods took 300-900 ms of a
// failover (barge bench control). Until Build hands it a term it can
// read but not write: its client refuses every mutating request.
type Standby struct {
	sched     *scheduler.Scheduler
	term      *Term
	broadcast events.EventBroadcaster
	fence     *armedFence
	cancel    context.CancelFunc
}

// NewStandby builds a standby scheduler on the warm informers; nil when
// cfg leaves the scheduler out. Hand it to one Build, or Close it.
func NewStandby(ctx context.Context, in *Informers, cfg Config) (*Standby, error) {
	if cfg.NoScheduler {
		return nil, nil
	}
	ctx, cancel := context.WithCancel(ctx)
	s := &Standby{fence: &armedFence{}, cancel: cancel, term: in.NewTerm()}
	ok := false
	defer func() {
		if !ok {
			s.Close()
		}
	}()
	clientCfg := rest.CopyConfig(cfg.Client)
	clientCfg.Wrap(func(rt http.RoundTripper) http.RoundTripper { return armedTransport{rt: rt, f: s.fence} })
	rest.AddUserAgent(clientCfg, "scheduler")
	client, err := kubernetes.NewForConfig(clientCfg)
	if err != nil {
		return nil, fmt.Errorf("scheduler: %w", err)
	}
	dyn, err := dynamic.NewForConfig(clientCfg)
	if err != nil {
		return nil, fmt.Errorf("scheduler: %w", err)
	}
	s.broadcast = events.NewBroadcaster(&events.EventSinkImpl{Interface: client.EventsV1()})
	s.sched, err = scheduler.New(ctx, client, s.term.Typed(),
		dynamicinformer.NewDynamicSharedInformerFactory(dyn, 0), profile.NewRecorderFactory(s.broadcast),
		scheduler.WithKubeConfig(clientCfg))
	if err != nil {
		return nil, fmt.Errorf("scheduler: %w", err)
	}
	if err := s.term.Activate(); err != nil {
		return nil, fmt.Errorf("scheduler: %w", err)
	}
	in.Start()
	ok = true
	return s, nil
}

// Close discards a standby that no term took.
func (s *Standby) Close() {
	if s == nil {
		return
	}
	s.cancel()
	if s.broadcast != nil {
		s.broadcast.Shutdown()
	}
	s.term.End()
}

// armedFence is the term a standby's writes carry, unknown until a term
// takes it.
type armedFence struct {
	armed atomic.Bool
	term  atomic.Uint64
}

// arm lets writes through, with fence as FenceHeader (0: unfenced, on
// external etcd).
func (f *armedFence) arm(fence uint64) {
	f.term.Store(fence)
	f.armed.Store(true)
}

var errStandby = errors.New("controllers: a standby scheduler does not write before its term")

type armedTransport struct {
	rt http.RoundTripper
	f  *armedFence
}

func (t armedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if !t.f.armed.Load() {
		switch r.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
			return t.rt.RoundTrip(r)
		}
		return nil, errStandby
	}
	if fence := t.f.term.Load(); fence != 0 {
		r = r.Clone(r.Context())
		r.Header.Set(FenceHeader, strconv.FormatUint(fence, 10))
	}
	return t.rt.RoundTrip(r)
}
