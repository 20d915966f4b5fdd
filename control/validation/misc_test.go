package validation

import (
	"strings"
	"testing"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestNamespace(t *testing.T) {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-a"}, Spec: corev1.NamespaceSpec{Finalizers: []corev1.FinalizerName{corev1.FinalizerKubernetes}}}
	expect(t, Create(ns), nil)

	bad := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team.a", Namespace: "x"}, Spec: corev1.NamespaceSpec{Finalizers: []corev1.FinalizerName{"custom"}}}
	expect(t, Create(bad), []string{
		`metadata.name: Invalid value: "team.a": must not contain dots`,
		`metadata.namespace: Forbidden: not allowed on this type`,
		`spec.finalizers: Invalid value: "custom": name is neither a standard finalizer name nor is it fully qualified`,
	})

	old := ns.DeepCopy()
	old.ObjectMeta = stored(old.ObjectMeta)
	old.Status.Phase = corev1.NamespaceActive
	st := old.DeepCopy()
	expect(t, Status(st, old), nil)
	st.Status.Phase = corev1.NamespaceTerminating
	expect(t, Status(st, old), []string{`status.Phase: Invalid value: "Terminating": may only be 'Active' if ` + "`deletionTimestamp`" + ` is empty`})
}

func TestNode(t *testing.T) {
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "node-1.example.com"},
		Spec:       corev1.NodeSpec{PodCIDRs: []string{"10.244.1.0/24"}, Taints: []corev1.Taint{{Key: "dedicated", Value: "db", Effect: corev1.TaintEffectNoSchedule}}},
		Status:     corev1.NodeStatus{Capacity: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("4"), corev1.ResourcePods: resource.MustParse("110")}},
	}
	expect(t, Create(node), nil)

	bad := node.DeepCopy()
	bad.Spec.Taints = append(bad.Spec.Taints, corev1.Taint{Key: "dedicated", Effect: corev1.TaintEffectNoSchedule}, corev1.Taint{Key: "x", Effect: "Never"})
	bad.Status.Capacity[corev1.ResourcePods] = resource.MustParse("1.5")
	expect(t, Create(bad), []string{
		`metadata.taints[1]: Duplicate value: {"key":"dedicated","effect":"NoSchedule"}: taints must be unique by key and effect pair`,
		`metadata.taints[2].effect: Unsupported value: "Never": supported values: "NoSchedule", "PreferNoSchedule", "NoExecute"`,
		`status.capacity.pods: Invalid value: "1500m": must be an integer`,
	})

	old := node.DeepCopy()
	old.ObjectMeta = stored(old.ObjectMeta)
	old.Spec.ProviderID = "aws:///i-1"
	upd := old.DeepCopy()
	upd.Spec.PodCIDRs = []string{"10.244.2.0/24"}
	upd.Spec.ProviderID = "aws:///i-2"
	upd.Spec.Unschedulable = true
	expect(t, Update(upd, old), []string{
		`spec.podCIDRs: Forbidden: node updates may not change podCIDR except from "" to valid`,
		`spec.providerID: Forbidden: node updates may not change providerID except from "" to valid`,
	})

	st := old.DeepCopy()
	st.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "10.0.0.1"}, {Type: corev1.NodeInternalIP, Address: "10.0.0.1"}}
	expect(t, Status(st, old), []string{`status.addresses[1]: Duplicate value: {"type":"InternalIP","address":"10.0.0.1"}`})
}

func TestConfigMap(t *testing.T) {
	cm := &corev1.ConfigMap{ObjectMeta: meta("cfg"), Data: map[string]string{"app.properties": "a=b", "KEY_1": "v"}, BinaryData: map[string][]byte{"logo.png": {1}}}
	expect(t, Create(cm), nil)

	bad := cm.DeepCopy()
	bad.Data["bad key"] = ""
	bad.BinaryData["KEY_1"] = []byte("x")
	expect(t, Create(bad), []string{
		`data[KEY_1]: Invalid value: "KEY_1": duplicate of key present in binaryData`,
		`data[bad key]: Invalid value: "bad key": a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')`,
	})

	big := &corev1.ConfigMap{ObjectMeta: meta("big"), Data: map[string]string{"a": strings.Repeat("x", maxConfigSize+1)}}
	expect(t, Create(big), []string{`[]: Too long: may not be more than 1048576 bytes`})

	old := cm.DeepCopy()
	old.ObjectMeta = stored(old.ObjectMeta)
	old.Immutable = ptr(true)
	upd := old.DeepCopy()
	upd.Data["KEY_1"] = "changed"
	upd.Immutable = nil
	expect(t, Update(upd, old), []string{
		"immutable: Forbidden: field is immutable when `immutable` is set",
		"data: Forbidden: field is immutable when `immutable` is set",
	})
}

