package validation

import (
	"reflect"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func TestDispatch(t *testing.T) {
	cases := []struct {
		name string
		got  func() field.ErrorList
		want []string
	}{
		{"unknown type", func() field.ErrorList { return Create(&corev1.PodTemplate{}) }, []string{`[]: Internal error: no validation for *v1.PodTemplate`}},
		{"unknown type on update", func() field.ErrorList { return Update(&corev1.PodTemplate{}, &corev1.PodTemplate{}) }, []string{`[]: Internal error: no validation for *v1.PodTemplate`}},
		{"no status subresource", func() field.ErrorList { return Status(&corev1.ConfigMap{}, &corev1.ConfigMap{}) }, []string{`[]: Internal error: no status validation for *v1.ConfigMap`}},
		{"nil", func() field.ErrorList { return Create(nil) }, []string{`[]: Internal error: no object to validate`}},
		{"typed nil", func() field.ErrorList { return Create((*corev1.Pod)(nil)) }, []string{`[]: Internal error: no object to validate`}},
		{"nil old", func() field.ErrorList { return Update(&corev1.Pod{}, (*corev1.Pod)(nil)) }, []string{`[]: Internal error: no old object to validate`}},
		{"mixed types", func() field.ErrorList { return Status(&corev1.Pod{}, &corev1.Node{}) }, []string{`[]: Internal error: cannot update *v1.Node with *v1.Pod`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			expect(t, tc.got(), tc.want)
		})
	}
}

func servedTypes() []runtime.Object {
	return []runtime.Object{
		&corev1.Namespace{}, &corev1.Pod{}, &corev1.Node{}, &corev1.Service{}, &corev1.Endpoints{},
		&corev1.ConfigMap{}, &corev1.Secret{}, &corev1.Event{}, &corev1.ServiceAccount{}, &corev1.Binding{},
		&appsv1.Deployment{}, &appsv1.ReplicaSet{}, &autoscalingv1.Scale{}, &coordinationv1.Lease{},
		&discoveryv1.EndpointSlice{}, &rbacv1.Role{}, &rbacv1.RoleBinding{}, &rbacv1.ClusterRole{}, &rbacv1.ClusterRoleBinding{},
	}
}

// TestNeverPanics feeds every served type empty, and with every optional
// pointer, slice and map populated but otherwise empty, through all three
// entry points in every pairing.
func TestNeverPanics(t *testing.T) {
	for _, proto := range servedTypes() {
		variants := []runtime.Object{
			proto.DeepCopyObject(),
			filled(proto, ""),
			filled(proto, "x"),
		}
		for _, a := range variants {
			for _, b := range variants {
				func() {
					defer func() {
						if r := recover(); r != nil {
							t.Fatalf("%T: panic: %v", proto, r)
						}
					}()
					Create(a)
					Update(a, b)
					Status(a, b)
				}()
			}
		}
	}
}

// filled returns a copy of proto with every reachable pointer allocated, every
// slice given two elements and every map one entry, and strings set to s.
func filled(proto runtime.Object, s string) runtime.Object {
	obj := proto.DeepCopyObject()
	fill(reflect.ValueOf(obj).Elem(), s, 0)
	return obj
}

func fill(v reflect.Value, s string, depth int) {
	if depth > 12 || !v.CanSet() {
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		fill(v.Elem(), s, depth+1)
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			fill(v.Field(i), s, depth+1)
		}
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			v.SetBytes([]byte(s))
			return
		}
		v.Set(reflect.MakeSlice(v.Type(), 2, 2))
		for i := 0; i < 2; i++ {
			fill(v.Index(i), s, depth+1)
		}
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		key := reflect.New(v.Type().Key()).Elem()
		fill(key, s, depth+1)
		val := reflect.New(v.Type().Elem()).Elem()
		fill(val, s, depth+1)
		m.SetMapIndex(key, val)
		v.Set(m)
	case reflect.String:
		v.SetString(s)
	}
}
