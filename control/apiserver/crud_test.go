package apiserver_test

import (
	"fmt"
	"maps"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"

	"github.com/barge-dev/barge/control/apitest"
)

func nginxPodSpec(image string) corev1.PodSpec {
	return corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: image}}}
}

func webDeployment(name string) *appsv1.Deployment {
	sel := map[string]string{"app": "web"}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: sel},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: sel},
				Spec:       nginxPodSpec("nginx:1.27"),
			},
		},
	}
}

func webService(name string) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": "web"},
			Ports:    []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}},
		},
	}
}

// clusterTest is one part of a test function that shares its cluster.
type clusterTest struct {
	name string
	run  func(*testing.T, *apitest.Cluster)
}

func runShared(t *testing.T, c *apitest.Cluster, tests []clusterTest) {
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, c) })
	}
}

// TestObjects checks object semantics on one single-peer cluster, each part
// in a namespace of its own.
func TestObjects(t *testing.T) {
	runShared(t, apitest.New(t, 1, apiOnly()), []clusterTest{
		{"CRUD", testCRUD},
		{"Errors", testErrors},
		{"Generation", testGeneration},
		{"StatusSubresource", testStatusSubresource},
		{"Finalizers", testFinalizers},
		{"ConcurrentUpdates", testConcurrentUpdates},
		{"NamespaceDeletion", testNamespaceDeletion},
		{"ServiceAllocation", testServiceAllocation},
	})
}

