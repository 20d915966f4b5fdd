package controllers

import (
	"context"
	"fmt"
	"reflect"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/informers/admissionregistration"
	"k8s.io/client-go/informers/apiserverinternal"
	"k8s.io/client-go/informers/apps"
	"k8s.io/client-go/informers/autoscaling"
	"k8s.io/client-go/informers/batch"
	"k8s.io/client-go/informers/certificates"
	"k8s.io/client-go/informers/coordination"
	"k8s.io/client-go/informers/core"
	"k8s.io/client-go/informers/discovery"
	"k8s.io/client-go/informers/events"
	"k8s.io/client-go/informers/extensions"
	"k8s.io/client-go/informers/flowcontrol"
	"k8s.io/client-go/informers/internalinterfaces"
	"k8s.io/client-go/informers/lifecycle"
	"k8s.io/client-go/informers/networking"
	"k8s.io/client-go/informers/node"
	"k8s.io/client-go/informers/policy"
	"k8s.io/client-go/informers/rbac"
	"k8s.io/client-go/informers/resource"
	"k8s.io/client-go/informers/scheduling"
	"k8s.io/client-go/informers/storage"
	"k8s.io/client-go/informers/storagemigration"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/metadata/metadatainformer"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
)

// Informers are the caches every server keeps in sync, leader or not, so
// that the scheduler and the controllers of a new term start from warm
// caches instead of listing the cluster. They run for the life of the
// process; each term borrows them through a Term, which tracks the event
// handlers the term's components add and removes them when it ends.
type Informers struct {
	ctx   context.Context
	typed informers.SharedInformerFactory
	meta  metadatainformer.SharedInformerFactory
}

// NewInformers prepares the process-wide informers on cfg; they run until
// ctx ends, started by whoever asks for them (Term.Start).
func NewInformers(ctx context.Context, cfg *rest.Config) (*Informers, error) {
	client, err := kubernetes.NewForConfig(rest.CopyConfig(cfg))
	if err != nil {
		return nil, fmt.Errorf("informers: %w", err)
	}
	mc, err := metadata.NewForConfig(rest.CopyConfig(cfg))
	if err != nil {
		return nil, fmt.Errorf("informers: %w", err)
	}
	// Managed fields are of no use to a controller; kube-controller-manager
	// trims them to save memory, and so do we.
	trim := func(obj any) (any, error) {
		if a, err := meta.Accessor(obj); err == nil && a.GetManagedFields() != nil {
			a.SetManagedFields(nil)
		}
		return obj, nil
	}
	return &Informers{
		ctx:   ctx,
		typed: informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithTransform(trim)),
		meta:  metadatainformer.NewSharedInformerFactoryWithOptions(mc, 0, metadatainformer.WithTransform(trim)),
	}, nil
}

// Start runs every informer requested so far, on the process's lifetime.
func (in *Informers) Start() {
	in.typed.Start(in.ctx.Done())
	in.meta.Start(in.ctx.Done())
}

// WaitForSync waits until every informer started so far has synced, or
// ctx ends; it reports whether they all did.
func (in *Informers) WaitForSync(ctx context.Context) bool {
	for _, ok := range in.typed.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return false
		}
	}
	for _, ok := range in.meta.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return false
		}
	}
	return true
}

// Term is one term's view of the Informers: the same caches, with the
// event handlers added through it held back until Activate, and removed by
// End.
//
// Holding them back matters: a handler added to a running informer is
// told about every object at once, while the component that added it may
// still be in its constructor (kube-controller-manager's components are
// written for informers that start only after all are built). Activate
// is that start.
type Term struct {
	in *Informers

	mu      sync.Mutex
	active  bool
	ended   bool
	pending []*termHandler
	regs    []*termHandler
}

// termHandler is one handler of a term, registered on its informer once
// the term is active.
type termHandler struct {
	inf     cache.SharedIndexInformer
	handler cache.ResourceEventHandler
	opts    cache.HandlerOptions
	reg     cache.ResourceEventHandlerRegistration // nil until active
	synced  chan struct{}                          // closed when reg has synced
}

func (h *termHandler) HasSynced() bool {
	select {
	case <-h.synced:
		return true
	default:
		return false
	}
}

func (h *termHandler) HasSyncedChecker() cache.DoneChecker { return h }
func (h *termHandler) Name() string                        { return "barge-term-handler" }
func (h *termHandler) Done() <-chan struct{}               { return h.synced }

func (h *termHandler) register() error {
	reg, err := h.inf.AddEventHandlerWithOptions(h.handler, h.opts)
	if err != nil {
		return err
	}
	h.reg = reg
	go func() {
		<-reg.HasSyncedChecker().Done()
		close(h.synced)
	}()
	return nil
}

