package agent_test

import (
	"context"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

// TestAgent runs every agent test against one shared harness (a control
// plane, a containerd, a registry, node agents); subtests run in
// parallel, each in its own namespace.
func TestAgent(t *testing.T) {
	h := newHarness(t)
	n1 := h.startNode(t, "n1")
	h.eventually(t, "node n1 registered with its pod CIDR and lease", func() (bool, string) {
		n, err := h.admin.CoreV1().Nodes().Get(context.Background(), "n1", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		_, err = h.admin.CoordinationV1().Leases(corev1.NamespaceNodeLease).Get(context.Background(), "n1", metav1.GetOptions{})
		return n.Spec.PodCIDR != "" && err == nil, n.Spec.PodCIDR
	})

	t.Run("NodeStatus", func(t *testing.T) { t.Parallel(); testNodeStatus(t, h, n1) })
	t.Run("Deployment", func(t *testing.T) { t.Parallel(); testDeployment(t, h, n1) })
	t.Run("InitContainersAndVolumes", func(t *testing.T) { t.Parallel(); testInitAndVolumes(t, h, n1) })
	t.Run("CrashLoop", func(t *testing.T) { t.Parallel(); testCrashLoop(t, h) })
	t.Run("MissingImage", func(t *testing.T) { t.Parallel(); testMissingImage(t, h) })
	t.Run("MissingCommand", func(t *testing.T) { t.Parallel(); testMissingCommand(t, h) })
	t.Run("Liveness", func(t *testing.T) { t.Parallel(); testLiveness(t, h) })
	t.Run("Readiness", func(t *testing.T) { t.Parallel(); testReadiness(t, h, n1) })
	t.Run("OOMKilled", func(t *testing.T) { t.Parallel(); testOOM(t, h) })
	t.Run("PreStopBeforeSIGTERM", func(t *testing.T) { t.Parallel(); testPreStop(t, h) })
	t.Run("AgentRestart", func(t *testing.T) { t.Parallel(); testAgentRestart(t, h) })
	t.Run("NodeRestriction", func(t *testing.T) { t.Parallel(); testNodeRestriction(t, h) })
	t.Run("Attach", func(t *testing.T) { t.Parallel(); testAttach(t, h, n1) })
	t.Run("KubeletAPI", func(t *testing.T) { t.Parallel(); testKubeletAPI(t, h) })
	t.Run("ContainerdRestart", func(t *testing.T) { t.Parallel(); testContainerdRestart(t, h) })
	t.Run("ImagePullSecrets", func(t *testing.T) { t.Parallel(); testImagePullSecrets(t, h) })
	t.Run("InCluster", func(t *testing.T) { t.Parallel(); testInCluster(t, h) })
	t.Run("Kubectl", func(t *testing.T) { t.Parallel(); testKubectl(t, h) })
	t.Run("HostNetworkAndHostPort", func(t *testing.T) { t.Parallel(); testHostNetwork(t, h, n1) })
	t.Run("Sidecar", func(t *testing.T) { t.Parallel(); testSidecar(t, h) })
	t.Run("ActiveDeadline", func(t *testing.T) { t.Parallel(); testActiveDeadline(t, h) })
	t.Run("TerminationMessageFromLog", func(t *testing.T) { t.Parallel(); testTerminationMessageFromLog(t, h) })
}

func testNodeStatus(t *testing.T, h *harness, n1 *node) {
	ctx := context.Background()
	n, err := h.admin.CoreV1().Nodes().Get(ctx, "n1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := n.Status.NodeInfo.ContainerRuntimeVersion; !strings.HasPrefix(got, "containerd://1.") {
		t.Errorf("containerRuntimeVersion %q, want containerd://1.x", got)
	}
	if got, want := n.Status.DaemonEndpoints.KubeletEndpoint.Port, n1.cfg.KubeletPort; got != want {
		t.Errorf("kubelet port %d, want %d", got, want)
	}
	ready := false
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
			ready = true
		}
	}
	if !ready {
		t.Errorf("node not Ready: %+v", n.Status.Conditions)
	}
	if n.Status.Capacity.Pods().Value() != 110 || n.Status.Allocatable.Cpu().IsZero() {
		t.Errorf("capacity %v allocatable %v", n.Status.Capacity, n.Status.Allocatable)
	}
	if len(n.Status.Addresses) == 0 || n.Status.Addresses[0].Address != "127.0.0.1" {
		t.Errorf("addresses %v", n.Status.Addresses)
	}
	// The lease is renewed: its renew time moves.
	l0, err := h.admin.CoordinationV1().Leases(corev1.NamespaceNodeLease).Get(ctx, "n1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	h.eventually(t, "lease renewed", func() (bool, string) {
		l, err := h.admin.CoordinationV1().Leases(corev1.NamespaceNodeLease).Get(ctx, "n1", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		return l.Spec.RenewTime.After(l0.Spec.RenewTime.Time), l.Spec.RenewTime.String()
	})
}

