package registry

import (
	"context"
	"errors"
	"fmt"
	"net/netip"

	appsv1 "k8s.io/api/apps/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/apiserver/pkg/registry/generic"
	genericregistry "k8s.io/apiserver/pkg/registry/generic/registry"
	"k8s.io/apiserver/pkg/registry/rest"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/apiserver/pkg/storage/names"
	"sigs.k8s.io/structured-merge-diff/v6/fieldpath"

	"github.com/barge-dev/barge/control/auth"
	"github.com/barge-dev/barge/control/printers"
)

// Options is what the registry needs from the API server around it.
type Options struct {
	Scheme         *runtime.Scheme
	Codecs         serializer.CodecFactory
	ParameterCodec runtime.ParameterCodec
	// RESTOptions hands out the storage of each resource.
	RESTOptions generic.RESTOptionsGetter
	// Authorizer and RuleResolver answer the self-subject reviews.
	Authorizer   authorizer.Authorizer
	RuleResolver authorizer.RuleResolver
	// Tokens signs service account tokens for serviceaccounts/token, for
	// TokenAudiences unless a request names its own.
	Tokens         *auth.TokenIssuer
	TokenAudiences []string
	// ServiceCIDR is where cluster IPs come from; NodePorts is the
	// inclusive node port range.
	ServiceCIDR netip.Prefix
	NodePorts   [2]int
}

// Registry is the built storage, ready to install.
type Registry struct {
	// Groups are the API groups, the core ("legacy") group first.
	Groups []*genericapiserver.APIGroupInfo
	stores map[string]*genericregistry.Store
}

// Store returns the generic store of a resource by plural name.
func (r *Registry) Store(resource string) *genericregistry.Store { return r.stores[resource] }

// New builds the storage of every served resource and subresource.
func New(opts Options) (*Registry, error) {
	if opts.Scheme == nil || opts.RESTOptions == nil {
		return nil, errors.New("registry: scheme and REST options are required")
	}
	reg := &Registry{stores: map[string]*genericregistry.Store{}}
	byGroup := map[string]map[string]rest.Storage{}
	var order []string
	add := func(group, path string, s rest.Storage) {
		if byGroup[group] == nil {
			byGroup[group] = map[string]rest.Storage{}
			order = append(order, group)
		}
		byGroup[group][path] = s
	}
	for _, r := range resources() {
		if err := addFieldLabelConversions(opts.Scheme, r.gv.WithKind(r.kind), r.fields); err != nil {
			return nil, err
		}
		main, status, err := build(opts, r)
		if err != nil {
			return nil, fmt.Errorf("registry: %s: %w", r.plural, err)
		}
		reg.stores[r.plural] = main
		add(r.gv.Group, r.plural, &resourceREST{Store: main, shortNames: r.shortNames, categories: r.categories})
		if status != nil {
			add(r.gv.Group, r.plural+"/status", &statusREST{store: status})
		}
	}
	if err := reg.addSubresources(opts, add); err != nil {
		return nil, err
	}
	add(authorizationv1.GroupName, "selfsubjectaccessreviews", auth.NewSelfSubjectAccessReviewREST(opts.Authorizer))
	add(authorizationv1.GroupName, "selfsubjectrulesreviews", auth.NewSelfSubjectRulesReviewREST(opts.RuleResolver))

	for _, group := range order {
		info := genericapiserver.NewDefaultAPIGroupInfo(group, opts.Scheme, opts.ParameterCodec, opts.Codecs)
		for _, gv := range info.PrioritizedVersions {
			info.VersionedResourcesStorageMap[gv.Version] = byGroup[group]
		}
		reg.Groups = append(reg.Groups, &info)
	}
	return reg, nil
}

// addSubresources attaches the subresources that are not plain status, the
// namespace deletion rules and the service allocation hooks.
func (reg *Registry) addSubresources(opts Options, add func(group, path string, s rest.Storage)) error {
	pods := reg.stores["pods"]
	add("", "pods/binding", &bindingREST{pods: pods})
	add("", "pods/eviction", &evictionREST{pods: pods})
	add("", "pods/log", &logREST{pods: pods})

	ns := reg.stores["namespaces"]
	add("", "namespaces", newNamespaceREST(ns))
	add("", "namespaces/finalize", newFinalizeREST(ns))

	if _, err := newServiceAllocations(opts, reg.stores["services"]); err != nil {
		return err
	}

	add("", "serviceaccounts/token", &tokenREST{serviceAccounts: reg.stores["serviceaccounts"], pods: pods, issuer: opts.Tokens, audiences: opts.TokenAudiences})

	add(appsv1.GroupName, "deployments/scale", &scaleREST{store: reg.stores["deployments"], gk: schema.GroupKind{Group: appsv1.GroupName, Kind: "Deployment"}})
	add(appsv1.GroupName, "replicasets/scale", &scaleREST{store: reg.stores["replicasets"], gk: schema.GroupKind{Group: appsv1.GroupName, Kind: "ReplicaSet"}})
	return nil
}

