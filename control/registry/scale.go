package registry

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	genericregistry "k8s.io/apiserver/pkg/registry/generic/registry"
	"k8s.io/apiserver/pkg/registry/rest"

	"github.com/barge-dev/barge/control/validation"
)

// scaleREST is the /scale subresource of deployments and replica sets:
// an autoscaling/v1 Scale view of spec.replicas that `kubectl scale` and
// autoscalers write without touching the rest of the object.
type scaleREST struct {
	store *genericregistry.Store
	gk    schema.GroupKind
}

func (r *scaleREST) New() runtime.Object   { return &autoscalingv1.Scale{} }
func (r *scaleREST) Destroy()              {}
func (r *scaleREST) NamespaceScoped() bool { return true }

// GroupVersionKind tells discovery the subresource speaks autoscaling/v1.
func (r *scaleREST) GroupVersionKind(schema.GroupVersion) schema.GroupVersionKind {
	return autoscalingv1.SchemeGroupVersion.WithKind("Scale")
}

func (r *scaleREST) Get(ctx context.Context, name string, options *metav1.GetOptions) (runtime.Object, error) {
	obj, err := r.store.Get(ctx, name, options)
	if err != nil {
		return nil, err
	}
	return scaleOf(obj)
}

func (r *scaleREST) Update(ctx context.Context, name string, objInfo rest.UpdatedObjectInfo, createValidation rest.ValidateObjectFunc, updateValidation rest.ValidateObjectUpdateFunc, _ bool, options *metav1.UpdateOptions) (runtime.Object, bool, error) {
	info := &scaleUpdate{name: name, gk: r.gk, req: objInfo}
	obj, _, err := r.store.Update(ctx, name, info, scaleCreateValidation(createValidation), scaleUpdateValidation(updateValidation), false, options)
	if err != nil {
		return nil, false, err
	}
	scale, err := scaleOf(obj)
	return scale, false, err
}

// scaleOf is the Scale view of a deployment or replica set.
func scaleOf(obj runtime.Object) (*autoscalingv1.Scale, error) {
	var (
		objMeta  metav1.ObjectMeta
		replicas *int32
		current  int32
		selector *metav1.LabelSelector
	)
	switch o := obj.(type) {
	case *appsv1.Deployment:
		objMeta, replicas, current, selector = o.ObjectMeta, o.Spec.Replicas, o.Status.Replicas, o.Spec.Selector
	case *appsv1.ReplicaSet:
		objMeta, replicas, current, selector = o.ObjectMeta, o.Spec.Replicas, o.Status.Replicas, o.Spec.Selector
	default:
		return nil, fmt.Errorf("scale: unexpected object %T", obj)
	}
	sel, err := metav1.LabelSelectorAsSelector(selector)
	if err != nil {
		return nil, apierrors.NewInternalError(fmt.Errorf("scale: stored selector: %w", err))
	}
	spec := int32(1)
	if replicas != nil {
		spec = *replicas
	}
	return &autoscalingv1.Scale{
		ObjectMeta: metav1.ObjectMeta{
			Name: objMeta.Name, Namespace: objMeta.Namespace, UID: objMeta.UID,
			ResourceVersion: objMeta.ResourceVersion, CreationTimestamp: objMeta.CreationTimestamp,
		},
		Spec:   autoscalingv1.ScaleSpec{Replicas: spec},
		Status: autoscalingv1.ScaleStatus{Replicas: current, Selector: sel.String()},
	}, nil
}

// setReplicas writes a Scale's replicas into a copy of its owner.
func setReplicas(obj runtime.Object, replicas int32) (runtime.Object, error) {
	switch o := obj.(type) {
	case *appsv1.Deployment:
		c := o.DeepCopy()
		c.Spec.Replicas = &replicas
		return c, nil
	case *appsv1.ReplicaSet:
		c := o.DeepCopy()
		c.Spec.Replicas = &replicas
		return c, nil
	}
	return nil, fmt.Errorf("scale: unexpected object %T", obj)
}

// scaleUpdate turns the client's new Scale into the new owner object, so
// the store's optimistic concurrency covers the whole read-modify-write.
type scaleUpdate struct {
	name string
	gk   schema.GroupKind
	req  rest.UpdatedObjectInfo
}

func (u *scaleUpdate) Preconditions() *metav1.Preconditions { return u.req.Preconditions() }

func (u *scaleUpdate) UpdatedObject(ctx context.Context, oldObj runtime.Object) (runtime.Object, error) {
	oldScale, err := scaleOf(oldObj)
	if err != nil {
		return nil, err
	}
	newObj, err := u.req.UpdatedObject(ctx, oldScale)
	if err != nil {
		return nil, err
	}
	scale, ok := newObj.(*autoscalingv1.Scale)
	if !ok {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("expected a Scale, got %T", newObj))
	}
	if errs := validation.Update(scale, oldScale); len(errs) > 0 {
		return nil, apierrors.NewInvalid(autoscalingv1.SchemeGroupVersion.WithKind("Scale").GroupKind(), u.name, errs)
	}
	updated, err := setReplicas(oldObj, scale.Spec.Replicas)
	if err != nil {
		return nil, err
	}
	// A Scale carrying a resourceVersion is a conditional update of the
	// owner, exactly as if the owner had been sent.
	if scale.ResourceVersion != "" {
		if err := setResourceVersion(updated, scale.ResourceVersion); err != nil {
			return nil, err
		}
	}
	return updated, nil
}

func setResourceVersion(obj runtime.Object, rv string) error {
	m, err := meta.Accessor(obj)
	if err != nil {
		return fmt.Errorf("scale: %w", err)
	}
	m.SetResourceVersion(rv)
	return nil
}

// The admission and validation hooks of a /scale request expect Scales.
func scaleCreateValidation(v rest.ValidateObjectFunc) rest.ValidateObjectFunc {
	if v == nil {
		return nil
	}
	return func(ctx context.Context, obj runtime.Object) error {
		scale, err := scaleOf(obj)
		if err != nil {
			return err
		}
		return v(ctx, scale)
	}
}

func scaleUpdateValidation(v rest.ValidateObjectUpdateFunc) rest.ValidateObjectUpdateFunc {
	if v == nil {
		return nil
	}
	return func(ctx context.Context, obj, old runtime.Object) error {
		newScale, err := scaleOf(obj)
		if err != nil {
			return err
		}
		oldScale, err := scaleOf(old)
		if err != nil {
			return err
		}
		return v(ctx, newScale, oldScale)
	}
}
