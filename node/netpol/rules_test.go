package netpol

import (
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

func testPod(ns, name, node, ip string, lbls map[string]string, ports ...v1.ContainerPort) *v1.Pod {
	return &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: lbls},
		Spec:       v1.PodSpec{NodeName: node, Containers: []v1.Container{{Name: "c", Ports: ports}}},
		Status:     v1.PodStatus{Phase: v1.PodRunning, PodIP: ip},
	}
}

func policy(ns, name string, sel map[string]string, spec networkingv1.NetworkPolicySpec) *networkingv1.NetworkPolicy {
	spec.PodSelector = metav1.LabelSelector{MatchLabels: sel}
	return &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: spec}
}

func tcp(p intstr.IntOrString) networkingv1.NetworkPolicyPort {
	return networkingv1.NetworkPolicyPort{Protocol: ptr.To(v1.ProtocolTCP), Port: &p}
}

func TestCompute(t *testing.T) {
	web := map[string]string{"app": "web"}
	pods := []*v1.Pod{
		testPod("default", "web", "h1", "10.244.1.2", web, v1.ContainerPort{Name: "http", ContainerPort: 8080}),
		testPod("default", "client", "h1", "10.244.1.3", map[string]string{"role": "client"}),
		testPod("other", "far", "h2", "10.244.2.4", map[string]string{"role": "client"}, v1.ContainerPort{Name: "http", ContainerPort: 9090}),
		testPod("default", "hostnet", "h1", "198.18.0.11", web),
	}
	pods[3].Spec.HostNetwork = true
	nss := []*v1.Namespace{
		{ObjectMeta: metav1.ObjectMeta{Name: "default", Labels: map[string]string{"kubernetes.io/metadata.name": "default"}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "other", Labels: map[string]string{"team": "b"}}},
	}
	tests := []struct {
		name     string
		policies []*networkingv1.NetworkPolicy
		ingress  map[string][]string // chain of pod IP → rules
		egress   map[string][]string
	}{
		{name: "no policy isolates nobody"},
		{
			name:     "default deny ingress selects every pod of the namespace",
			policies: []*networkingv1.NetworkPolicy{policy("default", "deny", nil, networkingv1.NetworkPolicySpec{})},
			ingress:  map[string][]string{"10.244.1.2": {deny}, "10.244.1.3": {deny}},
		},
		{
			name: "allow by label on a named port",
			policies: []*networkingv1.NetworkPolicy{policy("default", "web", web, networkingv1.NetworkPolicySpec{
				Ingress: []networkingv1.NetworkPolicyIngressRule{{
					From:  []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"role": "client"}}}},
					Ports: []networkingv1.NetworkPolicyPort{tcp(intstr.FromString("http"))},
				}},
			})},
			ingress: map[string][]string{"10.244.1.2": {"ip saddr { 10.244.1.3 } tcp dport { 8080 } return", deny}},
		},
		{
			name: "by namespace, with endPort",
			policies: []*networkingv1.NetworkPolicy{policy("default", "ns", web, networkingv1.NetworkPolicySpec{
				Ingress: []networkingv1.NetworkPolicyIngressRule{{
					From:  []networkingv1.NetworkPolicyPeer{{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"team": "b"}}}},
					Ports: []networkingv1.NetworkPolicyPort{{Port: ptr.To(intstr.FromInt32(8000)), EndPort: ptr.To(int32(8100))}},
				}},
			})},
			ingress: map[string][]string{"10.244.1.2": {"ip saddr { 10.244.2.4 } tcp dport { 8000-8100 } return", deny}},
		},
		{
			name: "ipBlock with except, all ports of UDP",
			policies: []*networkingv1.NetworkPolicy{policy("default", "cidr", web, networkingv1.NetworkPolicySpec{
				Ingress: []networkingv1.NetworkPolicyIngressRule{{
					From:  []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: "198.18.0.0/16", Except: []string{"198.18.5.0/24"}}}},
					Ports: []networkingv1.NetworkPolicyPort{{Protocol: ptr.To(v1.ProtocolUDP)}},
				}},
			})},
			ingress: map[string][]string{"10.244.1.2": {"ip saddr 198.18.0.0/16 ip saddr != { 198.18.5.0/24 } meta l4proto udp return", deny}},
		},
		{
			name: "egress deny with an allow to named ports of other pods",
			policies: []*networkingv1.NetworkPolicy{policy("default", "out", map[string]string{"role": "client"}, networkingv1.NetworkPolicySpec{
				PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeEgress},
				Egress: []networkingv1.NetworkPolicyEgressRule{{
					Ports: []networkingv1.NetworkPolicyPort{tcp(intstr.FromString("http"))},
				}},
			})},
			egress: map[string][]string{"10.244.1.3": {"ip daddr { 10.244.1.2 } tcp dport { 8080 } return", "ip daddr { 10.244.2.4 } tcp dport { 9090 } return", deny}},
		},
		{
			name: "an empty rule allows everything; a peer selecting nobody allows nothing",
			policies: []*networkingv1.NetworkPolicy{policy("default", "open", web, networkingv1.NetworkPolicySpec{
				Ingress: []networkingv1.NetworkPolicyIngressRule{
					{},
					{From: []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"no": "one"}}}}},
				},
			})},
			ingress: map[string][]string{"10.244.1.2": {"return", deny}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, errs := compute(cluster{node: "h1", pods: pods, namespaces: nss, policies: tt.policies})
			if len(errs) > 0 {
				t.Fatal(errs)
			}
			check := func(dir string, m map[string]string, want map[string][]string) {
				if len(m) != len(want) {
					t.Errorf("%s map %v, want pods %v", dir, m, want)
				}
				for ip, rules := range want {
					ch, ok := m[ip]
					if !ok {
						t.Errorf("%s: %s not isolated", dir, ip)
						continue
					}
					if got := st.chains[ch]; strings.Join(got, "\n") != strings.Join(rules, "\n") {
						t.Errorf("%s chain of %s:\n%s\nwant\n%s", dir, ip, strings.Join(got, "\n"), strings.Join(rules, "\n"))
					}
				}
			}
			check("ingress", st.ingress, tt.ingress)
			check("egress", st.egress, tt.egress)
		})
	}
}

func TestComputeBadSelector(t *testing.T) {
	pods := []*v1.Pod{testPod("default", "web", "h1", "10.244.1.2", nil)}
	bad := policy("default", "bad", nil, networkingv1.NetworkPolicySpec{
		Ingress: []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{
			MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "a", Operator: "Bogus"}},
		}}}}},
	})
	st, errs := compute(cluster{node: "h1", pods: pods, policies: []*networkingv1.NetworkPolicy{bad}})
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "default/bad") {
		t.Fatalf("errors %v, want one naming the policy", errs)
	}
	if got := st.chains[st.ingress["10.244.1.2"]]; strings.Join(got, ",") != deny {
		t.Fatalf("a policy with a broken peer must still isolate (allow nothing), chain %v", got)
	}
}
