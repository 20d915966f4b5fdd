package registry

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apiserver/pkg/registry/generic"
	genericregistry "k8s.io/apiserver/pkg/registry/generic/registry"
	"k8s.io/apiserver/pkg/storage"
)

// allocator hands out unique values (cluster IPs, node ports) by creating
// one marker key per value: create-if-absent in the store is the lock, so
// every API server can allocate without coordination. A crash between
// allocation and the service write leaks a value; Kubernetes has a repair
// loop for that, barge does not yet.
type allocator struct {
	what    string // for messages: "cluster IP", "node port"
	noun    string // in Kubernetes' messages: "IP", "port"
	store   storage.Interface
	prefix  string
	size    int
	nth     func(i int) string
	index   func(v string) (int, bool)
	destroy func()
}

// errFull means every value of the range is in use.
var errFull = errors.New("range is full")

// allocate reserves want, or any free value when want is empty.
func (a *allocator) allocate(ctx context.Context, want string) (string, error) {
	if want != "" {
		if _, ok := a.index(want); !ok {
			return "", fmt.Errorf("%s %s is not in the range this cluster allocates from", a.what, want)
		}
		if err := a.reserve(ctx, want); err != nil {
			return "", err
		}
		return want, nil
	}
	// Random probes first keep concurrent allocators apart; the scan after
	// them finds the last free values of a nearly full range.
	start := rand.IntN(a.size)
	for i := 0; i < a.size; i++ {
		idx := (start + i) % a.size
		if i < 32 {
			idx = rand.IntN(a.size)
		}
		v := a.nth(idx)
		err := a.reserve(ctx, v)
		if err == nil {
			return v, nil
		}
		if !storage.IsExist(err) {
			return "", err
		}
	}
	return "", fmt.Errorf("%s: %w", a.what, errFull)
}

func (a *allocator) reserve(ctx context.Context, v string) error {
	marker := &corev1.RangeAllocation{ObjectMeta: metav1.ObjectMeta{Name: v}, Range: a.what}
	return a.store.Create(ctx, a.prefix+"/"+v, marker, &corev1.RangeAllocation{}, 0)
}

func (a *allocator) release(ctx context.Context, v string) {
	if v == "" {
		return
	}
	_ = a.store.Delete(ctx, a.prefix+"/"+v, &corev1.RangeAllocation{}, nil, storage.ValidateAllObjectFunc, nil, storage.DeleteOptions{})
}

func newIPAllocator(opts Options, store storage.Interface, destroy func()) (*allocator, error) {
	cidr := opts.ServiceCIDR.Masked()
	if !cidr.Addr().Is4() || cidr.Bits() < 8 || cidr.Bits() > 30 {
		return nil, fmt.Errorf("service CIDR %s: want an IPv4 prefix between /8 and /30", opts.ServiceCIDR)
	}
	base := cidr.Addr().As4()
	baseN := uint32(base[0])<<24 | uint32(base[1])<<16 | uint32(base[2])<<8 | uint32(base[3])
	// The network and broadcast addresses are never handed out.
	size := 1<<(32-cidr.Bits()) - 2
	return &allocator{
		what: "cluster IP", noun: "IP", store: store, prefix: "/ranges/serviceips", size: size, destroy: destroy,
		nth: func(i int) string {
			n := baseN + uint32(i) + 1
			return netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}).String()
		},
		index: func(v string) (int, bool) {
			ip, err := netip.ParseAddr(v)
			if err != nil || !cidr.Contains(ip) {
				return 0, false
			}
			b := ip.As4()
			i := int(uint32(b[0])<<24|uint32(b[1])<<16|uint32(b[2])<<8|uint32(b[3])) - int(baseN) - 1
			return i, i >= 0 && i < size
		},
	}, nil
}

func newPortAllocator(opts Options, store storage.Interface) (*allocator, error) {
	lo, hi := opts.NodePorts[0], opts.NodePorts[1]
	if lo < 1 || hi > 65535 || lo > hi {
		return nil, fmt.Errorf("node port range %d-%d is not within 1-65535", lo, hi)
	}
	return &allocator{
		what: "node port", noun: "port", store: store, prefix: "/ranges/servicenodeports", size: hi - lo + 1,
		nth: func(i int) string { return strconv.Itoa(lo + i) },
		index: func(v string) (int, bool) {
			n, err := strconv.Atoi(v)
			return n - lo, err == nil && n >= lo && n <= hi
		},
	}, nil
}

