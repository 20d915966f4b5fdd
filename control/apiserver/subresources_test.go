package apiserver_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

// TestSubresourceScale: /scale of deployments and replica sets reads and
// writes spec.replicas as an autoscaling/v1 Scale, with the owner's
// optimistic concurrency and Scale validation.
func testSubresourceScale(t *testing.T, s *surface) {
	ctx := s.c.Ctx()
	cs := s.admin(0)
	const ns = "default"

	type scaler struct {
		get      func(name string) (*autoscalingv1.Scale, error)
		update   func(name string, sc *autoscalingv1.Scale) (*autoscalingv1.Scale, error)
		replicas func(name string) (int32, int64, error) // spec.replicas and generation of the owner
	}
	deployments := scaler{
		get: func(name string) (*autoscalingv1.Scale, error) {
			return cs.AppsV1().Deployments(ns).GetScale(ctx, name, metav1.GetOptions{})
		},
		update: func(name string, sc *autoscalingv1.Scale) (*autoscalingv1.Scale, error) {
			return cs.AppsV1().Deployments(ns).UpdateScale(ctx, name, sc, metav1.UpdateOptions{})
		},
		replicas: func(name string) (int32, int64, error) {
			d, err := cs.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return 0, 0, err
			}
			return *d.Spec.Replicas, d.Generation, nil
		},
	}
	replicaSets := scaler{
		get: func(name string) (*autoscalingv1.Scale, error) {
			return cs.AppsV1().ReplicaSets(ns).GetScale(ctx, name, metav1.GetOptions{})
		},
		update: func(name string, sc *autoscalingv1.Scale) (*autoscalingv1.Scale, error) {
			return cs.AppsV1().ReplicaSets(ns).UpdateScale(ctx, name, sc, metav1.UpdateOptions{})
		},
		replicas: func(name string) (int32, int64, error) {
			rs, err := cs.AppsV1().ReplicaSets(ns).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return 0, 0, err
			}
			return *rs.Spec.Replicas, rs.Generation, nil
		},
	}
	cases := []struct {
		name   string
		create func(name string) error
		scaler
	}{
		{"deployments", func(name string) error {
			_, err := cs.AppsV1().Deployments(ns).Create(ctx, s.deployment(name, 2), metav1.CreateOptions{})
			return err
		}, deployments},
		{"replicasets", func(name string) error {
			_, err := cs.AppsV1().ReplicaSets(ns).Create(ctx, s.replicaSet(name, 2), metav1.CreateOptions{})
			return err
		}, replicaSets},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			name := "scale-" + tc.name
			if err := tc.create(name); err != nil {
				t.Fatal(err)
			}
			if _, err := tc.get("missing"); !apierrors.IsNotFound(err) {
				t.Fatalf("scale of a missing object: %v, want NotFound", err)
			}
			sc, err := tc.get(name)
			if err != nil {
				t.Fatal(err)
			}
			if sc.Name != name || sc.Namespace != ns || sc.ResourceVersion == "" || sc.UID == "" {
				t.Errorf("scale metadata %+v", sc.ObjectMeta)
			}
			if sc.Spec.Replicas != 2 {
				t.Errorf("scale spec.replicas = %d, want 2", sc.Spec.Replicas)
			}
			if want := "app=" + name; sc.Status.Selector != want {
				t.Errorf("scale status.selector = %q, want %q", sc.Status.Selector, want)
			}
			_, gen0, err := tc.replicas(name)
			if err != nil {
				t.Fatal(err)
			}

			stale := sc.DeepCopy()
			sc.Spec.Replicas = 5
			out, err := tc.update(name, sc)
			if err != nil {
				t.Fatalf("scale to 5: %v", err)
			}
			if out.Spec.Replicas != 5 || out.ResourceVersion == stale.ResourceVersion {
				t.Errorf("update returned replicas %d rv %s (old rv %s)", out.Spec.Replicas, out.ResourceVersion, stale.ResourceVersion)
			}
			if r, gen, err := tc.replicas(name); err != nil || r != 5 || gen != gen0+1 {
				t.Fatalf("owner after scale: replicas %d generation %d (was %d) %v; want 5 and a new generation", r, gen, gen0, err)
			}

			stale.Spec.Replicas = 7
			_, err = tc.update(name, stale)
			if !apierrors.IsConflict(err) {
				t.Fatalf("scale with a stale resourceVersion: %v, want Conflict (409)", err)
			}

			latest, err := tc.get(name)
			if err != nil {
				t.Fatal(err)
			}
			latest.Spec.Replicas = -1
			_, err = tc.update(name, latest)
			if !apierrors.IsInvalid(err) {
				t.Fatalf("scale to -1: %v, want Invalid (422)", err)
			}
			if st := s.statusOf(err); st.Code != 422 || !s.hasCause(st, metav1.CauseTypeFieldValueInvalid, "spec.replicas") {
				t.Errorf("scale to -1: status %+v, want 422 with an invalid spec.replicas cause", st)
			}

			// An unconditional scale (no resourceVersion) is last-writer-wins.
			_, err = tc.update(name, &autoscalingv1.Scale{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Spec: autoscalingv1.ScaleSpec{Replicas: 3}})
			if err != nil {
				t.Fatalf("unconditional scale: %v", err)
			}
			if r, _, err := tc.replicas(name); err != nil || r != 3 {
				t.Fatalf("owner after unconditional scale: %d %v, want 3", r, err)
			}
		})
	}
}