// NewTerm begins a term's use of the informers.
func (in *Informers) NewTerm() *Term { return &Term{in: in} }

// Activate registers every handler added so far, and lets later ones
// register at once.
func (t *Term) Activate() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.active || t.ended {
		return nil
	}
	t.active = true
	for _, h := range t.pending {
		if err := h.register(); err != nil {
			return fmt.Errorf("informers: %w", err)
		}
		t.regs = append(t.regs, h)
	}
	t.pending = nil
	return nil
}

// End removes every handler the term added. Call it once the term's
// components have stopped; their queues are shut down by then, so events
// that raced in went nowhere.
func (t *Term) End() {
	t.mu.Lock()
	regs := t.regs
	t.regs, t.pending, t.ended = nil, nil, true
	t.mu.Unlock()
	for _, h := range regs {
		_ = h.inf.RemoveEventHandler(h.reg)
	}
}

// Typed is the term's typed informer factory.
func (t *Term) Typed() informers.SharedInformerFactory { return termTyped{t} }

// Metadata is the term's metadata-only informer factory.
func (t *Term) Metadata() metadatainformer.SharedInformerFactory { return termMeta{t} }

func (t *Term) wrap(inf cache.SharedIndexInformer) cache.SharedIndexInformer {
	return &termInformer{SharedIndexInformer: inf, t: t}
}

func (t *Term) add(inf cache.SharedIndexInformer, handler cache.ResourceEventHandler, opts cache.HandlerOptions) (cache.ResourceEventHandlerRegistration, error) {
	h := &termHandler{inf: inf, handler: handler, opts: opts, synced: make(chan struct{})}
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case t.ended:
		// A component still starting when its term ended: it hears nothing.
		return h, nil
	case !t.active:
		t.pending = append(t.pending, h)
		return h, nil
	}
	if err := h.register(); err != nil {
		return nil, err
	}
	t.regs = append(t.regs, h)
	return h, nil
}

