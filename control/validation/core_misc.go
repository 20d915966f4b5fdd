package validation

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Length limits of events.k8s.io/v1 fields, enforced for new-style events.
const (
	reportingInstanceLengthLimit = 128
	actionLengthLimit            = 128
	reasonLengthLimit            = 128
	noteLengthLimit              = 1024
)

// validateEvent is the legacy validation Kubernetes applies to core/v1
// events on create and update alike; metadata is left to the generic
// registry, as for core/v1 events in Kubernetes.
func validateEvent(e *corev1.Event) field.ErrorList {
	var errs field.ErrorList
	ioNamespace := field.NewPath("involvedObject", "namespace")
	if e.EventTime.IsZero() {
		// Old-style event: it lives in its object's namespace (or default,
		// for cluster-scoped objects and old clients).
		if e.InvolvedObject.Namespace == "" {
			if e.Namespace != metav1.NamespaceNone && e.Namespace != metav1.NamespaceDefault {
				errs = append(errs, field.Invalid(ioNamespace, e.InvolvedObject.Namespace, "does not match event.namespace"))
			}
		} else if e.Namespace != e.InvolvedObject.Namespace {
			errs = append(errs, field.Invalid(ioNamespace, e.InvolvedObject.Namespace, "does not match event.namespace"))
		}
	} else {
		if e.InvolvedObject.Namespace == "" && e.Namespace != metav1.NamespaceDefault && e.Namespace != metav1.NamespaceSystem {
			errs = append(errs, field.Invalid(ioNamespace, e.InvolvedObject.Namespace, "does not match event.namespace"))
		}
		if e.ReportingController == "" {
			errs = append(errs, field.Required(field.NewPath("reportingController"), ""))
		}
		errs = append(errs, qualifiedName(e.ReportingController, field.NewPath("reportingController"))...)
		errs = append(errs, lengthLimited(e.ReportingInstance, reportingInstanceLengthLimit, true, field.NewPath("reportingInstance"))...)
		errs = append(errs, lengthLimited(e.Action, actionLengthLimit, true, field.NewPath("action"))...)
		errs = append(errs, lengthLimited(e.Reason, reasonLengthLimit, true, field.NewPath("reason"))...)
		errs = append(errs, lengthLimited(e.Message, noteLengthLimit, false, field.NewPath("message"))...)
	}
	for _, msg := range validation.IsDNS1123Subdomain(e.Namespace) {
		errs = append(errs, field.Invalid(field.NewPath("namespace"), e.Namespace, msg))
	}
	return errs
}

func lengthLimited(value string, limit int, needed bool, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if needed && value == "" {
		errs = append(errs, field.Required(p, ""))
	}
	if len(value) > limit {
		errs = append(errs, field.Invalid(p, "", fmt.Sprintf("can have at most %v characters", limit)))
	}
	return errs
}

func validateServiceAccount(sa *corev1.ServiceAccount) field.ErrorList {
	return objectMeta(&sa.ObjectMeta, true, dnsSubdomainName)
}

func validateServiceAccountUpdate(sa, old *corev1.ServiceAccount) field.ErrorList {
	return append(objectMetaUpdate(&sa.ObjectMeta, &old.ObjectMeta), validateServiceAccount(sa)...)
}