// serviceAllocations wires cluster IP and node port allocation into the
// services store through its create, update and delete hooks.
type serviceAllocations struct {
	ips   *allocator
	ports *allocator
}

func newServiceAllocations(opts Options, services *genericregistry.Store) (*serviceAllocations, error) {
	gr := schema.GroupResource{Resource: "serviceallocations"}
	restOpts, err := opts.RESTOptions.GetRESTOptions(gr, &corev1.RangeAllocation{})
	if err != nil {
		return nil, fmt.Errorf("service allocation storage: %w", err)
	}
	// Straight to the store, no watch cache: allocation needs create-if-
	// absent on the authoritative copy and nothing ever watches markers.
	store, destroy, err := generic.NewRawStorage(restOpts.StorageConfig,
		func() runtime.Object { return &corev1.RangeAllocation{} }, func() runtime.Object { return &corev1.List{} }, "/ranges")
	if err != nil {
		return nil, fmt.Errorf("service allocation storage: %w", err)
	}
	ips, err := newIPAllocator(opts, store, destroy)
	if err != nil {
		destroy()
		return nil, err
	}
	ports, err := newPortAllocator(opts, store)
	if err != nil {
		destroy()
		return nil, err
	}
	a := &serviceAllocations{ips: ips, ports: ports}
	services.BeginCreate = a.beginCreate
	services.BeginUpdate = a.beginUpdate
	services.AfterDelete = a.afterDelete
	prev := services.DestroyFunc
	services.DestroyFunc = func() {
		destroy()
		if prev != nil {
			prev()
		}
	}
	return a, nil
}

func needsClusterIP(s *corev1.Service) bool {
	return s.Spec.Type != corev1.ServiceTypeExternalName && s.Spec.ClusterIP != corev1.ClusterIPNone
}

func needsNodePorts(s *corev1.Service) bool {
	return s.Spec.Type == corev1.ServiceTypeNodePort || s.Spec.Type == corev1.ServiceTypeLoadBalancer
}

// txn records what one request allocated so a failed write gives it back.
type txn struct {
	a   *serviceAllocations
	ips []string
	ps  []string
}

func (t *txn) finish(ctx context.Context, success bool) {
	if success || len(t.ips)+len(t.ps) == 0 {
		return
	}
	ctx, cancel := releaseContext(ctx)
	defer cancel()
	for _, ip := range t.ips {
		t.a.ips.release(ctx, ip)
	}
	for _, p := range t.ps {
		t.a.ports.release(ctx, p)
	}
}

func (a *serviceAllocations) beginCreate(ctx context.Context, obj runtime.Object, options *metav1.CreateOptions) (genericregistry.FinishFunc, error) {
	svc, ok := obj.(*corev1.Service)
	if !ok || (options != nil && len(options.DryRun) > 0) {
		return func(context.Context, bool) {}, nil
	}
	t := &txn{a: a}
	if err := a.allocateIP(ctx, t, svc); err != nil {
		t.finish(ctx, false)
		return nil, err
	}
	if err := a.allocatePorts(ctx, t, svc, nil); err != nil {
		t.finish(ctx, false)
		return nil, err
	}
	return t.finish, nil
}

func (a *serviceAllocations) allocateIP(ctx context.Context, t *txn, svc *corev1.Service) error {
	if !needsClusterIP(svc) {
		return nil
	}
	ip, err := a.ips.allocate(ctx, svc.Spec.ClusterIP)
	if err != nil {
		return a.ips.allocationError(svc, field.NewPath("spec", "clusterIPs"), svc.Spec.ClusterIP, err)
	}
	t.ips = append(t.ips, ip)
	svc.Spec.ClusterIP = ip
	svc.Spec.ClusterIPs = []string{ip}
	single := corev1.IPFamilyPolicySingleStack
	svc.Spec.IPFamilyPolicy = &single
	svc.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv4Protocol}
	return nil
}

