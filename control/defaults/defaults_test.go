package defaults

import (
	"encoding/json"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
)

// decode runs body through the same kind of decoder the API server builds: a
// codec factory over a scheme with Register applied.
func decode(t *testing.T, gv schema.GroupVersion, body string) runtime.Object {
	t.Helper()
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{corev1.AddToScheme, appsv1.AddToScheme, discoveryv1.AddToScheme, rbacv1.AddToScheme} {
		if err := add(scheme); err != nil {
			t.Fatal(err)
		}
	}
	Register(scheme)
	obj, _, err := serializer.NewCodecFactory(scheme).UniversalDecoder(gv).Decode([]byte(body), nil, nil)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	return obj
}

// canonical renders an object as JSON so expectations read like API output.
func canonical(t *testing.T, v interface{}) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestDeploymentDefaults(t *testing.T) {
	obj := decode(t, appsv1.SchemeGroupVersion, `{"apiVersion":"apps/v1","kind":"Deployment",
		"metadata":{"name":"web","namespace":"default"},
		"spec":{"selector":{"matchLabels":{"app":"web"}},
		"template":{"metadata":{"labels":{"app":"web"}},"spec":{"containers":[{"name":"web","image":"nginx",
			"ports":[{"containerPort":80}],
			"livenessProbe":{"httpGet":{"port":80}},
			"resources":{"limits":{"cpu":"1"}},
			"env":[{"name":"POD","valueFrom":{"fieldRef":{"fieldPath":"metadata.name"}}}]}],
			"volumes":[{"name":"cfg","configMap":{"name":"cfg"}},{"name":"s","secret":{"secretName":"s"}},{"name":"tmp","emptyDir":{}}]}}}}`)
	d, ok := obj.(*appsv1.Deployment)
	if !ok {
		t.Fatalf("decoded %T", obj)
	}
	want := `{"replicas":1,"selector":{"matchLabels":{"app":"web"}},"template":{"metadata":{"labels":{"app":"web"}},"spec":{` +
		`"volumes":[{"name":"cfg","configMap":{"name":"cfg","defaultMode":420}},{"name":"s","secret":{"secretName":"s","defaultMode":420}},{"name":"tmp","emptyDir":{}}],` +
		`"containers":[{"name":"web","image":"nginx","ports":[{"containerPort":80,"protocol":"TCP"}],` +
		`"env":[{"name":"POD","valueFrom":{"fieldRef":{"apiVersion":"v1","fieldPath":"metadata.name"}}}],` +
		`"resources":{"limits":{"cpu":"1"}},` +
		`"livenessProbe":{"httpGet":{"path":"/","port":80,"scheme":"HTTP"},"timeoutSeconds":1,"periodSeconds":10,"successThreshold":1,"failureThreshold":3},` +
		`"terminationMessagePath":"/dev/termination-log","terminationMessagePolicy":"File","imagePullPolicy":"Always"}],` +
		`"restartPolicy":"Always","terminationGracePeriodSeconds":30,"dnsPolicy":"ClusterFirst","securityContext":{},"schedulerName":"default-scheduler"}},` +
		`"strategy":{"type":"RollingUpdate","rollingUpdate":{"maxUnavailable":"25%","maxSurge":"25%"}},"revisionHistoryLimit":10,"progressDeadlineSeconds":600}`
	if got := canonical(t, d.Spec); got != want {
		t.Errorf("spec:\n got %s\nwant %s", got, want)
	}
}

func TestReplicaSetDefaults(t *testing.T) {
	obj := decode(t, appsv1.SchemeGroupVersion, `{"apiVersion":"apps/v1","kind":"ReplicaSet","metadata":{"name":"rs"},
		"spec":{"template":{"spec":{"containers":[{"name":"c","image":"nginx:1.27"}]}}}}`)
	rs := obj.(*appsv1.ReplicaSet)
	if rs.Spec.Replicas == nil || *rs.Spec.Replicas != 1 {
		t.Errorf("replicas = %v, want 1", rs.Spec.Replicas)
	}
	if got := rs.Spec.Template.Spec.Containers[0].ImagePullPolicy; got != corev1.PullIfNotPresent {
		t.Errorf("imagePullPolicy = %q, want IfNotPresent", got)
	}
	if rs.Spec.Template.Spec.EnableServiceLinks != nil {
		t.Errorf("templates must not get enableServiceLinks, got %v", *rs.Spec.Template.Spec.EnableServiceLinks)
	}
}

