package printers

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/utils/ptr"
)

var testNow = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

func ago(d time.Duration) metav1.Time { return metav1.NewTime(testNow.Add(-d)) }

func objMeta(name string, created time.Duration) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: "default", CreationTimestamp: ago(created), ResourceVersion: "7"}
}

func convert(t *testing.T, gr schema.GroupResource, obj runtime.Object, opts runtime.Object) *metav1.Table {
	t.Helper()
	table, err := newConvertor(gr, func() time.Time { return testNow }).ConvertToTable(context.Background(), obj, opts)
	if err != nil {
		t.Fatalf("ConvertToTable(%s, %T): %v", gr, obj, err)
	}
	return table
}

var (
	pods                = schema.GroupResource{Resource: "pods"}
	nodes               = schema.GroupResource{Resource: "nodes"}
	services            = schema.GroupResource{Resource: "services"}
	endpoints           = schema.GroupResource{Resource: "endpoints"}
	events              = schema.GroupResource{Resource: "events"}
	deployments         = schema.GroupResource{Group: "apps", Resource: "deployments"}
	replicasets         = schema.GroupResource{Group: "apps", Resource: "replicasets"}
	rolebindings        = schema.GroupResource{Group: "rbac.authorization.k8s.io", Resource: "rolebindings"}
	clusterrolebindings = schema.GroupResource{Group: "rbac.authorization.k8s.io", Resource: "clusterrolebindings"}
	clusterroles        = schema.GroupResource{Group: "rbac.authorization.k8s.io", Resource: "clusterroles"}
	roles               = schema.GroupResource{Group: "rbac.authorization.k8s.io", Resource: "roles"}
	leases              = schema.GroupResource{Group: "coordination.k8s.io", Resource: "leases"}
	endpointslices      = schema.GroupResource{Group: "discovery.k8s.io", Resource: "endpointslices"}
)

func crashLoopPod() *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: objMeta("web-0", 3*time.Hour),
		Spec: corev1.PodSpec{
			NodeName:   "node-1",
			Containers: []corev1.Container{{Name: "app"}, {Name: "sidecar"}},
		},
		Status: corev1.PodStatus{
			Phase:  corev1.PodRunning,
			PodIPs: []corev1.PodIP{{IP: "10.1.0.5"}, {IP: "fd00::5"}},
			ContainerStatuses: []corev1.ContainerStatus{
				{
					Name: "app", RestartCount: 5,
					State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}},
					LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
						ExitCode: 1, Reason: "Error", FinishedAt: ago(5 * time.Minute),
					}},
				},
				{
					Name: "sidecar", Ready: true,
					State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}},
				},
			},
		},
	}
}