// allocatePorts gives every port of a NodePort or LoadBalancer service a
// node port; ports the old object already had keep theirs.
func (a *serviceAllocations) allocatePorts(ctx context.Context, t *txn, svc, old *corev1.Service) error {
	if !needsNodePorts(svc) {
		return nil
	}
	kept := map[int32]bool{}
	if old != nil && needsNodePorts(old) {
		for _, p := range old.Spec.Ports {
			kept[p.NodePort] = true
		}
	}
	for i := range svc.Spec.Ports {
		p := &svc.Spec.Ports[i]
		if p.NodePort != 0 && kept[p.NodePort] {
			continue
		}
		want := ""
		if p.NodePort != 0 {
			want = strconv.Itoa(int(p.NodePort))
		}
		got, err := a.ports.allocate(ctx, want)
		if err != nil {
			return a.ports.allocationError(svc, field.NewPath("spec", "ports").Index(i).Child("nodePort"), p.NodePort, err)
		}
		t.ps = append(t.ps, got)
		n, _ := strconv.Atoi(got)
		p.NodePort = int32(n)
	}
	return nil
}

func (a *serviceAllocations) beginUpdate(ctx context.Context, obj, oldObj runtime.Object, options *metav1.UpdateOptions) (genericregistry.FinishFunc, error) {
	svc, ok1 := obj.(*corev1.Service)
	old, ok2 := oldObj.(*corev1.Service)
	if !ok1 || !ok2 {
		return func(context.Context, bool) {}, nil
	}
	dropTypeDependentFields(svc, old)
	keepAllocated(svc, old)
	if options != nil && len(options.DryRun) > 0 {
		return func(context.Context, bool) {}, nil
	}
	t := &txn{a: a}
	if svc.Spec.ClusterIP == "" {
		if err := a.allocateIP(ctx, t, svc); err != nil {
			t.finish(ctx, false)
			return nil, err
		}
	}
	if err := a.allocatePorts(ctx, t, svc, old); err != nil {
		t.finish(ctx, false)
		return nil, err
	}
	return func(ctx context.Context, success bool) {
		t.finish(ctx, success)
		if success {
			a.releaseUnused(ctx, svc, old)
		}
	}, nil
}

// keepAllocated carries the allocated values of the stored service into
// an update that left them out, as `kubectl apply` and `replace` with the
// original manifest do.
func keepAllocated(svc, old *corev1.Service) {
	if svc.Spec.ClusterIP == "" && needsClusterIP(svc) && needsClusterIP(old) {
		svc.Spec.ClusterIP = old.Spec.ClusterIP
		svc.Spec.ClusterIPs = old.Spec.ClusterIPs
		if svc.Spec.IPFamilyPolicy == nil {
			svc.Spec.IPFamilyPolicy = old.Spec.IPFamilyPolicy
		}
		if len(svc.Spec.IPFamilies) == 0 {
			svc.Spec.IPFamilies = old.Spec.IPFamilies
		}
	}
	if !needsNodePorts(svc) || !needsNodePorts(old) {
		return
	}
	for i := range svc.Spec.Ports {
		p := &svc.Spec.Ports[i]
		if p.NodePort != 0 {
			continue
		}
		for _, o := range old.Spec.Ports {
			if o.Port == p.Port && o.Protocol == p.Protocol {
				p.NodePort = o.NodePort
				break
			}
		}
	}
}

