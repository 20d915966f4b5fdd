package registry

import (
	"time"

	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// resource describes one served resource; build turns it into storage.
type resource struct {
	gv         schema.GroupVersion
	kind       string
	plural     string
	singular   string
	namespaced bool
	newObj     func() runtime.Object
	newList    func() runtime.Object
	shortNames []string
	// categories puts the resource in `kubectl get all`.
	categories []string

	hasStatus          bool
	keepStatusOnCreate bool
	generation         bool
	// fields are the selectable fields beyond metadata, and fieldsSet
	// reads them from an object.
	fields    []string
	fieldsSet fieldsFunc
	// ttl makes objects expire, as Kubernetes does for events.
	ttl           time.Duration
	prepareCreate func(runtime.Object)
	specOf        func(runtime.Object) interface{}
}

func (r resource) groupResource() schema.GroupResource {
	return schema.GroupResource{Group: r.gv.Group, Resource: r.plural}
}

// eventTTL is Kubernetes' default --event-ttl.
const eventTTL = time.Hour

// resources lists every stored resource. Subresources are attached in
// build by resource name.
func resources() []resource {
	core, apps := corev1.SchemeGroupVersion, appsv1.SchemeGroupVersion
	return []resource{
		{gv: core, kind: "Namespace", plural: "namespaces", singular: "namespace", shortNames: []string{"ns"},
			newObj: func() runtime.Object { return &corev1.Namespace{} }, newList: func() runtime.Object { return &corev1.NamespaceList{} },
			hasStatus: true, fields: namespaceFields, fieldsSet: namespaceFieldsSet, prepareCreate: prepareNamespace},
		{gv: core, kind: "Pod", plural: "pods", singular: "pod", namespaced: true, shortNames: []string{"po"}, categories: []string{"all"},
			newObj: func() runtime.Object { return &corev1.Pod{} }, newList: func() runtime.Object { return &corev1.PodList{} },
			hasStatus: true, generation: true, fields: podFields, fieldsSet: podFieldsSet, prepareCreate: preparePod},
		{gv: core, kind: "Node", plural: "nodes", singular: "node", shortNames: []string{"no"},
			newObj: func() runtime.Object { return &corev1.Node{} }, newList: func() runtime.Object { return &corev1.NodeList{} },
			hasStatus: true, keepStatusOnCreate: true, fields: nodeFields, fieldsSet: nodeFieldsSet},
		{gv: core, kind: "Service", plural: "services", singular: "service", namespaced: true, shortNames: []string{"svc"}, categories: []string{"all"},
			newObj: func() runtime.Object { return &corev1.Service{} }, newList: func() runtime.Object { return &corev1.ServiceList{} },
			hasStatus: true},
		{gv: core, kind: "Endpoints", plural: "endpoints", singular: "endpoints", namespaced: true, shortNames: []string{"ep"},
			newObj: func() runtime.Object { return &corev1.Endpoints{} }, newList: func() runtime.Object { return &corev1.EndpointsList{} }},
		{gv: core, kind: "ConfigMap", plural: "configmaps", singular: "configmap", namespaced: true, shortNames: []string{"cm"},
			newObj: func() runtime.Object { return &corev1.ConfigMap{} }, newList: func() runtime.Object { return &corev1.ConfigMapList{} }},
		{gv: core, kind: "Secret", plural: "secrets", singular: "secret", namespaced: true,
			newObj: func() runtime.Object { return &corev1.Secret{} }, newList: func() runtime.Object { return &corev1.SecretList{} },
			fields: secretFields, fieldsSet: secretFieldsSet},
		{gv: core, kind: "Event", plural: "events", singular: "event", namespaced: true, shortNames: []string{"ev"},
			newObj: func() runtime.Object { return &corev1.Event{} }, newList: func() runtime.Object { return &corev1.EventList{} },
			fields: eventFields, fieldsSet: eventFieldsSet, ttl: eventTTL},
		{gv: core, kind: "ServiceAccount", plural: "serviceaccounts", singular: "serviceaccount", namespaced: true, shortNames: []string{"sa"},
			newObj: func() runtime.Object { return &corev1.ServiceAccount{} }, newList: func() runtime.Object { return &corev1.ServiceAccountList{} }},

		{gv: apps, kind: "Deployment", plural: "deployments", singular: "deployment", namespaced: true, shortNames: []string{"deploy"}, categories: []string{"all"},
			newObj: func() runtime.Object { return &appsv1.Deployment{} }, newList: func() runtime.Object { return &appsv1.DeploymentList{} },
			hasStatus: true, generation: true},
		{gv: apps, kind: "ReplicaSet", plural: "replicasets", singular: "replicaset", namespaced: true, shortNames: []string{"rs"}, categories: []string{"all"},
			newObj: func() runtime.Object { return &appsv1.ReplicaSet{} }, newList: func() runtime.Object { return &appsv1.ReplicaSetList{} },
			hasStatus: true, generation: true, fields: replicaSetFields, fieldsSet: replicaSetFieldsSet},

		{gv: coordinationv1.SchemeGroupVersion, kind: "Lease", plural: "leases", singular: "lease", namespaced: true,
			newObj: func() runtime.Object { return &coordinationv1.Lease{} }, newList: func() runtime.Object { return &coordinationv1.LeaseList{} }},
		{gv: discoveryv1.SchemeGroupVersion, kind: "EndpointSlice", plural: "endpointslices", singular: "endpointslice", namespaced: true,
			newObj: func() runtime.Object { return &discoveryv1.EndpointSlice{} }, newList: func() runtime.Object { return &discoveryv1.EndpointSliceList{} },
			generation: true, specOf: endpointSliceSpec},

		{gv: rbacv1.SchemeGroupVersion, kind: "Role", plural: "roles", singular: "role", namespaced: true,
			newObj: func() runtime.Object { return &rbacv1.Role{} }, newList: func() runtime.Object { return &rbacv1.RoleList{} }},
		{gv: rbacv1.SchemeGroupVersion, kind: "RoleBinding", plural: "rolebindings", singular: "rolebinding", namespaced: true,
			newObj: func() runtime.Object { return &rbacv1.RoleBinding{} }, newList: func() runtime.Object { return &rbacv1.RoleBindingList{} }},
		{gv: rbacv1.SchemeGroupVersion, kind: "ClusterRole", plural: "clusterroles", singular: "clusterrole",
			newObj: func() runtime.Object { return &rbacv1.ClusterRole{} }, newList: func() runtime.Object { return &rbacv1.ClusterRoleList{} }},
		{gv: rbacv1.SchemeGroupVersion, kind: "ClusterRoleBinding", plural: "clusterrolebindings", singular: "clusterrolebinding",
			newObj: func() runtime.Object { return &rbacv1.ClusterRoleBinding{} }, newList: func() runtime.Object { return &rbacv1.ClusterRoleBindingList{} }},
	}
}

// endpointSliceSpec is what bumps an EndpointSlice's generation in
// Kubernetes: it has no spec, so any change but to metadata (labels
// excepted) counts.
func endpointSliceSpec(obj runtime.Object) interface{} {
	es, ok := obj.(*discoveryv1.EndpointSlice)
	if !ok {
		return nil
	}
	return []interface{}{es.AddressType, es.Endpoints, es.Ports, es.Labels}
}

// prepareNamespace starts every namespace Active, holding the finalizer
// the namespace controller removes once the namespace is empty. It is set
// here, not as a default, because defaults also run on the finalize
// request that takes it away.
func prepareNamespace(obj runtime.Object) {
	if ns, ok := obj.(*corev1.Namespace); ok {
		ns.Status = corev1.NamespaceStatus{Phase: corev1.NamespaceActive}
		for _, f := range ns.Spec.Finalizers {
			if f == corev1.FinalizerKubernetes {
				return
			}
		}
		ns.Spec.Finalizers = append(ns.Spec.Finalizers, corev1.FinalizerKubernetes)
	}
}

// preparePod starts every pod Pending with its QoS class, as the
// Kubernetes pod strategy does; the node agent owns the status after that.
func preparePod(obj runtime.Object) {
	if p, ok := obj.(*corev1.Pod); ok {
		p.Status = corev1.PodStatus{Phase: corev1.PodPending, QOSClass: qosClass(&p.Spec)}
	}
}