// TestSubresourcePodBindingEvictionLog covers the scheduler's, the
// drainer's and kubectl logs' subresources of pods.
func testSubresourcePodBindingEvictionLog(t *testing.T, s *surface) {
	ctx := s.c.Ctx()
	cs := s.admin(0)
	const ns = "default"
	pods := cs.CoreV1().Pods(ns)
	for _, name := range []string{"bind-me", "evict-me", "pending-log", "bound-log"} {
		if _, err := pods.Create(ctx, s.pod(name, ""), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	bind := func(pod, node string) error {
		return pods.Bind(ctx, &corev1.Binding{
			ObjectMeta: metav1.ObjectMeta{Name: pod, Namespace: ns},
			Target:     corev1.ObjectReference{Kind: "Node", Name: node},
		}, metav1.CreateOptions{})
	}

	t.Run("binding", func(t *testing.T) {
		if err := bind("bind-me", "node-a"); err != nil {
			t.Fatalf("bind: %v", err)
		}
		p, err := pods.Get(ctx, "bind-me", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if p.Spec.NodeName != "node-a" {
			t.Errorf("spec.nodeName = %q, want node-a", p.Spec.NodeName)
		}
		scheduled := false
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionTrue {
				scheduled = true
			}
		}
		if !scheduled {
			t.Errorf("no PodScheduled=True condition: %+v", p.Status.Conditions)
		}
		err = bind("bind-me", "node-b")
		if !apierrors.IsConflict(err) {
			t.Fatalf("binding a bound pod: %v, want Conflict (409)", err)
		}
		if p, err := pods.Get(ctx, "bind-me", metav1.GetOptions{}); err != nil || p.Spec.NodeName != "node-a" {
			t.Fatalf("after the refused re-bind: node %q %v", p.Spec.NodeName, err)
		}
		// Kubernetes (BindingREST.assignPod) interprets the storage error:
		// 404 `pods "ghost" not found`.
		if err := bind("ghost", "node-a"); !apierrors.IsNotFound(err) || err.Error() != `pods "ghost" not found` {
			t.Errorf("binding a missing pod: %v (code %d), want 404 NotFound `pods \"ghost\" not found`", err, s.statusOf(err).Code)
		}
	})

	t.Run("eviction", func(t *testing.T) {
		err := pods.EvictV1(ctx, &policyv1.Eviction{ObjectMeta: metav1.ObjectMeta{Name: "evict-me", Namespace: ns}})
		if err != nil {
			t.Fatalf("evict: %v", err)
		}
		if _, err := pods.Get(ctx, "evict-me", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Fatalf("unscheduled pod after eviction: %v, want NotFound", err)
		}
		// A pod on a node is evicted gracefully, as a delete would be.
		if _, err := pods.Create(ctx, s.pod("evict-bound", "node-a"), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := pods.EvictV1(ctx, &policyv1.Eviction{ObjectMeta: metav1.ObjectMeta{Name: "evict-bound", Namespace: ns}}); err != nil {
			t.Fatalf("evict a bound pod: %v", err)
		}
		p, err := pods.Get(ctx, "evict-bound", metav1.GetOptions{})
		if err != nil || p.DeletionTimestamp == nil || p.DeletionGracePeriodSeconds == nil || *p.DeletionGracePeriodSeconds != 30 {
			t.Fatalf("bound pod after eviction: %v, want it terminating with a 30s grace period", err)
		}
		err = pods.EvictV1(ctx, &policyv1.Eviction{ObjectMeta: metav1.ObjectMeta{Name: "ghost", Namespace: ns}})
		if !apierrors.IsNotFound(err) {
			t.Fatalf("evicting a missing pod: %v, want NotFound", err)
		}
	})

	t.Run("log", func(t *testing.T) {
		if err := bind("bound-log", "node-a"); err != nil {
			t.Fatal(err)
		}
		// Stream is how kubectl reads logs; unlike DoRaw it decodes the
		// Status of a failed request.
		logs := func(name string) error {
			rc, err := pods.GetLogs(name, &corev1.PodLogOptions{}).Stream(ctx)
			if err == nil {
				rc.Close()
			}
			return err
		}
		// Kubernetes answers an unscheduled pod's logs with no content:
		// there is no node to ask yet.
		if err := logs("pending-log"); err != nil {
			t.Errorf("logs of an unscheduled pod: %v, want none (Kubernetes returns empty logs)", err)
		}
		// A bound pod's logs come from its node's kubelet; node-a does not
		// exist, so the API server cannot reach it and says which node.
		err := logs("bound-log")
		if err == nil {
			t.Fatal("logs of a pod on a missing node: no error")
		}
		if st := s.statusOf(err); st.Code == 404 && strings.Contains(st.Message, "could not find the requested resource") {
			t.Fatalf("logs of bound-log: %+v; the route answered 404", st)
		}
		t.Logf("logs of bound-log: %v", err)
		err = logs("ghost")
		if !apierrors.IsNotFound(err) || !strings.Contains(err.Error(), `pods "ghost" not found`) {
			t.Fatalf("logs of a missing pod: %v, want NotFound naming the pod", err)
		}
	})
}

// TestSubresourceNamespaceDeletion: namespaces are deleted one at a time
// through Terminating and namespaces/finalize; Kubernetes serves no
// deletecollection for them (405), so no request can skip finalization.
func testSubresourceNamespaceDeletion(t *testing.T, s *surface) {
	ctx := s.c.Ctx()
	cs := s.admin(0)
	// Only doomed-1 matches the collection delete below.
	for name, doom := range map[string]string{"doomed-1": "yes", "doomed-2": "no"} {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"doom": doom}}}
		if _, err := cs.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := cs.CoreV1().ConfigMaps(name).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "content"}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("deletecollection", func(t *testing.T) {
		var code int
		err := cs.CoreV1().RESTClient().Delete().Resource("namespaces").Param("labelSelector", "doom=yes").Do(ctx).StatusCode(&code).Error()
		if code != 405 || !apierrors.IsMethodNotSupported(err) {
			t.Errorf("DELETE /api/v1/namespaces: HTTP %d %v, want 405 MethodNotAllowed", code, err)
		}
		ns, err := cs.CoreV1().Namespaces().Get(ctx, "doomed-1", metav1.GetOptions{})
		if err != nil {
			t.Fatalf("namespace after a collection delete: %v; it skipped Terminating and finalization", err)
		}
		if ns.DeletionTimestamp != nil {
			t.Errorf("namespace terminating after a refused collection delete")
		}
	})

	t.Run("delete", func(t *testing.T) {
		if err := cs.CoreV1().Namespaces().Delete(ctx, "doomed-2", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		ns, err := cs.CoreV1().Namespaces().Get(ctx, "doomed-2", metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			// The namespace controller may already have emptied it.
		case err != nil:
			t.Fatal(err)
		case ns.DeletionTimestamp == nil || ns.Status.Phase != corev1.NamespaceTerminating:
			t.Errorf("deleted namespace: deletionTimestamp %v phase %q, want Terminating", ns.DeletionTimestamp, ns.Status.Phase)
		}
		// Nothing new may be created in it.
		_, err = cs.CoreV1().ConfigMaps("doomed-2").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "late"}}, metav1.CreateOptions{})
		if !apierrors.IsForbidden(err) && !apierrors.IsNotFound(err) {
			t.Errorf("create in a terminating namespace: %v, want Forbidden (or NotFound once it is gone)", err)
		}
	})
}

