package apiserver_test

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"

	"github.com/barge-dev/barge/control/apitest"
)

// TestListWatch checks list and watch semantics on one single-peer
// cluster, each part in a namespace of its own.
func TestListWatch(t *testing.T) {
	runShared(t, apitest.New(t, 1, apiOnly()), []clusterTest{
		{"Selectors", testListSelectors},
		{"Pagination", testListPagination},
		{"Watch", testWatch},
	})
}

// testListSelectors checks label and field selectors on lists, including
// the type-specific fields kubelets, schedulers and kubectl select on.
func testListSelectors(t *testing.T, c *apitest.Cluster) {
	cs := c.Client(0)
	ctx := c.Ctx()
	const ns = "selectors"
	mkNamespace(t, ctx, cs, ns)
	for name, labels := range map[string]map[string]string{
		"a": {"tier": "web", "env": "prod"},
		"b": {"tier": "web", "env": "dev"},
		"c": {"tier": "db", "env": "prod"},
		"d": {"env": "dev"},
	} {
		if _, err := cs.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for name, node := range map[string]string{"p1": "node-a", "p2": "node-b", "p3": "node-a", "p4": ""} {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: nginxPodSpec("nginx:1.27")}
		p.Spec.NodeName = node
		if _, err := cs.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, e := range []struct{ name, about, reason string }{{"e1", "p1", "Scheduled"}, {"e2", "p2", "Scheduled"}, {"e3", "p1", "Started"}} {
		ev := &corev1.Event{
			ObjectMeta:     metav1.ObjectMeta{Name: e.name},
			InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: ns, Name: e.about, APIVersion: "v1"},
			Reason:         e.reason, Message: "m", Type: corev1.EventTypeNormal,
			Source: corev1.EventSource{Component: "test"}, FirstTimestamp: metav1.Now(), LastTimestamp: metav1.Now(), Count: 1,
		}
		if _, err := cs.CoreV1().Events(ns).Create(ctx, ev, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	configmaps := func(o metav1.ListOptions) ([]string, error) {
		l, err := cs.CoreV1().ConfigMaps(ns).List(ctx, o)
		if err != nil {
			return nil, err
		}
		var names []string
		for _, i := range l.Items {
			// Published into every namespace on its own schedule.
			if i.Name != rootCAConfigMap {
				names = append(names, i.Name)
			}
		}
		return names, nil
	}
	pods := func(namespace string) func(metav1.ListOptions) ([]string, error) {
		return func(o metav1.ListOptions) ([]string, error) {
			l, err := cs.CoreV1().Pods(namespace).List(ctx, o)
			if err != nil {
				return nil, err
			}
			var names []string
			for _, i := range l.Items {
				names = append(names, i.Name)
			}
			return names, nil
		}
	}
	events := func(o metav1.ListOptions) ([]string, error) {
		l, err := cs.CoreV1().Events(ns).List(ctx, o)
		if err != nil {
			return nil, err
		}
		var names []string
		for _, i := range l.Items {
			names = append(names, i.Name)
		}
		return names, nil
	}
	cases := []struct {
		name   string
		list   func(metav1.ListOptions) ([]string, error)
		labels string
		fields string
		want   []string
	}{
		{"label equals", configmaps, "tier=web", "", []string{"a", "b"}},
		{"label not equals includes unlabelled", configmaps, "tier!=web", "", []string{"c", "d"}},
		{"label in", configmaps, "tier in (web,db)", "", []string{"a", "b", "c"}},
		{"label notin", configmaps, "tier notin (web)", "", []string{"c", "d"}},
		{"label exists", configmaps, "tier", "", []string{"a", "b", "c"}},
		{"label does not exist", configmaps, "!tier", "", []string{"d"}},
		{"two labels", configmaps, "tier=web,env=prod", "", []string{"a"}},
		{"no match", configmaps, "tier=cache", "", nil},
		{"metadata.name", configmaps, "", "metadata.name=c", []string{"c"}},
		{"metadata.name not equals", configmaps, "", "metadata.name!=c", []string{"a", "b", "d"}},
		{"metadata.namespace", configmaps, "", "metadata.namespace=" + ns, []string{"a", "b", "c", "d"}},
		{"label and field", configmaps, "env=prod", "metadata.name!=a", []string{"c"}},
		{"pods by spec.nodeName", pods(ns), "", "spec.nodeName=node-a", []string{"p1", "p3"}},
		{"unscheduled pods", pods(ns), "", "spec.nodeName=", []string{"p4"}},
		{"pods of a node in all namespaces", pods(""), "", "spec.nodeName=node-b", []string{"p2"}},
		{"pods by status.phase", pods(ns), "", "status.phase=Pending,spec.nodeName!=", []string{"p1", "p2", "p3"}},
		{"events by involvedObject.name", events, "", "involvedObject.name=p1", []string{"e1", "e3"}},
		{"events by involvedObject.kind and name", events, "", "involvedObject.kind=Pod,involvedObject.name=p2", []string{"e2"}},
		{"events by involvedObject.name and reason", events, "", "involvedObject.name=p1,reason=Started", []string{"e3"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.list(metav1.ListOptions{LabelSelector: tc.labels, FieldSelector: tc.fields})
			if err != nil {
				t.Fatalf("list: %v", err)
			}
			sort.Strings(got)
			if !slices.Equal(got, tc.want) {
				t.Fatalf("labels %q fields %q: got %v, want %v", tc.labels, tc.fields, got, tc.want)
			}
		})
	}

	bad := []struct {
		name           string
		labels, fields string
	}{
		{"unsupported field", "", "data.k=v"},
		{"unsupported pod field on configmaps", "", "spec.nodeName=node-a"},
		{"malformed label selector", "tier in (web", ""},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			_, err := configmaps(metav1.ListOptions{LabelSelector: tc.labels, FieldSelector: tc.fields})
			if !apierrors.IsBadRequest(err) {
				t.Fatalf("got %v, want BadRequest", err)
			}
		})
	}
}

