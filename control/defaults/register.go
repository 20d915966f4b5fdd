package defaults

import (
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// Register adds defaulting functions for every served type to the scheme
// (scheme.AddTypeDefaultingFunc), so decoding a request applies them as
// Kubernetes does. Only single objects are registered: list bodies are never
// decoded for writes.
func Register(scheme *runtime.Scheme) {
	add(scheme, &corev1.Pod{}, setPod)
	add(scheme, &corev1.Service{}, setService)
	add(scheme, &corev1.Namespace{}, setNamespace)
	add(scheme, &corev1.Node{}, setNode)
	add(scheme, &corev1.Secret{}, setSecret)
	add(scheme, &corev1.ConfigMap{}, setConfigMap)
	add(scheme, &corev1.Endpoints{}, setEndpoints)
	add(scheme, &appsv1.Deployment{}, setDeployment)
	add(scheme, &appsv1.ReplicaSet{}, setReplicaSet)
	add(scheme, &discoveryv1.EndpointSlice{}, setEndpointSlice)
	add(scheme, &rbacv1.RoleBinding{}, setRoleBinding)
	add(scheme, &rbacv1.ClusterRoleBinding{}, setClusterRoleBinding)
}

// add adapts a typed setter to the scheme's interface{} signature. The type
// check guards against a nil or foreign value ever reaching a setter, so a bad
// registration degrades to "no defaults" instead of a panic.
func add[T any, P interface {
	*T
	runtime.Object
}](scheme *runtime.Scheme, proto P, set func(P)) {
	scheme.AddTypeDefaultingFunc(proto, func(obj interface{}) {
		if typed, ok := obj.(P); ok && typed != nil {
			set(typed)
		}
	})
}