func testDeployment(t *testing.T, h *harness, n1 *node) {
	ns := h.namespace(t)
	ctx := context.Background()
	labels := map[string]string{"app": "web"}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](2),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					NodeSelector:                  map[string]string{corev1.LabelHostname: "n1"},
					TerminationGracePeriodSeconds: ptr.To[int64](2),
					Containers: []corev1.Container{{
						Name: "web", Image: h.busybox,
						Command: []string{"sh", "-c", "echo started $(hostname); exec httpd -f -p 8080 -h /"},
						Ports:   []corev1.ContainerPort{{ContainerPort: 8080}},
						ReadinessProbe: &corev1.Probe{
							ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/etc/hostname", Port: intstr.FromInt32(8080)}},
							PeriodSeconds: 1,
						},
					}},
				},
			},
		},
	}
	if _, err := h.admin.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var pods []corev1.Pod
	h.eventually(t, "two pods Running and Ready with IPs", func() (bool, string) {
		l, err := h.admin.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err.Error()
		}
		ok := len(l.Items) == 2
		var why []string
		for i := range l.Items {
			p := &l.Items[i]
			why = append(why, describe(p))
			ok = ok && running(p) && p.Status.PodIP != "" && isReady(p)
		}
		pods = l.Items
		return ok, strings.Join(why, "; ")
	})
	n, err := h.admin.CoreV1().Nodes().Get(ctx, "n1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cidr := netip.MustParsePrefix(n.Spec.PodCIDR)
	for _, p := range pods {
		ip, err := netip.ParseAddr(p.Status.PodIP)
		if err != nil || !cidr.Contains(ip) {
			t.Errorf("pod %s IP %q not in the node's pod CIDR %s", p.Name, p.Status.PodIP, cidr)
		}
		if p.Status.HostIP != "127.0.0.1" || p.Status.StartTime == nil {
			t.Errorf("pod %s hostIP %q startTime %v", p.Name, p.Status.HostIP, p.Status.StartTime)
		}
		cs := p.Status.ContainerStatuses[0]
		if !strings.HasPrefix(cs.ContainerID, "containerd://") || !strings.Contains(cs.ImageID, "@sha256:") || cs.RestartCount != 0 {
			t.Errorf("pod %s container status %+v", p.Name, cs)
		}
		for _, want := range []corev1.PodConditionType{corev1.PodScheduled, corev1.PodInitialized, corev1.ContainersReady, corev1.PodReady} {
			found := false
			for _, c := range p.Status.Conditions {
				found = found || (c.Type == want && c.Status == corev1.ConditionTrue)
			}
			if !found {
				t.Errorf("pod %s: condition %s not True: %v", p.Name, want, p.Status.Conditions)
			}
		}
		pp := p
		if out := logOf(t, n1, &pp, "web", 0); !strings.HasPrefix(out, "started "+p.Name) {
			t.Errorf("pod %s log %q, want it to start with %q", p.Name, out, "started "+p.Name)
		}
	}
	// Pods on one node reach each other over the node bridge: one pod
	// fetches the other's hostname from its web server.
	from := strings.TrimPrefix(pods[0].Status.ContainerStatuses[0].ContainerID, "containerd://")
	out, code, err := n1.agent(t).Runtime().Exec(ctx, from, []string{"wget", "-qO-", "http://" + pods[1].Status.PodIP + ":8080/etc/hostname"}, 30*time.Second)
	if err != nil || code != 0 || strings.TrimSpace(string(out)) != pods[1].Name {
		t.Errorf("pod %s fetching from pod %s (%s): exit %d, %v, output %q", pods[0].Name, pods[1].Name, pods[1].Status.PodIP, code, err, out)
	}
	// Scaling to zero stops and removes the pods.
	scale, err := h.admin.AppsV1().Deployments(ns).GetScale(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	scale.Spec.Replicas = 0
	if _, err := h.admin.AppsV1().Deployments(ns).UpdateScale(ctx, "web", scale, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	h.eventually(t, "pods gone after scale to zero", func() (bool, string) {
		l, err := h.admin.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err.Error()
		}
		var why []string
		for i := range l.Items {
			why = append(why, describe(&l.Items[i]))
		}
		return len(l.Items) == 0, strings.Join(why, "; ")
	})
}

func isReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func testInitAndVolumes(t *testing.T, h *harness, n1 *node) {
	ns := h.namespace(t)
	ctx := context.Background()
	if _, err := h.admin.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "cfg"}, Data: map[string]string{"color": "blue", "size": "9"},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.admin.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "sec"}, Data: map[string][]byte{"password": []byte("hunter2")},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	script := `echo "init=$(cat /work/init)"; echo "color=$COLOR cfg_size=$CFG_size pw=$PW pod=$POD_NAME ns=$POD_NS ip=$POD_IP node=$NODE mem=$MEM_LIMIT ref=$REF"
echo "vol-cm=$(cat /cm/color)"; echo "vol-secret=$(cat /secret/password)"; echo "vol-down=$(cat /down/name)"
echo "token=$(head -c 3 /var/run/secrets/kubernetes.io/serviceaccount/token)"; echo "sa-ns=$(cat /var/run/secrets/kubernetes.io/serviceaccount/namespace)"
test -s /var/run/secrets/kubernetes.io/serviceaccount/ca.crt && echo ca=yes
echo "mem-medium=$(grep ' /mem ' /proc/mounts | cut -d' ' -f3)"; echo "resolv=$(tr '\n' ' ' < /etc/resolv.conf)"; echo "pwd=$(pwd)"`
	p := h.pod("vols", "n1", script)
	p.Spec.RestartPolicy = corev1.RestartPolicyNever
	p.Spec.Volumes = []corev1.Volume{
		{Name: "work", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		{Name: "mem", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory}}},
		{Name: "cm", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}}}},
		{Name: "secret", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "sec"}}},
		{Name: "down", VolumeSource: corev1.VolumeSource{DownwardAPI: &corev1.DownwardAPIVolumeSource{Items: []corev1.DownwardAPIVolumeFile{
			{Path: "name", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}},
		}}}},
	}
	initC := corev1.Container{Name: "prepare", Image: h.busybox, Command: []string{"sh", "-c", "echo first > /work/init"},
		VolumeMounts: []corev1.VolumeMount{{Name: "work", MountPath: "/work"}}}
	p.Spec.InitContainers = []corev1.Container{initC}
	c := &p.Spec.Containers[0]
	c.WorkingDir = "/work"
	c.Resources.Limits = corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("64Mi")}
	c.VolumeMounts = []corev1.VolumeMount{{Name: "work", MountPath: "/work"}, {Name: "mem", MountPath: "/mem"},
		{Name: "cm", MountPath: "/cm"}, {Name: "secret", MountPath: "/secret"}, {Name: "down", MountPath: "/down"}}
	c.EnvFrom = []corev1.EnvFromSource{{Prefix: "CFG_", ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}}}}
	c.Env = []corev1.EnvVar{
		{Name: "COLOR", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}, Key: "color"}}},
		{Name: "PW", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "sec"}, Key: "password"}}},
		{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
		{Name: "POD_NS", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}},
		{Name: "POD_IP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.podIP"}}},
		{Name: "NODE", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "spec.nodeName"}}},
		{Name: "MEM_LIMIT", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{Resource: "limits.memory", Divisor: resource.MustParse("1Mi")}}},
		{Name: "REF", Value: "$(COLOR)-x"},
	}
	h.createPod(t, ns, p)
	p = h.waitPod(t, ns, "vols", "Succeeded", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodSucceeded })
	if len(p.Status.InitContainerStatuses) != 1 || p.Status.InitContainerStatuses[0].State.Terminated == nil ||
		p.Status.InitContainerStatuses[0].State.Terminated.Reason != "Completed" {
		t.Errorf("init container status: %s", describe(p))
	}
	out := logOf(t, n1, p, "main", 0)
	for _, want := range []string{
		"init=first\n",
		"color=blue cfg_size=9 pw=hunter2 pod=vols ns=" + ns + " ip=" + p.Status.PodIP + " node=n1 mem=64 ref=blue-x\n",
		"vol-cm=blue\n", "vol-secret=hunter2\n", "vol-down=vols\n",
		"token=eyJ\n", "sa-ns=" + ns + "\n", "ca=yes\n",
		"mem-medium=tmpfs\n",
		"resolv=search " + ns + ".svc.cluster.local svc.cluster.local cluster.local nameserver 10.96.0.10 options ndots:5 \n",
		"pwd=/work\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("container output lacks %q; output:\n%s", want, out)
		}
	}
}