func TestPodDefaults(t *testing.T) {
	obj := decode(t, corev1.SchemeGroupVersion, `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","namespace":"default"},
		"spec":{"hostNetwork":true,"serviceAccount":"builder","containers":[{"name":"c","image":"registry.local:5000/app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
			"ports":[{"containerPort":8080}],"resources":{"limits":{"memory":"1Gi","cpu":"0.0001"}},
			"readinessProbe":{"grpc":{"port":9000}},"lifecycle":{"preStop":{"httpGet":{"port":80}}}}],
			"volumes":[{"name":"nothing"},{"name":"proj","projected":{"sources":[{"serviceAccountToken":{"path":"token"}},{"downwardAPI":{"items":[{"path":"n","fieldRef":{"fieldPath":"metadata.name"}}]}}]}},{"name":"h","hostPath":{"path":"/tmp"}}]},
		"status":{"podIP":"10.0.0.5","hostIP":"192.168.0.2"}}`)
	p := obj.(*corev1.Pod)
	c := p.Spec.Containers[0]
	checks := []struct{ name, got, want string }{
		{"imagePullPolicy", string(c.ImagePullPolicy), "IfNotPresent"},
		{"hostPort", canonical(t, c.Ports[0]), `{"hostPort":8080,"containerPort":8080,"protocol":"TCP"}`},
		{"resources", canonical(t, c.Resources), `{"limits":{"cpu":"1m","memory":"1Gi"},"requests":{"cpu":"1m","memory":"1Gi"}}`},
		{"readinessProbe", canonical(t, c.ReadinessProbe), `{"grpc":{"port":9000,"service":""},"timeoutSeconds":1,"periodSeconds":10,"successThreshold":1,"failureThreshold":3}`},
		{"preStop", canonical(t, c.Lifecycle.PreStop), `{"httpGet":{"path":"/","port":80,"scheme":"HTTP"}}`},
		{"enableServiceLinks", canonical(t, p.Spec.EnableServiceLinks), "true"},
		{"serviceAccountName", p.Spec.ServiceAccountName, "builder"},
		{"volumes", canonical(t, p.Spec.Volumes), `[{"name":"nothing","emptyDir":{}},` +
			`{"name":"proj","projected":{"sources":[{"serviceAccountToken":{"expirationSeconds":3600,"path":"token"}},{"downwardAPI":{"items":[{"path":"n","fieldRef":{"apiVersion":"v1","fieldPath":"metadata.name"}}]}}],"defaultMode":420}},` +
			`{"name":"h","hostPath":{"path":"/tmp","type":""}}]`},
		{"podIPs", canonical(t, p.Status.PodIPs), `[{"ip":"10.0.0.5"}]`},
		{"hostIPs", canonical(t, p.Status.HostIPs), `[{"ip":"192.168.0.2"}]`},
		{"priority", canonical(t, p.Spec.Priority), "null"},
		{"tolerations", canonical(t, p.Spec.Tolerations), "null"},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s:\n got %s\nwant %s", ch.name, ch.got, ch.want)
		}
	}
}

func TestImageTag(t *testing.T) {
	for image, want := range map[string]string{
		"nginx":                                 "latest",
		"nginx:latest":                          "latest",
		"nginx:1.27":                            "1.27",
		"docker.io/library/nginx":               "latest",
		"localhost:5000/team/app:v2":            "v2",
		"localhost:5000/team/app":               "latest",
		"app@sha256:" + repeat("ab", 32):        "",
		"app:latest@sha256:" + repeat("ab", 32): "latest",
		"Nginx":                                 "",
		"":                                      "",
		repeat("a", 64):                         "",
		"registry.example.com/a/b/c:tag1":       "tag1",
	} {
		if got := imageTag(image); got != want {
			t.Errorf("imageTag(%q) = %q, want %q", image, got, want)
		}
	}
}