func TestRows(t *testing.T) {
	deleting := ago(time.Minute)
	tests := []struct {
		name  string
		gr    schema.GroupResource
		obj   runtime.Object
		cells []any
	}{
		{
			name:  "crash-looping pod with restarts",
			gr:    pods,
			obj:   crashLoopPod(),
			cells: []any{"web-0", "1/2", "CrashLoopBackOff", "5 (5m ago)", "3h", "10.1.0.5", "node-1", "<none>", "<none>"},
		},
		{
			name: "terminating pod",
			gr:   pods,
			obj: &corev1.Pod{
				ObjectMeta: func() metav1.ObjectMeta {
					m := objMeta("old", 48*time.Hour)
					m.DeletionTimestamp = &deleting
					return m
				}(),
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app"}}, NodeName: "node-2"},
				Status: corev1.PodStatus{
					Phase: corev1.PodRunning, PodIP: "10.1.0.9", NominatedNodeName: "node-3",
					ContainerStatuses: []corev1.ContainerStatus{{Name: "app", Ready: true, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}},
				},
			},
			cells: []any{"old", "1/1", "Terminating", "0", "2d", "10.1.0.9", "node-2", "node-3", "<none>"},
		},
		{
			name: "pod on a lost node shows Unknown",
			gr:   pods,
			obj: &corev1.Pod{
				ObjectMeta: func() metav1.ObjectMeta {
					m := objMeta("lost", time.Hour)
					m.DeletionTimestamp = &deleting
					return m
				}(),
				Spec:   corev1.PodSpec{Containers: []corev1.Container{{Name: "app"}}},
				Status: corev1.PodStatus{Phase: corev1.PodRunning, Reason: "NodeLost"},
			},
			cells: []any{"lost", "0/1", "Unknown", "0", "60m", "<none>", "<none>", "<none>", "<none>"},
		},
		{
			name: "pod stuck in its second init container, with a readiness gate",
			gr:   pods,
			obj: &corev1.Pod{
				ObjectMeta: objMeta("init", 10*time.Minute),
				Spec: corev1.PodSpec{
					InitContainers: []corev1.Container{{Name: "a"}, {Name: "b"}},
					Containers:     []corev1.Container{{Name: "app"}},
					ReadinessGates: []corev1.PodReadinessGate{{ConditionType: "example.com/lb"}},
				},
				Status: corev1.PodStatus{
					Phase: corev1.PodPending,
					InitContainerStatuses: []corev1.ContainerStatus{
						{Name: "a", State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 0, Reason: "Completed"}}},
						{Name: "b", RestartCount: 2, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}},
					},
					Conditions: []corev1.PodCondition{{Type: "example.com/lb", Status: corev1.ConditionFalse}},
				},
			},
			cells: []any{"init", "0/1", "Init:1/2", "2", "10m", "<none>", "<none>", "<none>", "0/1"},
		},
		{
			name: "pod with a started sidecar counts it as ready",
			gr:   pods,
			obj: &corev1.Pod{
				ObjectMeta: objMeta("side", 10*time.Minute),
				Spec: corev1.PodSpec{
					InitContainers: []corev1.Container{{Name: "proxy", RestartPolicy: ptr.To(corev1.ContainerRestartPolicyAlways)}},
					Containers:     []corev1.Container{{Name: "app"}},
				},
				Status: corev1.PodStatus{
					Phase: corev1.PodRunning,
					InitContainerStatuses: []corev1.ContainerStatus{{
						Name: "proxy", Ready: true, Started: ptr.To(true), RestartCount: 1,
						State:                corev1.ContainerState{Running: &corev1.ContainerStateRunning{}},
						LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{FinishedAt: ago(90 * time.Second)}},
					}},
					ContainerStatuses: []corev1.ContainerStatus{{Name: "app", Ready: true, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}},
					Conditions:        []corev1.PodCondition{{Type: corev1.PodInitialized, Status: corev1.ConditionTrue}},
				},
			},
			cells: []any{"side", "2/2", "Running", "1 (90s ago)", "10m", "<none>", "<none>", "<none>", "<none>"},
		},
		{
			name: "deployment",
			gr:   deployments,
			obj: &appsv1.Deployment{
				ObjectMeta: objMeta("web", 26*time.Hour),
				Spec: appsv1.DeploymentSpec{
					Replicas: ptr.To[int32](3),
					Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
					Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{
						{Name: "web", Image: "nginx:1.27"}, {Name: "proxy", Image: "envoy:1.30"},
					}}},
				},
				Status: appsv1.DeploymentStatus{ReadyReplicas: 2, UpdatedReplicas: 3, AvailableReplicas: 2},
			},
			cells: []any{"web", "2/3", int64(3), int64(2), "26h", "web,proxy", "nginx:1.27,envoy:1.30", "app=web"},
		},
		{
			name: "replicaset",
			gr:   replicasets,
			obj: &appsv1.ReplicaSet{
				ObjectMeta: objMeta("web-5d8f", 90*time.Minute),
				Spec: appsv1.ReplicaSetSpec{
					Replicas: ptr.To[int32](2),
					Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web", "pod-template-hash": "5d8f"}},
					Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "nginx:1.27"}}}},
				},
				Status: appsv1.ReplicaSetStatus{Replicas: 2, ReadyReplicas: 1},
			},
			cells: []any{"web-5d8f", int64(2), int64(2), int64(1), "90m", "web", "nginx:1.27", "app=web,pod-template-hash=5d8f"},
		},
		{
			name: "NodePort service",
			gr:   services,
			obj: &corev1.Service{
				ObjectMeta: objMeta("web", 5*24*time.Hour),
				Spec: corev1.ServiceSpec{
					Type:       corev1.ServiceTypeNodePort,
					ClusterIP:  "10.96.0.10",
					ClusterIPs: []string{"10.96.0.10"},
					Selector:   map[string]string{"app": "web"},
					Ports: []corev1.ServicePort{
						{Port: 80, Protocol: corev1.ProtocolTCP},
						{Port: 443, NodePort: 30001, Protocol: corev1.ProtocolTCP},
					},
				},
			},
			cells: []any{"web", "NodePort", "10.96.0.10", "<none>", "80/TCP,443:30001/TCP", "5d", "app=web"},
		},
		{
			name: "load balancer service still waiting for an address",
			gr:   services,
			obj: &corev1.Service{
				ObjectMeta: objMeta("lb", time.Minute),
				Spec: corev1.ServiceSpec{
					Type: corev1.ServiceTypeLoadBalancer, ClusterIPs: []string{"10.96.0.11"},
					Ports: []corev1.ServicePort{{Port: 53, NodePort: 31053, Protocol: corev1.ProtocolUDP}},
				},
			},
			cells: []any{"lb", "LoadBalancer", "10.96.0.11", "<pending>", "53:31053/UDP", "60s", "<none>"},
		},
		{
			name: "load balancer service with ingress and external IPs",
			gr:   services,
			obj: &corev1.Service{
				ObjectMeta: objMeta("lb2", time.Minute),
				Spec: corev1.ServiceSpec{
					Type: corev1.ServiceTypeLoadBalancer, ClusterIPs: []string{"10.96.0.12"},
					ExternalIPs: []string{"198.51.100.7"},
				},
				Status: corev1.ServiceStatus{LoadBalancer: corev1.LoadBalancerStatus{Ingress: []corev1.LoadBalancerIngress{
					{IP: "203.0.113.9"}, {Hostname: "lb.example.com"}, {IP: "203.0.113.9"},
				}}},
			},
			cells: []any{"lb2", "LoadBalancer", "10.96.0.12", "203.0.113.9,lb.example.com,198.51.100.7", "<none>", "60s", "<none>"},
		},
		{
			name: "node with roles and SchedulingDisabled",
			gr:   nodes,
			obj: &corev1.Node{
				ObjectMeta: metav1.ObjectMeta{
					Name: "node-1", CreationTimestamp: ago(400 * 24 * time.Hour),
					Labels: map[string]string{
						"node-role.kubernetes.io/control-plane": "",
						"kubernetes.io/role":                    "worker",
						"node-role.kubernetes.io/":              "",
					},
				},
				Spec: corev1.NodeSpec{Unschedulable: true},
				Status: corev1.NodeStatus{
					Conditions: []corev1.NodeCondition{
						{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionFalse},
						{Type: corev1.NodeReady, Status: corev1.ConditionTrue},
					},
					Addresses: []corev1.NodeAddress{
						{Type: corev1.NodeHostName, Address: "node-1"},
						{Type: corev1.NodeInternalIP, Address: "192.168.1.10"},
					},
					NodeInfo: corev1.NodeSystemInfo{KubeletVersion: "v1.33.1", OSImage: "Debian GNU/Linux 12 (bookworm)", KernelVersion: "6.1.0-37-amd64"},
				},
			},
			cells: []any{"node-1", "Ready,SchedulingDisabled", "control-plane,worker", "400d", "v1.33.1", "192.168.1.10", "<none>", "Debian GNU/Linux 12 (bookworm)", "6.1.0-37-amd64", "<unknown>"},
		},
		{
			name:  "node that never reported",
			gr:    nodes,
			obj:   &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-2"}},
			cells: []any{"node-2", "Unknown", "<none>", "<unknown>", "", "<none>", "<none>", "<unknown>", "<unknown>", "<unknown>"},
		},
		{
			name: "event",
			gr:   events,
			obj: &corev1.Event{
				ObjectMeta:     objMeta("web-0.17f2a", 10*time.Minute),
				InvolvedObject: corev1.ObjectReference{Kind: "Pod", Name: "web-0", FieldPath: "spec.containers{app}"},
				Reason:         "BackOff",
				Message:        "Back-off restarting failed container app\n",
				Source:         corev1.EventSource{Component: "kubelet", Host: "node-1"},
				FirstTimestamp: ago(10 * time.Minute),
				LastTimestamp:  ago(2 * time.Minute),
				Count:          7,
				Type:           corev1.EventTypeWarning,
			},
			cells: []any{"2m", "Warning", "BackOff", "pod/web-0", "spec.containers{app}", "kubelet, node-1", "Back-off restarting failed container app", "10m", int64(7), "web-0.17f2a"},
		},
		{
			name: "event written through events.k8s.io",
			gr:   events,
			obj: &corev1.Event{
				ObjectMeta:          objMeta("sched.1", 30*time.Second),
				InvolvedObject:      corev1.ObjectReference{Kind: "Node"},
				Reason:              "Scheduled",
				EventTime:           metav1.NewMicroTime(testNow.Add(-30 * time.Second)),
				ReportingController: "default-scheduler",
				Type:                corev1.EventTypeNormal,
			},
			cells: []any{"30s", "Normal", "Scheduled", "node", "", "default-scheduler", "", "30s", int64(1), "sched.1"},
		},
		{
			name: "endpoints with more than three addresses",
			gr:   endpoints,
			obj: &corev1.Endpoints{
				ObjectMeta: objMeta("web", time.Hour),
				Subsets: []corev1.EndpointSubset{
					{
						Addresses: []corev1.EndpointAddress{{IP: "10.0.0.1"}, {IP: "10.0.0.2"}},
						Ports:     []corev1.EndpointPort{{Port: 80}},
					},
					{
						Addresses: []corev1.EndpointAddress{{IP: "10.0.0.3"}, {IP: "10.0.0.4"}, {IP: "fd00::5"}},
						Ports:     []corev1.EndpointPort{{Port: 80}},
					},
				},
			},
			cells: []any{"web", "10.0.0.1:80,10.0.0.2:80,10.0.0.3:80 + 2 more...", "60m"},
		},
		{
			name: "headless endpoints without ports",
			gr:   endpoints,
			obj: &corev1.Endpoints{
				ObjectMeta: objMeta("db", time.Hour),
				Subsets:    []corev1.EndpointSubset{{Addresses: []corev1.EndpointAddress{{IP: "10.0.0.7"}, {IP: "fd00::7"}}}},
			},
			cells: []any{"db", "10.0.0.7,fd00::7", "60m"},
		},
		{
			name:  "endpoints without subsets",
			gr:    endpoints,
			obj:   &corev1.Endpoints{ObjectMeta: objMeta("empty", time.Hour)},
			cells: []any{"empty", "<none>", "60m"},
		},
		{
			name: "endpointslice",
			gr:   endpointslices,
			obj: &discoveryv1.EndpointSlice{
				ObjectMeta:  objMeta("web-abc12", time.Hour),
				AddressType: discoveryv1.AddressTypeIPv4,
				Ports:       []discoveryv1.EndpointPort{{Port: ptr.To[int32](80)}, {Name: ptr.To("metrics")}, {}},
				Endpoints: []discoveryv1.Endpoint{
					{Addresses: []string{"10.0.0.1"}}, {Addresses: []string{"10.0.0.2"}},
					{Addresses: []string{"10.0.0.3"}}, {Addresses: []string{"10.0.0.4"}},
				},
			},
			cells: []any{"web-abc12", "IPv4", "80,metrics,*", "10.0.0.1,10.0.0.2,10.0.0.3 + 1 more...", "60m"},
		},
		{
			name:  "empty endpointslice",
			gr:    endpointslices,
			obj:   &discoveryv1.EndpointSlice{ObjectMeta: objMeta("none", time.Hour), AddressType: discoveryv1.AddressTypeIPv6},
			cells: []any{"none", "IPv6", "<unset>", "<unset>", "60m"},
		},
		{
			name: "rolebinding",
			gr:   rolebindings,
			obj: &rbacv1.RoleBinding{
				ObjectMeta: objMeta("read-pods", 7*24*time.Hour),
				RoleRef:    rbacv1.RoleRef{Kind: "Role", Name: "pod-reader"},
				Subjects: []rbacv1.Subject{
					{Kind: rbacv1.UserKind, Name: "jane"}, {Kind: rbacv1.UserKind, Name: "joe"},
					{Kind: rbacv1.GroupKind, Name: "devs"},
					{Kind: rbacv1.ServiceAccountKind, Namespace: "ci", Name: "builder"},
				},
			},
			cells: []any{"read-pods", "Role/pod-reader", "7d", "jane, joe", "devs", "ci/builder"},
		},
		{
			name: "clusterrolebinding",
			gr:   clusterrolebindings,
			obj: &rbacv1.ClusterRoleBinding{
				ObjectMeta: metav1.ObjectMeta{Name: "admins", CreationTimestamp: ago(time.Hour)},
				RoleRef:    rbacv1.RoleRef{Kind: "ClusterRole", Name: "cluster-admin"},
				Subjects:   []rbacv1.Subject{{Kind: rbacv1.GroupKind, Name: "system:masters"}},
			},
			cells: []any{"admins", "ClusterRole/cluster-admin", "60m", "", "system:masters", ""},
		},
		{
			name: "lease",
			gr:   leases,
			obj: &coordinationv1.Lease{
				ObjectMeta: objMeta("kube-scheduler", 20*time.Minute),
				Spec:       coordinationv1.LeaseSpec{HolderIdentity: ptr.To("cp-1_1234")},
			},
			cells: []any{"kube-scheduler", "cp-1_1234", "20m"},
		},
		{
			name: "namespace",
			gr:   schema.GroupResource{Resource: "namespaces"},
			obj: &corev1.Namespace{
				ObjectMeta: metav1.ObjectMeta{Name: "team-a", CreationTimestamp: ago(3 * 365 * 24 * time.Hour)},
				Status:     corev1.NamespaceStatus{Phase: corev1.NamespaceActive},
			},
			cells: []any{"team-a", "Active", "3y"},
		},
		{
			name: "configmap counts data and binaryData",
			gr:   schema.GroupResource{Resource: "configmaps"},
			obj: &corev1.ConfigMap{
				ObjectMeta: objMeta("cfg", time.Hour),
				Data:       map[string]string{"a": "1", "b": "2"},
				BinaryData: map[string][]byte{"c": {3}},
			},
			cells: []any{"cfg", int64(3), "60m"},
		},
		{
			name: "secret",
			gr:   schema.GroupResource{Resource: "secrets"},
			obj: &corev1.Secret{
				ObjectMeta: objMeta("tls", time.Hour),
				Type:       corev1.SecretTypeTLS,
				Data:       map[string][]byte{"tls.crt": nil, "tls.key": nil},
			},
			cells: []any{"tls", "kubernetes.io/tls", int64(2), "60m"},
		},
		{
			name:  "serviceaccount",
			gr:    schema.GroupResource{Resource: "serviceaccounts"},
			obj:   &corev1.ServiceAccount{ObjectMeta: objMeta("default", time.Hour)},
			cells: []any{"default", int64(0), "60m"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			table := convert(t, tc.gr, tc.obj, nil)
			if len(table.Rows) != 1 {
				t.Fatalf("got %d rows, want 1", len(table.Rows))
			}
			row := table.Rows[0]
			if !reflect.DeepEqual(row.Cells, tc.cells) {
				t.Errorf("cells\n got %#v\nwant %#v", row.Cells, tc.cells)
			}
			if row.Object.Object != tc.obj {
				t.Errorf("row object is %p, want the converted object %p", row.Object.Object, tc.obj)
			}
			if len(table.ColumnDefinitions) != len(tc.cells) {
				t.Errorf("%d columns for %d cells", len(table.ColumnDefinitions), len(tc.cells))
			}
		})
	}
}