// dropTypeDependentFields clears, when an update changes the type, the
// fields the old type needed and the client left as they were (a patch of
// spec.type alone keeps them), as Kubernetes' service strategy does; the
// allocations behind them are released after the write.
func dropTypeDependentFields(svc, old *corev1.Service) {
	if needsClusterIP(old) && !needsClusterIP(svc) && svc.Spec.ClusterIP == old.Spec.ClusterIP {
		svc.Spec.ClusterIP, svc.Spec.ClusterIPs = "", nil
		if svc.Spec.Type == corev1.ServiceTypeExternalName {
			svc.Spec.IPFamilies, svc.Spec.IPFamilyPolicy = nil, nil
		}
	}
	if needsNodePorts(old) && !needsNodePorts(svc) && sameNodePorts(svc, old) {
		for i := range svc.Spec.Ports {
			svc.Spec.Ports[i].NodePort = 0
		}
	}
	if needsNodePorts(old) && !needsNodePorts(svc) && svc.Spec.ExternalTrafficPolicy == old.Spec.ExternalTrafficPolicy {
		svc.Spec.ExternalTrafficPolicy = ""
	}
	if old.Spec.Type == corev1.ServiceTypeLoadBalancer && svc.Spec.Type != corev1.ServiceTypeLoadBalancer {
		if svc.Spec.HealthCheckNodePort == old.Spec.HealthCheckNodePort {
			svc.Spec.HealthCheckNodePort = 0
		}
		if equalBoolPtr(svc.Spec.AllocateLoadBalancerNodePorts, old.Spec.AllocateLoadBalancerNodePorts) {
			svc.Spec.AllocateLoadBalancerNodePorts = nil
		}
	}
}

// sameNodePorts reports whether every node port in svc is the one old had
// for that port, i.e. the client did not touch them.
func sameNodePorts(svc, old *corev1.Service) bool {
	for _, p := range svc.Spec.Ports {
		if p.NodePort == 0 {
			continue
		}
		found := false
		for _, o := range old.Spec.Ports {
			if o.NodePort == p.NodePort {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

func equalBoolPtr(a, b *bool) bool {
	return (a == nil && b == nil) || (a != nil && b != nil && *a == *b)
}

// releaseUnused gives back what the old object held and the new does not.
func (a *serviceAllocations) releaseUnused(ctx context.Context, svc, old *corev1.Service) {
	ctx, cancel := releaseContext(ctx)
	defer cancel()
	if needsClusterIP(old) && (!needsClusterIP(svc) || svc.Spec.ClusterIP != old.Spec.ClusterIP) {
		a.ips.release(ctx, old.Spec.ClusterIP)
	}
	inUse := map[int32]bool{}
	if needsNodePorts(svc) {
		for _, p := range svc.Spec.Ports {
			inUse[p.NodePort] = true
		}
	}
	for _, p := range old.Spec.Ports {
		if p.NodePort != 0 && !inUse[p.NodePort] {
			a.ports.release(ctx, strconv.Itoa(int(p.NodePort)))
		}
	}
}

func (a *serviceAllocations) afterDelete(obj runtime.Object, _ *metav1.DeleteOptions) {
	svc, ok := obj.(*corev1.Service)
	if !ok {
		return
	}
	ctx, cancel := releaseContext(context.Background())
	defer cancel()
	if needsClusterIP(svc) {
		a.ips.release(ctx, svc.Spec.ClusterIP)
	}
	for _, p := range svc.Spec.Ports {
		if p.NodePort != 0 {
			a.ports.release(ctx, strconv.Itoa(int(p.NodePort)))
		}
	}
}

// releaseContext outlives a cancelled request: giving a value back must
// not be skipped because the client went away.
func releaseContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
}

// allocationError turns a failed allocation into the API error Kubernetes
// gives for it.
func (a *allocator) allocationError(svc *corev1.Service, path *field.Path, value interface{}, err error) error {
	var fe *field.Error
	switch {
	case storage.IsExist(err) && a.noun == "IP":
		// Kubernetes' wording and field.
		fe = field.Invalid(path, []string{fmt.Sprint(value)}, fmt.Sprintf("failed to allocate IP %v: provided IP is already allocated", value))
	case storage.IsExist(err):
		fe = field.Invalid(path, value, "provided port is already allocated")
	case errors.Is(err, errFull):
		return apierrors.NewServiceUnavailable(fmt.Sprintf("no free %s left for service %s: %v", a.noun, svc.Name, err))
	default:
		var se *storage.StorageError
		if errors.As(err, &se) {
			return apierrors.NewInternalError(err)
		}
		fe = field.Invalid(path, value, err.Error())
	}
	return apierrors.NewInvalid(corev1.SchemeGroupVersion.WithKind("Service").GroupKind(), svc.Name, field.ErrorList{fe})
}
