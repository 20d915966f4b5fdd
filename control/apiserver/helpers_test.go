package apiserver_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"

	"github.com/barge-dev/barge/control/apitest"
)

// apiObject is what every typed client hands back: a Kubernetes object with
// metadata.
type apiObject interface {
	metav1.Object
	runtime.Object
}

// typedClient is the part of a client-go typed client the generic tests
// use; every generated client (ConfigMapInterface, DeploymentInterface, …)
// satisfies it for its own type.
type typedClient[T apiObject] interface {
	Create(context.Context, T, metav1.CreateOptions) (T, error)
	Update(context.Context, T, metav1.UpdateOptions) (T, error)
	Get(context.Context, string, metav1.GetOptions) (T, error)
	Delete(context.Context, string, metav1.DeleteOptions) error
}

// statusClient adds the status subresource.
type statusClient[T apiObject] interface {
	typedClient[T]
	UpdateStatus(context.Context, T, metav1.UpdateOptions) (T, error)
}

// anyClient erases the type of a typed client so one table can hold several
// resources.
type anyClient struct {
	create func(context.Context, apiObject, metav1.CreateOptions) (apiObject, error)
	update func(context.Context, apiObject) (apiObject, error)
	get    func(context.Context, string) (apiObject, error)
	delete func(context.Context, string, metav1.DeleteOptions) error
}

func untyped[T apiObject](c typedClient[T]) anyClient {
	return anyClient{
		create: func(ctx context.Context, o apiObject, opts metav1.CreateOptions) (apiObject, error) {
			out, err := c.Create(ctx, o.(T), opts)
			if err != nil {
				return nil, err
			}
			return out, nil
		},
		update: func(ctx context.Context, o apiObject) (apiObject, error) {
			out, err := c.Update(ctx, o.(T), metav1.UpdateOptions{})
			if err != nil {
				return nil, err
			}
			return out, nil
		},
		get: func(ctx context.Context, name string) (apiObject, error) {
			out, err := c.Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return nil, err
			}
			return out, nil
		},
		delete: c.Delete,
	}
}

// mkNamespace creates a namespace for one test.
func mkNamespace(t *testing.T, ctx context.Context, cs kubernetes.Interface, name string) *corev1.Namespace {
	t.Helper()
	ns, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create namespace %s: %v", name, err)
	}
	return ns
}

// storeModRevision is the store's mod revision of key, 0 when the key is absent.
func storeModRevision(t *testing.T, ctx context.Context, c *apitest.Cluster, key string) int64 {
	t.Helper()
	resp, err := c.Store.Client().Get(ctx, key)
	if err != nil {
		t.Fatalf("etcd get %s: %v", key, err)
	}
	if len(resp.Kvs) == 0 {
		return 0
	}
	return resp.Kvs[0].ModRevision
}

// checkStoredRV asserts that the object's resourceVersion is the mod
// revision of its key in the store.
func checkStoredRV(t *testing.T, ctx context.Context, c *apitest.Cluster, key string, o metav1.Object) {
	t.Helper()
	rev := storeModRevision(t, ctx, c, key)
	if rev == 0 {
		t.Fatalf("%s: not in the store", key)
	}
	if got := o.GetResourceVersion(); got != strconv.FormatInt(rev, 10) {
		t.Fatalf("%s: resourceVersion %q, store mod revision %d", key, got, rev)
	}
}

// nextWatchEvent returns the next watch event, failing the test when the watch
// closes or ctx ends first.
func nextWatchEvent(t *testing.T, ctx context.Context, w watch.Interface) watch.Event {
	t.Helper()
	select {
	case ev, ok := <-w.ResultChan():
		if !ok {
			t.Fatalf("watch closed")
		}
		return ev
	case <-ctx.Done():
		t.Fatalf("no watch event: %v", ctx.Err())
	}
	return watch.Event{}
}

// describeEvent is a readable form of an event for messages.
func describeEvent(ev watch.Event) string {
	if m, ok := ev.Object.(metav1.Object); ok {
		return string(ev.Type) + " " + m.GetName() + "@" + m.GetResourceVersion()
	}
	if s, ok := ev.Object.(*metav1.Status); ok {
		return string(ev.Type) + " status " + strconv.Itoa(int(s.Code)) + " " + s.Message
	}
	return string(ev.Type)
}

// waitForDeletes reads w until every named object has had a DELETED event.
func waitForDeletes(t *testing.T, ctx context.Context, w watch.Interface, names ...string) {
	t.Helper()
	left := map[string]bool{}
	for _, n := range names {
		left[n] = true
	}
	for len(left) > 0 {
		ev := nextWatchEvent(t, ctx, w)
		if ev.Type == watch.Error {
			t.Fatalf("watch error: %s", describeEvent(ev))
		}
		if m, ok := ev.Object.(metav1.Object); ok && ev.Type == watch.Deleted {
			delete(left, m.GetName())
		}
	}
}

// isExpired reports the "resource version too old / expired" answer in any of
// the forms Kubernetes gives it: a 410 error, or a watch ERROR event whose
// status carries 410.
func isExpired(err error) bool {
	return apierrors.IsResourceExpired(err) || apierrors.IsGone(err)
}

func isExpiredEvent(ev watch.Event) bool {
	if ev.Type != watch.Error {
		return false
	}
	s, ok := ev.Object.(*metav1.Status)
	return ok && s.Code == 410
}

// boundedCtx is a context for one step that must not hang the test.
func boundedCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func hasFieldCause(err error, field, msg string) bool {
	var st apierrors.APIStatus
	if !errors.As(err, &st) || st.Status().Details == nil {
		return false
	}
	for _, c := range st.Status().Details.Causes {
		if c.Field == field && strings.Contains(c.Message, msg) {
			return true
		}
	}
	return false
}

// rootCAConfigMap is the config map Kubernetes publishes into every
// namespace, shortly after the namespace is created.
const rootCAConfigMap = "kube-root-ca.crt"

// storeDir is where kube-apiserver keeps a resource under /registry: its
// plural name, but for the few it stores under historic names.
func storeDir(resource string) string {
	switch resource {
	case "services":
		return "services/specs"
	case "endpoints":
		return "services/endpoints"
	case "nodes":
		return "minions"
	}
	return resource
}

// apiOnly keeps other writers (the scheduler, workload controllers) off
// the objects these API tests create.
func apiOnly() apitest.Options { return apitest.Options{Plane: apitest.APIOnly()} }
