package validation

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func TestPodCreate(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(*corev1.Pod)
		want   []string
	}{
		{name: "valid", mutate: func(*corev1.Pod) {}},
		{
			name:   "bad name",
			mutate: func(p *corev1.Pod) { p.Name = "Foo_bar" },
			want:   []string{`metadata.name: Invalid value: "Foo_bar": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')`},
		},
		{
			name:   "missing namespace and bad label",
			mutate: func(p *corev1.Pod) { p.Namespace = ""; p.Labels = map[string]string{"app": "a b"} },
			want: []string{
				`metadata.namespace: Required value`,
				`metadata.labels: Invalid value: "a b": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')`,
			},
		},
		{
			name:   "unqualified finalizer",
			mutate: func(p *corev1.Pod) { p.Finalizers = []string{"cleanup"} },
			want:   []string{`metadata.finalizers[0]: Invalid value: "cleanup": name is neither a standard finalizer name nor is it fully qualified`},
		},
		{
			name:   "image required",
			mutate: func(p *corev1.Pod) { p.Spec.Containers[0].Image = "" },
			want:   []string{`spec.containers[0].image: Required value`},
		},
		{
			name:   "image whitespace",
			mutate: func(p *corev1.Pod) { p.Spec.Containers[0].Image = " nginx" },
			want:   []string{`spec.containers[0].image: Invalid value: " nginx": must not have leading or trailing whitespace`},
		},
		{
			name:   "no containers",
			mutate: func(p *corev1.Pod) { p.Spec.Containers = nil },
			want:   []string{`spec.containers: Required value`},
		},
		{
			name: "duplicate container names and bad name",
			mutate: func(p *corev1.Pod) {
				p.Spec.Containers = append(p.Spec.Containers, validContainer("web"), validContainer("Web"))
				p.Spec.Containers[1].Ports = nil
				p.Spec.Containers[2].Ports = nil
			},
			want: []string{
				`spec.containers[1].name: Duplicate value: "web"`,
				`spec.containers[2].name: Invalid value: "Web": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')`,
			},
		},
		{
			name: "ports",
			mutate: func(p *corev1.Pod) {
				p.Spec.Containers[0].Ports = []corev1.ContainerPort{
					{Name: "http", ContainerPort: 80, Protocol: corev1.ProtocolTCP},
					{Name: "http", ContainerPort: 70000, Protocol: "HTTP"},
					{ContainerPort: 0, Protocol: corev1.ProtocolUDP, HostPort: 53},
					{ContainerPort: 54, Protocol: corev1.ProtocolUDP, HostPort: 53},
				}
			},
			want: []string{
				`spec.containers[0].ports[1].name: Duplicate value: "http"`,
				`spec.containers[0].ports[1].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive`,
				`spec.containers[0].ports[1].protocol: Unsupported value: "HTTP": supported values: "SCTP", "TCP", "UDP"`,
				`spec.containers[0].ports[2].containerPort: Required value`,
				`spec.containers[0].ports[3].hostPort: Duplicate value: "UDP//53"`,
			},
		},
		{
			name: "resources",
			mutate: func(p *corev1.Pod) {
				p.Spec.Containers[0].Resources = corev1.ResourceRequirements{
					Requests: corev1.ResourceList{
						corev1.ResourceCPU:    resource.MustParse("2"),
						corev1.ResourceMemory: resource.MustParse("-1"),
						"pods":                resource.MustParse("1"),
						"example.com/gpu":     resource.MustParse("1"),
					},
					Limits: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1")},
				}
			},
			want: []string{
				`spec.containers[0].resources.requests: Invalid value: "2": must be less than or equal to cpu limit of 1`,
				`spec.containers[0].resources.limits: Required value: Limit must be set for non overcommitable resources`,
				`spec.containers[0].resources.requests[memory]: Invalid value: "-1": must be greater than or equal to 0`,
				`spec.containers[0].resources.requests[pods]: Invalid value: "pods": must be a standard resource for containers`,
			},
		},
		{
			name: "env",
			mutate: func(p *corev1.Pod) {
				p.Spec.Containers[0].Env = []corev1.EnvVar{
					{Name: "OK_1", Value: "x"},
					{Name: "A=B"},
					{Name: ""},
					{Name: "POD", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "spec.restartPolicy"}}},
					{Name: "KEY", Value: "x", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "s"}, Key: "k"}}},
					{Name: "EMPTY", ValueFrom: &corev1.EnvVarSource{}},
				}
			},
			want: []string{
				`spec.containers[0].env[1].name: Invalid value: "A=B": a valid environment variable name must consist only of printable ASCII characters other than '='`,
				`spec.containers[0].env[2].name: Required value`,
				`spec.containers[0].env[3].valueFrom.fieldRef.fieldPath: Unsupported value: "spec.restartPolicy": supported values: "metadata.name", "metadata.namespace", "metadata.uid", "spec.nodeName", "spec.serviceAccountName", "status.hostIP", "status.hostIPs", "status.podIP", "status.podIPs"`,
				`spec.containers[0].env[4].valueFrom: Invalid value: "": may not be specified when ` + "`value`" + ` is not empty`,
				`spec.containers[0].env[5].valueFrom: Invalid value: "": must specify one of: ` + "`fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`",
			},
		},
		{
			name: "volume mount of unknown volume",
			mutate: func(p *corev1.Pod) {
				p.Spec.Containers[0].VolumeMounts = append(p.Spec.Containers[0].VolumeMounts, corev1.VolumeMount{Name: "cache", MountPath: "/data"})
			},
			want: []string{
				`spec.containers[0].volumeMounts[1].name: Not found: "cache"`,
				`spec.containers[0].volumeMounts[1].mountPath: Invalid value: "/data": must be unique`,
			},
		},
		{
			name: "volumes",
			mutate: func(p *corev1.Pod) {
				p.Spec.Volumes = append(p.Spec.Volumes,
					corev1.Volume{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
					corev1.Volume{Name: "none"},
					corev1.Volume{Name: "two", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}, ConfigMap: &corev1.ConfigMapVolumeSource{}}},
					corev1.Volume{Name: "cm", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{DefaultMode: ptr(int32(01000)), Items: []corev1.KeyToPath{{Key: "k", Path: "../x"}}}}},
				)
			},
			want: []string{
				`spec.volumes[1].name: Duplicate value: "data"`,
				`spec.volumes[2]: Required value: must specify a volume type`,
				`spec.volumes[3].configMap: Forbidden: may not specify more than 1 volume type`,
				`spec.volumes[4].configMap.name: Required value`,
				`spec.volumes[4].configMap.defaultMode: Invalid value: 512: must be a number between 0 and 0777 (octal), both inclusive`,
				`spec.volumes[4].configMap.items[0].path: Invalid value: "../x": must not contain '..'`,
			},
		},
		{
			name: "pod level enums",
			mutate: func(p *corev1.Pod) {
				p.Spec.RestartPolicy = "Sometimes"
				p.Spec.DNSPolicy = ""
				p.Spec.TerminationGracePeriodSeconds = nil
			},
			want: []string{
				`spec.terminationGracePeriodSeconds: Required value`,
				`spec.restartPolicy: Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never"`,
				`spec.dnsPolicy: Required value`,
			},
		},
		{
			name: "probes",
			mutate: func(p *corev1.Pod) {
				p.Spec.Containers[0].LivenessProbe = &corev1.Probe{
					ProbeHandler: corev1.ProbeHandler{
						TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromString("http")},
						Exec:      &corev1.ExecAction{},
					},
					SuccessThreshold: 2, PeriodSeconds: -1,
				}
				p.Spec.Containers[0].ReadinessProbe.HTTPGet.Scheme = "FTP"
			},
			want: []string{
				`spec.containers[0].livenessProbe.exec.command: Required value`,
				`spec.containers[0].livenessProbe.tcpSocket: Forbidden: may not specify more than 1 handler type`,
				`spec.containers[0].livenessProbe.periodSeconds: Invalid value: -1: must be greater than or equal to 0`,
				`spec.containers[0].livenessProbe.successThreshold: Invalid value: 2: must be 1`,
				`spec.containers[0].readinessProbe.httpGet.scheme: Unsupported value: "FTP": supported values: "HTTP", "HTTPS"`,
			},
		},
		{
			name: "init container without restartPolicy may not have probes",
			mutate: func(p *corev1.Pod) {
				ic := validContainer("init")
				ic.Ports = nil
				p.Spec.InitContainers = []corev1.Container{ic}
			},
			want: []string{`spec.initContainers[0].readinessProbe: Forbidden: may not be set for init containers without restartPolicy=Always`},
		},
		{
			name: "sidecar init container may have probes",
			mutate: func(p *corev1.Pod) {
				ic := validContainer("sidecar")
				ic.Ports = nil
				ic.RestartPolicy = ptr(corev1.ContainerRestartPolicyAlways)
				p.Spec.InitContainers = []corev1.Container{ic}
			},
		},
		{
			name: "ephemeral containers on create",
			mutate: func(p *corev1.Pod) {
				p.Spec.EphemeralContainers = []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "debug", Image: "busybox", ImagePullPolicy: corev1.PullIfNotPresent, TerminationMessagePolicy: corev1.TerminationMessageReadFile}}}
			},
			want: []string{`spec.ephemeralContainers: Forbidden: cannot be set on create`},
		},
		{
			name: "tolerations",
			mutate: func(p *corev1.Pod) {
				p.Spec.Tolerations = []corev1.Toleration{
					{Operator: corev1.TolerationOpExists},
					{Key: "k", Operator: corev1.TolerationOpExists, Value: "v"},
					{Key: "k", TolerationSeconds: ptr(int64(5)), Effect: corev1.TaintEffectNoSchedule},
				}
			},
			want: []string{
				`spec.tolerations[1].operator: Invalid value: "v": value must be empty when ` + "`operator`" + ` is 'Exists'`,
				`spec.tolerations[2].effect: Invalid value: "NoSchedule": effect must be 'NoExecute' when ` + "`tolerationSeconds`" + ` is set`,
			},
		},
		{
			name: "host network requires matching host port",
			mutate: func(p *corev1.Pod) {
				p.Spec.HostNetwork = true
			},
			want: []string{"spec.containers[0].ports[0].hostPort: Invalid value: 0: must match `containerPort` when `hostNetwork` is true"},
		},
		{
			name:   "mirror pod annotation needs nodeName",
			mutate: func(p *corev1.Pod) { p.Annotations = map[string]string{corev1.MirrorPodAnnotationKey: "x"} },
			want:   []string{`metadata.annotations[kubernetes.io/config.mirror]: Invalid value: "x": must set spec.nodeName if mirror pod annotation is set`},
		},
		{
			name: "projected token requires service account",
			mutate: func(p *corev1.Pod) {
				p.Spec.Volumes = append(p.Spec.Volumes, corev1.Volume{Name: "token", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
					Sources: []corev1.VolumeProjection{{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token", ExpirationSeconds: ptr(int64(3600))}}},
				}}})
			},
			want: []string{`spec.volumes[1].projected.sources[0].serviceAccountToken: Forbidden: must not be specified when serviceAccountName is not set`},
		},
		{
			name: "affinity and spread",
			mutate: func(p *corev1.Pod) {
				p.Spec.Affinity = &corev1.Affinity{
					NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{}},
					PodAntiAffinity: &corev1.PodAntiAffinity{PreferredDuringSchedulingIgnoredDuringExecution: []corev1.WeightedPodAffinityTerm{{
						Weight: 0, PodAffinityTerm: corev1.PodAffinityTerm{TopologyKey: ""},
					}}},
				}
				p.Spec.TopologySpreadConstraints = []corev1.TopologySpreadConstraint{{MaxSkew: 0, TopologyKey: "zone", WhenUnsatisfiable: corev1.DoNotSchedule}}
			},
			want: []string{
				`spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms: Required value: must have at least one node selector term`,
				`spec.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].weight: Invalid value: 0: must be in the range 1-100`,
				`spec.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].podAffinityTerm.topologyKey: Required value: can not be empty`,
				`spec.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].podAffinityTerm.topologyKey: Invalid value: "": name part must be non-empty`,
				`spec.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].podAffinityTerm.topologyKey: Invalid value: "": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')`,
				`spec.topologySpreadConstraints[0].maxSkew: Invalid value: 0: must be greater than zero`,
			},
		},
		{
			name: "security context",
			mutate: func(p *corev1.Pod) {
				p.Spec.SecurityContext.RunAsUser = ptr(int64(-1))
				p.Spec.SecurityContext.Sysctls = []corev1.Sysctl{{Name: "net.core.somaxconn", Value: "1"}}
				p.Spec.HostNetwork = true
				p.Spec.Containers[0].Ports = nil
				p.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{AllowPrivilegeEscalation: ptr(false), Privileged: ptr(true)}
			},
			want: []string{
				`spec.containers[0].securityContext: Invalid value: {"privileged":true,"allowPrivilegeEscalation":false}: cannot set ` + "`allowPrivilegeEscalation`" + ` to false and ` + "`privileged`" + ` to true`,
				`spec.securityContext.runAsUser: Invalid value: -1: must be between 0 and 2147483647, inclusive`,
				`spec.securityContext.sysctls[0].name: Invalid value: "net.core.somaxconn": may not be specified when 'hostNetwork' is true`,
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pod := validPod()
			tc.mutate(pod)
			expect(t, Create(pod), tc.want)
		})
	}
}

