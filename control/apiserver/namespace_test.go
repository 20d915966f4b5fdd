package apiserver_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/barge-dev/barge/control/apitest"
)

// testNamespaceDeletion deletes a namespace with content: it turns
// Terminating at once, refuses new content, the namespace controller (on
// the store leader's peer) empties it, an object with a finalizer holds it
// until the finalizer goes, and then the namespace is removed. The
// services it held give their cluster IPs and node ports back.
func testNamespaceDeletion(t *testing.T, c *apitest.Cluster) {
	cs := c.Client(0)
	ctx := boundedCtx(t, 50*time.Second)
	const ns = "doomed"
	const finalizer = "example.com/hold"
	nsObj := mkNamespace(t, ctx, cs, ns)

	cms := cs.CoreV1().ConfigMaps(ns)
	for _, name := range []string{"a", "b", "c"} {
		if _, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}, Data: map[string]string{"k": name}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "held", Finalizers: []string{finalizer}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"web", "api"} {
		if _, err := cs.AppsV1().Deployments(ns).Create(ctx, webDeployment(name), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	web, err := cs.CoreV1().Services(ns).Create(ctx, webService("web"), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	np := webService("np")
	np.Spec.Type = corev1.ServiceTypeNodePort
	npSvc, err := cs.CoreV1().Services(ns).Create(ctx, np, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rv := npSvc.ResourceVersion

	nsWatch, err := cs.CoreV1().Namespaces().Watch(ctx, metav1.ListOptions{ResourceVersion: nsObj.ResourceVersion, FieldSelector: fields.OneTermEqualSelector("metadata.name", ns).String()})
	if err != nil {
		t.Fatal(err)
	}
	defer nsWatch.Stop()
	cmWatch, err := cms.Watch(ctx, metav1.ListOptions{ResourceVersion: rv})
	if err != nil {
		t.Fatal(err)
	}
	defer cmWatch.Stop()
	depWatch, err := cs.AppsV1().Deployments(ns).Watch(ctx, metav1.ListOptions{ResourceVersion: rv})
	if err != nil {
		t.Fatal(err)
	}
	defer depWatch.Stop()
	svcWatch, err := cs.CoreV1().Services(ns).Watch(ctx, metav1.ListOptions{ResourceVersion: rv})
	if err != nil {
		t.Fatal(err)
	}
	defer svcWatch.Stop()

	if err := cs.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}); err != nil {
		t.Fatalf("delete namespace: %v", err)
	}
	got, err := cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get right after delete: %v", err)
	}
	if got.DeletionTimestamp == nil || got.Status.Phase != corev1.NamespaceTerminating {
		t.Fatalf("after delete: deletionTimestamp %v phase %q, want set and Terminating", got.DeletionTimestamp, got.Status.Phase)
	}

	t.Run("no new content while terminating", func(t *testing.T) {
		create := func(dryRun bool) error {
			opts := metav1.CreateOptions{}
			if dryRun {
				opts.DryRun = []string{metav1.DryRunAll}
			}
			_, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "late"}}, opts)
			return err
		}
		// Admission reads namespaces from an informer, so the refusal
		// starts once the API server has seen the Terminating phase;
		// dry runs find that moment without creating anything.
		if err := wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 20*time.Second, true, func(context.Context) (bool, error) {
			return apierrors.IsForbidden(create(true)), nil
		}); err != nil {
			t.Fatalf("dry-run create never refused: %v", err)
		}
		err := create(false)
		if !apierrors.IsForbidden(err) {
			t.Fatalf("create in a terminating namespace: got %v, want Forbidden", err)
		}
		if !strings.Contains(err.Error(), "because it is being terminated") || !hasCauseType(err, corev1.NamespaceTerminatingCause) {
			t.Errorf("refusal %q lacks the NamespaceTerminating cause", err)
		}
	})

	// The controller deletes the content; the object with a finalizer is
	// only marked, and holds the namespace.
	waitForDeletes(t, ctx, depWatch, "web", "api")
	waitForDeletes(t, ctx, svcWatch, "web", "np")
	for left := map[string]bool{"a": true, "b": true, "c": true, "held": true}; len(left) > 0; {
		ev := nextWatchEvent(t, ctx, cmWatch)
		m, ok := ev.Object.(metav1.Object)
		switch {
		case !ok || ev.Type == watch.Error:
			t.Fatalf("configmap watch: %s", describeEvent(ev))
		case m.GetName() == "held" && ev.Type == watch.Deleted:
			t.Fatalf("the object with a finalizer was deleted")
		case m.GetName() == "held" && m.GetDeletionTimestamp() != nil, ev.Type == watch.Deleted:
			delete(left, m.GetName())
		}
	}
	if got, err := cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); err != nil || got.Status.Phase != corev1.NamespaceTerminating {
		t.Fatalf("namespace while an object with a finalizer remains: %v %v, want it Terminating", got, err)
	}

	held, err := cms.Get(ctx, "held", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	held.Finalizers = nil
	if _, err := cms.Update(ctx, held, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("remove finalizer: %v", err)
	}
	for {
		ev := nextWatchEvent(t, ctx, nsWatch)
		if ev.Type == watch.Error {
			t.Fatalf("namespace watch: %s", describeEvent(ev))
		}
		if ev.Type == watch.Deleted {
			break
		}
	}

	if _, err := cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("get deleted namespace: got %v, want NotFound", err)
	}
	for _, r := range []string{"configmaps", "deployments", "services", "serviceaccounts", "secrets"} {
		resp, err := c.Store.Client().Get(ctx, "/registry/"+storeDir(r)+"/"+ns+"/", clientv3.WithPrefix(), clientv3.WithKeysOnly())
		if err != nil {
			t.Fatal(err)
		}
		for _, kv := range resp.Kvs {
			t.Errorf("left in the store: %s", kv.Key)
		}
	}
	if rev := storeModRevision(t, ctx, c, "/registry/namespaces/"+ns); rev != 0 {
		t.Errorf("namespace still in the store")
	}
	if l, err := cms.List(ctx, metav1.ListOptions{}); err != nil || len(l.Items) != 0 {
		t.Errorf("configmaps of the deleted namespace: %v %v", l, err)
	}

	// The deleted services' allocations are free again.
	reuse := webService("reuse")
	reuse.Spec.ClusterIP = web.Spec.ClusterIP
	if _, err := cs.CoreV1().Services("default").Create(ctx, reuse, metav1.CreateOptions{}); err != nil {
		t.Errorf("cluster IP %s of a service deleted with its namespace: %v", web.Spec.ClusterIP, err)
	}
	reusePort := webService("reuse-port")
	reusePort.Spec.Type = corev1.ServiceTypeNodePort
	reusePort.Spec.Ports[0].NodePort = npSvc.Spec.Ports[0].NodePort
	if _, err := cs.CoreV1().Services("default").Create(ctx, reusePort, metav1.CreateOptions{}); err != nil {
		t.Errorf("node port %d of a service deleted with its namespace: %v", npSvc.Spec.Ports[0].NodePort, err)
	}
}

func hasCauseType(err error, typ metav1.CauseType) bool {
	var st apierrors.APIStatus
	if !errors.As(err, &st) || st.Status().Details == nil {
		return false
	}
	for _, c := range st.Status().Details.Causes {
		if c.Type == typ {
			return true
		}
	}
	return false
}
