package validation

import (
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
	metavalidation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	netutils "k8s.io/utils/net"
)

// validatePodCreate is ValidatePodCreate.
func validatePodCreate(pod *corev1.Pod) field.ErrorList {
	errs := podMetadataAndSpec(pod)
	specPath := field.NewPath("spec")
	// Ephemeral containers are only added later, through their subresource.
	if len(pod.Spec.EphemeralContainers) > 0 {
		errs = append(errs, field.Forbidden(specPath.Child("ephemeralContainers"), "cannot be set on create"))
	}
	if pod.Spec.NodeName != "" && len(pod.Spec.SchedulingGates) != 0 {
		errs = append(errs, field.Forbidden(specPath.Child("nodeName"), "cannot be set until all schedulingGates have been cleared"))
	}
	return errs
}

// podMetadataAndSpec holds the checks shared by pod create and update.
func podMetadataAndSpec(pod *corev1.Pod) field.ErrorList {
	specPath := field.NewPath("spec")
	errs := objectMeta(&pod.ObjectMeta, true, dnsSubdomainName)
	errs = append(errs, podAnnotations(pod.Annotations, &pod.Spec, metadataPath().Child("annotations"))...)
	errs = append(errs, podSpec(&pod.Spec, &pod.ObjectMeta, specPath, podOptions{resourceIsPod: true})...)
	// A bound token is minted for the pod's service account; without one
	// there is nobody to mint it for.
	if pod.Spec.ServiceAccountName == "" {
		for vi, v := range pod.Spec.Volumes {
			if v.Projected == nil {
				continue
			}
			for si, s := range v.Projected.Sources {
				if s.ServiceAccountToken != nil {
					errs = append(errs, field.Forbidden(specPath.Child("volumes").Index(vi).Child("projected", "sources").Index(si).Child("serviceAccountToken"),
						"must not be specified when serviceAccountName is not set"))
				}
			}
		}
	}
	for i := range pod.Spec.Containers {
		errs = append(errs, imageWhitespace(&pod.Spec.Containers[i], specPath.Child("containers").Index(i))...)
	}
	for i := range pod.Spec.InitContainers {
		errs = append(errs, imageWhitespace(&pod.Spec.InitContainers[i], specPath.Child("initContainers").Index(i))...)
	}
	return errs
}

// podAnnotations covers the annotations with meaning to Kubernetes that are
// cheap to check: a mirror pod must already be bound to its node, and the
// deletion cost must parse as the int32 the ReplicaSet controller reads.
func podAnnotations(annotations map[string]string, spec *corev1.PodSpec, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if v, ok := annotations[corev1.MirrorPodAnnotationKey]; ok && spec.NodeName == "" {
		errs = append(errs, field.Invalid(p.Key(corev1.MirrorPodAnnotationKey), v, "must set spec.nodeName if mirror pod annotation is set"))
	}
	if v, ok := annotations[corev1.PodDeletionCost]; ok {
		if !deletionCost(v) {
			errs = append(errs, field.Invalid(p.Key(corev1.PodDeletionCost), v, "must be a 32bit integer"))
		}
	}
	return errs
}

// deletionCost mirrors GetDeletionCostFromPodAnnotations: a plain int32 with
// no "+" sign or leading zeros.
func deletionCost(v string) bool {
	if v == "" || !(v[0] == '-' || v == "0" || (v[0] >= '1' && v[0] <= '9')) {
		return false
	}
	_, err := strconv.ParseInt(v, 10, 32)
	return err == nil
}

// podTemplateSpec is ValidatePodTemplateSpec, used by controllers' templates.
func podTemplateSpec(t *corev1.PodTemplateSpec, p *field.Path) field.ErrorList {
	errs := metavalidation.ValidateLabels(t.Labels, p.Child("labels"))
	errs = append(errs, apimachineryvalidation.ValidateAnnotations(t.Annotations, p.Child("annotations"))...)
	errs = append(errs, podAnnotations(t.Annotations, &t.Spec, p.Child("annotations"))...)
	errs = append(errs, podSpec(&t.Spec, nil, p.Child("spec"), podOptions{})...)
	if len(t.Spec.EphemeralContainers) > 0 {
		errs = append(errs, field.Forbidden(p.Child("spec", "ephemeralContainers"), "ephemeral containers not allowed in pod template"))
	}
	return errs
}

func updatablePodSpecFields() string {
	return strings.Join([]string{
		"`spec.containers[*].image`",
		"`spec.initContainers[*].image`",
		"`spec.activeDeadlineSeconds`",
		"`spec.tolerations` (only additions to existing tolerations)",
		"`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
	}, ",")
}

