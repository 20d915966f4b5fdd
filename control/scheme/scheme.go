package scheme

import (
	"fmt"
	"reflect"

	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"

	"github.com/barge-dev/barge/control/defaults"
)

// GroupVersions are the API group versions barge serves, in the order
// discovery lists them.
var GroupVersions = []schema.GroupVersion{
	corev1.SchemeGroupVersion,
	appsv1.SchemeGroupVersion,
	autoscalingv1.SchemeGroupVersion,
	coordinationv1.SchemeGroupVersion,
	discoveryv1.SchemeGroupVersion,
	policyv1.SchemeGroupVersion,
	rbacv1.SchemeGroupVersion,
	authenticationv1.SchemeGroupVersion,
	authorizationv1.SchemeGroupVersion,
}

var addToScheme = []func(*runtime.Scheme) error{
	corev1.AddToScheme,
	appsv1.AddToScheme,
	autoscalingv1.AddToScheme,
	coordinationv1.AddToScheme,
	discoveryv1.AddToScheme,
	policyv1.AddToScheme,
	rbacv1.AddToScheme,
	authenticationv1.AddToScheme,
	authorizationv1.AddToScheme,
}

// New returns a scheme holding every served type and the codec factory
// the API server encodes and decodes with.
func New() (*runtime.Scheme, serializer.CodecFactory, error) {
	s := runtime.NewScheme()
	for _, add := range addToScheme {
		if err := add(s); err != nil {
			return nil, serializer.CodecFactory{}, fmt.Errorf("scheme: %w", err)
		}
	}
	// The generic registry decodes requests into the group's internal
	// version and stores from there. Registering the v1 types as that
	// version too makes every "conversion" a no-op: the scheme sees the
	// type already belongs to the target version and only resets its kind.
	for _, gv := range GroupVersions {
		internal := schema.GroupVersion{Group: gv.Group, Version: runtime.APIVersionInternal}
		for kind, typ := range s.KnownTypes(gv) {
			if isMetaKind(kind) {
				continue
			}
			obj, ok := reflect.New(typ).Interface().(runtime.Object)
			if !ok {
				continue
			}
			s.AddKnownTypeWithName(internal.WithKind(kind), obj)
		}
		if err := s.SetVersionPriority(gv); err != nil {
			return nil, serializer.CodecFactory{}, fmt.Errorf("scheme: %w", err)
		}
	}
	// Discovery and Status documents are served by every group.
	metav1.AddToGroupVersion(s, schema.GroupVersion{Version: "v1"})
	s.AddUnversionedTypes(schema.GroupVersion{Group: "", Version: "v1"},
		&metav1.Status{}, &metav1.APIVersions{}, &metav1.APIGroupList{}, &metav1.APIGroup{}, &metav1.APIResourceList{})
	if err := addParameterConversions(s); err != nil {
		return nil, serializer.CodecFactory{}, fmt.Errorf("scheme: %w", err)
	}
	defaults.Register(s)
	return s, serializer.NewCodecFactory(s), nil
}

// isMetaKind reports the option and event kinds metav1 adds to every group
// version; they already have an internal form in metainternalversion.
func isMetaKind(kind string) bool {
	switch kind {
	case "WatchEvent", "ListOptions", "GetOptions", "DeleteOptions", "CreateOptions",
		"UpdateOptions", "PatchOptions", "Status", "Table", "PartialObjectMetadata",
		"PartialObjectMetadataList", "TableOptions", "List", "APIVersions", "APIGroupList",
		"APIGroup", "APIResourceList":
		return true
	}
	return false
}