func TestPodUpdate(t *testing.T) {
	oldPod := validPod()
	oldPod.ObjectMeta = stored(oldPod.ObjectMeta)
	oldPod.Spec.ActiveDeadlineSeconds = ptr(int64(100))
	oldPod.Spec.Tolerations = []corev1.Toleration{{Key: "k", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: ptr(int64(10))}}
	cases := []struct {
		name   string
		mutate func(*corev1.Pod)
		want   []string
	}{
		{name: "unchanged", mutate: func(*corev1.Pod) {}},
		{
			name: "allowed changes",
			mutate: func(p *corev1.Pod) {
				p.Spec.Containers[0].Image = "nginx:1.28"
				p.Spec.ActiveDeadlineSeconds = ptr(int64(50))
				p.Spec.Tolerations[0].TolerationSeconds = ptr(int64(20))
				p.Spec.Tolerations = append(p.Spec.Tolerations, corev1.Toleration{Key: "new", Operator: corev1.TolerationOpExists})
				p.Labels = map[string]string{"x": "y"}
			},
		},
		{
			name:   "resource version required",
			mutate: func(p *corev1.Pod) { p.ResourceVersion = "" },
			want:   []string{`metadata.resourceVersion: Invalid value: "": must be specified for an update`},
		},
		{
			name:   "name immutable",
			mutate: func(p *corev1.Pod) { p.Name = "web-1" },
			want:   []string{`metadata.name: Invalid value: "web-1": field is immutable`},
		},
		{
			name:   "deadline raised",
			mutate: func(p *corev1.Pod) { p.Spec.ActiveDeadlineSeconds = ptr(int64(200)) },
			want:   []string{`spec.activeDeadlineSeconds: Invalid value: 200: must be less than or equal to previous value`},
		},
		{
			name:   "toleration removed",
			mutate: func(p *corev1.Pod) { p.Spec.Tolerations = nil },
			want:   []string{`spec.tolerations: Forbidden: existing toleration can not be modified except its tolerationSeconds`},
		},
		{
			name:   "container added",
			mutate: func(p *corev1.Pod) { p.Spec.Containers = append(p.Spec.Containers, validContainer("two")) },
			want:   []string{`spec.containers: Forbidden: pod updates may not add or remove containers`},
		},
		{
			name:   "other spec field",
			mutate: func(p *corev1.Pod) { p.Spec.RestartPolicy = corev1.RestartPolicyNever; p.Spec.SchedulerName = "other" },
			want: []string{"spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)\n" +
				"changed: spec.restartPolicy, spec.schedulerName"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pod := oldPod.DeepCopy()
			tc.mutate(pod)
			expect(t, Update(pod, oldPod), tc.want)
		})
	}
}

