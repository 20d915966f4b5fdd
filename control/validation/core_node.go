package validation

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metavalidation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	netutils "k8s.io/utils/net"
)

// validateNode is ValidateNode. Status is optional at creation but must be
// sane when present.
func validateNode(node *corev1.Node) field.ErrorList {
	errs := objectMeta(&node.ObjectMeta, false, dnsSubdomainName)
	// Kubernetes reports taints under metadata.taints; kept for identical messages.
	errs = append(errs, nodeTaints(node.Spec.Taints, metadataPath().Child("taints"))...)
	errs = append(errs, nodeResources(node)...)
	if len(node.Spec.PodCIDRs) > 0 {
		p := field.NewPath("spec", "podCIDRs")
		for i, cidr := range node.Spec.PodCIDRs {
			errs = append(errs, legacyCIDR(p.Index(i), cidr)...)
		}
		if len(node.Spec.PodCIDRs) > 1 {
			dual, err := netutils.IsDualStackCIDRStrings(node.Spec.PodCIDRs)
			if err != nil {
				errs = append(errs, field.InternalError(p, fmt.Errorf("invalid PodCIDRs. failed to check with dual stack with error:%v", err)))
			}
			if !dual || len(node.Spec.PodCIDRs) > 2 {
				errs = append(errs, field.Invalid(p, node.Spec.PodCIDRs, "may specify no more than one CIDR for each IP family"))
			}
			seen := map[string]bool{}
			for i, cidr := range node.Spec.PodCIDRs {
				if seen[cidr] {
					errs = append(errs, field.Duplicate(p.Index(i), cidr))
				}
				seen[cidr] = true
			}
		}
	}
	return errs
}

func nodeResources(node *corev1.Node) field.ErrorList {
	var errs field.ErrorList
	for _, name := range sortedNames(node.Status.Capacity) {
		errs = append(errs, resourceQuantity(name, node.Status.Capacity[name], field.NewPath("status", "capacity", string(name)))...)
	}
	for _, name := range sortedNames(node.Status.Allocatable) {
		errs = append(errs, resourceQuantity(name, node.Status.Allocatable[name], field.NewPath("status", "allocatable", string(name)))...)
	}
	return errs
}

// nodeTaints: a taint is identified by key and effect, so that pair is unique.
func nodeTaints(taints []corev1.Taint, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	seen := map[corev1.TaintEffect]map[string]bool{}
	for i, t := range taints {
		ip := p.Index(i)
		errs = append(errs, metavalidation.ValidateLabelName(t.Key, ip.Child("key"))...)
		if msgs := validation.IsValidLabelValue(t.Value); len(msgs) != 0 {
			errs = append(errs, field.Invalid(ip.Child("value"), t.Value, strings.Join(msgs, ";")))
		}
		errs = append(errs, taintEffect(t.Effect, false, ip.Child("effect"))...)
		if seen[t.Effect][t.Key] {
			dup := field.Duplicate(ip, t)
			dup.Detail = "taints must be unique by key and effect pair"
			errs = append(errs, dup)
			continue
		}
		if seen[t.Effect] == nil {
			seen[t.Effect] = map[string]bool{}
		}
		seen[t.Effect][t.Key] = true
	}
	return errs
}

// validateNodeUpdate is what the node strategy runs for spec updates: the
// create rules plus the update rules.
func validateNodeUpdate(node, old *corev1.Node) field.ErrorList {
	return append(validateNode(node), validateNodeUpdateRules(node, old)...)
}

// validateNodeUpdateRules is ValidateNodeUpdate. podCIDRs and providerID are
// assigned once by controllers and then fixed; routes and cloud resources are
// keyed by them.
func validateNodeUpdateRules(node, old *corev1.Node) field.ErrorList {
	errs := objectMetaUpdate(&node.ObjectMeta, &old.ObjectMeta)
	errs = append(errs, nodeResources(node)...)
	seen := map[corev1.NodeAddress]bool{}
	for i, a := range node.Status.Addresses {
		if seen[a] {
			errs = append(errs, field.Duplicate(field.NewPath("status", "addresses").Index(i), a))
		}
		seen[a] = true
	}
	if len(old.Spec.PodCIDRs) > 0 {
		const msg = "node updates may not change podCIDR except from \"\" to valid"
		if len(old.Spec.PodCIDRs) != len(node.Spec.PodCIDRs) {
			errs = append(errs, field.Forbidden(field.NewPath("spec", "podCIDRs"), msg))
		} else {
			for i, v := range old.Spec.PodCIDRs {
				if v != node.Spec.PodCIDRs[i] {
					errs = append(errs, field.Forbidden(field.NewPath("spec", "podCIDRs"), msg))
				}
			}
		}
	}
	if old.Spec.ProviderID != "" && old.Spec.ProviderID != node.Spec.ProviderID {
		errs = append(errs, field.Forbidden(field.NewPath("spec", "providerID"), "node updates may not change providerID except from \"\" to valid"))
	}
	errs = append(errs, nodeTaints(node.Spec.Taints, metadataPath().Child("taints"))...)
	if node.Spec.DoNotUseExternalID != old.Spec.DoNotUseExternalID {
		errs = append(errs, field.Forbidden(field.NewPath("spec", "externalID"), "may not be updated"))
	}
	return errs
}
