package apiserver_test

import (
	"context"
	"maps"
	"slices"
	"sort"
	"strconv"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/utils/ptr"

	"github.com/barge-dev/barge/control/apitest"
)

// watchStep is one write a watch must report.
type watchStep struct {
	typ  watch.EventType
	name string
	rv   string // resourceVersion of the write, empty for deletes
}

// cmWriter performs writes on configmaps and records the events they must
// cause.
type cmWriter struct {
	t     *testing.T
	ctx   context.Context
	cms   corev1client.ConfigMapInterface
	steps []watchStep
}

func (w *cmWriter) create(name string, labels map[string]string) {
	w.t.Helper()
	cm, err := w.cms.Create(w.ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}, Data: map[string]string{"v": "0"}}, metav1.CreateOptions{})
	if err != nil {
		w.t.Fatalf("create %s: %v", name, err)
	}
	w.steps = append(w.steps, watchStep{watch.Added, name, cm.ResourceVersion})
}

func (w *cmWriter) update(name string, change func(*corev1.ConfigMap)) {
	w.t.Helper()
	cm, err := w.cms.Get(w.ctx, name, metav1.GetOptions{})
	if err != nil {
		w.t.Fatalf("get %s: %v", name, err)
	}
	change(cm)
	if cm, err = w.cms.Update(w.ctx, cm, metav1.UpdateOptions{}); err != nil {
		w.t.Fatalf("update %s: %v", name, err)
	}
	w.steps = append(w.steps, watchStep{watch.Modified, name, cm.ResourceVersion})
}

func (w *cmWriter) delete(name string) {
	w.t.Helper()
	if err := w.cms.Delete(w.ctx, name, metav1.DeleteOptions{}); err != nil {
		w.t.Fatalf("delete %s: %v", name, err)
	}
	w.steps = append(w.steps, watchStep{watch.Deleted, name, ""})
}

func bumpData(cm *corev1.ConfigMap) {
	n, _ := strconv.Atoi(cm.Data["v"])
	cm.Data["v"] = strconv.Itoa(n + 1)
}

// nextOwnEvent is nextWatchEvent leaving out the kube-root-ca.crt config
// map, which Kubernetes publishes into each namespace on its own schedule.
func nextOwnEvent(t *testing.T, ctx context.Context, w watch.Interface) watch.Event {
	t.Helper()
	for {
		ev := nextWatchEvent(t, ctx, w)
		if m, ok := ev.Object.(metav1.Object); ok && ev.Type != watch.Bookmark && m.GetName() == rootCAConfigMap {
			continue
		}
		return ev
	}
}

// expectWatchSteps reads exactly the given events, in order, then proves
// nothing else is queued: the next event must be the sentinel write.
func expectWatchSteps(t *testing.T, ctx context.Context, w watch.Interface, want []watchStep, sentinel func() watchStep) {
	t.Helper()
	last := int64(0)
	for i, s := range want {
		ev := nextOwnEvent(t, ctx, w)
		m, ok := ev.Object.(metav1.Object)
		if !ok || ev.Type != s.typ || m.GetName() != s.name || (s.rv != "" && m.GetResourceVersion() != s.rv) {
			t.Fatalf("event %d: %s, want %s %s@%s", i, describeEvent(ev), s.typ, s.name, s.rv)
		}
		rv, err := strconv.ParseInt(m.GetResourceVersion(), 10, 64)
		if err != nil || rv <= last {
			t.Fatalf("event %d: resourceVersion %s does not follow %d", i, m.GetResourceVersion(), last)
		}
		last = rv
	}
	s := sentinel()
	ev := nextOwnEvent(t, ctx, w)
	if m, ok := ev.Object.(metav1.Object); !ok || ev.Type != s.typ || m.GetName() != s.name {
		t.Fatalf("after the expected events: %s, want only the sentinel %s %s", describeEvent(ev), s.typ, s.name)
	}
}