// TestColumns pins the headers kubectl prints; a trailing * marks a wide
// (priority 1) column.
func TestColumns(t *testing.T) {
	tests := []struct {
		gr      schema.GroupResource
		columns string
	}{
		{pods, "Name Ready Status Restarts Age IP* Node* Nominated_Node* Readiness_Gates*"},
		{nodes, "Name Status Roles Age Version Internal-IP* External-IP* OS-Image* Kernel-Version* Container-Runtime*"},
		{services, "Name Type Cluster-IP External-IP Port(s) Age Selector*"},
		{endpoints, "Name Endpoints Age"},
		{events, "Last_Seen Type Reason Object Subobject* Source* Message First_Seen* Count* Name*"},
		{schema.GroupResource{Resource: "namespaces"}, "Name Status Age"},
		{schema.GroupResource{Resource: "configmaps"}, "Name Data Age"},
		{schema.GroupResource{Resource: "secrets"}, "Name Type Data Age"},
		{schema.GroupResource{Resource: "serviceaccounts"}, "Name Secrets Age"},
		{deployments, "Name Ready Up-to-date Available Age Containers* Images* Selector*"},
		{replicasets, "Name Desired Current Ready Age Containers* Images* Selector*"},
		{rolebindings, "Name Role Age Users* Groups* ServiceAccounts*"},
		{clusterrolebindings, "Name Role Age Users* Groups* ServiceAccounts*"},
		{leases, "Name Holder Age"},
		{endpointslices, "Name AddressType Ports Endpoints Age"},
		{roles, "Name Created_At"},
		{clusterroles, "Name Created_At"},
		{schema.GroupResource{Group: "example.com", Resource: "widgets"}, "Name Created_At"},
	}
	for _, tc := range tests {
		t.Run(tc.gr.String(), func(t *testing.T) {
			var obj runtime.Object = &corev1.ConfigMap{}
			if p, ok := printersByResource[tc.gr]; ok {
				obj = sampleFor(t, p)
			}
			table := convert(t, tc.gr, obj, &metav1.TableOptions{})
			var got []string
			nameColumns := 0
			for _, c := range table.ColumnDefinitions {
				s := strings.ReplaceAll(c.Name, " ", "_")
				if c.Priority == 1 {
					s += "*"
				}
				got = append(got, s)
				if c.Format == "name" {
					nameColumns++
					if c.Name != "Name" {
						t.Errorf("column %q has format name", c.Name)
					}
				}
				if c.Description == "" || c.Type == "" {
					t.Errorf("column %q lacks a type or description", c.Name)
				}
			}
			if g := strings.Join(got, " "); g != tc.columns {
				t.Errorf("columns\n got %s\nwant %s", g, tc.columns)
			}
			if nameColumns != 1 {
				t.Errorf("%d columns have format name, want 1", nameColumns)
			}
		})
	}
}