// testCRUD runs the object lifecycle Kubernetes defines over a
// representative set of resources: what create fills in, that the
// resourceVersion is the store's mod revision, generateName, metadata
// round-trips, optimistic concurrency, and delete.
func testCRUD(t *testing.T, c *apitest.Cluster) {
	cs := c.Client(0)
	ctx := c.Ctx()
	const ns = "crud"
	mkNamespace(t, ctx, cs, ns)
	owner, err := cs.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "owner"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	labels := map[string]string{"app": "crud", "example.com/tier": "backend"}
	annotations := map[string]string{"example.com/note": "hello, world", "example.com/empty": ""}
	ownerRefs := []metav1.OwnerReference{{APIVersion: "v1", Kind: "ConfigMap", Name: owner.Name, UID: owner.UID, Controller: ptr.To(true)}}

	cases := []struct {
		resource string // plural: the store key is /registry/<storeDir(resource)>/<namespace>/<name>
		client   anyClient
		newObj   func() apiObject
		// mutate makes a change to the object's content, and mutated
		// recognises it on the stored object.
		mutate  func(apiObject)
		mutated func(apiObject) bool
		// generation is metadata.generation after create and after the
		// content change, as Kubernetes' strategy for the type sets it.
		generation, generationAfterUpdate int64
	}{
		{
			resource: "configmaps", client: untyped(cs.CoreV1().ConfigMaps(ns)),
			newObj:  func() apiObject { return &corev1.ConfigMap{Data: map[string]string{"k": "v"}} },
			mutate:  func(o apiObject) { o.(*corev1.ConfigMap).Data["k"] = "v2" },
			mutated: func(o apiObject) bool { return o.(*corev1.ConfigMap).Data["k"] == "v2" },
		},
		{
			resource: "secrets", client: untyped(cs.CoreV1().Secrets(ns)),
			newObj: func() apiObject {
				return &corev1.Secret{Type: corev1.SecretTypeOpaque, Data: map[string][]byte{"password": []byte("s3cret")}}
			},
			mutate:  func(o apiObject) { o.(*corev1.Secret).Data["password"] = []byte("n3w") },
			mutated: func(o apiObject) bool { return string(o.(*corev1.Secret).Data["password"]) == "n3w" },
		},
		{
			resource: "deployments", client: untyped(cs.AppsV1().Deployments(ns)),
			newObj: func() apiObject { return webDeployment("") },
			mutate: func(o apiObject) { o.(*appsv1.Deployment).Spec.Template.Spec.Containers[0].Image = "nginx:1.28" },
			mutated: func(o apiObject) bool {
				return o.(*appsv1.Deployment).Spec.Template.Spec.Containers[0].Image == "nginx:1.28"
			},
			generation: 1, generationAfterUpdate: 2,
		},
		{
			resource: "services", client: untyped(cs.CoreV1().Services(ns)),
			newObj:  func() apiObject { return webService("") },
			mutate:  func(o apiObject) { o.(*corev1.Service).Spec.Ports[0].TargetPort = intstr.FromInt32(9090) },
			mutated: func(o apiObject) bool { return o.(*corev1.Service).Spec.Ports[0].TargetPort.IntValue() == 9090 },
		},
		{
			resource: "pods", client: untyped(cs.CoreV1().Pods(ns)),
			newObj:     func() apiObject { return &corev1.Pod{Spec: nginxPodSpec("nginx:1.27")} },
			mutate:     func(o apiObject) { o.(*corev1.Pod).Spec.Containers[0].Image = "nginx:1.28" },
			mutated:    func(o apiObject) bool { return o.(*corev1.Pod).Spec.Containers[0].Image == "nginx:1.28" },
			generation: 1, generationAfterUpdate: 2,
		},
		{
			resource: "leases", client: untyped(cs.CoordinationV1().Leases(ns)),
			newObj: func() apiObject {
				return &coordinationv1.Lease{Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To("a"), LeaseDurationSeconds: ptr.To[int32](15)}}
			},
			mutate:  func(o apiObject) { o.(*coordinationv1.Lease).Spec.HolderIdentity = ptr.To("b") },
			mutated: func(o apiObject) bool { return ptr.Deref(o.(*coordinationv1.Lease).Spec.HolderIdentity, "") == "b" },
		},
		{
			resource: "endpointslices", client: untyped(cs.DiscoveryV1().EndpointSlices(ns)),
			newObj: func() apiObject {
				return &discoveryv1.EndpointSlice{
					AddressType: discoveryv1.AddressTypeIPv4,
					Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"10.1.2.3"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}}},
					Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To[int32](80), Protocol: ptr.To(corev1.ProtocolTCP)}},
				}
			},
			mutate:  func(o apiObject) { o.(*discoveryv1.EndpointSlice).Endpoints[0].Addresses[0] = "10.1.2.4" },
			mutated: func(o apiObject) bool { return o.(*discoveryv1.EndpointSlice).Endpoints[0].Addresses[0] == "10.1.2.4" },
			// pkg/registry/discovery/endpointslice: Generation = 1 on
			// create, +1 on any change beyond metadata.
			generation: 1, generationAfterUpdate: 2,
		},
		{
			resource: "roles", client: untyped(cs.RbacV1().Roles(ns)),
			newObj: func() apiObject {
				return &rbacv1.Role{Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get"}}}}
			},
			mutate: func(o apiObject) { r := o.(*rbacv1.Role); r.Rules[0].Verbs = append(r.Rules[0].Verbs, "list") },
			mutated: func(o apiObject) bool {
				return equality.Semantic.DeepEqual(o.(*rbacv1.Role).Rules[0].Verbs, []string{"get", "list"})
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.resource, func(t *testing.T) {
			prefix := "crud-" + tc.resource + "-"
			obj := tc.newObj()
			obj.SetGenerateName(prefix)
			obj.SetNamespace(ns)
			obj.SetLabels(maps.Clone(labels))
			obj.SetAnnotations(maps.Clone(annotations))
			obj.SetOwnerReferences(ownerRefs)
			before := time.Now().Add(-time.Second).Truncate(time.Second)

			created, err := tc.client.create(ctx, obj, metav1.CreateOptions{})
			if err != nil {
				t.Fatalf("create: %v", err)
			}
			name := created.GetName()
			if !strings.HasPrefix(name, prefix) || len(name) != len(prefix)+5 {
				t.Errorf("generateName %q gave name %q, want the prefix and 5 random characters", prefix, name)
			}
			if created.GetUID() == "" {
				t.Errorf("create did not set uid")
			}
			if ts := created.GetCreationTimestamp(); ts.IsZero() || ts.Time.Before(before) {
				t.Errorf("creationTimestamp %v, want a current time", ts)
			}
			if g := created.GetGeneration(); g != tc.generation {
				t.Errorf("generation after create = %d, want %d", g, tc.generation)
			}
			key := "/registry/" + storeDir(tc.resource) + "/" + ns + "/" + name
			checkStoredRV(t, ctx, c, key, created)
			checkMeta := func(what string, o apiObject) {
				t.Helper()
				if !equality.Semantic.DeepEqual(o.GetLabels(), labels) {
					t.Errorf("%s: labels %v, want %v", what, o.GetLabels(), labels)
				}
				if !equality.Semantic.DeepEqual(o.GetAnnotations(), annotations) {
					t.Errorf("%s: annotations %v, want %v", what, o.GetAnnotations(), annotations)
				}
				if !equality.Semantic.DeepEqual(o.GetOwnerReferences(), ownerRefs) {
					t.Errorf("%s: ownerReferences %+v, want %+v", what, o.GetOwnerReferences(), ownerRefs)
				}
			}
			checkMeta("create", created)

			got, err := tc.client.get(ctx, name)
			if err != nil {
				t.Fatalf("get: %v", err)
			}
			if got.GetUID() != created.GetUID() || got.GetResourceVersion() != created.GetResourceVersion() {
				t.Errorf("get: uid/resourceVersion %s/%s, create returned %s/%s", got.GetUID(), got.GetResourceVersion(), created.GetUID(), created.GetResourceVersion())
			}
			checkMeta("get", got)

			mod := got.DeepCopyObject().(apiObject)
			tc.mutate(mod)
			updated, err := tc.client.update(ctx, mod)
			if err != nil {
				t.Fatalf("update: %v", err)
			}
			checkStoredRV(t, ctx, c, key, updated)
			oldRV, _ := strconv.ParseInt(created.GetResourceVersion(), 10, 64)
			newRV, _ := strconv.ParseInt(updated.GetResourceVersion(), 10, 64)
			if newRV <= oldRV {
				t.Errorf("update: resourceVersion %d, not after %d", newRV, oldRV)
			}
			if updated.GetUID() != created.GetUID() || !updated.GetCreationTimestamp().Time.Equal(created.GetCreationTimestamp().Time) {
				t.Errorf("update changed uid or creationTimestamp")
			}
			if g := updated.GetGeneration(); g != tc.generationAfterUpdate {
				t.Errorf("generation after a content change = %d, want %d", g, tc.generationAfterUpdate)
			}
			if !tc.mutated(updated) {
				t.Errorf("update response lacks the change")
			}
			reread, err := tc.client.get(ctx, name)
			if err != nil {
				t.Fatalf("get after update: %v", err)
			}
			if !tc.mutated(reread) || reread.GetResourceVersion() != updated.GetResourceVersion() {
				t.Errorf("get after update: change stored=%v, resourceVersion %s want %s", tc.mutated(reread), reread.GetResourceVersion(), updated.GetResourceVersion())
			}
			checkMeta("update", reread)

			// got still carries the resourceVersion of create.
			stale := got.DeepCopyObject().(apiObject)
			stale.SetAnnotations(map[string]string{"example.com/stale": "yes"})
			if _, err := tc.client.update(ctx, stale); !apierrors.IsConflict(err) {
				t.Errorf("update with stale resourceVersion: got %v, want Conflict", err)
			}

			dup := tc.newObj()
			dup.SetName(name)
			dup.SetNamespace(ns)
			if _, err := tc.client.create(ctx, dup, metav1.CreateOptions{}); !apierrors.IsAlreadyExists(err) {
				t.Errorf("create of an existing name: got %v, want AlreadyExists", err)
			}

			if err := tc.client.delete(ctx, name, metav1.DeleteOptions{}); err != nil {
				t.Fatalf("delete: %v", err)
			}
			if _, err := tc.client.get(ctx, name); !apierrors.IsNotFound(err) {
				t.Errorf("get after delete: got %v, want NotFound", err)
			}
			if rev := storeModRevision(t, ctx, c, key); rev != 0 {
				t.Errorf("%s still in the store after delete", key)
			}
			if err := tc.client.delete(ctx, name, metav1.DeleteOptions{}); !apierrors.IsNotFound(err) {
				t.Errorf("second delete: got %v, want NotFound", err)
			}
		})
	}
}