// createNumberedSecrets creates s-00 … s-(n-1) in ns; the odd ones carry
// the label half=odd. (Secrets, because Kubernetes adds a config map of its
// own to every namespace.)
func createNumberedSecrets(t *testing.T, ctx context.Context, cs kubernetes.Interface, ns string, n int) []string {
	t.Helper()
	var names []string
	for i := range n {
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("s-%02d", i)}, Data: map[string][]byte{"i": []byte(strconv.Itoa(i))}}
		if i%2 == 1 {
			s.Labels = map[string]string{"half": "odd"}
		}
		if _, err := cs.CoreV1().Secrets(ns).Create(ctx, s, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		names = append(names, s.Name)
	}
	return names
}

// testListPagination pages through 25 objects 10 at a time: every object
// comes exactly once, in key order, from one consistent snapshot.
func testListPagination(t *testing.T, c *apitest.Cluster) {
	cs := c.Client(0)
	ctx := c.Ctx()
	const ns = "pages"
	mkNamespace(t, ctx, cs, ns)
	all := createNumberedSecrets(t, ctx, cs, ns, 25)
	secrets := cs.CoreV1().Secrets(ns)

	t.Run("limit and continue", func(t *testing.T) {
		var (
			seen      []string
			sizes     []int
			remaining []string
			rv        string
			cont      string
		)
		for page := 0; ; page++ {
			l, err := secrets.List(ctx, metav1.ListOptions{Limit: 10, Continue: cont})
			if err != nil {
				t.Fatalf("page %d: %v", page, err)
			}
			if page == 0 {
				rv = l.ResourceVersion
				// Changes after the first page are not part of this list.
				if _, err := secrets.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "s-99"}}, metav1.CreateOptions{}); err != nil {
					t.Fatal(err)
				}
				if err := secrets.Delete(ctx, "s-20", metav1.DeleteOptions{}); err != nil {
					t.Fatal(err)
				}
			} else if l.ResourceVersion != rv {
				t.Errorf("page %d at resourceVersion %s, the first at %s", page, l.ResourceVersion, rv)
			}
			sizes = append(sizes, len(l.Items))
			if l.RemainingItemCount == nil {
				remaining = append(remaining, "nil")
			} else {
				remaining = append(remaining, strconv.FormatInt(*l.RemainingItemCount, 10))
			}
			for _, i := range l.Items {
				seen = append(seen, i.Name)
			}
			cont = l.Continue
			if cont == "" {
				break
			}
			if page > 5 {
				t.Fatalf("more pages than 25 objects need")
			}
		}
		if !slices.Equal(sizes, []int{10, 10, 5}) {
			t.Errorf("page sizes %v, want [10 10 5]", sizes)
		}
		if !slices.Equal(remaining, []string{"15", "5", "nil"}) {
			t.Errorf("remainingItemCount %v, want [15 5 nil]", remaining)
		}
		if !slices.Equal(seen, all) {
			t.Errorf("paged list %v, want every one of %v exactly once, in order", seen, all)
		}
	})

	t.Run("with a label selector", func(t *testing.T) {
		var seen []string
		cont := ""
		for page := 0; ; page++ {
			l, err := secrets.List(ctx, metav1.ListOptions{Limit: 5, Continue: cont, LabelSelector: "half=odd"})
			if err != nil {
				t.Fatalf("page %d: %v", page, err)
			}
			if len(l.Items) > 5 {
				t.Errorf("page %d has %d items, more than the limit", page, len(l.Items))
			}
			for _, i := range l.Items {
				seen = append(seen, i.Name)
			}
			if cont = l.Continue; cont == "" {
				break
			}
			if page > 25 {
				t.Fatalf("too many pages")
			}
		}
		var want []string
		for i := 1; i < 25; i += 2 {
			want = append(want, fmt.Sprintf("s-%02d", i))
		}
		if !slices.Equal(seen, want) {
			t.Errorf("paged list %v, want %v", seen, want)
		}
	})

	t.Run("limit larger than the list", func(t *testing.T) {
		l, err := secrets.List(ctx, metav1.ListOptions{Limit: 500})
		if err != nil {
			t.Fatal(err)
		}
		if len(l.Items) != 25 || l.Continue != "" || l.RemainingItemCount != nil {
			t.Errorf("got %d items, continue %q, remaining %v; want 25, none, nil", len(l.Items), l.Continue, l.RemainingItemCount)
		}
	})

	t.Run("malformed continue token", func(t *testing.T) {
		if _, err := secrets.List(ctx, metav1.ListOptions{Limit: 10, Continue: "not-a-token"}); !apierrors.IsBadRequest(err) {
			t.Errorf("got %v, want BadRequest", err)
		}
	})
}

