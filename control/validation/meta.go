package validation

import (
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/validate/content"
	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func metadataPath() *field.Path { return field.NewPath("metadata") }

// nameFunc is the signature apimachinery's ValidateObjectMeta takes.
type nameFunc = apimachineryvalidation.ValidateNameFunc

// Name rules, per type, as Kubernetes declares them.

func dnsSubdomainName(name string, prefix bool) []string {
	return apimachineryvalidation.NameIsDNSSubdomain(name, prefix)
}

func dnsLabelName(name string, prefix bool) []string {
	return apimachineryvalidation.NameIsDNSLabel(name, prefix)
}

// serviceName is RFC 1035: service names become DNS labels of the cluster
// domain and environment variable prefixes, so they must start with a letter.
func serviceName(name string, prefix bool) []string {
	return apimachineryvalidation.NameIsDNS1035Label(name, prefix)
}

// pathSegmentName is the RBAC name rule: anything that can be a URL path
// segment, since role names are only ever looked up by name.
func pathSegmentName(name string, _ bool) []string {
	return content.IsPathSegmentName(name)
}

// objectMeta is core's ValidateObjectMeta: the generic checks plus the rule
// that an unqualified finalizer must be one Kubernetes defines.
func objectMeta(meta *metav1.ObjectMeta, namespaced bool, fn nameFunc) field.ErrorList {
	errs := apimachineryvalidation.ValidateObjectMeta(meta, namespaced, fn, metadataPath())
	return append(errs, kubeFinalizers(meta.Finalizers)...)
}

// objectMetaUpdate is core's ValidateObjectMetaUpdate.
func objectMetaUpdate(meta, old *metav1.ObjectMeta) field.ErrorList {
	errs := apimachineryvalidation.ValidateObjectMetaUpdate(meta, old, metadataPath())
	return append(errs, kubeFinalizers(meta.Finalizers)...)
}

func kubeFinalizers(finalizers []string) field.ErrorList {
	var errs field.ErrorList
	for i, f := range finalizers {
		errs = append(errs, kubeFinalizerName(f, metadataPath().Child("finalizers").Index(i))...)
	}
	return errs
}

// kubeFinalizerName reserves unqualified finalizer names for Kubernetes, so a
// typo'd "kubernetes" or "orphan" cannot block deletion forever.
func kubeFinalizerName(name string, path *field.Path) field.ErrorList {
	if strings.Contains(name, "/") {
		return nil
	}
	switch name {
	case string(corev1.FinalizerKubernetes), metav1.FinalizerOrphanDependents, metav1.FinalizerDeleteDependents:
		return nil
	}
	return field.ErrorList{field.Invalid(path, name, "name is neither a standard finalizer name nor is it fully qualified")}
}

func dns1123Label(value string, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, msg := range validation.IsDNS1123Label(value) {
		errs = append(errs, field.Invalid(path, value, msg))
	}
	return errs
}

func dns1123Subdomain(value string, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, msg := range validation.IsDNS1123Subdomain(value) {
		errs = append(errs, field.Invalid(path, value, msg))
	}
	return errs
}

func qualifiedName(value string, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, msg := range validation.IsQualifiedName(value) {
		errs = append(errs, field.Invalid(path, value, msg))
	}
	return errs
}

// nameErrors applies a name rule to a reference to another object.
func nameErrors(fn nameFunc, value string, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, msg := range fn(value, false) {
		errs = append(errs, field.Invalid(path, value, msg))
	}
	return errs
}

func nonNegative(value int64, path *field.Path) field.ErrorList {
	return apimachineryvalidation.ValidateNonnegativeField(value, path)
}

func immutable(value, old interface{}, path *field.Path) field.ErrorList {
	return apimachineryvalidation.ValidateImmutableField(value, old, path)
}

// int32Value reads an optional v1 count the way conversion to the internal
// type does: absent is zero.
func int32Value(p *int32) int32 {
	if p == nil {
		return 0
	}
	return *p
}

// isDecremented reports a counter going backwards, or being dropped.
func isDecremented(value, old *int32) bool {
	if value == nil && old != nil {
		return true
	}
	if value == nil || old == nil {
		return false
	}
	return *value < *old
}

// sortedKeys gives map-driven checks a stable error order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