// testErrors checks the status codes and messages Kubernetes answers the
// usual client mistakes with.
func testErrors(t *testing.T, c *apitest.Cluster) {
	cs := c.Client(0)
	ctx := c.Ctx()
	const ns = "errors"
	mkNamespace(t, ctx, cs, ns)
	cms := cs.CoreV1().ConfigMaps(ns)
	existing, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "existing"}, Data: map[string]string{"n": "0"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cs.RbacV1().Roles(ns).Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "existing"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// Move the configmap on, so existing carries a stale resourceVersion.
	moved := existing.DeepCopy()
	moved.Data["n"] = "1"
	if _, err := cms.Update(ctx, moved, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	cm := func(name string) *corev1.ConfigMap {
		return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}}
	}

	cases := []struct {
		name string
		do   func() error
		is   func(error) bool
		msg  string
	}{
		{"get missing configmap", func() error { _, err := cms.Get(ctx, "missing", metav1.GetOptions{}); return err },
			apierrors.IsNotFound, `configmaps "missing" not found`},
		{"get missing deployment", func() error {
			_, err := cs.AppsV1().Deployments(ns).Get(ctx, "missing", metav1.GetOptions{})
			return err
		}, apierrors.IsNotFound, `deployments.apps "missing" not found`},
		{"get missing role", func() error { _, err := cs.RbacV1().Roles(ns).Get(ctx, "missing", metav1.GetOptions{}); return err },
			apierrors.IsNotFound, `roles.rbac.authorization.k8s.io "missing" not found`},
		{"update missing configmap", func() error { _, err := cms.Update(ctx, cm("missing"), metav1.UpdateOptions{}); return err },
			apierrors.IsNotFound, `configmaps "missing" not found`},
		{"delete missing configmap", func() error { return cms.Delete(ctx, "missing", metav1.DeleteOptions{}) },
			apierrors.IsNotFound, `configmaps "missing" not found`},
		{"create existing configmap", func() error { _, err := cms.Create(ctx, cm("existing"), metav1.CreateOptions{}); return err },
			apierrors.IsAlreadyExists, `configmaps "existing" already exists`},
		{"create existing role", func() error {
			_, err := cs.RbacV1().Roles(ns).Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "existing"}}, metav1.CreateOptions{})
			return err
		}, apierrors.IsAlreadyExists, `roles.rbac.authorization.k8s.io "existing" already exists`},
		{"update with stale resourceVersion", func() error { _, err := cms.Update(ctx, existing, metav1.UpdateOptions{}); return err },
			apierrors.IsConflict, `Operation cannot be fulfilled on configmaps "existing": the object has been modified`},
		{"delete with stale resourceVersion precondition", func() error {
			return cms.Delete(ctx, "existing", metav1.DeleteOptions{Preconditions: metav1.NewRVDeletionPrecondition(existing.ResourceVersion).Preconditions})
		}, apierrors.IsConflict, `Operation cannot be fulfilled on ConfigMap "existing": the ResourceVersion in the precondition`},
		{"delete with wrong uid precondition", func() error {
			return cms.Delete(ctx, "existing", *metav1.NewPreconditionDeleteOptions("6f1f0a5e-0000-4000-8000-000000000000"))
		}, apierrors.IsConflict, `Operation cannot be fulfilled on ConfigMap "existing": the UID in the precondition`},
		{"create in missing namespace", func() error {
			_, err := cs.CoreV1().ConfigMaps("nope").Create(ctx, cm("a"), metav1.CreateOptions{})
			return err
		}, apierrors.IsNotFound, `namespaces "nope" not found`},
		{"create deployment in missing namespace", func() error {
			d := webDeployment("a")
			d.Namespace = "nope"
			_, err := cs.AppsV1().Deployments("nope").Create(ctx, d, metav1.CreateOptions{})
			return err
		}, apierrors.IsNotFound, `namespaces "nope" not found`},
		{"create with invalid name", func() error { _, err := cms.Create(ctx, cm("Not_A_Name"), metav1.CreateOptions{}); return err },
			apierrors.IsInvalid, `ConfigMap "Not_A_Name" is invalid: metadata.name`},
		{"create with namespace mismatch", func() error {
			o := cm("a")
			o.Namespace = "default"
			_, err := cms.Create(ctx, o, metav1.CreateOptions{})
			return err
		}, apierrors.IsBadRequest, "the namespace of the provided object does not match the namespace sent on the request"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.do()
			if !tc.is(err) {
				t.Fatalf("got %v (reason %s), want %s", err, apierrors.ReasonForError(err), tc.msg)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("message %q, want it to contain %q", err.Error(), tc.msg)
			}
		})
	}
	// None of the failed writes changed the object.
	got, err := cms.Get(ctx, "existing", metav1.GetOptions{})
	if err != nil || got.Data["n"] != "1" {
		t.Fatalf("existing after the failed writes: %v %v", got, err)
	}
}