func testCrashLoop(t *testing.T, h *harness) {
	ns := h.namespace(t)
	h.createPod(t, ns, h.pod("crash", "n1", "echo dying; exit 3"))
	p := h.waitPod(t, ns, "crash", "CrashLoopBackOff with restarts", func(p *corev1.Pod) bool {
		if len(p.Status.ContainerStatuses) == 0 {
			return false
		}
		cs := p.Status.ContainerStatuses[0]
		return cs.RestartCount >= 2 && cs.State.Waiting != nil && cs.State.Waiting.Reason == "CrashLoopBackOff"
	})
	cs := p.Status.ContainerStatuses[0]
	if lt := cs.LastTerminationState.Terminated; lt == nil || lt.ExitCode != 3 || lt.Reason != "Error" {
		t.Errorf("last state %+v, want exit 3 Error", cs.LastTerminationState)
	}
	if p.Status.Phase != corev1.PodRunning {
		t.Errorf("phase %s, want Running (restartPolicy Always)", p.Status.Phase)
	}
}

func testMissingImage(t *testing.T, h *harness) {
	ns := h.namespace(t)
	p := h.pod("noimage", "n1", "true")
	p.Spec.Containers[0].Image = h.registry + "/does-not-exist:v1"
	h.createPod(t, ns, p)
	seen := map[string]bool{}
	h.waitPod(t, ns, "noimage", "ErrImagePull then ImagePullBackOff", func(p *corev1.Pod) bool {
		if len(p.Status.ContainerStatuses) > 0 {
			if w := p.Status.ContainerStatuses[0].State.Waiting; w != nil {
				seen[w.Reason] = true
				if w.Reason == "ErrImagePull" && !strings.Contains(w.Message, "not found") {
					t.Errorf("ErrImagePull message %q does not say the image is not found", w.Message)
				}
			}
		}
		return seen["ErrImagePull"] && seen["ImagePullBackOff"]
	})
}

