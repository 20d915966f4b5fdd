package registry

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	genericregistry "k8s.io/apiserver/pkg/registry/generic/registry"
	"k8s.io/apiserver/pkg/registry/rest"
	"k8s.io/apiserver/pkg/storage"
)

// namespaceREST deletes namespaces in two steps, as Kubernetes does: the
// first delete marks the namespace Terminating, the namespace controller
// removes its contents and its "kubernetes" finalizer, and a delete after
// that removes the object.
//
// It exposes the store through namespaceStorage only: a generic
// DeleteCollection would remove namespaces (default and kube-system
// included) without their finalization, so like Kubernetes, namespaces
// have no deletecollection verb.
type namespaceREST struct {
	namespaceStorage
	Store *genericregistry.Store
}

type namespaceStorage interface {
	rest.Storage
	rest.Scoper
	rest.Getter
	rest.Lister
	rest.CreaterUpdater
	rest.Watcher
	rest.SingularNameProvider
	rest.ResetFieldsStrategy
}

func newNamespaceREST(store *genericregistry.Store) *namespaceREST {
	return &namespaceREST{namespaceStorage: store, Store: store}
}

// ShortNames lets kubectl say "ns".
func (r *namespaceREST) ShortNames() []string { return []string{"ns"} }

func (r *namespaceREST) Delete(ctx context.Context, name string, deleteValidation rest.ValidateObjectFunc, options *metav1.DeleteOptions) (runtime.Object, bool, error) {
	obj, err := r.Store.Get(ctx, name, &metav1.GetOptions{})
	if err != nil {
		return nil, false, err
	}
	ns := obj.(*corev1.Namespace)
	if options == nil {
		options = &metav1.DeleteOptions{}
	}
	if options.Preconditions == nil {
		options.Preconditions = &metav1.Preconditions{}
	}
	if options.Preconditions.UID == nil {
		options.Preconditions.UID = &ns.UID
	} else if *options.Preconditions.UID != ns.UID {
		return nil, false, apierrors.NewConflict(corev1.Resource("namespaces"), name,
			fmt.Errorf("precondition failed: UID in precondition: %v, UID in object meta: %v", *options.Preconditions.UID, ns.UID))
	}
	if ns.DeletionTimestamp.IsZero() {
		return r.beginTermination(ctx, name, deleteValidation, options)
	}
	if len(ns.Spec.Finalizers) != 0 {
		// Still being emptied; deleting again changes nothing.
		return ns, false, nil
	}
	return r.Store.Delete(ctx, name, deleteValidation, options)
}

func (r *namespaceREST) beginTermination(ctx context.Context, name string, deleteValidation rest.ValidateObjectFunc, options *metav1.DeleteOptions) (runtime.Object, bool, error) {
	key, err := r.Store.KeyFunc(ctx, name)
	if err != nil {
		return nil, false, err
	}
	pre := &storage.Preconditions{UID: options.Preconditions.UID, ResourceVersion: options.Preconditions.ResourceVersion}
	out := &corev1.Namespace{}
	dryRun := len(options.DryRun) > 0
	err = r.Store.Storage.GuaranteedUpdate(ctx, key, out, false, pre, storage.SimpleUpdate(func(existing runtime.Object) (runtime.Object, error) {
		ns := existing.(*corev1.Namespace)
		if deleteValidation != nil {
			if err := deleteValidation(ctx, ns); err != nil {
				return nil, err
			}
		}
		if ns.DeletionTimestamp.IsZero() {
			now := metav1.Now()
			ns.DeletionTimestamp = &now
		}
		ns.Status.Phase = corev1.NamespaceTerminating
		return ns, nil
	}), dryRun, nil)
	if err != nil {
		return nil, false, err
	}
	return out, false, nil
}

// finalizeREST is namespaces/finalize: the namespace controller's way to
// drop spec.finalizers once the namespace is empty. Only the finalizers
// change.
type finalizeREST struct{ namespaces *genericregistry.Store }

func newFinalizeREST(namespaces *genericregistry.Store) *finalizeREST {
	store := *namespaces
	base, _ := namespaces.UpdateStrategy.(*strategy)
	store.UpdateStrategy = &finalizeStrategy{strategy: base}
	return &finalizeREST{namespaces: &store}
}

func (r *finalizeREST) New() runtime.Object   { return &corev1.Namespace{} }
func (r *finalizeREST) Destroy()              {}
func (r *finalizeREST) NamespaceScoped() bool { return false }

func (r *finalizeREST) Update(ctx context.Context, name string, objInfo rest.UpdatedObjectInfo, createValidation rest.ValidateObjectFunc, updateValidation rest.ValidateObjectUpdateFunc, _ bool, options *metav1.UpdateOptions) (runtime.Object, bool, error) {
	return r.namespaces.Update(ctx, name, objInfo, createValidation, updateValidation, false, options)
}

type finalizeStrategy struct{ *strategy }

func (s *finalizeStrategy) PrepareForUpdate(_ context.Context, obj, old runtime.Object) {
	newNS, ok1 := obj.(*corev1.Namespace)
	oldNS, ok2 := old.(*corev1.Namespace)
	if !ok1 || !ok2 {
		return
	}
	finalizers := newNS.Spec.Finalizers
	oldNS.DeepCopyInto(newNS)
	newNS.Spec.Finalizers = finalizers
}
