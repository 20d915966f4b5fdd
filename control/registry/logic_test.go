package registry

import (
	"net/netip"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiresource "k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestQOSClass(t *testing.T) {
	res := func(req, lim map[corev1.ResourceName]string) corev1.ResourceRequirements {
		r := corev1.ResourceRequirements{Requests: corev1.ResourceList{}, Limits: corev1.ResourceList{}}
		for k, v := range req {
			r.Requests[k] = apiresource.MustParse(v)
		}
		for k, v := range lim {
			r.Limits[k] = apiresource.MustParse(v)
		}
		return r
	}
	cpuMem := func(cpu, mem string) map[corev1.ResourceName]string {
		return map[corev1.ResourceName]string{corev1.ResourceCPU: cpu, corev1.ResourceMemory: mem}
	}
	for _, tc := range []struct {
		name       string
		containers []corev1.ResourceRequirements
		want       corev1.PodQOSClass
	}{
		{"no resources", []corev1.ResourceRequirements{{}}, corev1.PodQOSBestEffort},
		{"limits equal requests", []corev1.ResourceRequirements{res(cpuMem("1", "1Gi"), cpuMem("1", "1Gi"))}, corev1.PodQOSGuaranteed},
		{"limits only", []corev1.ResourceRequirements{res(nil, cpuMem("1", "1Gi"))}, corev1.PodQOSGuaranteed},
		{"requests below limits", []corev1.ResourceRequirements{res(cpuMem("500m", "1Gi"), cpuMem("1", "1Gi"))}, corev1.PodQOSBurstable},
		{"one container without limits", []corev1.ResourceRequirements{res(cpuMem("1", "1Gi"), cpuMem("1", "1Gi")), {}}, corev1.PodQOSBurstable},
		{"memory only", []corev1.ResourceRequirements{res(map[corev1.ResourceName]string{corev1.ResourceMemory: "1Gi"}, nil)}, corev1.PodQOSBurstable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := &corev1.PodSpec{}
			for i, r := range tc.containers {
				spec.Containers = append(spec.Containers, corev1.Container{Name: string(rune('a' + i)), Resources: r})
			}
			if got := qosClass(spec); got != tc.want {
				t.Fatalf("qosClass = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestIPAllocatorRange(t *testing.T) {
	a, err := newIPAllocator(Options{ServiceCIDR: netip.MustParsePrefix("10.96.0.0/16")}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if a.size != 65534 {
		t.Fatalf("size %d, want 65534 (network and broadcast excluded)", a.size)
	}
	for _, tc := range []struct {
		ip    string
		index int
		ok    bool
	}{
		{"10.96.0.1", 0, true},
		{"10.96.255.254", 65533, true},
		{"10.96.0.0", 0, false},
		{"10.96.255.255", 0, false},
		{"10.97.0.1", 0, false},
		{"not-an-ip", 0, false},
		{"fd00::1", 0, false},
	} {
		i, ok := a.index(tc.ip)
		if ok != tc.ok || (ok && i != tc.index) {
			t.Errorf("index(%s) = %d, %v; want %d, %v", tc.ip, i, ok, tc.index, tc.ok)
		}
		if ok && a.nth(i) != tc.ip {
			t.Errorf("nth(index(%s)) = %s", tc.ip, a.nth(i))
		}
	}
	for _, bad := range []string{"fd00::/64", "10.0.0.0/31", "10.0.0.0/4"} {
		if _, err := newIPAllocator(Options{ServiceCIDR: netip.MustParsePrefix(bad)}, nil, nil); err == nil {
			t.Errorf("service CIDR %s accepted", bad)
		}
	}
}

func TestPortAllocatorRange(t *testing.T) {
	a, err := newPortAllocator(Options{NodePorts: [2]int{30000, 32767}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if a.size != 2768 || a.nth(0) != "30000" || a.nth(2767) != "32767" {
		t.Fatalf("size %d first %s last %s", a.size, a.nth(0), a.nth(2767))
	}
	if _, ok := a.index("29999"); ok {
		t.Fatal("29999 accepted")
	}
	if _, err := newPortAllocator(Options{NodePorts: [2]int{40000, 30000}}, nil); err == nil {
		t.Fatal("inverted range accepted")
	}
}

func TestKeepAllocated(t *testing.T) {
	single := corev1.IPFamilyPolicySingleStack
	old := &corev1.Service{Spec: corev1.ServiceSpec{
		Type: corev1.ServiceTypeNodePort, ClusterIP: "10.96.0.10", ClusterIPs: []string{"10.96.0.10"},
		IPFamilyPolicy: &single, IPFamilies: []corev1.IPFamily{corev1.IPv4Protocol},
		Ports: []corev1.ServicePort{{Port: 80, Protocol: corev1.ProtocolTCP, NodePort: 30080}, {Port: 443, Protocol: corev1.ProtocolTCP, NodePort: 30443}},
	}}
	// An update from the original manifest carries neither the IP nor the
	// node ports; both stay, and a new port gets none (allocation's job).
	svc := &corev1.Service{Spec: corev1.ServiceSpec{
		Type:  corev1.ServiceTypeNodePort,
		Ports: []corev1.ServicePort{{Port: 80, Protocol: corev1.ProtocolTCP}, {Port: 8080, Protocol: corev1.ProtocolTCP}},
	}}
	keepAllocated(svc, old)
	if svc.Spec.ClusterIP != "10.96.0.10" || len(svc.Spec.ClusterIPs) != 1 || svc.Spec.IPFamilyPolicy == nil {
		t.Fatalf("cluster IP not kept: %+v", svc.Spec)
	}
	if svc.Spec.Ports[0].NodePort != 30080 || svc.Spec.Ports[1].NodePort != 0 {
		t.Fatalf("node ports %d, %d; want 30080, 0", svc.Spec.Ports[0].NodePort, svc.Spec.Ports[1].NodePort)
	}
	// Turning it into ExternalName keeps nothing.
	ext := &corev1.Service{Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "x.example"}}
	keepAllocated(ext, old)
	if ext.Spec.ClusterIP != "" {
		t.Fatalf("ExternalName got cluster IP %s", ext.Spec.ClusterIP)
	}
}

func TestScaleOf(t *testing.T) {
	three := int32(3)
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns", ResourceVersion: "7"},
		Spec:       appsv1.DeploymentSpec{Replicas: &three, Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}},
		Status:     appsv1.DeploymentStatus{Replicas: 2},
	}
	s, err := scaleOf(d)
	if err != nil {
		t.Fatal(err)
	}
	if s.Spec.Replicas != 3 || s.Status.Replicas != 2 || s.Status.Selector != "app=web" || s.ResourceVersion != "7" {
		t.Fatalf("scale %+v", s)
	}
	out, err := setReplicas(d, 5)
	if err != nil {
		t.Fatal(err)
	}
	if got := *out.(*appsv1.Deployment).Spec.Replicas; got != 5 || *d.Spec.Replicas != 3 {
		t.Fatalf("setReplicas: new %d, original %d", got, *d.Spec.Replicas)
	}
	if _, err := scaleOf(&corev1.Pod{}); err == nil {
		t.Fatal("scale of a pod accepted")
	}
}

func TestAttrFuncSelectableFields(t *testing.T) {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", Labels: map[string]string{"app": "x"}},
		Spec:       corev1.PodSpec{NodeName: "n1", RestartPolicy: corev1.RestartPolicyAlways},
		Status:     corev1.PodStatus{Phase: corev1.PodRunning, PodIPs: []corev1.PodIP{{IP: "10.244.0.5"}}},
	}
	labels, fields, err := attrFunc(true, podFieldsSet)(pod)
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{
		"metadata.name": "p", "metadata.namespace": "ns", "spec.nodeName": "n1",
		"status.phase": "Running", "status.podIPs": "10.244.0.5", "spec.hostNetwork": "false",
	} {
		if fields[k] != want {
			t.Errorf("field %s = %q, want %q", k, fields[k], want)
		}
	}
	if labels["app"] != "x" {
		t.Errorf("labels %v", labels)
	}
	conv := fieldLabelConversion(podFields)
	if _, _, err := conv("spec.nodeName", "n1"); err != nil {
		t.Errorf("spec.nodeName refused: %v", err)
	}
	if _, _, err := conv("spec.containers", "x"); err == nil {
		t.Error("unknown field accepted")
	}
}