func TestPodStatus(t *testing.T) {
	oldPod := validPod()
	oldPod.ObjectMeta = stored(oldPod.ObjectMeta)
	oldPod.Spec.NodeName = "node-1"
	oldPod.Spec.RestartPolicy = corev1.RestartPolicyNever
	oldPod.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "web", State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 0}}}}
	cases := []struct {
		name   string
		mutate func(*corev1.Pod)
		want   []string
	}{
		{
			name: "kubelet report",
			mutate: func(p *corev1.Pod) {
				p.Status.Phase = corev1.PodSucceeded
				p.Status.PodIP = "10.0.0.5"
				p.Status.PodIPs = []corev1.PodIP{{IP: "10.0.0.5"}, {IP: "fd00::5"}}
				p.Status.HostIP = "192.168.1.10"
				p.Status.HostIPs = []corev1.HostIP{{IP: "192.168.1.10"}}
				p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionFalse}, {Type: "example.com/gate", Status: corev1.ConditionTrue}}
			},
		},
		{
			name: "bad report",
			mutate: func(p *corev1.Pod) {
				p.Spec.NodeName = "node-2"
				p.Status.PodIPs = []corev1.PodIP{{IP: "10.0.0.5"}, {IP: "10.0.0.6"}}
				p.Status.HostIPs = []corev1.HostIP{{IP: "192.168.1.10"}}
				p.Status.ContainerStatuses[0].State = corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}
				p.Status.Conditions = []corev1.PodCondition{{Type: "bad type!"}}
			},
			want: []string{
				`metadata.conditions[0].Type: Invalid value: "bad type!": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')`,
				`status.nodeName: Forbidden: may not be changed directly`,
				`status.containerStatuses[0].state: Forbidden: may not be transitioned to non-terminated state`,
				`status.podIPs: Invalid value: [{"ip":"10.0.0.5"},{"ip":"10.0.0.6"}]: may specify no more than one IP for each IP family`,
				"status.hostIPs[0].ip: Invalid value: \"192.168.1.10\": must be equal to `hostIP`",
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pod := oldPod.DeepCopy()
			tc.mutate(pod)
			expect(t, Status(pod, oldPod), tc.want)
		})
	}
}

func TestBinding(t *testing.T) {
	expect(t, Create(&corev1.Binding{ObjectMeta: meta("web-0"), Target: corev1.ObjectReference{Kind: "Node", Name: "n1"}}), nil)
	expect(t, Create(&corev1.Binding{ObjectMeta: meta("web-0"), Target: corev1.ObjectReference{Kind: "Pod"}}), []string{
		`target.kind: Unsupported value: "Pod": supported values: "Node", "<empty>"`,
		`target.name: Required value`,
	})
}

func TestPodErrorsAggregate(t *testing.T) {
	pod := validPod()
	pod.Spec.Containers[0].Image = ""
	pod.Name = ""
	got := Create(pod).ToAggregate().Error()
	if !strings.Contains(got, "metadata.name: Required value: name or generateName is required") || !strings.Contains(got, "spec.containers[0].image: Required value") {
		t.Errorf("aggregate = %s", got)
	}
}