func (t *Term) remove(reg cache.ResourceEventHandlerRegistration) error {
	h, ok := reg.(*termHandler)
	if !ok {
		return fmt.Errorf("informers: a registration of another term")
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for i, p := range t.pending {
		if p == h {
			t.pending = append(t.pending[:i], t.pending[i+1:]...)
			return nil
		}
	}
	for i, r := range t.regs {
		if r == h {
			t.regs = append(t.regs[:i], t.regs[i+1:]...)
			return h.inf.RemoveEventHandler(h.reg)
		}
	}
	return nil
}

// termInformer is a shared informer whose handlers belong to a term.
type termInformer struct {
	cache.SharedIndexInformer
	t *Term
}

func (i *termInformer) AddEventHandler(h cache.ResourceEventHandler) (cache.ResourceEventHandlerRegistration, error) {
	return i.t.add(i.SharedIndexInformer, h, cache.HandlerOptions{})
}

func (i *termInformer) AddEventHandlerWithResyncPeriod(h cache.ResourceEventHandler, resync time.Duration) (cache.ResourceEventHandlerRegistration, error) {
	return i.t.add(i.SharedIndexInformer, h, cache.HandlerOptions{ResyncPeriod: &resync})
}

func (i *termInformer) AddEventHandlerWithOptions(h cache.ResourceEventHandler, o cache.HandlerOptions) (cache.ResourceEventHandlerRegistration, error) {
	return i.t.add(i.SharedIndexInformer, h, o)
}

func (i *termInformer) RemoveEventHandler(reg cache.ResourceEventHandlerRegistration) error {
	return i.t.remove(reg)
}

// AddIndexers skips indexers an earlier term already added: the same
// component adds the same ones every term, and an informer refuses a
// second indexer of a name.
func (i *termInformer) AddIndexers(add cache.Indexers) error {
	return addNewIndexers(i.SharedIndexInformer.GetIndexer(), add, i.SharedIndexInformer.AddIndexers)
}

// GetIndexer hands out the shared store with the same indexer rule, for
// components that add indexers through it.
func (i *termInformer) GetIndexer() cache.Indexer {
	return termIndexer{Indexer: i.SharedIndexInformer.GetIndexer()}
}

type termIndexer struct{ cache.Indexer }

func (x termIndexer) AddIndexers(add cache.Indexers) error {
	return addNewIndexers(x.Indexer, add, x.Indexer.AddIndexers)
}

func addNewIndexers(have cache.Indexer, add cache.Indexers, apply func(cache.Indexers) error) error {
	existing := have.GetIndexers()
	fresh := cache.Indexers{}
	for name, fn := range add {
		if _, ok := existing[name]; !ok {
			fresh[name] = fn
		}
	}
	if len(fresh) == 0 {
		return nil
	}
	return apply(fresh)
}

// Run is the process's job (Informers.Start), not a term's.
func (i *termInformer) Run(<-chan struct{}) {}

// RunWithContext is the process's job too.
func (i *termInformer) RunWithContext(context.Context) {}

type genericInformer struct {
	inf    cache.SharedIndexInformer
	lister cache.GenericLister
}

func (g genericInformer) Informer() cache.SharedIndexInformer { return g.inf }
func (g genericInformer) Lister() cache.GenericLister         { return g.lister }

// termTyped is informers.SharedInformerFactory over the shared factory.
type termTyped struct{ t *Term }

var _ informers.SharedInformerFactory = termTyped{}

func (f termTyped) shared() informers.SharedInformerFactory { return f.t.in.typed }

func (f termTyped) Start(<-chan struct{})             { f.t.in.Start() }
func (f termTyped) StartWithContext(context.Context)  { f.t.in.Start() }
func (f termTyped) Shutdown()                         {}
func (f termTyped) InformerName() *cache.InformerName { return f.shared().InformerName() }
func (f termTyped) WaitForCacheSync(stop <-chan struct{}) map[reflect.Type]bool {
	return f.shared().WaitForCacheSync(stop)
}
func (f termTyped) WaitForCacheSyncWithContext(ctx context.Context) cache.SyncResult {
	return f.shared().WaitForCacheSyncWithContext(ctx)
}
func (f termTyped) InformerFor(obj runtime.Object, newFunc internalinterfaces.NewInformerFunc) cache.SharedIndexInformer {
	return f.t.wrap(f.shared().InformerFor(obj, newFunc))
}
func (f termTyped) ForResource(gvr schema.GroupVersionResource) (informers.GenericInformer, error) {
	g, err := f.shared().ForResource(gvr)
	if err != nil {
		return nil, err
	}
	return genericInformer{f.t.wrap(g.Informer()), g.Lister()}, nil
}

func (f termTyped) Admissionregistration() admissionregistration.Interface {
	return admissionregistration.New(f, "", nil)
}
func (f termTyped) Internal() apiserverinternal.Interface { return apiserverinternal.New(f, "", nil) }
func (f termTyped) Apps() apps.Interface                  { return apps.New(f, "", nil) }
func (f termTyped) Autoscaling() autoscaling.Interface    { return autoscaling.New(f, "", nil) }
func (f termTyped) Batch() batch.Interface                { return batch.New(f, "", nil) }
func (f termTyped) Certificates() certificates.Interface  { return certificates.New(f, "", nil) }
func (f termTyped) Coordination() coordination.Interface  { return coordination.New(f, "", nil) }
func (f termTyped) Core() core.Interface                  { return core.New(f, "", nil) }
func (f termTyped) Discovery() discovery.Interface        { return discovery.New(f, "", nil) }
func (f termTyped) Events() events.Interface              { return events.New(f, "", nil) }
func (f termTyped) Extensions() extensions.Interface      { return extensions.New(f, "", nil) }
func (f termTyped) Flowcontrol() flowcontrol.Interface    { return flowcontrol.New(f, "", nil) }
func (f termTyped) Lifecycle() lifecycle.Interface        { return lifecycle.New(f, "", nil) }
func (f termTyped) Networking() networking.Interface      { return networking.New(f, "", nil) }
func (f termTyped) Node() node.Interface                  { return node.New(f, "", nil) }
func (f termTyped) Policy() policy.Interface              { return policy.New(f, "", nil) }
func (f termTyped) Rbac() rbac.Interface                  { return rbac.New(f, "", nil) }
func (f termTyped) Resource() resource.Interface          { return resource.New(f, "", nil) }
func (f termTyped) Scheduling() scheduling.Interface      { return scheduling.New(f, "", nil) }
func (f termTyped) Storage() storage.Interface            { return storage.New(f, "", nil) }
func (f termTyped) Storagemigration() storagemigration.Interface {
	return storagemigration.New(f, "", nil)
}

// termMeta is metadatainformer.SharedInformerFactory over the shared one.
type termMeta struct{ t *Term }

var _ metadatainformer.SharedInformerFactory = termMeta{}

func (f termMeta) Start(<-chan struct{}) { f.t.in.Start() }
func (f termMeta) Shutdown()             {}
func (f termMeta) WaitForCacheSync(stop <-chan struct{}) map[schema.GroupVersionResource]bool {
	return f.t.in.meta.WaitForCacheSync(stop)
}
func (f termMeta) ForResource(gvr schema.GroupVersionResource) informers.GenericInformer {
	g := f.t.in.meta.ForResource(gvr)
	return genericInformer{f.t.wrap(g.Informer()), g.Lister()}
}