func testMissingCommand(t *testing.T, h *harness) {
	ns := h.namespace(t)
	p := h.pod("nocmd", "n1", "")
	p.Spec.Containers[0].Command = []string{"/no/such/binary"}
	h.createPod(t, ns, p)
	p = h.waitPod(t, ns, "nocmd", "start error, then CrashLoopBackOff", func(p *corev1.Pod) bool {
		if len(p.Status.ContainerStatuses) == 0 {
			return false
		}
		cs := p.Status.ContainerStatuses[0]
		lt := cs.LastTerminationState.Terminated
		return cs.State.Waiting != nil && cs.State.Waiting.Reason == "CrashLoopBackOff" && lt != nil && lt.Reason == "StartError"
	})
	lt := p.Status.ContainerStatuses[0].LastTerminationState.Terminated
	if !strings.Contains(lt.Message, "/no/such/binary") {
		t.Errorf("StartError message %q does not name the missing command", lt.Message)
	}
}

func testLiveness(t *testing.T, h *harness) {
	ns := h.namespace(t)
	p := h.pod("live", "n1", "touch /tmp/healthy; exec sleep 1000")
	p.Spec.Containers[0].LivenessProbe = &corev1.Probe{
		ProbeHandler:  corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"sh", "-c", "test -f /tmp/healthy && rm /tmp/healthy"}}},
		PeriodSeconds: 1, FailureThreshold: 1,
	}
	h.createPod(t, ns, p)
	// The first check passes and removes the file, the next fails: the
	// container is restarted, and again after each fresh start.
	h.waitPod(t, ns, "live", "restarted by its liveness probe", func(p *corev1.Pod) bool {
		return len(p.Status.ContainerStatuses) > 0 && p.Status.ContainerStatuses[0].RestartCount >= 1
	})
}

