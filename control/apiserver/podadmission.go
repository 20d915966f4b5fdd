package apiserver

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/apiserver/pkg/admission"
)

// podDefaults fills in, on pod creation, what Kubernetes' ServiceAccount,
// Priority and DefaultTolerationSeconds admission plugins fill in, so pods
// look the same to kubectl describe and to workloads: the "default" service
// account with its API credentials mounted, priority 0, and five minutes of
// tolerance for an unready or unreachable node.
type podDefaults struct{ *admission.Handler }

func newPodDefaults() *podDefaults {
	return &podDefaults{Handler: admission.NewHandler(admission.Create)}
}

// Kubernetes' values for the same defaults.
const (
	serviceAccountMountPath  = "/var/run/secrets/kubernetes.io/serviceaccount"
	serviceAccountTokenTTL   = 3607
	defaultTolerationSeconds = 300
	rootCAConfigMap          = "kube-root-ca.crt"
)

func (p *podDefaults) Admit(_ context.Context, a admission.Attributes, _ admission.ObjectInterfaces) error {
	if a.GetResource().GroupResource() != corev1.Resource("pods") || a.GetSubresource() != "" {
		return nil
	}
	pod, ok := a.GetObject().(*corev1.Pod)
	if !ok {
		return nil
	}
	if pod.Spec.ServiceAccountName == "" {
		pod.Spec.ServiceAccountName = "default"
	}
	if pod.Spec.AutomountServiceAccountToken == nil || *pod.Spec.AutomountServiceAccountToken {
		mountServiceAccountToken(pod)
	}
	if pod.Spec.PriorityClassName == "" && pod.Spec.Priority == nil {
		zero := int32(0)
		preempt := corev1.PreemptLowerPriority
		pod.Spec.Priority = &zero
		if pod.Spec.PreemptionPolicy == nil {
			pod.Spec.PreemptionPolicy = &preempt
		}
	}
	addDefaultTolerations(pod)
	return nil
}

// mountServiceAccountToken adds the projected volume Kubernetes names
// kube-api-access-<random>: a bound token, the cluster CA and the
// namespace, mounted read-only into every container.
func mountServiceAccountToken(pod *corev1.Pod) {
	for _, c := range append(append([]corev1.Container(nil), pod.Spec.InitContainers...), pod.Spec.Containers...) {
		for _, m := range c.VolumeMounts {
			if m.MountPath == serviceAccountMountPath {
				return // the pod brings its own credentials
			}
		}
	}
	name := "kube-api-access-" + rand.String(5)
	ttl := int64(serviceAccountTokenTTL)
	mode := int32(0o644)
	pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{
		Name: name,
		VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
			DefaultMode: &mode,
			Sources: []corev1.VolumeProjection{
				{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{ExpirationSeconds: &ttl, Path: "token"}},
				{ConfigMap: &corev1.ConfigMapProjection{
					LocalObjectReference: corev1.LocalObjectReference{Name: rootCAConfigMap},
					Items:                []corev1.KeyToPath{{Key: "ca.crt", Path: "ca.crt"}},
				}},
				{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{{
					Path:     "namespace",
					FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.namespace"},
				}}}},
			},
		}},
	})
	mount := corev1.VolumeMount{Name: name, ReadOnly: true, MountPath: serviceAccountMountPath}
	for i := range pod.Spec.InitContainers {
		pod.Spec.InitContainers[i].VolumeMounts = append(pod.Spec.InitContainers[i].VolumeMounts, mount)
	}
	for i := range pod.Spec.Containers {
		pod.Spec.Containers[i].VolumeMounts = append(pod.Spec.Containers[i].VolumeMounts, mount)
	}
}

func addDefaultTolerations(pod *corev1.Pod) {
	seconds := int64(defaultTolerationSeconds)
	for _, key := range []string{corev1.TaintNodeNotReady, corev1.TaintNodeUnreachable} {
		found := false
		for _, t := range pod.Spec.Tolerations {
			if (t.Key == key || (t.Key == "" && t.Operator == corev1.TolerationOpExists)) &&
				(t.Effect == corev1.TaintEffectNoExecute || t.Effect == "") {
				found = true
				break
			}
		}
		if !found {
			pod.Spec.Tolerations = append(pod.Spec.Tolerations, corev1.Toleration{
				Key: key, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: &seconds,
			})
		}
	}
}