// TestCompaction checks what clients see once the store has compacted the
// revisions they hold: an expired continue token and a watch from a
// compacted resourceVersion are answered 410 Gone.
func TestCompaction(t *testing.T) {
	c := apitest.New(t, 1, apiOnly())
	cs := c.Client(0)
	ctx := boundedCtx(t, 55*time.Second)
	const ns = "compaction"
	mkNamespace(t, ctx, cs, ns)
	createNumberedSecrets(t, ctx, cs, ns, 25)
	secrets := cs.CoreV1().Secrets(ns)
	first, err := secrets.List(ctx, metav1.ListOptions{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if first.Continue == "" {
		t.Fatal("no continue token")
	}
	// History moves on, then the store compacts it away.
	for i := range 3 {
		s, err := secrets.Get(ctx, "s-00", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		s.Data["i"] = []byte(strconv.Itoa(100 + i))
		if _, err := secrets.Update(ctx, s, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	etcd := c.Store.Client()
	resp, err := etcd.Get(ctx, "/registry/secrets/"+ns+"/s-00")
	if err != nil {
		t.Fatal(err)
	}
	// Compact the way the store's automatic compactor (and a Kubernetes
	// API server's) does: compact, and record it in compact_rev_key,
	// where API servers learn of compactions.
	if _, err := etcd.Compact(ctx, resp.Header.Revision); err != nil {
		t.Fatalf("compact: %v", err)
	}
	if _, err := etcd.Put(ctx, "compact_rev_key", strconv.FormatInt(resp.Header.Revision, 10)); err != nil {
		t.Fatalf("record compaction: %v", err)
	}
	t.Logf("list at resourceVersion %s, store compacted to %d", first.ResourceVersion, resp.Header.Revision)
	continueList := func() error {
		_, err := secrets.List(ctx, metav1.ListOptions{Limit: 10, Continue: first.Continue})
		return err
	}

	t.Run("continue token older than the compaction, while cached", func(t *testing.T) {
		// The API server that handed out the token still holds that
		// list's snapshot in its watch cache and finishes the list from
		// it: the next page is the snapshot's, never a mix with later
		// writes. (Kubernetes may answer 410 here once its cache has
		// dropped the snapshot, as the next subtest shows.)
		page, err := secrets.List(ctx, metav1.ListOptions{Limit: 10, Continue: first.Continue})
		if isExpired(err) {
			return // also correct
		}
		if err != nil {
			t.Fatalf("continue: %v", err)
		}
		if page.ResourceVersion != first.ResourceVersion {
			t.Fatalf("second page at resourceVersion %s, want the first page's %s", page.ResourceVersion, first.ResourceVersion)
		}
		listRV, _ := strconv.ParseInt(first.ResourceVersion, 10, 64)
		for _, item := range page.Items {
			if rv, _ := strconv.ParseInt(item.ResourceVersion, 10, 64); rv > listRV {
				t.Fatalf("second page holds %s at resourceVersion %d, written after the list began at %d", item.Name, rv, listRV)
			}
		}
	})

	t.Run("continue token expires once the watch cache learns of the compaction", func(t *testing.T) {
		// The cache reads compact_rev_key (a watch; it polls the value
		// every 15 s) and drops its older snapshots, so a token older
		// than the compaction gets 410 from the same API server, as the
		// conformance spec "continue listing … compacted away" expects.
		deadline := time.Now().Add(40 * time.Second)
		for {
			err := continueList()
			if isExpired(err) {
				return
			}
			if err != nil {
				t.Fatalf("continue: %v, want 410 Gone eventually", err)
			}
			if time.Now().After(deadline) {
				t.Fatal("continue token still served 40 s after the compaction was recorded")
			}
			time.Sleep(time.Second)
		}
	})

	// An API server that starts after the compaction has nothing older
	// than its start cached, so both the list and the watch reach the
	// compacted store.
	c.StopAPI(0)
	c.StartAPI(0)
	c.WaitReady(0)

	t.Run("expired continue token after API server restart", func(t *testing.T) {
		err := continueList()
		if !isExpired(err) {
			t.Fatalf("got %v, want 410 Gone (ResourceExpired)", err)
		}
		if !strings.Contains(err.Error(), "continue parameter is too old") {
			t.Errorf("message %q, want Kubernetes' \"The provided continue parameter is too old …\"", err)
		}
	})

	t.Run("watch from a compacted resourceVersion", func(t *testing.T) {
		wctx := boundedCtx(t, 20*time.Second)
		w, err := secrets.Watch(wctx, metav1.ListOptions{ResourceVersion: first.ResourceVersion})
		if err != nil {
			if !isExpired(err) {
				t.Fatalf("watch: got %v, want 410 Gone", err)
			}
			return
		}
		defer w.Stop()
		ev := nextWatchEvent(t, wctx, w)
		if !isExpiredEvent(ev) {
			t.Fatalf("first event %s, want ERROR with code 410", describeEvent(ev))
		}
		if s := ev.Object.(*metav1.Status); !strings.Contains(s.Message, "too old resource version") {
			t.Errorf("message %q, want \"too old resource version\"", s.Message)
		}
	})

	t.Run("fresh list and watch still work", func(t *testing.T) {
		l, err := secrets.List(ctx, metav1.ListOptions{})
		if err != nil || len(l.Items) != 25 {
			t.Fatalf("list: %d items, %v", len(l.Items), err)
		}
		w, err := secrets.Watch(ctx, metav1.ListOptions{ResourceVersion: l.ResourceVersion})
		if err != nil {
			t.Fatal(err)
		}
		defer w.Stop()
		if err := secrets.Delete(ctx, "s-01", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		if ev := nextWatchEvent(t, ctx, w); ev.Type != watch.Deleted {
			t.Fatalf("event %s, want DELETED s-01", describeEvent(ev))
		}
	})
}