// build makes the generic store of one resource, and the store of its
// status subresource when it has one.
func build(opts Options, r resource) (*genericregistry.Store, *genericregistry.Store, error) {
	st := &strategy{
		ObjectTyper:        opts.Scheme,
		NameGenerator:      names.SimpleNameGenerator,
		namespaced:         r.namespaced,
		hasStatus:          r.hasStatus,
		keepStatusOnCreate: r.keepStatusOnCreate,
		generation:         r.generation,
		specOf:             r.specOf,
		prepareCreate:      r.prepareCreate,
	}
	var statusStrat *statusStrategy
	if r.hasStatus {
		mainReset, sr := specAndStatusReset(r.gv.String())
		st.resetFields = mainReset
		statusStrat = &statusStrategy{strategy: st, resetFields: sr}
	}
	gr := r.groupResource()
	store := &genericregistry.Store{
		NewFunc:                   r.newObj,
		NewListFunc:               r.newList,
		DefaultQualifiedResource:  gr,
		SingularQualifiedResource: schema.GroupResource{Group: r.gv.Group, Resource: r.singular},
		CreateStrategy:            st,
		UpdateStrategy:            st,
		DeleteStrategy:            deleteStrategyFor(r, st),
		ResetFieldsStrategy:       st,
		TableConvertor:            printers.TableConvertor(gr),
	}
	if r.ttl > 0 {
		ttl := uint64(r.ttl.Seconds())
		store.TTLFunc = func(runtime.Object, uint64, bool) (uint64, error) { return ttl, nil }
	}
	if err := store.CompleteWithOptions(&generic.StoreOptions{
		RESTOptions: opts.RESTOptions,
		AttrFunc:    attrFunc(r.namespaced, r.fieldsSet),
	}); err != nil {
		return nil, nil, err
	}
	if statusStrat == nil {
		return store, nil, nil
	}
	status := *store
	status.UpdateStrategy = statusStrat
	status.ResetFieldsStrategy = statusStrat
	return store, &status, nil
}

// deleteStrategyFor gives pods graceful deletion; everything else goes at
// once.
func deleteStrategyFor(r resource, st *strategy) rest.RESTDeleteStrategy {
	if r.kind == "Pod" && r.gv.Group == corev1.GroupName {
		return &podDeleteStrategy{strategy: st}
	}
	return st
}

// resourceREST adds what kubectl reads from discovery (short names and
// categories) to a generic store.
type resourceREST struct {
	*genericregistry.Store
	shortNames []string
	categories []string
}

func (r *resourceREST) ShortNames() []string { return r.shortNames }
func (r *resourceREST) Categories() []string { return r.categories }

// statusREST serves /status with the status strategy of its resource.
type statusREST struct{ store *genericregistry.Store }

func (r *statusREST) New() runtime.Object { return r.store.New() }

// Destroy does nothing: the main resource owns the shared storage.
func (r *statusREST) Destroy() {}

func (r *statusREST) Get(ctx context.Context, name string, options *metav1.GetOptions) (runtime.Object, error) {
	return r.store.Get(ctx, name, options)
}

func (r *statusREST) Update(ctx context.Context, name string, objInfo rest.UpdatedObjectInfo, createValidation rest.ValidateObjectFunc, updateValidation rest.ValidateObjectUpdateFunc, _ bool, options *metav1.UpdateOptions) (runtime.Object, bool, error) {
	// Subresources never create the object they belong to.
	return r.store.Update(ctx, name, objInfo, createValidation, updateValidation, false, options)
}

func (r *statusREST) GetResetFields() map[fieldpath.APIVersion]*fieldpath.Set {
	return r.store.GetResetFields()
}

func (r *statusREST) ConvertToTable(ctx context.Context, object runtime.Object, tableOptions runtime.Object) (*metav1.Table, error) {
	return r.store.ConvertToTable(ctx, object, tableOptions)
}