func TestSecret(t *testing.T) {
	cases := []struct {
		name   string
		secret *corev1.Secret
		want   []string
	}{
		{name: "opaque", secret: &corev1.Secret{ObjectMeta: meta("s"), Type: corev1.SecretTypeOpaque, Data: map[string][]byte{"password": []byte("x")}}},
		{
			name:   "string data keys are validated as data",
			secret: &corev1.Secret{ObjectMeta: meta("s"), Type: corev1.SecretTypeOpaque, StringData: map[string]string{"a/b": "x"}},
			want:   []string{`data[a/b]: Invalid value: "a/b": a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')`},
		},
		{
			name:   "tls",
			secret: &corev1.Secret{ObjectMeta: meta("s"), Type: corev1.SecretTypeTLS, Data: map[string][]byte{corev1.TLSCertKey: []byte("c")}},
			want:   []string{`data[tls.key]: Required value`},
		},
		{
			name:   "dockerconfigjson missing",
			secret: &corev1.Secret{ObjectMeta: meta("s"), Type: corev1.SecretTypeDockerConfigJson},
			want:   []string{`data[.dockerconfigjson]: Required value`},
		},
		{
			name:   "dockerconfigjson not json",
			secret: &corev1.Secret{ObjectMeta: meta("s"), Type: corev1.SecretTypeDockerConfigJson, Data: map[string][]byte{corev1.DockerConfigJsonKey: []byte("{")}},
			want:   []string{`data[.dockerconfigjson]: Invalid value: "<secret contents redacted>": unexpected end of JSON input`},
		},
		{
			name:   "too big",
			secret: &corev1.Secret{ObjectMeta: meta("s"), Data: map[string][]byte{"a": make([]byte, maxConfigSize), "b": {1}}},
			want:   []string{`data: Too long: may not be more than 1048576 bytes`},
		},
		{
			name:   "service account token",
			secret: &corev1.Secret{ObjectMeta: meta("s"), Type: corev1.SecretTypeServiceAccountToken},
			want:   []string{`metadata.annotations[kubernetes.io/service-account.name]: Required value`},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { expect(t, Create(tc.secret), tc.want) })
	}

	old := cases[0].secret.DeepCopy()
	old.ObjectMeta = stored(old.ObjectMeta)
	old.Immutable = ptr(true)
	upd := old.DeepCopy()
	upd.Type = corev1.SecretTypeBasicAuth
	upd.Data = map[string][]byte{"password": []byte("y")}
	expect(t, Update(upd, old), []string{
		`type: Invalid value: "kubernetes.io/basic-auth": field is immutable`,
		"data: Forbidden: field is immutable when `immutable` is set",
	})
}

func TestEndpoints(t *testing.T) {
	ep := &corev1.Endpoints{ObjectMeta: meta("web"), Subsets: []corev1.EndpointSubset{{
		Addresses: []corev1.EndpointAddress{{IP: "10.244.1.5", NodeName: ptr("node-1")}},
		Ports:     []corev1.EndpointPort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}},
	}}}
	expect(t, Create(ep), nil)

	bad := ep.DeepCopy()
	bad.Subsets = append(bad.Subsets, corev1.EndpointSubset{}, corev1.EndpointSubset{
		Addresses: []corev1.EndpointAddress{{IP: "127.0.0.1"}, {IP: "nope"}},
		Ports:     []corev1.EndpointPort{{Port: 80, Protocol: corev1.ProtocolTCP}, {Name: "b", Port: 0, Protocol: "TCP"}},
	})
	expect(t, Create(bad), []string{
		"subsets[1]: Required value: must specify `addresses` or `notReadyAddresses`",
		`subsets[2].addresses[0].ip: Invalid value: "127.0.0.1": may not be in the loopback range (127.0.0.0/8, ::1/128)`,
		`subsets[2].addresses[1].ip: Invalid value: "nope": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)`,
		`subsets[2].addresses[1].ip: Invalid value: "nope": must be a valid IP address`,
		`subsets[2].ports[0].name: Required value`,
		`subsets[2].ports[1].port: Invalid value: 0: must be between 1 and 65535, inclusive`,
	})
}

