package defaults

import (
	corev1 "k8s.io/api/core/v1"
)

// The functions in this file are not SetDefaults_* in Kubernetes: they are what
// its v1 -> internal -> v1 conversion does to every request. barge keeps v1
// objects end to end, so without them clients would see fields Kubernetes never
// returns (stringData) or pairs of fields that disagree (podIP vs podIPs).

// mergeStringData folds the write-only stringData into data, stringData
// winning, exactly as Convert_v1_Secret_To_core_Secret does; the field is then
// dropped because it is never persisted or returned.
func mergeStringData(s *corev1.Secret) {
	if len(s.StringData) > 0 {
		if s.Data == nil {
			s.Data = make(map[string][]byte, len(s.StringData))
		}
		for k, v := range s.StringData {
			s.Data[k] = []byte(v)
		}
	}
	s.StringData = nil
}

// normalizeServiceAccountAlias keeps the deprecated serviceAccount field an
// alias of serviceAccountName; the new field wins when both are set.
func normalizeServiceAccountAlias(spec *corev1.PodSpec) {
	if spec.ServiceAccountName == "" {
		spec.ServiceAccountName = spec.DeprecatedServiceAccount
	}
	spec.DeprecatedServiceAccount = spec.ServiceAccountName
}

// normalizePodStatusIPs keeps the singular and plural IP fields in step.
// Older kubelets only send the singular field, so it is authoritative when the
// two disagree; the singular field is then always the first plural entry.
func normalizePodStatusIPs(status *corev1.PodStatus) {
	if status.PodIP != "" && (len(status.PodIPs) == 0 || status.PodIPs[0].IP != status.PodIP) {
		status.PodIPs = []corev1.PodIP{{IP: status.PodIP}}
	}
	if len(status.PodIPs) > 0 {
		status.PodIP = status.PodIPs[0].IP
	}
	if status.HostIP != "" && (len(status.HostIPs) == 0 || status.HostIPs[0].IP != status.HostIP) {
		status.HostIPs = []corev1.HostIP{{IP: status.HostIP}}
	}
}
