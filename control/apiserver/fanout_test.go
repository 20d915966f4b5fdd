package apiserver_test

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/barge-dev/barge/control/apitest"
)

// Client watches are served by the API server's watch cache, which holds
// one store watch per resource: a hundred kubectl --watch or informers
// cost the store nothing more.
func TestWatchFanOutUsesOneStoreWatchPerResource(t *testing.T) {
	c := apitest.New(t, 1, apiOnly())
	cs := c.Client(0)
	ctx := c.Ctx()
	store := c.Store.Members[0].Server
	before := store.Watchers()

	const clients = 100
	watches := make([]watch.Interface, 0, clients)
	for i := range clients {
		// Only our object: the namespace controller publishes
		// kube-root-ca.crt on its own schedule.
		w, err := cs.CoreV1().ConfigMaps("default").Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=fan-out"})
		if err != nil {
			t.Fatalf("watch %d: %v", i, err)
		}
		defer w.Stop()
		watches = append(watches, w)
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "fan-out", Namespace: "default"}}
	if _, err := cs.CoreV1().ConfigMaps("default").Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for i, w := range watches {
		select {
		case ev := <-w.ResultChan():
			got, ok := ev.Object.(*corev1.ConfigMap)
			if ev.Type != watch.Added || !ok || got.Name != "fan-out" {
				t.Fatalf("watch %d: got %s %T, want ADDED fan-out", i, ev.Type, ev.Object)
			}
		case <-ctx.Done():
			t.Fatalf("watch %d: no event", i)
		}
	}
	if after := store.Watchers(); after != before {
		t.Fatalf("store watchers went from %d to %d with %d client watches; want no change", before, after, clients)
	}
	t.Logf("%d client watches, %d store watches", clients, before)
}