func repeat(s string, n int) string {
	out := ""
	for i := 0; i < n; i++ {
		out += s
	}
	return out
}

func TestServiceDefaults(t *testing.T) {
	cases := []struct{ name, body, want string }{
		{
			name: "cluster ip",
			body: `{"apiVersion":"v1","kind":"Service","metadata":{"name":"s"},"spec":{"selector":{"app":"a"},"ports":[{"port":80},{"port":53,"protocol":"UDP","targetPort":"dns","name":"dns"}]}}`,
			want: `{"ports":[{"protocol":"TCP","port":80,"targetPort":80},{"name":"dns","protocol":"UDP","port":53,"targetPort":"dns"}],"selector":{"app":"a"},"type":"ClusterIP","sessionAffinity":"None","internalTrafficPolicy":"Cluster"}`,
		},
		{
			name: "load balancer with client ip affinity",
			body: `{"apiVersion":"v1","kind":"Service","metadata":{"name":"s"},"spec":{"type":"LoadBalancer","sessionAffinity":"ClientIP","ports":[{"port":443}]}}`,
			want: `{"ports":[{"protocol":"TCP","port":443,"targetPort":443}],"type":"LoadBalancer","sessionAffinity":"ClientIP","externalTrafficPolicy":"Cluster","sessionAffinityConfig":{"clientIP":{"timeoutSeconds":10800}},"allocateLoadBalancerNodePorts":true,"internalTrafficPolicy":"Cluster"}`,
		},
		{
			name: "external name gets no traffic policies",
			body: `{"apiVersion":"v1","kind":"Service","metadata":{"name":"s"},"spec":{"type":"ExternalName","externalName":"example.com"}}`,
			want: `{"type":"ExternalName","sessionAffinity":"None","externalName":"example.com"}`,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			svc := decode(t, corev1.SchemeGroupVersion, tc.body).(*corev1.Service)
			if got := canonical(t, svc.Spec); got != tc.want {
				t.Errorf("\n got %s\nwant %s", got, tc.want)
			}
		})
	}
}

func TestCoreObjectDefaults(t *testing.T) {
	cases := []struct {
		name, body string
		get        func(runtime.Object) interface{}
		want       string
	}{
		{
			name: "namespace",
			body: `{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"team-a"}}`,
			get: func(o runtime.Object) interface{} {
				ns := o.(*corev1.Namespace)
				return []interface{}{ns.Labels, ns.Spec, ns.Status}
			},
			want: `[{"kubernetes.io/metadata.name":"team-a"},{},{"phase":"Active"}]`,
		},
		{
			name: "secret",
			body: `{"apiVersion":"v1","kind":"Secret","metadata":{"name":"s"},"data":{"a":"eA=="},"stringData":{"a":"y","b":"z"}}`,
			get: func(o runtime.Object) interface{} {
				s := o.(*corev1.Secret)
				return []interface{}{s.Type, s.Data, s.StringData}
			},
			want: `["Opaque",{"a":"eQ==","b":"eg=="},null]`,
		},
		{
			name: "configmap",
			body: `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"}}`,
			get:  func(o runtime.Object) interface{} { return o.(*corev1.ConfigMap).Data },
			want: `{}`,
		},
		{
			name: "node",
			body: `{"apiVersion":"v1","kind":"Node","metadata":{"name":"n"},"status":{"capacity":{"cpu":"4","pods":"110"}}}`,
			get:  func(o runtime.Object) interface{} { return o.(*corev1.Node).Status.Allocatable },
			want: `{"cpu":"4","pods":"110"}`,
		},
		{
			name: "endpoints",
			body: `{"apiVersion":"v1","kind":"Endpoints","metadata":{"name":"e"},"subsets":[{"addresses":[{"ip":"10.0.0.1"}],"ports":[{"port":80}]}]}`,
			get:  func(o runtime.Object) interface{} { return o.(*corev1.Endpoints).Subsets[0].Ports },
			want: `[{"port":80,"protocol":"TCP"}]`,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := canonical(t, tc.get(decode(t, corev1.SchemeGroupVersion, tc.body))); got != tc.want {
				t.Errorf("\n got %s\nwant %s", got, tc.want)
			}
		})
	}
}