// testGeneration checks metadata.generation on deployments and pods: 1 on
// create, bumped by spec changes only, never by metadata or status writes.
func testGeneration(t *testing.T, c *apitest.Cluster) {
	cs := c.Client(0)
	ctx := c.Ctx()
	const ns = "generation"
	mkNamespace(t, ctx, cs, ns)

	t.Run("deployment", func(t *testing.T) {
		deps := cs.AppsV1().Deployments(ns)
		d, err := deps.Create(ctx, webDeployment("web"), metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if d.Generation != 1 {
			t.Fatalf("generation after create = %d, want 1", d.Generation)
		}
		steps := []struct {
			what   string
			change func(*appsv1.Deployment)
			want   int64
		}{
			{"label", func(d *appsv1.Deployment) { d.Labels = map[string]string{"x": "y"} }, 1},
			// Kubernetes bumps a Deployment's generation on annotation
			// changes too (its strategy: rollbacks once travelled as an
			// annotation).
			{"annotation", func(d *appsv1.Deployment) { d.Annotations = map[string]string{"example.com/a": "b"} }, 2},
			{"no change", func(*appsv1.Deployment) {}, 2},
			{"replicas", func(d *appsv1.Deployment) { d.Spec.Replicas = ptr.To[int32](3) }, 3},
			{"image", func(d *appsv1.Deployment) { d.Spec.Template.Spec.Containers[0].Image = "nginx:1.28" }, 4},
			{"paused", func(d *appsv1.Deployment) { d.Spec.Paused = true }, 5},
			{"label again", func(d *appsv1.Deployment) { d.Labels["x"] = "z" }, 5},
		}
		for _, s := range steps {
			s.change(d)
			if d, err = deps.Update(ctx, d, metav1.UpdateOptions{}); err != nil {
				t.Fatalf("%s: %v", s.what, err)
			}
			if d.Generation != s.want {
				t.Errorf("after a %s change: generation %d, want %d", s.what, d.Generation, s.want)
			}
		}
		d.Status = appsv1.DeploymentStatus{ObservedGeneration: d.Generation, Replicas: 3, UpdatedReplicas: 3}
		if d, err = deps.UpdateStatus(ctx, d, metav1.UpdateOptions{}); err != nil {
			t.Fatalf("update status: %v", err)
		}
		if d.Generation != 5 || d.Status.ObservedGeneration != 5 {
			t.Errorf("after a status write: generation %d, observedGeneration %d, want 5 and 5", d.Generation, d.Status.ObservedGeneration)
		}
	})

	t.Run("pod", func(t *testing.T) {
		pods := cs.CoreV1().Pods(ns)
		p, err := pods.Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p"}, Spec: nginxPodSpec("nginx:1.27")}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if p.Generation != 1 {
			t.Fatalf("generation after create = %d, want 1", p.Generation)
		}
		p.Labels = map[string]string{"x": "y"}
		if p, err = pods.Update(ctx, p, metav1.UpdateOptions{}); err != nil || p.Generation != 1 {
			t.Fatalf("after a label change: generation %d (%v), want 1", p.Generation, err)
		}
		p.Spec.Containers[0].Image = "nginx:1.28"
		if p, err = pods.Update(ctx, p, metav1.UpdateOptions{}); err != nil || p.Generation != 2 {
			t.Fatalf("after an image change: generation %d (%v), want 2", p.Generation, err)
		}
	})
}