// sampleFor finds an empty object the printer accepts by trying the types
// the tests know, so TestColumns needs no per-resource fixture.
func sampleFor(t *testing.T, p resourcePrinter) runtime.Object {
	t.Helper()
	candidates := []runtime.Object{
		&corev1.Pod{}, &corev1.Node{}, &corev1.Service{}, &corev1.Endpoints{}, &corev1.Event{},
		&corev1.Namespace{}, &corev1.ConfigMap{}, &corev1.Secret{}, &corev1.ServiceAccount{},
		&appsv1.Deployment{}, &appsv1.ReplicaSet{}, &rbacv1.RoleBinding{}, &rbacv1.ClusterRoleBinding{},
		&coordinationv1.Lease{}, &discoveryv1.EndpointSlice{},
	}
	for _, c := range candidates {
		if _, err := p.rows(c, testNow); err == nil {
			return c
		}
	}
	t.Fatal("no sample object fits this printer")
	return nil
}

func TestListWithContinueToken(t *testing.T) {
	list := &corev1.PodList{
		ListMeta: metav1.ListMeta{ResourceVersion: "42", Continue: "eyJ2IjoibWV0YS5rOHMuaW8vdjEifQ", RemainingItemCount: ptr.To[int64](7)},
		Items: []corev1.Pod{*crashLoopPod(), {
			ObjectMeta: objMeta("done", 2*time.Hour),
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "job"}}},
			Status: corev1.PodStatus{
				Phase: corev1.PodSucceeded,
				ContainerStatuses: []corev1.ContainerStatus{{Name: "job", State: corev1.ContainerState{
					Terminated: &corev1.ContainerStateTerminated{ExitCode: 0, Reason: "Completed"},
				}}},
			},
		}},
	}
	table := convert(t, pods, list, nil)
	if table.ResourceVersion != "42" || table.Continue != list.Continue || table.RemainingItemCount == nil || *table.RemainingItemCount != 7 {
		t.Errorf("list meta = %+v, want rv 42, continue token and 7 remaining", table.ListMeta)
	}
	if len(table.Rows) != 2 {
		t.Fatalf("got %d rows, want 2", len(table.Rows))
	}
	for i, want := range []string{"CrashLoopBackOff", "Completed"} {
		if got := table.Rows[i].Cells[2]; got != want {
			t.Errorf("row %d status = %v, want %s", i, got, want)
		}
		if table.Rows[i].Object.Object != &list.Items[i] {
			t.Errorf("row %d does not reference list item %d", i, i)
		}
	}
	if got := table.Rows[0].Conditions; got != nil {
		t.Errorf("running pod has row conditions %v", got)
	}
	want := []metav1.TableRowCondition{{Type: metav1.RowCompleted, Status: metav1.ConditionTrue, Reason: "Succeeded", Message: "The pod has completed successfully."}}
	if got := table.Rows[1].Conditions; !reflect.DeepEqual(got, want) {
		t.Errorf("succeeded pod conditions = %v, want %v", got, want)
	}
}