// TestSubresourceStatus: /status writes change status only, and writes to
// the main resource leave status as stored.
func testSubresourceStatus(t *testing.T, s *surface) {
	ctx := s.c.Ctx()
	cs := s.admin(0)
	const ns = "default"

	t.Run("deployments", func(t *testing.T) {
		deploys := cs.AppsV1().Deployments(ns)
		d, err := deploys.Create(ctx, s.deployment("st", 2), metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		d.Status = appsv1.DeploymentStatus{ObservedGeneration: 1, Replicas: 2, UpdatedReplicas: 2, ReadyReplicas: 1, AvailableReplicas: 1}
		d.Spec.Replicas = ptr.To(int32(9))
		d.Labels = map[string]string{"sneaky": "yes"}
		got, err := deploys.UpdateStatus(ctx, d, metav1.UpdateOptions{})
		if err != nil {
			t.Fatalf("update status: %v", err)
		}
		if got.Status.Replicas != 2 || got.Status.ReadyReplicas != 1 || got.Status.ObservedGeneration != 1 {
			t.Errorf("status after UpdateStatus: %+v", got.Status)
		}
		if *got.Spec.Replicas != 2 {
			t.Errorf("UpdateStatus changed spec.replicas to %d", *got.Spec.Replicas)
		}
		if got.Labels["sneaky"] != "" {
			t.Errorf("UpdateStatus changed labels: %v", got.Labels)
		}
		if got.Generation != 1 {
			t.Errorf("UpdateStatus bumped generation to %d", got.Generation)
		}

		got.Status = appsv1.DeploymentStatus{}
		got.Spec.Replicas = ptr.To(int32(4))
		got.Labels = map[string]string{"tier": "web"}
		upd, err := deploys.Update(ctx, got, metav1.UpdateOptions{})
		if err != nil {
			t.Fatalf("update: %v", err)
		}
		if *upd.Spec.Replicas != 4 || upd.Labels["tier"] != "web" || upd.Generation != 2 {
			t.Errorf("update: replicas %d labels %v generation %d; want 4, tier=web, 2", *upd.Spec.Replicas, upd.Labels, upd.Generation)
		}
		if upd.Status.Replicas != 2 || upd.Status.ObservedGeneration != 1 {
			t.Errorf("Update of the main resource changed status: %+v", upd.Status)
		}
	})

	t.Run("pods", func(t *testing.T) {
		pods := cs.CoreV1().Pods(ns)
		p, err := pods.Create(ctx, s.pod("st-pod", "node-a"), metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if p.Status.Phase != corev1.PodPending {
			t.Errorf("new pod phase %q, want Pending", p.Status.Phase)
		}
		p.Status.Phase = corev1.PodRunning
		p.Status.PodIP = "10.244.0.5"
		p.Status.PodIPs = []corev1.PodIP{{IP: "10.244.0.5"}}
		p.Spec.ActiveDeadlineSeconds = ptr.To(int64(100))
		got, err := pods.UpdateStatus(ctx, p, metav1.UpdateOptions{})
		if err != nil {
			t.Fatalf("update status: %v", err)
		}
		if got.Status.Phase != corev1.PodRunning || got.Status.PodIP != "10.244.0.5" {
			t.Errorf("status after UpdateStatus: %+v", got.Status)
		}
		if got.Spec.ActiveDeadlineSeconds != nil {
			t.Errorf("UpdateStatus changed spec.activeDeadlineSeconds to %d", *got.Spec.ActiveDeadlineSeconds)
		}

		got.Status.Phase = corev1.PodFailed
		got.Labels["tier"] = "web"
		upd, err := pods.Update(ctx, got, metav1.UpdateOptions{})
		if err != nil {
			t.Fatalf("update: %v", err)
		}
		if upd.Labels["tier"] != "web" {
			t.Errorf("update did not change labels: %v", upd.Labels)
		}
		if upd.Status.Phase != corev1.PodRunning {
			t.Errorf("Update of the main resource changed status.phase to %q", upd.Status.Phase)
		}
	})
}

// TestSubresourcePodGracefulDeletion: pods on a node get a grace period
// for the node agent; pods that never ran go at once; grace period 0 is
// immediate.
func testSubresourcePodGracefulDeletion(t *testing.T, s *surface) {
	ctx := s.c.Ctx()
	pods := s.admin(0).CoreV1().Pods("default")

	create := func(t *testing.T, name, node string, grace *int64) {
		t.Helper()
		p := s.pod(name, node)
		p.Spec.TerminationGracePeriodSeconds = grace
		if _, err := pods.Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	gone := func(t *testing.T, name string) {
		t.Helper()
		if p, err := pods.Get(ctx, name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Fatalf("pod %s after delete: %v (deletionTimestamp %v), want NotFound", name, err, p.DeletionTimestamp)
		}
	}
	terminating := func(t *testing.T, name string, grace int64) *corev1.Pod {
		t.Helper()
		p, err := pods.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("pod %s after a graceful delete: %v, want it to stay", name, err)
		}
		if p.DeletionTimestamp == nil {
			t.Fatalf("pod %s has no deletionTimestamp", name)
		}
		if p.DeletionGracePeriodSeconds == nil || *p.DeletionGracePeriodSeconds != grace {
			t.Fatalf("pod %s deletionGracePeriodSeconds = %v, want %d", name, p.DeletionGracePeriodSeconds, grace)
		}
		return p
	}

	t.Run("unscheduled pod goes at once", func(t *testing.T) {
		create(t, "unscheduled", "", nil)
		if err := pods.Delete(ctx, "unscheduled", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		gone(t, "unscheduled")
	})
	t.Run("bound pod gets the default grace period", func(t *testing.T) {
		create(t, "bound-default", "node-a", nil)
		if err := pods.Delete(ctx, "bound-default", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		terminating(t, "bound-default", 30)
	})
	t.Run("bound pod gets its terminationGracePeriodSeconds, then grace 0 removes it", func(t *testing.T) {
		create(t, "bound-45", "node-a", ptr.To(int64(45)))
		if err := pods.Delete(ctx, "bound-45", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		first := terminating(t, "bound-45", 45)
		// Deleting again without a shorter period changes nothing.
		if err := pods.Delete(ctx, "bound-45", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		again := terminating(t, "bound-45", 45)
		if !again.DeletionTimestamp.Equal(first.DeletionTimestamp) {
			t.Errorf("second delete moved deletionTimestamp from %v to %v", first.DeletionTimestamp, again.DeletionTimestamp)
		}
		if err := pods.Delete(ctx, "bound-45", metav1.DeleteOptions{GracePeriodSeconds: ptr.To(int64(0))}); err != nil {
			t.Fatal(err)
		}
		gone(t, "bound-45")
	})
	t.Run("bound pod with an explicit grace period", func(t *testing.T) {
		create(t, "bound-explicit", "node-a", nil)
		if err := pods.Delete(ctx, "bound-explicit", metav1.DeleteOptions{GracePeriodSeconds: ptr.To(int64(5))}); err != nil {
			t.Fatal(err)
		}
		terminating(t, "bound-explicit", 5)
	})
	t.Run("bound pod with grace period 0 goes at once", func(t *testing.T) {
		create(t, "bound-zero", "node-a", nil)
		if err := pods.Delete(ctx, "bound-zero", metav1.DeleteOptions{GracePeriodSeconds: ptr.To(int64(0))}); err != nil {
			t.Fatal(err)
		}
		gone(t, "bound-zero")
	})
}

// TestPatchTypes: JSON patch, JSON merge patch and strategic merge patch,
// the last merging containers by name where a merge patch replaces the
// list.
func testPatchTypes(t *testing.T, s *surface) {
	ctx := s.c.Ctx()
	cs := s.admin(0)
	const ns = "default"

	cases := []struct {
		name  string
		typ   types.PatchType
		patch string
		want  map[string]string
	}{
		{"json patch", types.JSONPatchType,
			`[{"op":"test","path":"/data/a","value":"1"},{"op":"add","path":"/data/b","value":"2"},{"op":"remove","path":"/data/a"},{"op":"replace","path":"/data/keep","value":"K"}]`,
			map[string]string{"b": "2", "keep": "K"}},
		{"merge patch", types.MergePatchType, `{"data":{"a":null,"c":"3"}}`, map[string]string{"keep": "k", "c": "3"}},
		{"strategic merge patch", types.StrategicMergePatchType, `{"data":{"a":"one","d":"4"}}`, map[string]string{"a": "one", "keep": "k", "d": "4"}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			name := fmt.Sprintf("patch-%d", i)
			if _, err := cs.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}, Data: map[string]string{"a": "1", "keep": "k"}}, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			got, err := cs.CoreV1().ConfigMaps(ns).Patch(ctx, name, tc.typ, []byte(tc.patch), metav1.PatchOptions{})
			if err != nil {
				t.Fatalf("patch: %v", err)
			}
			if !maps.Equal(got.Data, tc.want) {
				t.Errorf("data after patch = %v, want %v", got.Data, tc.want)
			}
			stored, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{})
			if err != nil || !maps.Equal(stored.Data, tc.want) {
				t.Errorf("stored data = %v (%v), want %v", stored.Data, err, tc.want)
			}
		})
	}

	t.Run("containers", func(t *testing.T) {
		deploys := cs.AppsV1().Deployments(ns)
		if _, err := deploys.Create(ctx, s.deployment("web", 1), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		images := func(d *appsv1.Deployment) map[string]string {
			out := map[string]string{}
			for _, c := range d.Spec.Template.Spec.Containers {
				out[c.Name] = c.Image
			}
			return out
		}
		steps := []struct {
			name  string
			typ   types.PatchType
			patch string
			want  map[string]string
		}{
			{"strategic: add a sidecar", types.StrategicMergePatchType,
				`{"spec":{"template":{"spec":{"containers":[{"name":"sidecar","image":"busybox:1"}]}}}}`,
				map[string]string{"app": "nginx:1", "sidecar": "busybox:1"}},
			{"strategic: change app's image by name", types.StrategicMergePatchType,
				`{"spec":{"template":{"spec":{"containers":[{"name":"app","image":"nginx:2"}]}}}}`,
				map[string]string{"app": "nginx:2", "sidecar": "busybox:1"}},
			{"strategic: delete the sidecar", types.StrategicMergePatchType,
				`{"spec":{"template":{"spec":{"containers":[{"name":"sidecar","$patch":"delete"}]}}}}`,
				map[string]string{"app": "nginx:2"}},
			{"merge: replaces the whole list", types.MergePatchType,
				`{"spec":{"template":{"spec":{"containers":[{"name":"only","image":"redis:7"}]}}}}`,
				map[string]string{"only": "redis:7"}},
		}
		for _, st := range steps {
			got, err := deploys.Patch(ctx, "web", st.typ, []byte(st.patch), metav1.PatchOptions{})
			if err != nil {
				t.Fatalf("%s: %v", st.name, err)
			}
			if !maps.Equal(images(got), st.want) {
				t.Errorf("%s: containers %v, want %v", st.name, images(got), st.want)
			}
		}
	})
}

// TestPatchServerSideApply: apply records its field manager, a second
// manager changing an owned field conflicts, and force takes it over.
func testPatchServerSideApply(t *testing.T, s *surface) {
	ctx := s.c.Ctx()
	cms := s.admin(0).CoreV1().ConfigMaps("default")

	apply := func(manager, body string, force bool) (*corev1.ConfigMap, error) {
		opts := metav1.PatchOptions{FieldManager: manager}
		if force {
			opts.Force = &force
		}
		return cms.Patch(ctx, "ssa", types.ApplyPatchType, []byte(body), opts)
	}
	doc := func(data string) string {
		return `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"ssa","namespace":"default"},"data":` + data + `}`
	}
	owns := func(cm *corev1.ConfigMap, manager, field string) bool {
		for _, mf := range cm.ManagedFields {
			if mf.Manager == manager && mf.Operation == metav1.ManagedFieldsOperationApply && mf.FieldsV1 != nil &&
				strings.Contains(mf.FieldsV1.GetRawString(), `"f:`+field+`"`) {
				return true
			}
		}
		return false
	}

	if _, err := apply("", doc(`{"shared":"v0"}`), false); !apierrors.IsInvalid(err) && !apierrors.IsBadRequest(err) {
		t.Fatalf("apply without a field manager: %v, want a 4xx naming fieldManager", err)
	} else if !strings.Contains(err.Error(), "fieldManager") {
		t.Errorf("apply without a field manager: %v does not name fieldManager", err)
	}

	cm, err := apply("mgr-a", doc(`{"shared":"v1","a-only":"x"}`), false)
	if err != nil {
		t.Fatalf("first apply (creates): %v", err)
	}
	if cm.Data["shared"] != "v1" || !owns(cm, "mgr-a", "shared") || !owns(cm, "mgr-a", "a-only") {
		t.Fatalf("after mgr-a's apply: data %v managedFields %+v", cm.Data, cm.ManagedFields)
	}
	// Re-applying the same document is a no-op, not a conflict.
	if _, err := apply("mgr-a", doc(`{"shared":"v1","a-only":"x"}`), false); err != nil {
		t.Fatalf("idempotent re-apply: %v", err)
	}

	_, err = apply("mgr-b", doc(`{"shared":"v2"}`), false)
	if !apierrors.IsConflict(err) {
		t.Fatalf("mgr-b applies a field mgr-a owns: %v, want Conflict (409)", err)
	}
	if !strings.Contains(err.Error(), `conflict with "mgr-a"`) || !strings.Contains(err.Error(), ".data.shared") {
		t.Errorf("conflict message %q should name mgr-a and .data.shared", err)
	}
	if st := s.statusOf(err); st.Details == nil || len(st.Details.Causes) == 0 || st.Details.Causes[0].Field != ".data.shared" {
		t.Errorf("conflict status details %+v, want a cause on .data.shared", st.Details)
	}
	if cur, err := cms.Get(ctx, "ssa", metav1.GetOptions{}); err != nil || cur.Data["shared"] != "v1" {
		t.Fatalf("after the refused apply: %v %v", cur.Data, err)
	}

	cm, err = apply("mgr-b", doc(`{"shared":"v2"}`), true)
	if err != nil {
		t.Fatalf("forced apply: %v", err)
	}
	if cm.Data["shared"] != "v2" || cm.Data["a-only"] != "x" {
		t.Errorf("after the forced apply: data %v", cm.Data)
	}
	if !owns(cm, "mgr-b", "shared") || owns(cm, "mgr-a", "shared") || !owns(cm, "mgr-a", "a-only") {
		t.Errorf("after the forced apply, managedFields %+v: want shared owned by mgr-b only and a-only still by mgr-a", cm.ManagedFields)
	}

	// mgr-a no longer owns shared, so dropping it from its configuration
	// leaves mgr-b's value; dropping a-only removes it.
	cm, err = apply("mgr-a", doc(`{}`), false)
	if err != nil {
		t.Fatalf("mgr-a applies an empty configuration: %v", err)
	}
	if cm.Data["shared"] != "v2" {
		t.Errorf("shared = %q after mgr-a gave up its fields, want mgr-b's v2", cm.Data["shared"])
	}
	if _, ok := cm.Data["a-only"]; ok {
		t.Errorf("a-only survived its only manager dropping it: %v", cm.Data)
	}

	// A plain update is recorded as an Update operation of its manager.
	cm.Data["shared"] = "v3"
	upd, err := cms.Update(ctx, cm, metav1.UpdateOptions{FieldManager: "editor"})
	if err != nil {
		t.Fatal(err)
	}
	updated := false
	for _, mf := range upd.ManagedFields {
		if mf.Manager == "editor" && mf.Operation == metav1.ManagedFieldsOperationUpdate {
			updated = true
		}
	}
	if !updated {
		t.Errorf("managedFields after an update by editor: %+v", upd.ManagedFields)
	}
}

// TestRequestDryRun: dryRun=All answers as the write would, and stores
// nothing.
func testRequestDryRun(t *testing.T, s *surface) {
	ctx := s.c.Ctx()
	cs := s.admin(0)
	cms := cs.CoreV1().ConfigMaps("default")
	dry := []string{metav1.DryRunAll}

	out, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "dry"}, Data: map[string]string{"k": "v"}}, metav1.CreateOptions{DryRun: dry})
	if err != nil {
		t.Fatalf("dry-run create: %v", err)
	}
	if out.Name != "dry" || out.Data["k"] != "v" {
		t.Errorf("dry-run create returned %+v", out)
	}
	if _, err := cms.Get(ctx, "dry", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("after dry-run create: %v, want NotFound", err)
	}
	// A dry-run create of an invalid object still fails validation.
	_, err = cs.AppsV1().Deployments("default").Create(ctx, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "bad"}}, metav1.CreateOptions{DryRun: dry})
	if !apierrors.IsInvalid(err) {
		t.Fatalf("dry-run create of an invalid deployment: %v, want Invalid", err)
	}

	real, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "real"}, Data: map[string]string{"k": "v"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	unchanged := func(t *testing.T, what string) {
		t.Helper()
		got, err := cms.Get(ctx, "real", metav1.GetOptions{})
		if err != nil {
			t.Fatalf("after %s: %v", what, err)
		}
		if got.Data["k"] != "v" || got.ResourceVersion != real.ResourceVersion {
			t.Fatalf("after %s: data %v rv %s (was %s); a dry run changed the object", what, got.Data, got.ResourceVersion, real.ResourceVersion)
		}
	}

	t.Run("update", func(t *testing.T) {
		c := real.DeepCopy()
		c.Data["k"] = "changed"
		out, err := cms.Update(ctx, c, metav1.UpdateOptions{DryRun: dry})
		if err != nil {
			t.Fatal(err)
		}
		if out.Data["k"] != "changed" {
			t.Errorf("dry-run update returned %v", out.Data)
		}
		unchanged(t, "dry-run update")
	})
	for _, pt := range []struct {
		typ  types.PatchType
		body string
	}{
		{types.MergePatchType, `{"data":{"k":"patched"}}`},
		{types.JSONPatchType, `[{"op":"replace","path":"/data/k","value":"patched"}]`},
		{types.StrategicMergePatchType, `{"data":{"k":"patched"}}`},
		{types.ApplyPatchType, `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"real"},"data":{"k":"patched"}}`},
	} {
		t.Run("patch "+string(pt.typ), func(t *testing.T) {
			opts := metav1.PatchOptions{DryRun: dry}
			if pt.typ == types.ApplyPatchType {
				opts.FieldManager = "dry"
				opts.Force = ptr.To(true)
			}
			out, err := cms.Patch(ctx, "real", pt.typ, []byte(pt.body), opts)
			if err != nil {
				t.Fatal(err)
			}
			if out.Data["k"] != "patched" {
				t.Errorf("dry-run patch returned %v", out.Data)
			}
			unchanged(t, "dry-run patch")
		})
	}
	t.Run("delete", func(t *testing.T) {
		if err := cms.Delete(ctx, "real", metav1.DeleteOptions{DryRun: dry}); err != nil {
			t.Fatal(err)
		}
		unchanged(t, "dry-run delete")
	})
	t.Run("apply create", func(t *testing.T) {
		_, err := cms.Patch(ctx, "applied", types.ApplyPatchType, []byte(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"applied"}}`), metav1.PatchOptions{DryRun: dry, FieldManager: "dry"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cms.Get(ctx, "applied", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Fatalf("after a dry-run apply: %v, want NotFound", err)
		}
	})
}

// TestRequestFieldValidation: unknown and duplicate fields are refused
// (Strict), warned about (Warn, the default) or dropped (Ignore).
func testRequestFieldValidation(t *testing.T, s *surface) {
	ctx := s.c.Ctx()
	warnings := &warningRecorder{}
	cfg := s.c.Config(0)
	cfg.WarningHandler = warnings
	cs := s.clientset(cfg)
	cms := cs.CoreV1().ConfigMaps("default")

	post := func(body, mode string) error {
		req := cs.CoreV1().RESTClient().Post().Namespace("default").Resource("configmaps").
			SetHeader("Content-Type", "application/json").Body([]byte(body))
		if mode != "" {
			req = req.Param("fieldValidation", mode)
		}
		return req.Do(ctx).Error()
	}
	unknown := func(name string) string {
		return `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"` + name + `"},"data":{"k":"v"},"bogus":1}`
	}
	duplicate := func(name string) string {
		return `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"` + name + `"},"data":{"k":"v"},"data":{"k":"w"}}`
	}
	cases := []struct {
		name, mode, body string
		object           string
		wantErr, wantMsg string // wantMsg is in the error (Strict) or a warning (Warn)
	}{
		{"strict unknown", "Strict", unknown("strict-u"), "strict-u", "BadRequest", `unknown field "bogus"`},
		{"strict duplicate", "Strict", duplicate("strict-d"), "strict-d", "BadRequest", `duplicate field "data"`},
		{"warn unknown", "Warn", unknown("warn-u"), "warn-u", "", `unknown field "bogus"`},
		{"default is warn", "", unknown("default-u"), "default-u", "", `unknown field "bogus"`},
		{"ignore unknown", "Ignore", unknown("ignore-u"), "ignore-u", "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			warnings.take()
			err := post(tc.body, tc.mode)
			got := warnings.take()
			if tc.wantErr != "" {
				if !apierrors.IsBadRequest(err) || !strings.Contains(err.Error(), tc.wantMsg) {
					t.Fatalf("%s: %v, want BadRequest naming %s", tc.name, err, tc.wantMsg)
				}
				if _, err := cms.Get(ctx, tc.object, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
					t.Fatalf("%s: object stored despite the refusal: %v", tc.name, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			if _, err := cms.Get(ctx, tc.object, metav1.GetOptions{}); err != nil {
				t.Fatalf("%s: not stored: %v", tc.name, err)
			}
			warned := slices.ContainsFunc(got, func(w string) bool { return strings.Contains(w, `unknown field "bogus"`) })
			if tc.wantMsg != "" && !warned {
				t.Errorf("%s: warnings %q, want one naming %s", tc.name, got, tc.wantMsg)
			}
			if tc.wantMsg == "" && warned {
				t.Errorf("%s: unexpected warnings %q", tc.name, got)
			}
		})
	}

	t.Run("strict patch", func(t *testing.T) {
		// kube-apiserver's patch handler reports strict decoding errors of
		// the patched object as 422 Invalid on the field "patch".
		_, err := cms.Patch(ctx, "warn-u", types.MergePatchType, []byte(`{"data":{"k":"x"},"spec":{"bogus":true}}`), metav1.PatchOptions{FieldValidation: "Strict"})
		if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), `strict decoding error: unknown field "spec"`) {
			t.Fatalf("strict merge patch with an unknown field: %v, want Invalid naming it", err)
		}
		if cm, err := cms.Get(ctx, "warn-u", metav1.GetOptions{}); err != nil || cm.Data["k"] != "v" {
			t.Fatalf("after the refused patch: %v %v", cm.Data, err)
		}
	})
	t.Run("strict typed create", func(t *testing.T) {
		// A typed client cannot send unknown fields; Strict accepts it.
		if _, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "typed"}}, metav1.CreateOptions{FieldValidation: "Strict"}); err != nil {
			t.Fatal(err)
		}
	})
}

// TestRequestBodyLimit: a request body over the server's limit is refused
// before it is decoded, and nothing is stored.
func testRequestBodyLimit(t *testing.T, s *surface) {
	ctx := s.c.Ctx()
	cms := s.admin(0).CoreV1().ConfigMaps("default")

	big := strings.Repeat("x", 4<<20)
	_, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "huge"}, Data: map[string]string{"blob": big}}, metav1.CreateOptions{})
	if err == nil {
		t.Fatal("a 4 MiB configmap was accepted")
	}
	if !apierrors.IsRequestEntityTooLargeError(err) || s.statusOf(err).Code != 413 {
		t.Fatalf("4 MiB create: %v, want 413 Request Entity Too Large", err)
	}
	if !strings.Contains(err.Error(), "limit is ") {
		t.Errorf("4 MiB create: %q does not name the limit", err)
	}
	t.Logf("4 MiB create: %v", err)
	if _, err := cms.Get(ctx, "huge", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("after the refused create: %v, want NotFound", err)
	}

	// Under the request limit but over ConfigMap's own 1 MiB: 422.
	_, err = cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "large"}, Data: map[string]string{"blob": big[:1200<<10]}}, metav1.CreateOptions{})
	if !apierrors.IsInvalid(err) {
		t.Fatalf("1.2 MiB configmap: %v, want Invalid (data over 1 MiB)", err)
	}
	if _, err := cms.Get(ctx, "large", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("after the refused 1.2 MiB create: %v, want NotFound", err)
	}
}

// TestRequestValidationStatus: invalid objects come back as a 422
// metav1.Status whose causes carry the field paths.
func testRequestValidationStatus(t *testing.T, s *surface) {
	ctx := s.c.Ctx()
	cs := s.admin(0)
	const ns = "default"

	noImage := s.deployment("no-image", 1)
	noImage.Spec.Template.Spec.Containers[0].Image = ""
	mismatch := s.deployment("mismatch", 1)
	mismatch.Spec.Template.Labels = map[string]string{"app": "other"}
	noName := s.pod("no-name", "")
	noName.Spec.Containers[0].Name = ""

	cases := []struct {
		name   string
		create func(context.Context, kubernetes.Interface) error
		kind   string
		group  string
		object string
		causes []metav1.StatusCause
	}{
		{"deployment without image", func(ctx context.Context, cs kubernetes.Interface) error {
			_, err := cs.AppsV1().Deployments(ns).Create(ctx, noImage, metav1.CreateOptions{})
			return err
		}, "Deployment", "apps", "no-image", []metav1.StatusCause{
			{Type: metav1.CauseTypeFieldValueRequired, Field: "spec.template.spec.containers[0].image", Message: "Required value"},
		}},
		{"deployment selector not matching template", func(ctx context.Context, cs kubernetes.Interface) error {
			_, err := cs.AppsV1().Deployments(ns).Create(ctx, mismatch, metav1.CreateOptions{})
			return err
		}, "Deployment", "apps", "mismatch", []metav1.StatusCause{
			{Type: metav1.CauseTypeFieldValueInvalid, Field: "spec.template.metadata.labels"},
		}},
		{"pod container without name", func(ctx context.Context, cs kubernetes.Interface) error {
			_, err := cs.CoreV1().Pods(ns).Create(ctx, noName, metav1.CreateOptions{})
			return err
		}, "Pod", "", "no-name", []metav1.StatusCause{
			{Type: metav1.CauseTypeFieldValueRequired, Field: "spec.containers[0].name", Message: "Required value"},
		}},
		{"configmap with an invalid name", func(ctx context.Context, cs kubernetes.Interface) error {
			_, err := cs.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "Bad_Name"}}, metav1.CreateOptions{})
			return err
		}, "ConfigMap", "", "Bad_Name", []metav1.StatusCause{
			{Type: metav1.CauseTypeFieldValueInvalid, Field: "metadata.name"},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.create(ctx, cs)
			if !apierrors.IsInvalid(err) {
				t.Fatalf("%v, want Invalid", err)
			}
			st := s.statusOf(err)
			if st.Code != 422 || st.Status != metav1.StatusFailure || st.Reason != metav1.StatusReasonInvalid {
				t.Errorf("status code %d status %q reason %q, want 422 Failure Invalid", st.Code, st.Status, st.Reason)
			}
			if st.Details == nil || st.Details.Kind != tc.kind || st.Details.Group != tc.group || st.Details.Name != tc.object {
				t.Fatalf("details %+v, want kind %s group %q name %s", st.Details, tc.kind, tc.group, tc.object)
			}
			for _, want := range tc.causes {
				found := slices.ContainsFunc(st.Details.Causes, func(c metav1.StatusCause) bool {
					return c.Type == want.Type && c.Field == want.Field && (want.Message == "" || c.Message == want.Message)
				})
				if !found {
					t.Errorf("causes %+v lack %+v", st.Details.Causes, want)
				}
			}
			prefix := fmt.Sprintf("%s %q is invalid: ", tc.kind, tc.object)
			if tc.group != "" {
				prefix = fmt.Sprintf("%s.%s %q is invalid: ", tc.kind, tc.group, tc.object)
			}
			if !strings.HasPrefix(st.Message, prefix) || !strings.Contains(st.Message, tc.causes[0].Field) {
				t.Errorf("message %q, want %q... naming %s", st.Message, prefix, tc.causes[0].Field)
			}
		})
	}

	// The raw response is a metav1.Status document with HTTP 422.
	body := `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"raw"},"spec":{"selector":{"matchLabels":{"app":"raw"}},"template":{"metadata":{"labels":{"app":"raw"}},"spec":{"containers":[{"name":"app"}]}}}}`
	var code int
	raw, err := cs.AppsV1().RESTClient().Post().Namespace(ns).Resource("deployments").
		SetHeader("Content-Type", "application/json").SetHeader("Accept", "application/json").
		Body([]byte(body)).Do(ctx).StatusCode(&code).Raw()
	if code != 422 {
		t.Fatalf("raw invalid create: HTTP %d (%v), want 422", code, err)
	}
	var st metav1.Status
	if err := json.Unmarshal(raw, &st); err != nil || st.Kind != "Status" || st.APIVersion != "v1" {
		t.Fatalf("raw 422 body is not a v1 Status: %v %s", err, raw)
	}
	if !s.hasCause(st, metav1.CauseTypeFieldValueRequired, "spec.template.spec.containers[0].image") {
		t.Errorf("raw 422 causes %+v", st.Details)
	}
}