// statusCase exercises the status subresource of one type.
type statusCase[T apiObject] struct {
	client statusClient[T]
	newObj func() T
	// setStatus writes a status only the status subresource may store;
	// hasStatus recognises it, and initial checks the status the server
	// itself gives a new object.
	setStatus func(T)
	hasStatus func(T) bool
	initial   func(T) error
	// changeSpec changes the spec; specChanged recognises the change.
	changeSpec  func(T)
	specChanged func(T) bool
}

func (sc statusCase[T]) run(t *testing.T, c *apitest.Cluster) {
	ctx := c.Ctx()
	obj := sc.newObj()
	sc.setStatus(obj)
	created, err := sc.client.Create(ctx, obj, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if sc.hasStatus(created) {
		t.Errorf("create stored the status the client sent")
	}
	if err := sc.initial(created); err != nil {
		t.Errorf("status after create: %v", err)
	}
	gen := created.GetGeneration()

	// The main resource ignores status.
	upd := created.DeepCopyObject().(T)
	sc.setStatus(upd)
	upd.SetLabels(map[string]string{"updated": "yes"})
	updated, err := sc.client.Update(ctx, upd, metav1.UpdateOptions{})
	if err != nil {
		t.Fatalf("update: %v", err)
	}
	if sc.hasStatus(updated) || updated.GetLabels()["updated"] != "yes" {
		t.Errorf("update of the main resource: status stored=%v (want false), label stored=%v (want true)", sc.hasStatus(updated), updated.GetLabels()["updated"] == "yes")
	}
	if err := sc.initial(updated); err != nil {
		t.Errorf("status after update of the main resource: %v", err)
	}

	// The status subresource stores status and ignores spec.
	st := updated.DeepCopyObject().(T)
	sc.setStatus(st)
	sc.changeSpec(st)
	withStatus, err := sc.client.UpdateStatus(ctx, st, metav1.UpdateOptions{})
	if err != nil {
		t.Fatalf("update status: %v", err)
	}
	if !sc.hasStatus(withStatus) {
		t.Errorf("UpdateStatus did not store the status")
	}
	if sc.specChanged(withStatus) {
		t.Errorf("UpdateStatus stored a spec change")
	}
	if withStatus.GetGeneration() != gen {
		t.Errorf("UpdateStatus changed generation %d -> %d", gen, withStatus.GetGeneration())
	}
	got, err := sc.client.Get(ctx, created.GetName(), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !sc.hasStatus(got) || sc.specChanged(got) || got.GetResourceVersion() != withStatus.GetResourceVersion() {
		t.Errorf("get after UpdateStatus: status=%v spec changed=%v rv=%s (want true, false, %s)", sc.hasStatus(got), sc.specChanged(got), got.GetResourceVersion(), withStatus.GetResourceVersion())
	}

	// And a later write to the main resource keeps the status.
	got.SetAnnotations(map[string]string{"later": "yes"})
	later, err := sc.client.Update(ctx, got, metav1.UpdateOptions{})
	if err != nil {
		t.Fatalf("update after status: %v", err)
	}
	if !sc.hasStatus(later) {
		t.Errorf("update of the main resource dropped the stored status")
	}
}

// testStatusSubresource checks that status is ignored on create and update
// of the main resource and settable through UpdateStatus, which in turn
// ignores spec.
func testStatusSubresource(t *testing.T, c *apitest.Cluster) {
	cs := c.Client(0)
	const ns = "status"
	mkNamespace(t, c.Ctx(), cs, ns)
	const lbIP = "192.0.2.10"
	const podIP = "10.244.1.5"
	cases := []struct {
		name string
		run  func(*testing.T, *apitest.Cluster)
	}{
		{"deployments", statusCase[*appsv1.Deployment]{
			client: cs.AppsV1().Deployments(ns),
			newObj: func() *appsv1.Deployment { d := webDeployment("web"); d.Namespace = ns; return d },
			setStatus: func(d *appsv1.Deployment) {
				d.Status = appsv1.DeploymentStatus{ObservedGeneration: 1, Replicas: 1, UpdatedReplicas: 1, ReadyReplicas: 1, AvailableReplicas: 1}
			},
			hasStatus: func(d *appsv1.Deployment) bool { return d.Status.ReadyReplicas == 1 },
			initial: func(d *appsv1.Deployment) error {
				if !equality.Semantic.DeepEqual(d.Status, appsv1.DeploymentStatus{}) {
					return fmt.Errorf("%+v, want empty", d.Status)
				}
				return nil
			},
			changeSpec:  func(d *appsv1.Deployment) { d.Spec.Replicas = ptr.To[int32](5) },
			specChanged: func(d *appsv1.Deployment) bool { return *d.Spec.Replicas == 5 },
		}.run},
		{"services", statusCase[*corev1.Service]{
			client: cs.CoreV1().Services(ns),
			newObj: func() *corev1.Service {
				s := webService("lb")
				s.Namespace = ns
				s.Spec.Type = corev1.ServiceTypeLoadBalancer
				return s
			},
			setStatus: func(s *corev1.Service) {
				s.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: lbIP, IPMode: ptr.To(corev1.LoadBalancerIPModeVIP)}}
			},
			hasStatus: func(s *corev1.Service) bool {
				return len(s.Status.LoadBalancer.Ingress) == 1 && s.Status.LoadBalancer.Ingress[0].IP == lbIP
			},
			initial: func(s *corev1.Service) error {
				if len(s.Status.LoadBalancer.Ingress) != 0 || len(s.Status.Conditions) != 0 {
					return fmt.Errorf("%+v, want empty", s.Status)
				}
				return nil
			},
			changeSpec:  func(s *corev1.Service) { s.Spec.Selector = map[string]string{"app": "other"} },
			specChanged: func(s *corev1.Service) bool { return s.Spec.Selector["app"] == "other" },
		}.run},
		{"pods", statusCase[*corev1.Pod]{
			client: cs.CoreV1().Pods(ns),
			newObj: func() *corev1.Pod {
				return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: ns}, Spec: nginxPodSpec("nginx:1.27")}
			},
			setStatus: func(p *corev1.Pod) {
				p.Status.Phase = corev1.PodRunning
				p.Status.PodIP = podIP
				p.Status.PodIPs = []corev1.PodIP{{IP: podIP}}
			},
			hasStatus: func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning && p.Status.PodIP == podIP },
			// A new pod is Pending with its QoS class, as Kubernetes'
			// pod strategy makes it.
			initial: func(p *corev1.Pod) error {
				if p.Status.Phase != corev1.PodPending || p.Status.PodIP != "" || p.Status.QOSClass != corev1.PodQOSBestEffort {
					return fmt.Errorf("phase %q podIP %q qosClass %q, want Pending, none, BestEffort", p.Status.Phase, p.Status.PodIP, p.Status.QOSClass)
				}
				return nil
			},
			changeSpec:  func(p *corev1.Pod) { p.Spec.Containers[0].Image = "nginx:1.28" },
			specChanged: func(p *corev1.Pod) bool { return p.Spec.Containers[0].Image == "nginx:1.28" },
		}.run},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, c) })
	}
}

