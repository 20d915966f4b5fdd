package defaults

import (
	corev1 "k8s.io/api/core/v1"
)

// setPod applies the defaults only a real Pod gets. Kubernetes keeps requests-
// from-limits, enableServiceLinks and host-network ports out of the shared
// PodSpec defaulting so that adding them never changed the stored templates of
// existing Deployments (kubernetes/kubernetes#69445); we keep that split.
func setPod(pod *corev1.Pod) {
	for i := range pod.Spec.Containers {
		requestsFromLimits(&pod.Spec.Containers[i].Resources)
	}
	for i := range pod.Spec.InitContainers {
		requestsFromLimits(&pod.Spec.InitContainers[i].Resources)
	}
	if pod.Spec.EnableServiceLinks == nil {
		pod.Spec.EnableServiceLinks = ptr(corev1.DefaultEnableServiceLinks)
	}
	if pod.Spec.HostNetwork {
		hostNetworkPorts(pod.Spec.Containers)
		hostNetworkPorts(pod.Spec.InitContainers)
	}
	setPodSpec(&pod.Spec)
	normalizePodStatusIPs(&pod.Status)
	for i := range pod.Status.InitContainerStatuses {
		setContainerStatus(&pod.Status.InitContainerStatuses[i])
	}
	for i := range pod.Status.ContainerStatuses {
		setContainerStatus(&pod.Status.ContainerStatuses[i])
	}
	for i := range pod.Status.EphemeralContainerStatuses {
		setContainerStatus(&pod.Status.EphemeralContainerStatuses[i])
	}
}

// setPodTemplateSpec is what Deployments and ReplicaSets get for their
// template: the shared PodSpec defaults and nothing Pod-only.
func setPodTemplateSpec(template *corev1.PodTemplateSpec) {
	setPodSpec(&template.Spec)
}

// setPodSpec is SetDefaults_PodSpec plus the nested walk the generated
// defaulter does into volumes and every kind of container.
func setPodSpec(spec *corev1.PodSpec) {
	if spec.DNSPolicy == "" {
		spec.DNSPolicy = corev1.DNSClusterFirst
	}
	if spec.RestartPolicy == "" {
		spec.RestartPolicy = corev1.RestartPolicyAlways
	}
	if spec.SecurityContext == nil {
		spec.SecurityContext = &corev1.PodSecurityContext{}
	}
	if spec.TerminationGracePeriodSeconds == nil {
		spec.TerminationGracePeriodSeconds = ptr(int64(corev1.DefaultTerminationGracePeriodSeconds))
	}
	if spec.SchedulerName == "" {
		spec.SchedulerName = corev1.DefaultSchedulerName
	}
	normalizeServiceAccountAlias(spec)

	for i := range spec.Volumes {
		setVolume(&spec.Volumes[i])
	}
	for i := range spec.InitContainers {
		setContainer(&spec.InitContainers[i])
	}
	for i := range spec.Containers {
		setContainer(&spec.Containers[i])
	}
	for i := range spec.EphemeralContainers {
		setContainer((*corev1.Container)(&spec.EphemeralContainers[i].EphemeralContainerCommon))
	}
	roundResourceList(spec.Overhead)
	if spec.Resources != nil {
		roundResourceList(spec.Resources.Limits)
		roundResourceList(spec.Resources.Requests)
	}
}

// requestsFromLimits copies a limit into the missing request of the same
// resource, so a container that only states limits is Guaranteed, not BestEffort.
func requestsFromLimits(res *corev1.ResourceRequirements) {
	if res.Limits == nil {
		return
	}
	if res.Requests == nil {
		res.Requests = make(corev1.ResourceList, len(res.Limits))
	}
	for name, limit := range res.Limits {
		if _, ok := res.Requests[name]; !ok {
			res.Requests[name] = limit.DeepCopy()
		}
	}
}

// hostNetworkPorts makes hostPort explicit: with host networking the container
// port is the host port whether or not the user said so, and the scheduler's
// port-conflict check only looks at hostPort.
func hostNetworkPorts(containers []corev1.Container) {
	for i := range containers {
		for j := range containers[i].Ports {
			if containers[i].Ports[j].HostPort == 0 {
				containers[i].Ports[j].HostPort = containers[i].Ports[j].ContainerPort
			}
		}
	}
}

func setContainer(c *corev1.Container) {
	if c.ImagePullPolicy == "" {
		if imageTag(c.Image) == "latest" {
			c.ImagePullPolicy = corev1.PullAlways
		} else {
			c.ImagePullPolicy = corev1.PullIfNotPresent
		}
	}
	if c.TerminationMessagePath == "" {
		c.TerminationMessagePath = corev1.TerminationMessagePathDefault
	}
	if c.TerminationMessagePolicy == "" {
		c.TerminationMessagePolicy = corev1.TerminationMessageReadFile
	}
	for i := range c.Ports {
		if c.Ports[i].Protocol == "" {
			c.Ports[i].Protocol = corev1.ProtocolTCP
		}
	}
	for i := range c.Env {
		if c.Env[i].ValueFrom != nil {
			setFieldRef(c.Env[i].ValueFrom.FieldRef)
		}
	}
	roundResourceList(c.Resources.Limits)
	roundResourceList(c.Resources.Requests)
	setProbe(c.LivenessProbe)
	setProbe(c.ReadinessProbe)
	setProbe(c.StartupProbe)
	if c.Lifecycle != nil {
		setLifecycleHandler(c.Lifecycle.PostStart)
		setLifecycleHandler(c.Lifecycle.PreStop)
	}
}

func setContainerStatus(s *corev1.ContainerStatus) {
	roundResourceList(s.AllocatedResources)
	if s.Resources != nil {
		roundResourceList(s.Resources.Limits)
		roundResourceList(s.Resources.Requests)
	}
}

func setProbe(p *corev1.Probe) {
	if p == nil {
		return
	}
	if p.TimeoutSeconds == 0 {
		p.TimeoutSeconds = 1
	}
	if p.PeriodSeconds == 0 {
		p.PeriodSeconds = 10
	}
	if p.SuccessThreshold == 0 {
		p.SuccessThreshold = 1
	}
	if p.FailureThreshold == 0 {
		p.FailureThreshold = 3
	}
	setHTTPGet(p.HTTPGet)
	if p.GRPC != nil && p.GRPC.Service == nil {
		p.GRPC.Service = ptr("")
	}
}

func setLifecycleHandler(h *corev1.LifecycleHandler) {
	if h != nil {
		setHTTPGet(h.HTTPGet)
	}
}

func setHTTPGet(h *corev1.HTTPGetAction) {
	if h == nil {
		return
	}
	if h.Path == "" {
		h.Path = "/"
	}
	if h.Scheme == "" {
		h.Scheme = corev1.URISchemeHTTP
	}
}

func setFieldRef(f *corev1.ObjectFieldSelector) {
	if f != nil && f.APIVersion == "" {
		f.APIVersion = "v1"
	}
}

// roundResourceList rounds every quantity up to milli precision. Kubernetes
// does this (#18538) so that values finer than the API can represent are not
// silently truncated differently by each consumer.
func roundResourceList(list corev1.ResourceList) {
	for name, q := range list {
		q.RoundUp(-3)
		list[name] = q
	}
}

func ptr[T any](v T) *T { return &v }
