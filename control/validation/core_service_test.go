package validation

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func TestServiceCreate(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(*corev1.Service)
		want   []string
	}{
		{name: "valid", mutate: func(*corev1.Service) {}},
		{
			name: "headless via clusterIP only",
			mutate: func(s *corev1.Service) {
				s.Spec.ClusterIP = corev1.ClusterIPNone
			},
		},
		{
			name: "allocated dual stack",
			mutate: func(s *corev1.Service) {
				s.Spec.ClusterIP = "10.96.0.10"
				s.Spec.ClusterIPs = []string{"10.96.0.10", "fd00::10"}
				s.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv4Protocol, corev1.IPv6Protocol}
				s.Spec.IPFamilyPolicy = ptr(corev1.IPFamilyPolicyPreferDualStack)
			},
		},
		{
			name:   "name must be a DNS-1035 label",
			mutate: func(s *corev1.Service) { s.Name = "1web" },
			want:   []string{`metadata.name: Invalid value: "1web": a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')`},
		},
		{
			name: "ports",
			mutate: func(s *corev1.Service) {
				s.Spec.Ports = []corev1.ServicePort{
					{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(8080)},
					{Port: 70000, Protocol: "ICMP", TargetPort: intstr.FromString("not_valid")},
					{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(8080), NodePort: 30080},
				}
			},
			want: []string{
				`spec.ports[1].name: Required value`,
				`spec.ports[1].port: Invalid value: 70000: must be between 1 and 65535, inclusive`,
				`spec.ports[1].protocol: Unsupported value: "ICMP": supported values: "SCTP", "TCP", "UDP"`,
				`spec.ports[1].targetPort: Invalid value: "not_valid": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)`,
				`spec.ports[2].name: Duplicate value: "http"`,
				"spec.ports[2].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'",
				`spec.ports[2]: Duplicate value: {"protocol":"TCP","port":80,"targetPort":0}`,
			},
		},
		{
			name:   "ports required",
			mutate: func(s *corev1.Service) { s.Spec.Ports = nil },
			want:   []string{`spec.ports: Required value`},
		},
		{
			name: "type and cluster ip",
			mutate: func(s *corev1.Service) {
				s.Spec.Type = "Internal"
				s.Spec.ClusterIP = "10.0.0.300"
			},
			want: []string{
				`spec.clusterIPs[0]: Invalid value: "10.0.0.300": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)`,
				`spec.type: Unsupported value: "Internal": supported values: "ClusterIP", "ExternalName", "LoadBalancer", "NodePort"`,
			},
		},
		{
			name: "cluster ip family mismatch",
			mutate: func(s *corev1.Service) {
				s.Spec.ClusterIP = "10.96.0.10"
				s.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv6Protocol}
			},
			want: []string{"spec.clusterIPs[0]: Invalid value: \"10.96.0.10\": expected an IPv6 value as indicated by `ipFamilies[0]`"},
		},
		{
			name: "node port service",
			mutate: func(s *corev1.Service) {
				s.Spec.Type = corev1.ServiceTypeNodePort
				s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyCluster
				s.Spec.Ports[0].NodePort = 30080
			},
		},
		{
			name: "node port service without traffic policy",
			mutate: func(s *corev1.Service) {
				s.Spec.Type = corev1.ServiceTypeNodePort
				s.Spec.ClusterIP = corev1.ClusterIPNone
			},
			want: []string{
				`spec.clusterIPs[0]: Invalid value: "None": may not be set to 'None' for NodePort services`,
				`spec.externalTrafficPolicy: Required value`,
			},
		},
		{
			name: "external name",
			mutate: func(s *corev1.Service) {
				s.Spec = corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "db.example.com.", SessionAffinity: corev1.ServiceAffinityNone}
			},
		},
		{
			name: "external name with cluster ip",
			mutate: func(s *corev1.Service) {
				s.Spec = corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ClusterIP: "10.0.0.1", SessionAffinity: corev1.ServiceAffinityNone}
			},
			want: []string{
				`spec.clusterIPs: Forbidden: may not be set for ExternalName services`,
				`spec.externalName: Required value`,
			},
		},
		{
			name: "session affinity",
			mutate: func(s *corev1.Service) {
				s.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
			},
			want: []string{`spec.sessionAffinityConfig: Required value: when session affinity type is ClientIP`},
		},
		{
			name:   "selector labels",
			mutate: func(s *corev1.Service) { s.Spec.Selector = map[string]string{"app": "-bad"} },
			want:   []string{`spec.selector: Invalid value: "-bad": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')`},
		},
		{
			name: "load balancer missing allocations",
			mutate: func(s *corev1.Service) {
				s.Spec.Type = corev1.ServiceTypeLoadBalancer
				s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
			},
			want: []string{
				`allocateLoadBalancerNodePorts: Required value`,
				`spec.healthCheckNodePort: Required value`,
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			svc := validService()
			tc.mutate(svc)
			expect(t, Create(svc), tc.want)
		})
	}
}

func TestServiceUpdate(t *testing.T) {
	old := validService()
	old.ObjectMeta = stored(old.ObjectMeta)
	old.Spec.ClusterIP = "10.96.0.10"
	old.Spec.ClusterIPs = []string{"10.96.0.10"}
	old.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv4Protocol}
	old.Spec.IPFamilyPolicy = ptr(corev1.IPFamilyPolicySingleStack)

	svc := old.DeepCopy()
	svc.Spec.Ports[0].TargetPort = intstr.FromString("http")
	expect(t, Update(svc, old), nil)

	svc = old.DeepCopy()
	svc.Spec.ClusterIP = "10.96.0.11"
	svc.Spec.ClusterIPs = []string{"10.96.0.11"}
	expect(t, Update(svc, old), []string{`spec.clusterIPs[0]: Invalid value: ["10.96.0.11"]: may not change once set`})

	svc = old.DeepCopy()
	svc.Spec.ClusterIP = ""
	svc.Spec.ClusterIPs = nil
	expect(t, Update(svc, old), []string{`spec.clusterIPs[0]: Invalid value: null: primary clusterIP can not be unset`})
}

func TestServiceStatus(t *testing.T) {
	old := validService()
	old.ObjectMeta = stored(old.ObjectMeta)
	old.Spec.Type = corev1.ServiceTypeLoadBalancer
	old.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyCluster
	old.Spec.AllocateLoadBalancerNodePorts = ptr(true)

	svc := old.DeepCopy()
	svc.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "203.0.113.7", IPMode: ptr(corev1.LoadBalancerIPModeVIP)}, {Hostname: "lb.example.com"}}
	expect(t, Status(svc, old), nil)

	svc.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "203.0.113.7"}, {Hostname: "10.0.0.1"}}
	expect(t, Status(svc, old), []string{
		"status.loadBalancer.ingress[0].ipMode: Required value: must be specified when `ip` is set",
		`status.loadBalancer.ingress[1].hostname: Invalid value: "10.0.0.1": must be a DNS name, not an IP address`,
	})

	cluster := validService()
	cluster.ObjectMeta = stored(cluster.ObjectMeta)
	withIngress := cluster.DeepCopy()
	withIngress.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{Hostname: "x.example.com"}}
	expect(t, Status(withIngress, cluster), []string{"status.loadBalancer.ingress: Forbidden: may only be used when `spec.type` is 'LoadBalancer'"})
}