// testFinalizers checks deletion of objects that carry a finalizer: the
// delete only marks them, and removing the last finalizer deletes them.
func testFinalizers(t *testing.T, c *apitest.Cluster) {
	cs := c.Client(0)
	ctx := c.Ctx()
	const ns = "finalizers"
	const finalizer = "example.com/hold"
	mkNamespace(t, ctx, cs, ns)
	cases := []struct {
		resource string
		client   anyClient
		newObj   func() apiObject
		watch    func(metav1.ListOptions) (watch.Interface, error)
	}{
		{"configmaps", untyped(cs.CoreV1().ConfigMaps(ns)), func() apiObject { return &corev1.ConfigMap{} },
			func(o metav1.ListOptions) (watch.Interface, error) { return cs.CoreV1().ConfigMaps(ns).Watch(ctx, o) }},
		{"secrets", untyped(cs.CoreV1().Secrets(ns)), func() apiObject { return &corev1.Secret{} },
			func(o metav1.ListOptions) (watch.Interface, error) { return cs.CoreV1().Secrets(ns).Watch(ctx, o) }},
		{"deployments", untyped(cs.AppsV1().Deployments(ns)), func() apiObject { return webDeployment("") },
			func(o metav1.ListOptions) (watch.Interface, error) { return cs.AppsV1().Deployments(ns).Watch(ctx, o) }},
		{"pods", untyped(cs.CoreV1().Pods(ns)), func() apiObject { return &corev1.Pod{Spec: nginxPodSpec("nginx:1.27")} },
			func(o metav1.ListOptions) (watch.Interface, error) { return cs.CoreV1().Pods(ns).Watch(ctx, o) }},
	}
	for _, tc := range cases {
		t.Run(tc.resource, func(t *testing.T) {
			name := "held"
			key := "/registry/" + storeDir(tc.resource) + "/" + ns + "/" + name
			obj := tc.newObj()
			obj.SetName(name)
			obj.SetNamespace(ns)
			obj.SetFinalizers([]string{finalizer})
			created, err := tc.client.create(ctx, obj, metav1.CreateOptions{})
			if err != nil {
				t.Fatalf("create: %v", err)
			}
			w, err := tc.watch(metav1.ListOptions{ResourceVersion: created.GetResourceVersion(), FieldSelector: fields.OneTermEqualSelector("metadata.name", name).String()})
			if err != nil {
				t.Fatalf("watch: %v", err)
			}
			defer w.Stop()

			if err := tc.client.delete(ctx, name, metav1.DeleteOptions{}); err != nil {
				t.Fatalf("delete: %v", err)
			}
			ev := nextWatchEvent(t, ctx, w)
			if m, ok := ev.Object.(metav1.Object); !ok || ev.Type != watch.Modified || m.GetDeletionTimestamp() == nil {
				t.Fatalf("after delete: event %s, want MODIFIED with deletionTimestamp", describeEvent(ev))
			}
			got, err := tc.client.get(ctx, name)
			if err != nil {
				t.Fatalf("get after delete: %v (the finalizer must keep the object)", err)
			}
			if got.GetDeletionTimestamp() == nil || ptr.Deref(got.GetDeletionGracePeriodSeconds(), -1) != 0 {
				t.Errorf("deletionTimestamp %v, deletionGracePeriodSeconds %v: want set and 0", got.GetDeletionTimestamp(), got.GetDeletionGracePeriodSeconds())
			}
			if !equality.Semantic.DeepEqual(got.GetFinalizers(), []string{finalizer}) {
				t.Errorf("finalizers %v, want [%s]", got.GetFinalizers(), finalizer)
			}
			checkStoredRV(t, ctx, c, key, got)
			// Deleting again changes nothing.
			if err := tc.client.delete(ctx, name, metav1.DeleteOptions{}); err != nil {
				t.Errorf("second delete: %v", err)
			}
			// No finalizer can be added to an object being deleted.
			more := got.DeepCopyObject().(apiObject)
			more.SetFinalizers([]string{finalizer, "example.com/more"})
			if _, err := tc.client.update(ctx, more); !apierrors.IsInvalid(err) {
				t.Errorf("adding a finalizer while deleting: got %v, want Invalid", err)
			}

			got.SetFinalizers(nil)
			if _, err := tc.client.update(ctx, got); err != nil {
				t.Fatalf("remove finalizer: %v", err)
			}
			if ev := nextWatchEvent(t, ctx, w); ev.Type != watch.Deleted {
				t.Fatalf("after removing the finalizer: event %s, want DELETED", describeEvent(ev))
			}
			if _, err := tc.client.get(ctx, name); !apierrors.IsNotFound(err) {
				t.Errorf("get after the finalizer is gone: got %v, want NotFound", err)
			}
			if rev := storeModRevision(t, ctx, c, key); rev != 0 {
				t.Errorf("%s still in the store", key)
			}
		})
	}
}

