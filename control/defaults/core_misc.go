package defaults

import (
	corev1 "k8s.io/api/core/v1"
)

// setNamespace labels the namespace with its own name so that namespace
// selectors can match a namespace by name, and starts it Active. The
// "kubernetes" spec finalizer is left to the create strategy: as a default it
// would be re-added on every decode, including the finalize call that removes it.
func setNamespace(ns *corev1.Namespace) {
	// generateName'd namespaces have no name yet; the strategy labels those.
	if ns.Name != "" {
		if ns.Labels == nil {
			ns.Labels = map[string]string{}
		}
		ns.Labels[corev1.LabelMetadataName] = ns.Name
	}
	if ns.Status.Phase == "" {
		ns.Status.Phase = corev1.NamespaceActive
	}
}

// setNode fills allocatable from capacity, so a kubelet that reports only
// capacity still gets pods scheduled against it.
func setNode(node *corev1.Node) {
	st := &node.Status
	if st.Allocatable == nil && st.Capacity != nil {
		st.Allocatable = make(corev1.ResourceList, len(st.Capacity))
		for name, q := range st.Capacity {
			st.Allocatable[name] = q.DeepCopy()
		}
	}
	roundResourceList(st.Capacity)
	roundResourceList(st.Allocatable)
}

func setSecret(s *corev1.Secret) {
	if s.Type == "" {
		s.Type = corev1.SecretTypeOpaque
	}
	mergeStringData(s)
}

// setConfigMap gives data a non-nil map, as Kubernetes does, so clients that
// index into it never meet a nil map after a round trip.
func setConfigMap(cm *corev1.ConfigMap) {
	if cm.Data == nil {
		cm.Data = make(map[string]string)
	}
}

func setEndpoints(ep *corev1.Endpoints) {
	for i := range ep.Subsets {
		for j := range ep.Subsets[i].Ports {
			if ep.Subsets[i].Ports[j].Protocol == "" {
				ep.Subsets[i].Ports[j].Protocol = corev1.ProtocolTCP
			}
		}
	}
}
