package registry

import (
	"fmt"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/registry/generic"
	"k8s.io/apiserver/pkg/storage"
)

// fieldsFunc returns the type-specific selectable fields of an object;
// metadata.name and metadata.namespace are added for every type.
type fieldsFunc func(obj runtime.Object) fields.Set

// The fields below are the ones Kubernetes lets clients select on. kubectl
// and controllers rely on several (describe node lists pods by
// spec.nodeName, describe lists events by involvedObject.*).
var (
	podFields = []string{"spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName",
		"spec.hostNetwork", "status.phase", "status.podIP", "status.podIPs", "status.nominatedNodeName"}
	eventFields = []string{"involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
		"involvedObject.uid", "involvedObject.apiVersion", "involvedObject.resourceVersion",
		"involvedObject.fieldPath", "reason", "reportingComponent", "source", "type"}
	namespaceFields  = []string{"status.phase"}
	nodeFields       = []string{"spec.unschedulable"}
	secretFields     = []string{"type"}
	replicaSetFields = []string{"status.replicas"}
)

func podFieldsSet(obj runtime.Object) fields.Set {
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return nil
	}
	podIPs := ""
	if len(p.Status.PodIPs) > 0 {
		podIPs = p.Status.PodIPs[0].IP
	}
	return fields.Set{
		"spec.nodeName":            p.Spec.NodeName,
		"spec.restartPolicy":       string(p.Spec.RestartPolicy),
		"spec.schedulerName":       p.Spec.SchedulerName,
		"spec.serviceAccountName":  p.Spec.ServiceAccountName,
		"spec.hostNetwork":         strconv.FormatBool(p.Spec.HostNetwork),
		"status.phase":             string(p.Status.Phase),
		"status.podIP":             p.Status.PodIP,
		"status.podIPs":            podIPs,
		"status.nominatedNodeName": p.Status.NominatedNodeName,
	}
}

func eventFieldsSet(obj runtime.Object) fields.Set {
	e, ok := obj.(*corev1.Event)
	if !ok {
		return nil
	}
	source := e.Source.Component
	if source == "" {
		source = e.ReportingController
	}
	return fields.Set{
		"involvedObject.kind":            e.InvolvedObject.Kind,
		"involvedObject.namespace":       e.InvolvedObject.Namespace,
		"involvedObject.name":            e.InvolvedObject.Name,
		"involvedObject.uid":             string(e.InvolvedObject.UID),
		"involvedObject.apiVersion":      e.InvolvedObject.APIVersion,
		"involvedObject.resourceVersion": e.InvolvedObject.ResourceVersion,
		"involvedObject.fieldPath":       e.InvolvedObject.FieldPath,
		"reason":                         e.Reason,
		"reportingComponent":             e.ReportingController,
		"source":                         source,
		"type":                           e.Type,
	}
}

func namespaceFieldsSet(obj runtime.Object) fields.Set {
	n, ok := obj.(*corev1.Namespace)
	if !ok {
		return nil
	}
	return fields.Set{"status.phase": string(n.Status.Phase)}
}

func nodeFieldsSet(obj runtime.Object) fields.Set {
	n, ok := obj.(*corev1.Node)
	if !ok {
		return nil
	}
	return fields.Set{"spec.unschedulable": strconv.FormatBool(n.Spec.Unschedulable)}
}

func secretFieldsSet(obj runtime.Object) fields.Set {
	s, ok := obj.(*corev1.Secret)
	if !ok {
		return nil
	}
	return fields.Set{"type": string(s.Type)}
}

func replicaSetFieldsSet(obj runtime.Object) fields.Set {
	rs, ok := obj.(*appsv1.ReplicaSet)
	if !ok {
		return nil
	}
	return fields.Set{"status.replicas": strconv.Itoa(int(rs.Status.Replicas))}
}

// attrFunc builds the storage.AttrFunc of a resource: its labels and its
// selectable fields, the metadata ones included.
func attrFunc(namespaced bool, extra fieldsFunc) storage.AttrFunc {
	return func(obj runtime.Object) (labels.Set, fields.Set, error) {
		m, err := meta.Accessor(obj)
		if err != nil {
			return nil, nil, fmt.Errorf("selectable fields: %w", err)
		}
		set := fields.Set{"metadata.name": m.GetName()}
		if namespaced {
			set["metadata.namespace"] = m.GetNamespace()
		}
		if extra != nil {
			set = generic.MergeFieldsSets(set, extra(obj))
		}
		return labels.Set(m.GetLabels()), set, nil
	}
}

// fieldLabelConversion accepts the metadata fields plus the listed ones,
// and rejects anything else with the error Kubernetes gives.
func fieldLabelConversion(allowed []string) runtime.FieldLabelConversionFunc {
	ok := map[string]bool{"metadata.name": true, "metadata.namespace": true}
	for _, f := range allowed {
		ok[f] = true
	}
	return func(label, value string) (string, string, error) {
		if ok[label] {
			return label, value, nil
		}
		return "", "", fmt.Errorf("field label not supported: %s", label)
	}
}

// addFieldLabelConversions registers every resource's selectable fields
// with the scheme, which is where the API handlers look them up.
func addFieldLabelConversions(s *runtime.Scheme, gvk schema.GroupVersionKind, allowed []string) error {
	if err := s.AddFieldLabelConversionFunc(gvk, fieldLabelConversion(allowed)); err != nil {
		return fmt.Errorf("field selectors of %s: %w", gvk, err)
	}
	return nil
}