// testConcurrentUpdates has 8 writers increment one counter with
// get-modify-update under retry.RetryOnConflict: optimistic concurrency
// must lose no increment and hand out every value exactly once.
func testConcurrentUpdates(t *testing.T, c *apitest.Cluster) {
	cs := c.Client(0)
	ctx := c.Ctx()
	const ns = "counter"
	const writers, perWriter = 8, 10
	mkNamespace(t, ctx, cs, ns)
	cms := cs.CoreV1().ConfigMaps(ns)
	if _, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "counter"}, Data: map[string]string{"n": "0"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// Enough attempts that a writer outlasts the other seven.
	backoff := wait.Backoff{Steps: 500, Duration: time.Millisecond, Factor: 1, Jitter: 1}
	var (
		mu        sync.Mutex
		values    []int
		rvs       = map[string]bool{}
		conflicts int
		wg        sync.WaitGroup
		errs      = make(chan error, writers)
	)
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range perWriter {
				attempts := 0
				err := retry.RetryOnConflict(backoff, func() error {
					attempts++
					cur, err := cms.Get(ctx, "counter", metav1.GetOptions{})
					if err != nil {
						return err
					}
					n, err := strconv.Atoi(cur.Data["n"])
					if err != nil {
						return err
					}
					cur.Data["n"] = strconv.Itoa(n + 1)
					out, err := cms.Update(ctx, cur, metav1.UpdateOptions{})
					if err != nil {
						return err
					}
					mu.Lock()
					values = append(values, n+1)
					rvs[out.ResourceVersion] = true
					mu.Unlock()
					return nil
				})
				mu.Lock()
				conflicts += attempts - 1
				mu.Unlock()
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("increment: %v", err)
	}
	final, err := cms.Get(ctx, "counter", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	const total = writers * perWriter
	if final.Data["n"] != strconv.Itoa(total) {
		t.Fatalf("counter = %s, want %d", final.Data["n"], total)
	}
	sort.Ints(values)
	for i, v := range values {
		if v != i+1 {
			t.Fatalf("successful updates wrote %v, want each of 1..%d once", values, total)
		}
	}
	if len(rvs) != total {
		t.Fatalf("%d distinct resourceVersions for %d updates", len(rvs), total)
	}
	checkStoredRV(t, ctx, c, "/registry/configmaps/"+ns+"/counter", final)
	t.Logf("%d increments, %d conflicts retried", total, conflicts)
}