func TestEndpointSlice(t *testing.T) {
	es := &discoveryv1.EndpointSlice{
		ObjectMeta:  meta("web-abc"),
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"10.244.1.5"}, NodeName: ptr("node-1")}},
		Ports:       []discoveryv1.EndpointPort{{Name: ptr("http"), Port: ptr(int32(80)), Protocol: ptr(corev1.ProtocolTCP)}},
	}
	expect(t, Create(es), nil)

	bad := es.DeepCopy()
	bad.AddressType = "IPX"
	bad.Endpoints = append(bad.Endpoints, discoveryv1.Endpoint{})
	bad.Ports = append(bad.Ports, discoveryv1.EndpointPort{Name: ptr("http")}, discoveryv1.EndpointPort{})
	expect(t, Create(bad), []string{
		`addressType: Unsupported value: "IPX": supported values: "FQDN", "IPv4", "IPv6"`,
		`endpoints[1].addresses: Required value: must contain at least 1 address`,
		`ports[1].name: Duplicate value: "http"`,
		`ports[1].protocol: Required value`,
		`ports[2].protocol: Required value`,
	})

	v6 := es.DeepCopy()
	v6.Endpoints[0].Addresses = []string{"fe80::1"}
	v6.AddressType = discoveryv1.AddressTypeIPv6
	expect(t, Create(v6), []string{`endpoints[0].addresses[0]: Invalid value: "fe80::1": may not be in the link-local range (169.254.0.0/16, fe80::/10)`})

	old := es.DeepCopy()
	old.ObjectMeta = stored(old.ObjectMeta)
	upd := old.DeepCopy()
	upd.AddressType = discoveryv1.AddressTypeFQDN
	upd.Endpoints[0].Addresses = []string{"web.example.com"}
	expect(t, Update(upd, old), []string{`addressType: Invalid value: "FQDN": field is immutable`})
}

func TestLease(t *testing.T) {
	l := &coordinationv1.Lease{ObjectMeta: meta("kube-scheduler"), Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr("a"), LeaseDurationSeconds: ptr(int32(15))}}
	expect(t, Create(l), nil)
	l.Spec.LeaseDurationSeconds = ptr(int32(0))
	l.Spec.LeaseTransitions = ptr(int32(-1))
	l.Spec.PreferredHolder = ptr("b")
	expect(t, Create(l), []string{
		`spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0`,
		`spec.leaseTransitions: Invalid value: -1: must be greater than or equal to 0`,
		"spec.preferredHolder: Forbidden: may only be specified if `strategy` is defined",
	})
	// Leases accept any qualified finalizer, unlike core types.
	l = &coordinationv1.Lease{ObjectMeta: meta("l")}
	l.Finalizers = []string{"cleanup"}
	expect(t, Create(l), nil)
}

func TestEventAndServiceAccount(t *testing.T) {
	ev := &corev1.Event{ObjectMeta: meta("web.17a"), InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: "default", Name: "web"}, Reason: "Started"}
	expect(t, Create(ev), nil)
	ev.InvolvedObject.Namespace = "other"
	expect(t, Create(ev), []string{`involvedObject.namespace: Invalid value: "other": does not match event.namespace`})

	newStyle := &corev1.Event{ObjectMeta: meta("web.17b"), EventTime: metav1.NewMicroTime(metav1.Now().Time), InvolvedObject: corev1.ObjectReference{Namespace: "default"}}
	expect(t, Create(newStyle), []string{
		`reportingController: Required value`,
		`reportingController: Invalid value: "": name part must be non-empty`,
		`reportingController: Invalid value: "": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')`,
		`reportingInstance: Required value`,
		`action: Required value`,
		`reason: Required value`,
	})

	sa := &corev1.ServiceAccount{ObjectMeta: meta("builder")}
	expect(t, Create(sa), nil)
	sa.Name = "Builder"
	expect(t, Create(sa), []string{`metadata.name: Invalid value: "Builder": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')`})
}
