package validation

import (
	corev1 "k8s.io/api/core/v1"
	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// validateNamespace is ValidateNamespace. Namespace names are DNS labels
// because they become a label of every service's DNS name.
func validateNamespace(ns *corev1.Namespace) field.ErrorList {
	errs := objectMeta(&ns.ObjectMeta, false, dnsLabelName)
	for _, f := range ns.Spec.Finalizers {
		// Kubernetes reports these without an index.
		errs = append(errs, finalizerName(string(f), field.NewPath("spec", "finalizers"))...)
	}
	return errs
}

func finalizerName(name string, p *field.Path) field.ErrorList {
	errs := apimachineryvalidation.ValidateFinalizerName(name, p)
	return append(errs, kubeFinalizerName(name, p)...)
}

func validateNamespaceUpdate(ns, old *corev1.Namespace) field.ErrorList {
	return append(validateNamespace(ns), objectMetaUpdate(&ns.ObjectMeta, &old.ObjectMeta)...)
}

// validateNamespaceStatusUpdate ties the phase to deletion: only the deletion
// machinery may move a namespace to Terminating.
func validateNamespaceStatusUpdate(ns, old *corev1.Namespace) field.ErrorList {
	errs := objectMetaUpdate(&ns.ObjectMeta, &old.ObjectMeta)
	// "status.Phase" is Kubernetes' capitalisation.
	p := field.NewPath("status", "Phase")
	if ns.DeletionTimestamp.IsZero() {
		if ns.Status.Phase != corev1.NamespaceActive {
			errs = append(errs, field.Invalid(p, ns.Status.Phase, "may only be 'Active' if `deletionTimestamp` is empty"))
		}
	} else if ns.Status.Phase != corev1.NamespaceTerminating {
		errs = append(errs, field.Invalid(p, ns.Status.Phase, "may only be 'Terminating' if `deletionTimestamp` is not empty"))
	}
	return errs
}