// validatePodUpdate is ValidatePodUpdate: a pod's spec is fixed once created,
// apart from the handful of fields the kubelet can act on in place.
func validatePodUpdate(pod, old *corev1.Pod) field.ErrorList {
	errs := objectMetaUpdate(&pod.ObjectMeta, &old.ObjectMeta)
	errs = append(errs, podMetadataAndSpec(pod)...)
	errs = append(errs, podAnnotationUpdates(pod, old)...)
	specPath := field.NewPath("spec")

	cErrs, stop := containerUpdates(pod.Spec.Containers, old.Spec.Containers, specPath.Child("containers"))
	errs = append(errs, cErrs...)
	if stop {
		return errs
	}
	cErrs, stop = containerUpdates(pod.Spec.InitContainers, old.Spec.InitContainers, specPath.Child("initContainers"))
	errs = append(errs, cErrs...)
	if stop {
		return errs
	}

	// activeDeadlineSeconds may be set, or lowered, but never raised or
	// removed: it only ever brings the deadline closer.
	adsPath := specPath.Child("activeDeadlineSeconds")
	if pod.Spec.ActiveDeadlineSeconds != nil {
		v := *pod.Spec.ActiveDeadlineSeconds
		if v < 0 || v > math.MaxInt32 {
			return append(errs, field.Invalid(adsPath, v, validation.InclusiveRangeError(0, math.MaxInt32)))
		}
		if old.Spec.ActiveDeadlineSeconds != nil && *old.Spec.ActiveDeadlineSeconds < v {
			return append(errs, field.Invalid(adsPath, v, "must be less than or equal to previous value"))
		}
	} else if old.Spec.ActiveDeadlineSeconds != nil {
		errs = append(errs, field.Invalid(adsPath, pod.Spec.ActiveDeadlineSeconds, "must not update from a positive integer to nil value"))
	}
	errs = append(errs, onlyAddedTolerations(pod.Spec.Tolerations, old.Spec.Tolerations, specPath.Child("tolerations"))...)
	errs = append(errs, onlyDeletedSchedulingGates(pod.Spec.SchedulingGates, old.Spec.SchedulingGates, specPath.Child("schedulingGates"))...)

	if apiequality.Semantic.DeepEqual(pod.Spec, old.Spec) {
		return errs
	}
	// Copy the allowed changes back onto a copy of the new spec; anything
	// still different was not allowed.
	munged := pod.Spec.DeepCopy()
	for i := range munged.Containers {
		munged.Containers[i].Image = old.Spec.Containers[i].Image
	}
	for i := range munged.InitContainers {
		munged.InitContainers[i].Image = old.Spec.InitContainers[i].Image
	}
	munged.ActiveDeadlineSeconds = old.Spec.ActiveDeadlineSeconds
	munged.SchedulingGates = old.Spec.SchedulingGates
	munged.Tolerations = old.Spec.Tolerations
	// A negative grace period was once accepted; allow repairing it to 1.
	if old.Spec.TerminationGracePeriodSeconds != nil && *old.Spec.TerminationGracePeriodSeconds < 0 &&
		munged.TerminationGracePeriodSeconds != nil && *munged.TerminationGracePeriodSeconds == 1 {
		munged.TerminationGracePeriodSeconds = old.Spec.TerminationGracePeriodSeconds
	}
	// Gated pods are not scheduled yet, so their placement may still be narrowed.
	if len(old.Spec.SchedulingGates) > 0 {
		if !apiequality.Semantic.DeepEqual(munged.NodeSelector, old.Spec.NodeSelector) {
			for k, v := range old.Spec.NodeSelector {
				if nv, ok := munged.NodeSelector[k]; !ok || nv != v {
					errs = append(errs, field.Invalid(specPath.Child("nodeSelector"), munged.NodeSelector, "only additions to spec.nodeSelector are allowed (no mutations or deletions)"))
					break
				}
			}
			munged.NodeSelector = old.Spec.NodeSelector
		}
	}
	if !apiequality.Semantic.DeepEqual(*munged, old.Spec) {
		errs = append(errs, field.Forbidden(specPath, fmt.Sprintf("pod updates may not change fields other than %s\n%s",
			updatablePodSpecFields(), changedFields(old.Spec, *munged))))
	}
	return errs
}

// changedFields names the spec fields that differ. Kubernetes prints a full
// go-cmp diff here; the field names are the useful part of it.
func changedFields(old, new corev1.PodSpec) string {
	ov, nv := reflect.ValueOf(old), reflect.ValueOf(new)
	var names []string
	for i := 0; i < ov.NumField(); i++ {
		if apiequality.Semantic.DeepEqual(ov.Field(i).Interface(), nv.Field(i).Interface()) {
			continue
		}
		name := strings.Split(ov.Type().Field(i).Tag.Get("json"), ",")[0]
		names = append(names, "spec."+name)
	}
	return "changed: " + strings.Join(names, ", ")
}