func testReadiness(t *testing.T, h *harness, n1 *node) {
	ns := h.namespace(t)
	p := h.pod("ready", "n1", "exec sleep 1000")
	p.Spec.Volumes = []corev1.Volume{{Name: "flag", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
	c := &p.Spec.Containers[0]
	c.VolumeMounts = []corev1.VolumeMount{{Name: "flag", MountPath: "/flag"}}
	c.ReadinessProbe = &corev1.Probe{
		ProbeHandler:  corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"test", "-f", "/flag/ready"}}},
		PeriodSeconds: 1, FailureThreshold: 1,
	}
	p = h.createPod(t, ns, p)
	h.waitPod(t, ns, "ready", "running, not ready", func(p *corev1.Pod) bool {
		return running(p) && !isReady(p) && !p.Status.ContainerStatuses[0].Ready
	})
	// The test flips readiness through the volume, on the node.
	flag := n1.stateDir + "/pod-data/" + string(p.UID) + "/volumes/flag/ready"
	if err := writeFile(flag, "yes"); err != nil {
		t.Fatal(err)
	}
	h.waitPod(t, ns, "ready", "ready", isReady)
	if err := removeFile(flag); err != nil {
		t.Fatal(err)
	}
	h.waitPod(t, ns, "ready", "not ready again", func(p *corev1.Pod) bool { return running(p) && !isReady(p) })
}

func testOOM(t *testing.T, h *harness) {
	ns := h.namespace(t)
	p := h.pod("oom", "n1", "exec tail /dev/zero")
	p.Spec.RestartPolicy = corev1.RestartPolicyNever
	p.Spec.Containers[0].Resources.Limits = corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("16Mi")}
	h.createPod(t, ns, p)
	p = h.waitPod(t, ns, "oom", "OOMKilled", func(p *corev1.Pod) bool {
		return len(p.Status.ContainerStatuses) > 0 && p.Status.ContainerStatuses[0].State.Terminated != nil
	})
	if term := p.Status.ContainerStatuses[0].State.Terminated; term.Reason != "OOMKilled" || term.ExitCode != 137 {
		t.Errorf("terminated %+v, want OOMKilled with 137", term)
	}
	if p.Status.Phase != corev1.PodFailed {
		t.Errorf("phase %s, want Failed", p.Status.Phase)
	}
}

func testPreStop(t *testing.T, h *harness) {
	ns := h.namespace(t)
	dir := t.TempDir()
	p := h.pod("prestop", "n1", `trap 'echo TERM >> /out/log; exit 0' TERM; echo up >> /out/log; while true; do sleep 0.2; done`)
	p.Spec.TerminationGracePeriodSeconds = ptr.To[int64](20)
	p.Spec.Volumes = []corev1.Volume{{Name: "out", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: dir}}}}
	c := &p.Spec.Containers[0]
	c.VolumeMounts = []corev1.VolumeMount{{Name: "out", MountPath: "/out"}}
	c.Lifecycle = &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: []string{"sh", "-c", "echo prestop >> /out/log"}}}}
	h.createPod(t, ns, p)
	h.eventually(t, "container up", func() (bool, string) {
		b, _ := readFile(dir + "/log")
		return strings.Contains(b, "up"), b
	})
	if err := h.admin.CoreV1().Pods(ns).Delete(context.Background(), "prestop", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	h.eventually(t, "pod gone", func() (bool, string) {
		_, err := h.admin.CoreV1().Pods(ns).Get(context.Background(), "prestop", metav1.GetOptions{})
		return ignoreNotFound(err) == nil && err != nil, ""
	})
	b, _ := readFile(dir + "/log")
	if b != "up\nprestop\nTERM\n" {
		t.Errorf("log %q, want up, prestop, TERM in that order", b)
	}
}

func writeFile(path, s string) error { return os.WriteFile(path, []byte(s), 0o644) }
func removeFile(path string) error   { return os.Remove(path) }
func readFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	return string(b), err
}