func TestEndpointSliceDefaults(t *testing.T) {
	es := decode(t, discoveryv1.SchemeGroupVersion, `{"apiVersion":"discovery.k8s.io/v1","kind":"EndpointSlice","metadata":{"name":"e"},"addressType":"IPv4","endpoints":[],"ports":[{"port":80}]}`).(*discoveryv1.EndpointSlice)
	if got, want := canonical(t, es.Ports), `[{"name":"","protocol":"TCP","port":80}]`; got != want {
		t.Errorf("\n got %s\nwant %s", got, want)
	}
}

func TestRBACDefaults(t *testing.T) {
	crb := decode(t, rbacv1.SchemeGroupVersion, `{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"ClusterRoleBinding","metadata":{"name":"b"},
		"roleRef":{"kind":"ClusterRole","name":"view"},
		"subjects":[{"kind":"User","name":"alice"},{"kind":"Group","name":"devs"},{"kind":"ServiceAccount","name":"sa","namespace":"ns"}]}`).(*rbacv1.ClusterRoleBinding)
	want := `[{"apiGroup":"rbac.authorization.k8s.io","kind":"ClusterRole","name":"view"},` +
		`[{"kind":"User","apiGroup":"rbac.authorization.k8s.io","name":"alice"},{"kind":"Group","apiGroup":"rbac.authorization.k8s.io","name":"devs"},{"kind":"ServiceAccount","name":"sa","namespace":"ns"}]]`
	if got := canonical(t, []interface{}{crb.RoleRef, crb.Subjects}); got != want {
		t.Errorf("\n got %s\nwant %s", got, want)
	}
	rb := decode(t, rbacv1.SchemeGroupVersion, `{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"RoleBinding","metadata":{"name":"b","namespace":"n"},"roleRef":{"kind":"Role","name":"r"}}`).(*rbacv1.RoleBinding)
	if rb.RoleRef.APIGroup != rbacv1.GroupName {
		t.Errorf("roleRef.apiGroup = %q", rb.RoleRef.APIGroup)
	}
}

// TestZeroValues makes sure no setter panics on empty objects or a nil pointer
// smuggled through the scheme's interface{} signature.
func TestZeroValues(t *testing.T) {
	scheme := runtime.NewScheme()
	Register(scheme)
	objs := []runtime.Object{
		&corev1.Pod{}, &corev1.Service{}, &corev1.Namespace{}, &corev1.Node{}, &corev1.Secret{},
		&corev1.ConfigMap{}, &corev1.Endpoints{Subsets: []corev1.EndpointSubset{{}}},
		&appsv1.Deployment{}, &appsv1.ReplicaSet{}, &discoveryv1.EndpointSlice{Ports: []discoveryv1.EndpointPort{{}}},
		&rbacv1.RoleBinding{Subjects: []rbacv1.Subject{{}}}, &rbacv1.ClusterRoleBinding{},
		&corev1.Pod{Spec: corev1.PodSpec{
			Volumes:             []corev1.Volume{{VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{{}}}, DownwardAPI: &corev1.DownwardAPIVolumeSource{Items: []corev1.DownwardAPIVolumeFile{{}}}, Ephemeral: &corev1.EphemeralVolumeSource{}}}},
			Containers:          []corev1.Container{{Env: []corev1.EnvVar{{ValueFrom: &corev1.EnvVarSource{}}}, Lifecycle: &corev1.Lifecycle{}, LivenessProbe: &corev1.Probe{}}},
			EphemeralContainers: []corev1.EphemeralContainer{{}},
		}, Status: corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{{}}, PodIPs: []corev1.PodIP{{IP: "10.0.0.1"}}}},
		(*corev1.Pod)(nil), (*appsv1.Deployment)(nil),
	}
	for _, obj := range objs {
		scheme.Default(obj)
	}
}
