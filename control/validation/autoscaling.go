package validation

import (
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// validateScale is ValidateScale, used for create and update of the scale
// subresource alike (it has no update-specific rules).
func validateScale(s *autoscalingv1.Scale) field.ErrorList {
	errs := objectMeta(&s.ObjectMeta, true, dnsSubdomainName)
	return append(errs, nonNegative(int64(s.Spec.Replicas), field.NewPath("spec", "replicas"))...)
}
