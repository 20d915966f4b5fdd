package validation

import (
	"fmt"
	"path"
	"path/filepath"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metavalidation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

const fileModeErrorMsg = "must be a number between 0 and 0777 (octal), both inclusive"

// validateVolumes checks the pod's volumes and returns the ones that are valid
// by name, so that mounts of a broken volume are also reported as not found,
// as Kubernetes does.
func validateVolumes(volumes []corev1.Volume, podMeta *metav1.ObjectMeta, fldPath *field.Path, opts podOptions) (map[string]corev1.VolumeSource, field.ErrorList) {
	var errs field.ErrorList
	names := map[string]bool{}
	// PVCs created for ephemeral volumes are named <pod>-<volume>; only known
	// when validating a real pod.
	createdPVCs := map[string]bool{}
	if podMeta != nil && podMeta.Name != "" {
		for _, v := range volumes {
			if v.Ephemeral != nil {
				createdPVCs[podMeta.Name+"-"+v.Name] = true
			}
		}
	}
	vols := map[string]corev1.VolumeSource{}
	for i := range volumes {
		v := &volumes[i]
		idxPath := fldPath.Index(i)
		namePath := idxPath.Child("name")
		el := volumeSource(&v.VolumeSource, idxPath, v.Name, podMeta, opts)
		if v.Name == "" {
			el = append(el, field.Required(namePath, ""))
		} else {
			el = append(el, dns1123Label(v.Name, namePath)...)
		}
		if names[v.Name] {
			el = append(el, field.Duplicate(namePath, v.Name))
		}
		if len(el) == 0 {
			names[v.Name] = true
			vols[v.Name] = v.VolumeSource
		} else {
			errs = append(errs, el...)
		}
		if v.PersistentVolumeClaim != nil && createdPVCs[v.PersistentVolumeClaim.ClaimName] {
			errs = append(errs, field.Invalid(idxPath.Child("persistentVolumeClaim").Child("claimName"), v.PersistentVolumeClaim.ClaimName,
				"must not reference a PVC that gets created for an ephemeral volume"))
		}
	}
	return vols, errs
}

// volumeSource requires exactly one source. Sources are visited in
// Kubernetes' order so that the "more than 1" error lands on the same field.
func volumeSource(src *corev1.VolumeSource, fldPath *field.Path, volName string, podMeta *metav1.ObjectMeta, opts podOptions) field.ErrorList {
	sources := []struct {
		name     string // reported on "more than 1"
		set      bool
		validate func() field.ErrorList
	}{
		{"emptyDir", src.EmptyDir != nil, func() field.ErrorList {
			if src.EmptyDir.SizeLimit != nil && src.EmptyDir.SizeLimit.Cmp(resource.Quantity{}) < 0 {
				return field.ErrorList{field.Forbidden(fldPath.Child("emptyDir").Child("sizeLimit"), "SizeLimit field must be a valid resource quantity")}
			}
			return nil
		}},
		{"hostPath", src.HostPath != nil, func() field.ErrorList { return hostPathSource(src.HostPath, fldPath.Child("hostPath")) }},
		{"gitRepo", src.GitRepo != nil, func() field.ErrorList {
			p := fldPath.Child("gitRepo")
			errs := required(src.GitRepo.Repository, p.Child("repository"))
			return append(errs, localDescendingPath(src.GitRepo.Directory, p.Child("directory"))...)
		}},
		{"gcePersistentDisk", src.GCEPersistentDisk != nil, func() field.ErrorList {
			p := fldPath.Child("persistentDisk")
			return append(required(src.GCEPersistentDisk.PDName, p.Child("pdName")), partition(src.GCEPersistentDisk.Partition, p.Child("partition"))...)
		}},
		{"awsElasticBlockStore", src.AWSElasticBlockStore != nil, func() field.ErrorList {
			p := fldPath.Child("awsElasticBlockStore")
			return append(required(src.AWSElasticBlockStore.VolumeID, p.Child("volumeID")), partition(src.AWSElasticBlockStore.Partition, p.Child("partition"))...)
		}},
		{"secret", src.Secret != nil, func() field.ErrorList { return secretSource(src.Secret, fldPath.Child("secret")) }},
		{"nfs", src.NFS != nil, func() field.ErrorList {
			p := fldPath.Child("nfs")
			errs := append(required(src.NFS.Server, p.Child("server")), required(src.NFS.Path, p.Child("path"))...)
			if !path.IsAbs(src.NFS.Path) {
				errs = append(errs, field.Invalid(p.Child("path"), src.NFS.Path, "must be an absolute path"))
			}
			return errs
		}},
		{"iscsi", src.ISCSI != nil, func() field.ErrorList { return iscsiSource(src.ISCSI, fldPath.Child("iscsi"), volName, fldPath) }},
		{"glusterfs", src.Glusterfs != nil, func() field.ErrorList {
			p := fldPath.Child("glusterfs")
			return append(required(src.Glusterfs.EndpointsName, p.Child("endpoints")), required(src.Glusterfs.Path, p.Child("path"))...)
		}},
		{"flocker", src.Flocker != nil, func() field.ErrorList { return flockerSource(src.Flocker, fldPath.Child("flocker")) }},
		{"persistentVolumeClaim", src.PersistentVolumeClaim != nil, func() field.ErrorList {
			return required(src.PersistentVolumeClaim.ClaimName, fldPath.Child("persistentVolumeClaim").Child("claimName"))
		}},
		{"rbd", src.RBD != nil, func() field.ErrorList {
			p := fldPath.Child("rbd")
			var errs field.ErrorList
			if len(src.RBD.CephMonitors) == 0 {
				errs = append(errs, field.Required(p.Child("monitors"), ""))
			}
			return append(errs, required(src.RBD.RBDImage, p.Child("image"))...)
		}},
		{"cinder", src.Cinder != nil, func() field.ErrorList {
			p := fldPath.Child("cinder")
			errs := required(src.Cinder.VolumeID, p.Child("volumeID"))
			if src.Cinder.SecretRef != nil {
				errs = append(errs, required(src.Cinder.SecretRef.Name, p.Child("secretRef", "name"))...)
			}
			return errs
		}},
		{"cephFS", src.CephFS != nil, func() field.ErrorList {
			if len(src.CephFS.Monitors) == 0 {
				return field.ErrorList{field.Required(fldPath.Child("cephfs").Child("monitors"), "")}
			}
			return nil
		}},
		{"quobyte", src.Quobyte != nil, func() field.ErrorList { return quobyteSource(src.Quobyte, fldPath.Child("quobyte")) }},
		// "downwarAPI" is Kubernetes' spelling in this one message.
		{"downwarAPI", src.DownwardAPI != nil, func() field.ErrorList { return downwardAPISource(src.DownwardAPI, fldPath.Child("downwardAPI")) }},
		{"fc", src.FC != nil, func() field.ErrorList { return fcSource(src.FC, fldPath.Child("fc")) }},
		{"flexVolume", src.FlexVolume != nil, func() field.ErrorList { return flexSource(src.FlexVolume, fldPath.Child("flexVolume")) }},
		{"configMap", src.ConfigMap != nil, func() field.ErrorList { return configMapSource(src.ConfigMap, fldPath.Child("configMap")) }},
		{"azureFile", src.AzureFile != nil, func() field.ErrorList {
			p := fldPath.Child("azureFile")
			return append(required(src.AzureFile.SecretName, p.Child("secretName")), required(src.AzureFile.ShareName, p.Child("shareName"))...)
		}},
		{"vsphereVolume", src.VsphereVolume != nil, func() field.ErrorList {
			return required(src.VsphereVolume.VolumePath, fldPath.Child("vsphereVolume").Child("volumePath"))
		}},
		{"photonPersistentDisk", src.PhotonPersistentDisk != nil, func() field.ErrorList {
			return required(src.PhotonPersistentDisk.PdID, fldPath.Child("photonPersistentDisk").Child("pdID"))
		}},
		{"portworxVolume", src.PortworxVolume != nil, func() field.ErrorList {
			return required(src.PortworxVolume.VolumeID, fldPath.Child("portworxVolume").Child("volumeID"))
		}},
		{"azureDisk", src.AzureDisk != nil, func() field.ErrorList { return azureDiskSource(src.AzureDisk, fldPath.Child("azureDisk")) }},
		{"storageos", src.StorageOS != nil, func() field.ErrorList { return storageOSSource(src.StorageOS, fldPath.Child("storageos")) }},
		{"projected", src.Projected != nil, func() field.ErrorList { return projectedSource(src.Projected, fldPath.Child("projected")) }},
		{"scaleIO", src.ScaleIO != nil, func() field.ErrorList {
			p := fldPath.Child("scaleIO")
			errs := append(required(src.ScaleIO.Gateway, p.Child("gateway")), required(src.ScaleIO.System, p.Child("system"))...)
			return append(errs, required(src.ScaleIO.VolumeName, p.Child("volumeName"))...)
		}},
		{"csi", src.CSI != nil, func() field.ErrorList { return csiSource(src.CSI, fldPath.Child("csi")) }},
		{"ephemeral", src.Ephemeral != nil, func() field.ErrorList {
			errs := ephemeralSource(src.Ephemeral, fldPath.Child("ephemeral"))
			if podMeta != nil && podMeta.Name != "" && volName != "" {
				pvcName := podMeta.Name + "-" + volName
				for _, msg := range dnsSubdomainName(pvcName, false) {
					errs = append(errs, field.Invalid(fldPath.Child("name"), volName, fmt.Sprintf("PVC name %q: %v", pvcName, msg)))
				}
			}
			return errs
		}},
		{"image", src.Image != nil, func() field.ErrorList {
			p := fldPath.Child("image")
			var errs field.ErrorList
			if opts.resourceIsPod && src.Image.Reference == "" {
				errs = append(errs, field.Required(p.Child("reference"), ""))
			}
			return append(errs, pullPolicy(src.Image.PullPolicy, p.Child("pullPolicy"))...)
		}},
	}

	var errs field.ErrorList
	n := 0
	for _, s := range sources {
		if !s.set {
			continue
		}
		if n > 0 {
			errs = append(errs, field.Forbidden(fldPath.Child(s.name), "may not specify more than 1 volume type"))
			continue
		}
		n++
		errs = append(errs, s.validate()...)
	}
	if n == 0 {
		errs = append(errs, field.Required(fldPath, "must specify a volume type"))
	}
	return errs
}

func required(value string, p *field.Path) field.ErrorList {
	if value == "" {
		return field.ErrorList{field.Required(p, "")}
	}
	return nil
}

func partition(value int32, p *field.Path) field.ErrorList {
	if value < 0 || value > 255 {
		return field.ErrorList{field.Invalid(p, value, validation.InclusiveRangeError(1, 255))}
	}
	return nil
}

func hostPathSource(hp *corev1.HostPathVolumeSource, p *field.Path) field.ErrorList {
	if hp.Path == "" {
		return field.ErrorList{field.Required(p.Child("path"), "")}
	}
	errs := pathNoBacksteps(hp.Path, p.Child("path"))
	if hp.Type != nil {
		switch *hp.Type {
		case corev1.HostPathUnset, corev1.HostPathDirectoryOrCreate, corev1.HostPathDirectory, corev1.HostPathFileOrCreate,
			corev1.HostPathFile, corev1.HostPathSocket, corev1.HostPathCharDev, corev1.HostPathBlockDev:
		default:
			errs = append(errs, field.NotSupported(p.Child("type"), hp.Type, []string{"", "BlockDevice", "CharDevice", "Directory", "DirectoryOrCreate", "File", "FileOrCreate", "Socket"}))
		}
	}
	return errs
}

func iscsiSource(src *corev1.ISCSIVolumeSource, p *field.Path, volName string, volPath *field.Path) field.ErrorList {
	errs := required(src.TargetPortal, p.Child("targetPortal"))
	if src.IQN == "" {
		errs = append(errs, field.Required(p.Child("iqn"), ""))
	} else if !strings.HasPrefix(src.IQN, "iqn") && !strings.HasPrefix(src.IQN, "eui") && !strings.HasPrefix(src.IQN, "naa") {
		errs = append(errs, field.Invalid(p.Child("iqn"), src.IQN, "must be valid format starting with iqn, eui, or naa"))
	}
	if src.Lun < 0 || src.Lun > 255 {
		errs = append(errs, field.Invalid(p.Child("lun"), src.Lun, validation.InclusiveRangeError(0, 255)))
	}
	if (src.DiscoveryCHAPAuth || src.SessionCHAPAuth) && src.SecretRef == nil {
		errs = append(errs, field.Required(p.Child("secretRef"), ""))
	}
	// The initiator name is derived from these and iSCSI caps it at 64 bytes.
	if src.InitiatorName != nil && len(volName+":"+src.TargetPortal) > 64 {
		errs = append(errs, field.Invalid(volPath.Child("name"), volName, "Total length of <volume name>:<iscsi.targetPortal> must be under 64 characters if iscsi.initiatorName is specified."))
	}
	return errs
}

func flockerSource(src *corev1.FlockerVolumeSource, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if src.DatasetName == "" && src.DatasetUUID == "" {
		errs = append(errs, field.Required(p, "one of datasetName and datasetUUID is required"))
	}
	if src.DatasetName != "" && src.DatasetUUID != "" {
		errs = append(errs, field.Invalid(p, "resource", "datasetName and datasetUUID can not be specified simultaneously"))
	}
	if strings.Contains(src.DatasetName, "/") {
		errs = append(errs, field.Invalid(p.Child("datasetName"), src.DatasetName, "must not contain '/'"))
	}
	return errs
}

func quobyteSource(src *corev1.QuobyteVolumeSource, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if src.Registry == "" {
		errs = append(errs, field.Required(p.Child("registry"), "must be a host:port pair or multiple pairs separated by commas"))
	} else if len(src.Tenant) >= 65 {
		errs = append(errs, field.Required(p.Child("tenant"), "must be a UUID and may not exceed a length of 64 characters"))
	}
	return append(errs, required(src.Volume, p.Child("volume"))...)
}

func fcSource(src *corev1.FCVolumeSource, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if len(src.TargetWWNs) < 1 && len(src.WWIDs) < 1 {
		errs = append(errs, field.Required(p.Child("targetWWNs"), "must specify either targetWWNs or wwids, but not both"))
	}
	if len(src.TargetWWNs) != 0 && len(src.WWIDs) != 0 {
		errs = append(errs, field.Invalid(p.Child("targetWWNs"), src.TargetWWNs, "targetWWNs and wwids can not be specified simultaneously"))
	}
	if len(src.TargetWWNs) != 0 {
		if src.Lun == nil {
			errs = append(errs, field.Required(p.Child("lun"), "lun is required if targetWWNs is specified"))
		} else if *src.Lun < 0 || *src.Lun > 255 {
			errs = append(errs, field.Invalid(p.Child("lun"), src.Lun, validation.InclusiveRangeError(0, 255)))
		}
	}
	return errs
}

// flexSource keeps driver options out of the kubernetes.io and k8s.io
// namespaces, which Kubernetes reserves for options it injects itself.
func flexSource(src *corev1.FlexVolumeSource, p *field.Path) field.ErrorList {
	errs := required(src.Driver, p.Child("driver"))
	for _, k := range sortedKeys(src.Options) {
		ns := k
		if parts := strings.SplitN(k, "/", 2); len(parts) == 2 {
			ns = parts[0]
		}
		normalized := "." + strings.ToLower(ns)
		if strings.HasSuffix(normalized, ".kubernetes.io") || strings.HasSuffix(normalized, ".k8s.io") {
			errs = append(errs, field.Invalid(p.Child("options").Key(k), k, "kubernetes.io and k8s.io namespaces are reserved"))
		}
	}
	return errs
}

func azureDiskSource(src *corev1.AzureDiskVolumeSource, p *field.Path) field.ErrorList {
	errs := append(required(src.DiskName, p.Child("diskName")), required(src.DataDiskURI, p.Child("diskURI"))...)
	if src.CachingMode != nil {
		switch *src.CachingMode {
		case corev1.AzureDataDiskCachingNone, corev1.AzureDataDiskCachingReadOnly, corev1.AzureDataDiskCachingReadWrite:
		default:
			errs = append(errs, field.NotSupported(p.Child("cachingMode"), *src.CachingMode, []corev1.AzureDataDiskCachingMode{"None", "ReadOnly", "ReadWrite"}))
		}
	}
	if src.Kind != nil {
		switch *src.Kind {
		case corev1.AzureSharedBlobDisk, corev1.AzureDedicatedBlobDisk, corev1.AzureManagedDisk:
		default:
			errs = append(errs, field.NotSupported(p.Child("kind"), *src.Kind, []corev1.AzureDataDiskKind{"Dedicated", "Managed", "Shared"}))
		}
	}
	return errs
}

func storageOSSource(src *corev1.StorageOSVolumeSource, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if src.VolumeName == "" {
		errs = append(errs, field.Required(p.Child("volumeName"), ""))
	} else {
		errs = append(errs, dns1123Label(src.VolumeName, p.Child("volumeName"))...)
	}
	if src.VolumeNamespace != "" {
		errs = append(errs, dns1123Label(src.VolumeNamespace, p.Child("volumeNamespace"))...)
	}
	if src.SecretRef != nil {
		errs = append(errs, required(src.SecretRef.Name, p.Child("secretRef", "name"))...)
	}
	return errs
}

func csiSource(src *corev1.CSIVolumeSource, p *field.Path) field.ErrorList {
	errs := csiDriverName(src.Driver, p.Child("driver"))
	if src.NodePublishSecretRef != nil {
		if src.NodePublishSecretRef.Name == "" {
			errs = append(errs, field.Required(p.Child("nodePublishSecretRef", "name"), ""))
		} else {
			errs = append(errs, nameErrors(dnsSubdomainName, src.NodePublishSecretRef.Name, p.Child("name"))...)
		}
	}
	return errs
}

func csiDriverName(name string, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if name == "" {
		errs = append(errs, field.Required(p, ""))
	}
	if len(name) > 63 {
		errs = append(errs, field.TooLong(p, "", 63))
	}
	for _, msg := range validation.IsDNS1123Subdomain(strings.ToLower(name)) {
		errs = append(errs, field.Invalid(p, name, msg))
	}
	return errs
}

// ephemeralSource checks the claim template lightly: only labels and
// annotations of its metadata are used, and the claim needs access modes and
// a storage request to be provisionable.
func ephemeralSource(src *corev1.EphemeralVolumeSource, p *field.Path) field.ErrorList {
	tp := p.Child("volumeClaimTemplate")
	if src.VolumeClaimTemplate == nil {
		return field.ErrorList{field.Required(tp, "")}
	}
	tmpl := src.VolumeClaimTemplate
	mp := tp.Child("metadata")
	errs := apimachineryvalidation.ValidateAnnotations(tmpl.Annotations, mp.Child("annotations"))
	errs = append(errs, metavalidation.ValidateLabels(tmpl.Labels, mp.Child("labels"))...)
	for _, f := range []struct {
		name string
		set  bool
	}{
		{"name", tmpl.Name != ""}, {"generateName", tmpl.GenerateName != ""}, {"namespace", tmpl.Namespace != ""},
		{"uid", tmpl.UID != ""}, {"resourceVersion", tmpl.ResourceVersion != ""}, {"generation", tmpl.Generation != 0},
		{"ownerReferences", len(tmpl.OwnerReferences) > 0}, {"finalizers", len(tmpl.Finalizers) > 0},
	} {
		if f.set {
			errs = append(errs, field.Forbidden(mp.Child(f.name), "cannot be set"))
		}
	}
	sp := tp.Child("spec")
	if len(tmpl.Spec.AccessModes) == 0 {
		errs = append(errs, field.Required(sp.Child("accessModes"), "at least 1 access mode is required"))
	}
	for _, mode := range tmpl.Spec.AccessModes {
		switch mode {
		case corev1.ReadWriteOnce, corev1.ReadOnlyMany, corev1.ReadWriteMany, corev1.ReadWriteOncePod:
		default:
			errs = append(errs, field.NotSupported(sp.Child("accessModes"), mode, []corev1.PersistentVolumeAccessMode{"ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod"}))
		}
	}
	storagePath := sp.Child("resources").Key(string(corev1.ResourceStorage))
	if q, ok := tmpl.Spec.Resources.Requests[corev1.ResourceStorage]; !ok {
		errs = append(errs, field.Required(storagePath, ""))
	} else if q.Cmp(resource.Quantity{}) <= 0 {
		errs = append(errs, field.Invalid(storagePath, q.String(), "must be greater than zero"))
	}
	return errs
}

func secretSource(src *corev1.SecretVolumeSource, p *field.Path) field.ErrorList {
	errs := required(src.SecretName, p.Child("secretName"))
	errs = append(errs, fileMode(src.DefaultMode, p.Child("defaultMode"))...)
	for i := range src.Items {
		errs = append(errs, keyToPath(&src.Items[i], p.Child("items").Index(i))...)
	}
	return errs
}

func configMapSource(src *corev1.ConfigMapVolumeSource, p *field.Path) field.ErrorList {
	errs := required(src.Name, p.Child("name"))
	errs = append(errs, fileMode(src.DefaultMode, p.Child("defaultMode"))...)
	for i := range src.Items {
		errs = append(errs, keyToPath(&src.Items[i], p.Child("items").Index(i))...)
	}
	return errs
}

func fileMode(mode *int32, p *field.Path) field.ErrorList {
	if mode != nil && (*mode > 0777 || *mode < 0) {
		return field.ErrorList{field.Invalid(p, *mode, fileModeErrorMsg)}
	}
	return nil
}

func keyToPath(kp *corev1.KeyToPath, p *field.Path) field.ErrorList {
	errs := required(kp.Key, p.Child("key"))
	errs = append(errs, required(kp.Path, p.Child("path"))...)
	errs = append(errs, localNonReservedPath(kp.Path, p.Child("path"))...)
	return append(errs, fileMode(kp.Mode, p.Child("mode"))...)
}

func downwardAPISource(src *corev1.DownwardAPIVolumeSource, p *field.Path) field.ErrorList {
	errs := fileMode(src.DefaultMode, p.Child("defaultMode"))
	for i := range src.Items {
		errs = append(errs, downwardAPIFile(&src.Items[i], p)...)
	}
	return errs
}

// downwardAPIFile reports at the source path, not the item index, as Kubernetes does.
func downwardAPIFile(file *corev1.DownwardAPIVolumeFile, p *field.Path) field.ErrorList {
	errs := required(file.Path, p.Child("path"))
	errs = append(errs, localNonReservedPath(file.Path, p.Child("path"))...)
	if file.FieldRef != nil {
		errs = append(errs, objectFieldSelector(file.FieldRef, volumeFieldPaths(), p.Child("fieldRef"))...)
		if file.ResourceFieldRef != nil {
			errs = append(errs, field.Invalid(p, "resource", "fieldRef and resourceFieldRef can not be specified simultaneously"))
		}
	} else if file.ResourceFieldRef != nil {
		errs = append(errs, resourceFieldSelector(file.ResourceFieldRef, p.Child("resourceFieldRef"), true)...)
	} else {
		errs = append(errs, field.Required(p, "one of fieldRef and resourceFieldRef is required"))
	}
	return append(errs, fileMode(file.Mode, p.Child("mode"))...)
}

func projectedSource(src *corev1.ProjectedVolumeSource, p *field.Path) field.ErrorList {
	errs := fileMode(src.DefaultMode, p.Child("defaultMode"))
	paths := map[string]bool{}
	// Two sources writing the same file would silently shadow each other.
	claimPath := func(file string, bad interface{}) {
		if file == "" {
			return
		}
		if paths[file] {
			errs = append(errs, field.Invalid(p, bad, "conflicting duplicate paths"))
		}
		paths[file] = true
	}
	for i := range src.Sources {
		s := &src.Sources[i]
		sp := p.Child("sources").Index(i)
		n := 0
		if s.Secret != nil {
			n++
			pp := sp.Child("secret")
			errs = append(errs, required(s.Secret.Name, pp.Child("name"))...)
			for j := range s.Secret.Items {
				errs = append(errs, keyToPath(&s.Secret.Items[j], pp.Child("items").Index(j))...)
				claimPath(s.Secret.Items[j].Path, s.Secret.Name)
			}
		}
		if s.ConfigMap != nil {
			n++
			pp := sp.Child("configMap")
			errs = append(errs, required(s.ConfigMap.Name, pp.Child("name"))...)
			for j := range s.ConfigMap.Items {
				errs = append(errs, keyToPath(&s.ConfigMap.Items[j], pp.Child("items").Index(j))...)
				claimPath(s.ConfigMap.Items[j].Path, s.ConfigMap.Name)
			}
		}
		if s.DownwardAPI != nil {
			n++
			for j := range s.DownwardAPI.Items {
				errs = append(errs, downwardAPIFile(&s.DownwardAPI.Items[j], sp.Child("downwardAPI"))...)
				claimPath(s.DownwardAPI.Items[j].Path, s.DownwardAPI.Items[j].Path)
			}
		}
		if s.ServiceAccountToken != nil {
			n++
			pp := sp.Child("serviceAccountToken")
			exp := int64(0)
			if s.ServiceAccountToken.ExpirationSeconds != nil {
				exp = *s.ServiceAccountToken.ExpirationSeconds
			}
			if exp < 10*60 {
				errs = append(errs, field.Invalid(pp.Child("expirationSeconds"), exp, "may not specify a duration less than 10 minutes"))
			}
			if exp > 1<<32 {
				errs = append(errs, field.Invalid(pp.Child("expirationSeconds"), exp, "may not specify a duration larger than 2^32 seconds"))
			}
			if s.ServiceAccountToken.Path == "" {
				errs = append(errs, field.Required(p.Child("path"), ""))
			} else {
				errs = append(errs, localNonReservedPath(s.ServiceAccountToken.Path, p.Child("path"))...)
			}
		}
		if s.ClusterTrustBundle != nil {
			n++
			pp := sp.Child("clusterTrustBundle")
			ctb := s.ClusterTrustBundle
			switch {
			case ctb.Name != nil && ctb.SignerName != nil:
				errs = append(errs, field.Invalid(pp, ctb, "only one of name and signerName may be used"))
			case ctb.Name != nil:
				if *ctb.Name == "" {
					errs = append(errs, field.Required(pp.Child("name"), "must be a valid object name"))
				}
				if ctb.LabelSelector != nil {
					errs = append(errs, field.Invalid(pp.Child("labelSelector"), ctb.LabelSelector, "labelSelector must be unset if name is specified"))
				}
			case ctb.SignerName != nil:
				if *ctb.SignerName == "" {
					errs = append(errs, field.Required(pp.Child("signerName"), "must be a valid signer name"))
				}
				errs = append(errs, metavalidation.ValidateLabelSelector(ctb.LabelSelector, metavalidation.LabelSelectorValidationOptions{}, pp.Child("labelSelector"))...)
			default:
				errs = append(errs, field.Required(pp, "either name or signerName must be specified"))
			}
			errs = append(errs, required(ctb.Path, pp.Child("path"))...)
			errs = append(errs, localNonReservedPath(ctb.Path, pp.Child("path"))...)
			claimPath(ctb.Path, ctb.Path)
		}
		if n > 1 {
			errs = append(errs, field.Forbidden(sp, "may not specify more than 1 volume type per source"))
		}
	}
	return errs
}

// localDescendingPath keeps a path inside the volume: relative and without "..".
func localDescendingPath(target string, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if path.IsAbs(target) {
		errs = append(errs, field.Invalid(p, target, "must be a relative path"))
	}
	return append(errs, pathNoBacksteps(target, p)...)
}

func pathNoBacksteps(target string, p *field.Path) field.ErrorList {
	for _, item := range strings.Split(filepath.ToSlash(target), "/") {
		if item == ".." {
			return field.ErrorList{field.Invalid(p, target, "must not contain '..'")}
		}
	}
	return nil
}

// localNonReservedPath also refuses a leading "..", which the kubelet uses for
// its own atomic-writer bookkeeping inside the volume.
func localNonReservedPath(target string, p *field.Path) field.ErrorList {
	errs := localDescendingPath(target, p)
	if strings.HasPrefix(target, "..") && !strings.HasPrefix(target, "../") {
		errs = append(errs, field.Invalid(p, target, "must not start with '..'"))
	}
	return errs
}