func TestEmptyList(t *testing.T) {
	table := convert(t, deployments, &appsv1.DeploymentList{ListMeta: metav1.ListMeta{ResourceVersion: "9"}}, nil)
	if table.Rows == nil || len(table.Rows) != 0 || table.ResourceVersion != "9" {
		t.Errorf("empty list gave rows %#v, rv %q", table.Rows, table.ResourceVersion)
	}
}

func TestSingleObjectResourceVersion(t *testing.T) {
	table := convert(t, pods, crashLoopPod(), nil)
	if table.ResourceVersion != "7" || table.Continue != "" || table.RemainingItemCount != nil {
		t.Errorf("list meta = %+v, want only resourceVersion 7", table.ListMeta)
	}
}

func TestNoHeaders(t *testing.T) {
	for _, gr := range []schema.GroupResource{pods, clusterroles} {
		table := convert(t, gr, &corev1.PodList{Items: []corev1.Pod{*crashLoopPod()}}, &metav1.TableOptions{NoHeaders: true})
		if table.ColumnDefinitions != nil {
			t.Errorf("%s: NoHeaders still returned %d columns", gr, len(table.ColumnDefinitions))
		}
		if len(table.Rows) != 1 {
			t.Errorf("%s: got %d rows, want 1", gr, len(table.Rows))
		}
	}
}