func containerUpdates(list, old []corev1.Container, p *field.Path) (field.ErrorList, bool) {
	if len(list) != len(old) {
		return field.ErrorList{field.Forbidden(p, "pod updates may not add or remove containers")}, true
	}
	var errs field.ErrorList
	for i, c := range list {
		if c.Image == "" {
			errs = append(errs, field.Required(p.Index(i).Child("image"), ""))
		}
		if len(strings.TrimSpace(c.Image)) != len(c.Image) {
			errs = append(errs, field.Invalid(p.Index(i).Child("image"), c.Image, "must not have leading or trailing whitespace"))
		}
	}
	return errs, false
}

// onlyAddedTolerations lets controllers add tolerations (e.g. for taint-based
// eviction) to running pods; existing ones may only change tolerationSeconds.
func onlyAddedTolerations(list, old []corev1.Toleration, p *field.Path) field.ErrorList {
	for _, o := range old {
		found := false
		for _, n := range list {
			c := o
			c.TolerationSeconds = n.TolerationSeconds
			if reflect.DeepEqual(c, n) {
				found = true
				break
			}
		}
		if !found {
			return field.ErrorList{field.Forbidden(p, "existing toleration can not be modified except its tolerationSeconds")}
		}
	}
	return tolerations(list, p)
}

// onlyDeletedSchedulingGates: gates are removed one by one as their owners
// are satisfied; adding one after creation could hold back a scheduled pod.
func onlyDeletedSchedulingGates(list, old []corev1.PodSchedulingGate, p *field.Path) field.ErrorList {
	oldNames := map[string]bool{}
	for _, g := range old {
		oldNames[g.Name] = true
	}
	var errs field.ErrorList
	for i, g := range list {
		if !oldNames[g.Name] {
			errs = append(errs, field.Forbidden(p.Index(i).Child("name"), fmt.Sprintf("only deletion is allowed, but found new scheduling gate '%s'", g.Name)))
		}
	}
	return errs
}

// podAnnotationUpdates: the mirror-pod marker is set by the kubelet when it
// creates the pod and must not come or go later.
func podAnnotationUpdates(pod, old *corev1.Pod) field.ErrorList {
	var errs field.ErrorList
	p := metadataPath().Child("annotations")
	const apparmorPrefix = "container.apparmor.security.beta.kubernetes.io/"
	for _, k := range sortedKeys(old.Annotations) {
		if nv, ok := pod.Annotations[k]; ok && nv == old.Annotations[k] {
			continue
		}
		if strings.HasPrefix(k, apparmorPrefix) {
			errs = append(errs, field.Forbidden(p.Key(k), "may not remove or update AppArmor annotations"))
		}
		if k == corev1.MirrorPodAnnotationKey {
			errs = append(errs, field.Forbidden(p.Key(k), "may not remove or update mirror pod annotation"))
		}
	}
	for _, k := range sortedKeys(pod.Annotations) {
		if _, ok := old.Annotations[k]; ok {
			continue
		}
		if strings.HasPrefix(k, apparmorPrefix) {
			errs = append(errs, field.Forbidden(p.Key(k), "may not add AppArmor annotations"))
		}
		if k == corev1.MirrorPodAnnotationKey {
			errs = append(errs, field.Forbidden(p.Key(k), "may not add mirror pod annotation"))
		}
	}
	return errs
}

// validatePodStatusUpdate is ValidatePodStatusUpdate.
func validatePodStatusUpdate(pod, old *corev1.Pod) field.ErrorList {
	errs := objectMetaUpdate(&pod.ObjectMeta, &old.ObjectMeta)
	errs = append(errs, podAnnotationUpdates(pod, old)...)
	for i, c := range pod.Status.Conditions {
		switch c.Type {
		case corev1.PodScheduled, corev1.PodReady, corev1.PodInitialized:
			continue
		}
		// Kubernetes reports these under metadata.conditions[i].Type.
		errs = append(errs, qualifiedName(string(c.Type), metadataPath().Child("conditions").Index(i).Child("Type"))...)
	}
	sp := field.NewPath("status")
	if pod.Spec.NodeName != old.Spec.NodeName {
		errs = append(errs, field.Forbidden(sp.Child("nodeName"), "may not be changed directly"))
	}
	if n := pod.Status.NominatedNodeName; n != old.Status.NominatedNodeName && n != "" {
		errs = append(errs, nameErrors(dnsSubdomainName, n, sp.Child("nominatedNodeName"))...)
	}
	errs = append(errs, immutable(pod.Status.QOSClass, old.Status.QOSClass, sp.Child("qosClass"))...)
	// A container of a pod that does not restart must stay terminated.
	errs = append(errs, stateTransitions(pod.Status.ContainerStatuses, old.Status.ContainerStatuses, sp.Child("containerStatuses"), old.Spec.RestartPolicy, nil)...)
	errs = append(errs, stateTransitions(pod.Status.InitContainerStatuses, old.Status.InitContainerStatuses, sp.Child("initContainerStatuses"), old.Spec.RestartPolicy, old.Spec.InitContainers)...)
	errs = append(errs, stateTransitions(pod.Status.EphemeralContainerStatuses, old.Status.EphemeralContainerStatuses, sp.Child("ephemeralContainerStatuses"), corev1.RestartPolicyNever, nil)...)
	errs = append(errs, statusIPs(pod)...)
	return errs
}

