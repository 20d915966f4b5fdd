package registry

import (
	"context"
	"reflect"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apiserver/pkg/storage/names"
	"sigs.k8s.io/structured-merge-diff/v6/fieldpath"

	"github.com/barge-dev/barge/control/validation"
)

// strategy is the create/update/delete policy shared by every resource.
// Kubernetes writes one per type; the differences that matter here are
// captured by a few fields, and the spec/status split is found by field
// name because every served type with a status calls them Spec and Status.
type strategy struct {
	runtime.ObjectTyper
	names.NameGenerator

	namespaced bool
	// hasStatus means a status subresource exists: writes to the main
	// resource keep the stored status and writes to /status keep the rest.
	hasStatus bool
	// keepStatusOnCreate lets creators set status (nodes register with it).
	keepStatusOnCreate bool
	// generation is bumped on spec changes for these types, which is what
	// controllers compare observedGeneration against.
	generation bool
	// specOf returns what counts as the spec for generation; the Spec
	// field when nil.
	specOf func(obj runtime.Object) interface{}
	// prepareCreate runs type-specific initialisation after the common one.
	prepareCreate func(obj runtime.Object)
	resetFields   map[fieldpath.APIVersion]*fieldpath.Set
}

func (s *strategy) NamespaceScoped() bool { return s.namespaced }

func (s *strategy) PrepareForCreate(_ context.Context, obj runtime.Object) {
	if s.hasStatus && !s.keepStatusOnCreate {
		resetField(obj, "Status")
	}
	if s.generation {
		if m, err := meta.Accessor(obj); err == nil {
			m.SetGeneration(1)
		}
	}
	if s.prepareCreate != nil {
		s.prepareCreate(obj)
	}
}

func (s *strategy) PrepareForUpdate(_ context.Context, obj, old runtime.Object) {
	if s.hasStatus {
		copyField(obj, old, "Status")
	}
	if !s.generation {
		return
	}
	newMeta, err1 := meta.Accessor(obj)
	oldMeta, err2 := meta.Accessor(old)
	if err1 != nil || err2 != nil {
		return
	}
	newMeta.SetGeneration(oldMeta.GetGeneration())
	specOf := s.specOf
	if specOf == nil {
		specOf = func(o runtime.Object) interface{} { return fieldOf(o, "Spec") }
	}
	if !equality.Semantic.DeepEqual(specOf(obj), specOf(old)) {
		newMeta.SetGeneration(oldMeta.GetGeneration() + 1)
	}
}

func (s *strategy) Validate(_ context.Context, obj runtime.Object) field.ErrorList {
	return validation.Create(obj)
}

func (s *strategy) ValidateUpdate(_ context.Context, obj, old runtime.Object) field.ErrorList {
	return validation.Update(obj, old)
}

func (s *strategy) WarningsOnCreate(context.Context, runtime.Object) []string { return nil }

func (s *strategy) WarningsOnUpdate(context.Context, runtime.Object, runtime.Object) []string {
	return nil
}

func (s *strategy) Canonicalize(runtime.Object) {}

func (s *strategy) AllowCreateOnUpdate(context.Context) bool { return false }

func (s *strategy) AllowUnconditionalUpdate(context.Context) bool { return true }

func (s *strategy) GetResetFields() map[fieldpath.APIVersion]*fieldpath.Set { return s.resetFields }

// statusStrategy is the policy of a /status subresource: only status
// changes; spec, labels, generation, ownership and deletion stay as stored,
// as in Kubernetes' status strategies.
type statusStrategy struct {
	*strategy
	resetFields map[fieldpath.APIVersion]*fieldpath.Set
}

func (s *statusStrategy) PrepareForUpdate(_ context.Context, obj, old runtime.Object) {
	copyField(obj, old, "Spec")
	newMeta, err1 := meta.Accessor(obj)
	oldMeta, err2 := meta.Accessor(old)
	if err1 == nil && err2 == nil {
		newMeta.SetGeneration(oldMeta.GetGeneration())
		newMeta.SetLabels(oldMeta.GetLabels())
		newMeta.SetDeletionTimestamp(oldMeta.GetDeletionTimestamp())
		newMeta.SetOwnerReferences(oldMeta.GetOwnerReferences())
	}
}

func (s *statusStrategy) ValidateUpdate(_ context.Context, obj, old runtime.Object) field.ErrorList {
	return validation.Status(obj, old)
}

func (s *statusStrategy) GetResetFields() map[fieldpath.APIVersion]*fieldpath.Set {
	return s.resetFields
}

// fieldOf returns the named top-level field of a typed object, or nil.
func fieldOf(obj runtime.Object, name string) interface{} {
	v := reflect.ValueOf(obj)
	if v.Kind() != reflect.Pointer || v.IsNil() || v.Elem().Kind() != reflect.Struct {
		return nil
	}
	f := v.Elem().FieldByName(name)
	if !f.IsValid() {
		return nil
	}
	return f.Interface()
}

// copyField sets dst's named top-level field to src's.
func copyField(dst, src runtime.Object, name string) {
	d := reflect.ValueOf(dst)
	s := reflect.ValueOf(src)
	if d.Kind() != reflect.Pointer || s.Kind() != reflect.Pointer || d.Type() != s.Type() || d.IsNil() || s.IsNil() {
		return
	}
	df := d.Elem().FieldByName(name)
	sf := s.Elem().FieldByName(name)
	if df.IsValid() && sf.IsValid() && df.CanSet() {
		df.Set(sf)
	}
}

// resetField sets the named top-level field to its zero value.
func resetField(obj runtime.Object, name string) {
	v := reflect.ValueOf(obj)
	if v.Kind() != reflect.Pointer || v.IsNil() {
		return
	}
	f := v.Elem().FieldByName(name)
	if f.IsValid() && f.CanSet() {
		f.Set(reflect.Zero(f.Type()))
	}
}

// specAndStatusReset are the reset fields of a resource with a status
// subresource: server-side apply to the main resource does not own status,
// and apply to /status does not own spec.
func specAndStatusReset(apiVersion string) (main, status map[fieldpath.APIVersion]*fieldpath.Set) {
	v := fieldpath.APIVersion(apiVersion)
	main = map[fieldpath.APIVersion]*fieldpath.Set{v: fieldpath.NewSet(fieldpath.MakePathOrDie("status"))}
	status = map[fieldpath.APIVersion]*fieldpath.Set{v: fieldpath.NewSet(fieldpath.MakePathOrDie("spec"), fieldpath.MakePathOrDie("metadata", "labels"))}
	return main, status
}
