package validation

import (
	"fmt"
	"reflect"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Create validates a new object (namespace-scoped objects already have
// Namespace set). Returns nil when valid.
func Create(obj runtime.Object) field.ErrorList {
	if isNil(obj) {
		return missing("object")
	}
	var errs field.ErrorList
	switch o := obj.(type) {
	case *corev1.Namespace:
		errs = validateNamespace(o)
	case *corev1.Pod:
		errs = validatePodCreate(o)
	case *corev1.Node:
		errs = validateNode(o)
	case *corev1.Service:
		errs = validateService(o)
	case *corev1.Endpoints:
		errs = validateEndpoints(o)
	case *corev1.ConfigMap:
		errs = validateConfigMap(o)
	case *corev1.Secret:
		errs = validateSecret(o)
	case *corev1.Event:
		errs = validateEvent(o)
	case *corev1.ServiceAccount:
		errs = validateServiceAccount(o)
	case *corev1.Binding:
		errs = validateBinding(o)
	case *appsv1.Deployment:
		errs = validateDeployment(o)
	case *appsv1.ReplicaSet:
		errs = validateReplicaSet(o)
	case *autoscalingv1.Scale:
		errs = validateScale(o)
	case *coordinationv1.Lease:
		errs = validateLease(o)
	case *discoveryv1.EndpointSlice:
		errs = validateEndpointSlice(o)
	case *rbacv1.Role:
		errs = validateRole(o)
	case *rbacv1.ClusterRole:
		errs = validateClusterRole(o)
	case *rbacv1.RoleBinding:
		errs = validateRoleBinding(o)
	case *rbacv1.ClusterRoleBinding:
		errs = validateClusterRoleBinding(o)
	default:
		return unsupported(obj)
	}
	return orNil(errs)
}

// Update validates obj replacing old (same type), including the fields
// Kubernetes makes immutable.
func Update(obj, old runtime.Object) field.ErrorList {
	if errs := checkPair(obj, old); errs != nil {
		return errs
	}
	var errs field.ErrorList
	switch o := obj.(type) {
	case *corev1.Namespace:
		errs = validateNamespaceUpdate(o, old.(*corev1.Namespace))
	case *corev1.Pod:
		errs = validatePodUpdate(o, old.(*corev1.Pod))
	case *corev1.Node:
		errs = validateNodeUpdate(o, old.(*corev1.Node))
	case *corev1.Service:
		errs = validateServiceUpdate(o, old.(*corev1.Service))
	case *corev1.Endpoints:
		errs = validateEndpointsUpdate(o, old.(*corev1.Endpoints))
	case *corev1.ConfigMap:
		errs = validateConfigMapUpdate(o, old.(*corev1.ConfigMap))
	case *corev1.Secret:
		errs = validateSecretUpdate(o, old.(*corev1.Secret))
	case *corev1.Event:
		errs = validateEvent(o)
	case *corev1.ServiceAccount:
		errs = validateServiceAccountUpdate(o, old.(*corev1.ServiceAccount))
	case *corev1.Binding:
		errs = validateBinding(o)
	case *appsv1.Deployment:
		errs = validateDeploymentUpdate(o, old.(*appsv1.Deployment))
	case *appsv1.ReplicaSet:
		errs = validateReplicaSetUpdate(o, old.(*appsv1.ReplicaSet))
	case *autoscalingv1.Scale:
		errs = validateScale(o)
	case *coordinationv1.Lease:
		errs = validateLeaseUpdate(o, old.(*coordinationv1.Lease))
	case *discoveryv1.EndpointSlice:
		errs = validateEndpointSliceUpdate(o, old.(*discoveryv1.EndpointSlice))
	case *rbacv1.Role:
		errs = validateRoleUpdate(o, old.(*rbacv1.Role))
	case *rbacv1.ClusterRole:
		errs = validateClusterRoleUpdate(o, old.(*rbacv1.ClusterRole))
	case *rbacv1.RoleBinding:
		errs = validateRoleBindingUpdate(o, old.(*rbacv1.RoleBinding))
	case *rbacv1.ClusterRoleBinding:
		errs = validateClusterRoleBindingUpdate(o, old.(*rbacv1.ClusterRoleBinding))
	default:
		return unsupported(obj)
	}
	return orNil(errs)
}

// Status validates a status-only update (pods, nodes, services, deployments,
// replicasets, namespaces).
func Status(obj, old runtime.Object) field.ErrorList {
	if errs := checkPair(obj, old); errs != nil {
		return errs
	}
	var errs field.ErrorList
	switch o := obj.(type) {
	case *corev1.Pod:
		errs = validatePodStatusUpdate(o, old.(*corev1.Pod))
	case *corev1.Node:
		// Kubernetes validates node status writes with the node update rules.
		errs = validateNodeUpdateRules(o, old.(*corev1.Node))
	case *corev1.Service:
		errs = validateServiceStatusUpdate(o, old.(*corev1.Service))
	case *corev1.Namespace:
		errs = validateNamespaceStatusUpdate(o, old.(*corev1.Namespace))
	case *appsv1.Deployment:
		errs = validateDeploymentStatusUpdate(o, old.(*appsv1.Deployment))
	case *appsv1.ReplicaSet:
		errs = validateReplicaSetStatusUpdate(o, old.(*appsv1.ReplicaSet))
	default:
		return field.ErrorList{field.InternalError(field.NewPath(""), fmt.Errorf("no status validation for %T", obj))}
	}
	return orNil(errs)
}

// checkPair refuses update inputs that would otherwise make a typed
// assertion panic: a missing object or an old object of another type.
func checkPair(obj, old runtime.Object) field.ErrorList {
	if isNil(obj) {
		return missing("object")
	}
	if isNil(old) {
		return missing("old object")
	}
	if reflect.TypeOf(obj) != reflect.TypeOf(old) {
		return field.ErrorList{field.InternalError(field.NewPath(""), fmt.Errorf("cannot update %T with %T", old, obj))}
	}
	return nil
}

func isNil(obj runtime.Object) bool {
	if obj == nil {
		return true
	}
	v := reflect.ValueOf(obj)
	return v.Kind() == reflect.Pointer && v.IsNil()
}

func missing(what string) field.ErrorList {
	return field.ErrorList{field.InternalError(field.NewPath(""), fmt.Errorf("no %s to validate", what))}
}

func unsupported(obj runtime.Object) field.ErrorList {
	return field.ErrorList{field.InternalError(field.NewPath(""), fmt.Errorf("no validation for %T", obj))}
}

// orNil lets callers test "valid" with == nil, as the API promises.
func orNil(errs field.ErrorList) field.ErrorList {
	if len(errs) == 0 {
		return nil
	}
	return errs
}