// stateTransitions is ValidateContainerStateTransition (and its init variant,
// which lets sidecars restart).
func stateTransitions(statuses, old []corev1.ContainerStatus, p *field.Path, policy corev1.RestartPolicy, inits []corev1.Container) field.ErrorList {
	if policy == corev1.RestartPolicyAlways {
		return nil
	}
	var errs field.ErrorList
	for i, o := range old {
		if o.State.Terminated == nil {
			continue
		}
		if o.State.Terminated.ExitCode != 0 && policy == corev1.RestartPolicyOnFailure {
			continue
		}
		sidecar := false
		for _, c := range inits {
			if c.Name == o.Name {
				sidecar = c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways
				break
			}
		}
		if sidecar {
			continue
		}
		for _, s := range statuses {
			if s.Name == o.Name && s.State.Terminated == nil {
				errs = append(errs, field.Forbidden(p.Index(i).Child("state"), "may not be transitioned to non-terminated state"))
			}
		}
	}
	return errs
}

// statusIPs: at most one address per family, no duplicates, and hostIPs led
// by hostIP.
func statusIPs(pod *corev1.Pod) field.ErrorList {
	var errs field.ErrorList
	pp := field.NewPath("status", "podIPs")
	podIPs := make([]string, 0, len(pod.Status.PodIPs))
	for i, ip := range pod.Status.PodIPs {
		errs = append(errs, legacyIP(pp.Index(i), ip.IP)...)
		podIPs = append(podIPs, ip.IP)
	}
	if len(podIPs) > 1 {
		errs = append(errs, dualStack(pp, podIPs, pod.Status.PodIPs)...)
		seen := map[string]bool{}
		for i, ip := range pod.Status.PodIPs {
			if seen[ip.IP] {
				errs = append(errs, field.Duplicate(pp.Index(i), ip))
			}
			seen[ip.IP] = true
		}
	}
	if len(pod.Status.HostIPs) == 0 {
		return errs
	}
	hp := field.NewPath("status", "hostIPs")
	if pod.Status.HostIP != pod.Status.HostIPs[0].IP {
		errs = append(errs, field.Invalid(hp.Index(0).Child("ip"), pod.Status.HostIPs[0].IP, "must be equal to `hostIP`"))
	}
	hostIPs := make([]string, 0, len(pod.Status.HostIPs))
	for i, ip := range pod.Status.HostIPs {
		errs = append(errs, legacyIP(hp.Index(i), ip.IP)...)
		hostIPs = append(hostIPs, ip.IP)
	}
	if len(hostIPs) > 1 {
		seen := map[string]bool{}
		for i, ip := range pod.Status.HostIPs {
			if seen[ip.IP] {
				errs = append(errs, field.Duplicate(hp.Index(i), ip))
			}
			seen[ip.IP] = true
		}
		errs = append(errs, dualStack(hp, hostIPs, pod.Status.HostIPs)...)
	}
	return errs
}

func dualStack(p *field.Path, ips []string, bad interface{}) field.ErrorList {
	ok, err := netutils.IsDualStackIPStrings(ips)
	var errs field.ErrorList
	if err != nil {
		errs = append(errs, field.InternalError(p, fmt.Errorf("failed to check for dual stack with error:%v", err)))
	}
	if !ok || len(ips) > 2 {
		errs = append(errs, field.Invalid(p, bad, "may specify no more than one IP for each IP family"))
	}
	return errs
}

// validateBinding is ValidatePodBinding: a pod can only be bound to a node.
func validateBinding(b *corev1.Binding) field.ErrorList {
	var errs field.ErrorList
	if b.Target.Kind != "" && b.Target.Kind != "Node" {
		errs = append(errs, field.NotSupported(field.NewPath("target", "kind"), b.Target.Kind, []string{"Node", "<empty>"}))
	}
	if b.Target.Name == "" {
		errs = append(errs, field.Required(field.NewPath("target", "name"), ""))
	}
	return errs
}
