package defaults

import (
	corev1 "k8s.io/api/core/v1"
	utilptr "k8s.io/utils/ptr"
)

// setVolume is SetDefaults_Volume plus the per-source defaults. A volume that
// names no source at all becomes an emptyDir, which is why validation's "must
// specify a volume type" is only reachable for bodies that skipped decoding.
func setVolume(v *corev1.Volume) {
	if isVolumeSourceEmpty(&v.VolumeSource) {
		v.EmptyDir = &corev1.EmptyDirVolumeSource{}
	}
	src := &v.VolumeSource
	if src.HostPath != nil && src.HostPath.Type == nil {
		src.HostPath.Type = ptr(corev1.HostPathUnset)
	}
	if src.Secret != nil && src.Secret.DefaultMode == nil {
		src.Secret.DefaultMode = ptr(corev1.SecretVolumeSourceDefaultMode)
	}
	if src.ConfigMap != nil && src.ConfigMap.DefaultMode == nil {
		src.ConfigMap.DefaultMode = ptr(corev1.ConfigMapVolumeSourceDefaultMode)
	}
	if src.DownwardAPI != nil {
		if src.DownwardAPI.DefaultMode == nil {
			src.DownwardAPI.DefaultMode = ptr(corev1.DownwardAPIVolumeSourceDefaultMode)
		}
		setDownwardAPIFiles(src.DownwardAPI.Items)
	}
	if src.Projected != nil {
		setProjected(src.Projected)
	}
	if src.ISCSI != nil && src.ISCSI.ISCSIInterface == "" {
		src.ISCSI.ISCSIInterface = "default"
	}
	if src.RBD != nil {
		setString(&src.RBD.RBDPool, "rbd")
		setString(&src.RBD.RadosUser, "admin")
		setString(&src.RBD.Keyring, "/etc/ceph/keyring")
	}
	if src.AzureDisk != nil {
		if src.AzureDisk.CachingMode == nil {
			src.AzureDisk.CachingMode = ptr(corev1.AzureDataDiskCachingReadWrite)
		}
		if src.AzureDisk.FSType == nil {
			src.AzureDisk.FSType = ptr("ext4")
		}
		if src.AzureDisk.ReadOnly == nil {
			src.AzureDisk.ReadOnly = ptr(false)
		}
		if src.AzureDisk.Kind == nil {
			src.AzureDisk.Kind = ptr(corev1.AzureSharedBlobDisk)
		}
	}
	if src.ScaleIO != nil {
		setString(&src.ScaleIO.StorageMode, "ThinProvisioned")
		setString(&src.ScaleIO.FSType, "xfs")
	}
	if src.Ephemeral != nil && src.Ephemeral.VolumeClaimTemplate != nil {
		spec := &src.Ephemeral.VolumeClaimTemplate.Spec
		if spec.VolumeMode == nil {
			spec.VolumeMode = ptr(corev1.PersistentVolumeFilesystem)
		}
		roundResourceList(spec.Resources.Limits)
		roundResourceList(spec.Resources.Requests)
	}
}

func setProjected(p *corev1.ProjectedVolumeSource) {
	if p.DefaultMode == nil {
		p.DefaultMode = ptr(corev1.ProjectedVolumeSourceDefaultMode)
	}
	for i := range p.Sources {
		s := &p.Sources[i]
		if s.DownwardAPI != nil {
			setDownwardAPIFiles(s.DownwardAPI.Items)
		}
		if s.ServiceAccountToken != nil && s.ServiceAccountToken.ExpirationSeconds == nil {
			s.ServiceAccountToken.ExpirationSeconds = ptr(int64(3600))
		}
	}
}

func setDownwardAPIFiles(files []corev1.DownwardAPIVolumeFile) {
	for i := range files {
		setFieldRef(files[i].FieldRef)
	}
}

func setString(s *string, value string) {
	if *s == "" {
		*s = value
	}
}

// isVolumeSourceEmpty is ptr.AllPtrFieldsNil, as Kubernetes uses: every
// source is a pointer, so "no source" means all of them are nil, including
// sources added to k8s.io/api after this was written.
func isVolumeSourceEmpty(s *corev1.VolumeSource) bool {
	return utilptr.AllPtrFieldsNil(s)
}