// testWatch checks watch semantics against one API server: resuming from a
// resourceVersion, selectors, "any" start, bookmarks and watch-list.
func testWatch(t *testing.T, c *apitest.Cluster) {
	cs := c.Client(0)
	ctx := c.Ctx()

	t.Run("from resourceVersion", func(t *testing.T) {
		const ns = "watch-rv"
		mkNamespace(t, ctx, cs, ns)
		w := &cmWriter{t: t, ctx: ctx, cms: cs.CoreV1().ConfigMaps(ns)}
		w.create("a", nil)
		from := w.steps[0].rv
		w.steps = nil
		w.create("b", nil)
		w.update("a", bumpData)
		w.update("b", func(cm *corev1.ConfigMap) { cm.Labels = map[string]string{"x": "y"} })
		w.delete("a")
		w.create("c", nil)
		w.update("c", bumpData)
		w.delete("b")
		want := w.steps

		watcher, err := w.cms.Watch(ctx, metav1.ListOptions{ResourceVersion: from})
		if err != nil {
			t.Fatal(err)
		}
		defer watcher.Stop()
		expectWatchSteps(t, ctx, watcher, want, func() watchStep { w.create("sentinel", nil); return w.steps[len(w.steps)-1] })

		// A second watch from a later point sees only what followed it.
		later, err := w.cms.Watch(ctx, metav1.ListOptions{ResourceVersion: want[4].rv})
		if err != nil {
			t.Fatal(err)
		}
		defer later.Stop()
		expectWatchSteps(t, ctx, later, w.steps[5:], func() watchStep { w.delete("sentinel"); return w.steps[len(w.steps)-1] })
	})

	t.Run("label selector", func(t *testing.T) {
		const ns = "watch-labels"
		mkNamespace(t, ctx, cs, ns)
		cms := cs.CoreV1().ConfigMaps(ns)
		start, err := cms.List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		watcher, err := cms.Watch(ctx, metav1.ListOptions{ResourceVersion: start.ResourceVersion, LabelSelector: "watch=yes"})
		if err != nil {
			t.Fatal(err)
		}
		defer watcher.Stop()
		w := &cmWriter{t: t, ctx: ctx, cms: cms}
		w.create("l1", map[string]string{"watch": "yes"})
		w.create("other", nil)
		w.update("l1", bumpData)
		w.update("other", bumpData)
		// Leaving the selection reads as a delete, entering it as an add.
		w.update("l1", func(cm *corev1.ConfigMap) { cm.Labels = nil })
		w.update("l1", bumpData)
		w.update("l1", func(cm *corev1.ConfigMap) { cm.Labels = map[string]string{"watch": "yes"} })
		w.delete("other")
		w.delete("l1")
		s := w.steps
		want := []watchStep{
			s[0],
			s[2],
			{watch.Deleted, "l1", s[4].rv},
			{watch.Added, "l1", s[6].rv},
			s[8],
		}
		expectWatchSteps(t, ctx, watcher, want, func() watchStep {
			w.create("sentinel", map[string]string{"watch": "yes"})
			return w.steps[len(w.steps)-1]
		})
	})

	t.Run("from resourceVersion 0", func(t *testing.T) {
		const ns = "watch-any"
		mkNamespace(t, ctx, cs, ns)
		w := &cmWriter{t: t, ctx: ctx, cms: cs.CoreV1().ConfigMaps(ns)}
		for _, n := range []string{"a", "b", "c"} {
			w.create(n, nil)
		}
		w.update("b", bumpData)
		watcher, err := w.cms.Watch(ctx, metav1.ListOptions{ResourceVersion: "0"})
		if err != nil {
			t.Fatal(err)
		}
		defer watcher.Stop()
		w.delete("a")
		w.create("sentinel", nil)
		want := map[string]string{"b": w.steps[3].rv, "c": w.steps[2].rv, "sentinel": w.steps[5].rv}
		// "Any" start: the watch opens with the state at some recent
		// resourceVersion, one ADDED per object, and its events carry
		// the state forward; applied in order they end at the current
		// state.
		state := map[string]string{}
		for state["sentinel"] == "" {
			ev := nextOwnEvent(t, ctx, watcher)
			m, ok := ev.Object.(metav1.Object)
			if !ok {
				t.Fatalf("event %s", describeEvent(ev))
			}
			switch ev.Type {
			case watch.Added:
				if _, dup := state[m.GetName()]; dup {
					t.Fatalf("ADDED %s twice", m.GetName())
				}
				state[m.GetName()] = m.GetResourceVersion()
			case watch.Modified:
				if _, ok := state[m.GetName()]; !ok {
					t.Fatalf("MODIFIED %s before its ADDED", m.GetName())
				}
				state[m.GetName()] = m.GetResourceVersion()
			case watch.Deleted:
				delete(state, m.GetName())
			default:
				t.Fatalf("event %s", describeEvent(ev))
			}
		}
		if !maps.Equal(state, want) {
			t.Fatalf("state from the watch %v, want %v", state, want)
		}
	})

	t.Run("bookmarks", func(t *testing.T) {
		const ns = "watch-bookmarks"
		mkNamespace(t, ctx, cs, ns)
		mkNamespace(t, ctx, cs, ns+"-other")
		cms := cs.CoreV1().ConfigMaps(ns)
		start, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "a"}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		// The server ends the watch after timeoutSeconds and sends a
		// bookmark before that (Kubernetes: 2s before, on a 1s timer);
		// the long timeout leaves a loaded machine room to send it. The
		// context only bounds the test.
		wctx := boundedCtx(t, 30*time.Second)
		watcher, err := cms.Watch(wctx, metav1.ListOptions{ResourceVersion: start.ResourceVersion, AllowWatchBookmarks: true, TimeoutSeconds: ptr.To[int64](15)})
		if err != nil {
			t.Fatal(err)
		}
		// A bookmark reports progress the watcher has no events for: a
		// config map written elsewhere, after the watch began, moves the
		// watch cache's resource version on (Kubernetes bookmarks carry
		// the newest version the cache has processed since).
		elsewhere, err := cs.CoreV1().ConfigMaps(ns+"-other").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "b"}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer watcher.Stop()
		var bookmark *watch.Event
		for bookmark == nil {
			ev := nextWatchEvent(t, wctx, watcher)
			switch ev.Type {
			case watch.Bookmark:
				bookmark = &ev
			case watch.Error:
				t.Fatalf("watch error: %s", describeEvent(ev))
			}
		}
		cm, ok := bookmark.Object.(*corev1.ConfigMap)
		if !ok {
			t.Fatalf("bookmark object %T, want *v1.ConfigMap", bookmark.Object)
		}
		rv, err1 := strconv.ParseInt(cm.ResourceVersion, 10, 64)
		from, err2 := strconv.ParseInt(start.ResourceVersion, 10, 64)
		if err1 != nil || err2 != nil || rv <= from {
			t.Errorf("bookmark resourceVersion %q, want one after %s", cm.ResourceVersion, start.ResourceVersion)
		}
		t.Logf("watch from %s, write elsewhere at %s, bookmark at %s", start.ResourceVersion, elsewhere.ResourceVersion, cm.ResourceVersion)
		if cm.Name != "" || len(cm.Data) != 0 {
			t.Errorf("bookmark carries more than a resourceVersion: %+v", cm)
		}
		// And the watch ends cleanly at its timeout.
		for {
			select {
			case ev, ok := <-watcher.ResultChan():
				if !ok {
					return
				}
				if ev.Type == watch.Error {
					t.Fatalf("watch error: %s", describeEvent(ev))
				}
			case <-wctx.Done():
				t.Fatalf("the watch outlived its timeoutSeconds")
			}
		}
	})

	t.Run("watch-list", func(t *testing.T) {
		const ns = "watch-list"
		mkNamespace(t, ctx, cs, ns)
		w := &cmWriter{t: t, ctx: ctx, cms: cs.CoreV1().ConfigMaps(ns)}
		for _, n := range []string{"a", "b", "c", "d"} {
			w.create(n, nil)
		}
		w.delete("c")
		watcher, err := w.cms.Watch(ctx, metav1.ListOptions{
			SendInitialEvents:    ptr.To(true),
			ResourceVersionMatch: metav1.ResourceVersionMatchNotOlderThan,
			AllowWatchBookmarks:  true,
		})
		if err != nil {
			t.Fatal(err)
		}
		defer watcher.Stop()
		var names []string
		for {
			ev := nextOwnEvent(t, ctx, watcher)
			if ev.Type == watch.Bookmark {
				m := ev.Object.(metav1.Object)
				if m.GetAnnotations()[metav1.InitialEventsAnnotationKey] != "true" {
					t.Fatalf("bookmark before the initial events ended: %v", m.GetAnnotations())
				}
				break
			}
			if ev.Type != watch.Added {
				t.Fatalf("initial event %s, want ADDED", describeEvent(ev))
			}
			names = append(names, ev.Object.(metav1.Object).GetName())
		}
		sort.Strings(names)
		if !slices.Equal(names, []string{"a", "b", "d"}) {
			t.Fatalf("initial events for %v, want a, b, d", names)
		}
		w.steps = nil
		w.update("d", bumpData)
		expectWatchSteps(t, ctx, watcher, w.steps, func() watchStep { w.create("sentinel", nil); return w.steps[len(w.steps)-1] })
	})
}