func TestColumnsAreNotShared(t *testing.T) {
	first := convert(t, pods, crashLoopPod(), nil)
	first.ColumnDefinitions[0].Name = "changed"
	if second := convert(t, pods, crashLoopPod(), nil); second.ColumnDefinitions[0].Name != "Name" {
		t.Errorf("editing one table changed the next: %q", second.ColumnDefinitions[0].Name)
	}
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name string
		gr   schema.GroupResource
		obj  runtime.Object
		opts runtime.Object
		want string
	}{
		{"wrong object type", pods, &corev1.Service{}, nil, "*v1.Service"},
		{"list of the wrong type", deployments, &corev1.PodList{}, nil, "*v1.PodList"},
		{"nil object", pods, (*corev1.Pod)(nil), nil, "nil"},
		{"unrecognized table options", pods, crashLoopPod(), &metav1.ListOptions{}, "*v1.ListOptions"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := newConvertor(tc.gr, func() time.Time { return testNow }).ConvertToTable(context.Background(), tc.obj, tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), tc.gr.String()) {
				t.Errorf("error = %v, want one naming %s and %q", err, tc.gr, tc.want)
			}
		})
	}
}

func TestPublicConstructorUsesTheClock(t *testing.T) {
	pod := crashLoopPod()
	pod.CreationTimestamp = metav1.NewTime(time.Now().Add(-time.Hour))
	table, err := TableConvertor(pods).ConvertToTable(context.Background(), pod, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := table.Rows[0].Cells[4]; got != "60m" {
		t.Errorf("age = %v, want 60m", got)
	}
}
