package apiserver_test

import (
	"context"
	"fmt"
	"maps"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/barge-dev/barge/control/apitest"
)

// informerLog records what an informer's handlers were told and wakes
// waiters on every call.
type informerLog struct {
	mu     sync.Mutex
	events []string // "ADD name rv", "UPDATE name rv", "DELETE name"
	wake   chan struct{}
}

func newInformerLog() *informerLog { return &informerLog{wake: make(chan struct{}, 1)} }

func (l *informerLog) record(s string) {
	l.mu.Lock()
	l.events = append(l.events, s)
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

func (l *informerLog) handler() cache.ResourceEventHandler {
	return cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj interface{}) {
			cm := obj.(*corev1.ConfigMap)
			l.record("ADD " + cm.Name + " " + cm.ResourceVersion)
		},
		UpdateFunc: func(_, obj interface{}) {
			cm := obj.(*corev1.ConfigMap)
			l.record("UPDATE " + cm.Name + " " + cm.ResourceVersion)
		},
		DeleteFunc: func(obj interface{}) {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			l.record("DELETE " + obj.(*corev1.ConfigMap).Name)
		},
	}
}

func (l *informerLog) has(event string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, e := range l.events {
		if e == event {
			return true
		}
	}
	return false
}

// waitFor waits, woken by handler calls, until cond holds.
func (l *informerLog) waitFor(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-l.wake:
		case <-ctx.Done():
			l.mu.Lock()
			defer l.mu.Unlock()
			t.Fatalf("informer never reached %s; handlers saw %v", what, l.events)
		}
	}
}

// connCutter dials the informer's connections and can cut them all, and
// refuse new ones, as a crash of the server process would.
type connCutter struct {
	mu    sync.Mutex
	conns []net.Conn
	cut   bool
}

func (d *connCutter) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var nd net.Dialer
	conn, err := nd.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cut {
		conn.Close()
		return nil, fmt.Errorf("dial %s: connection refused (server down)", addr)
	}
	d.conns = append(d.conns, conn)
	return conn, nil
}

func (d *connCutter) setCut(cut bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.cut = cut
	if cut {
		for _, c := range d.conns {
			c.Close()
		}
		d.conns = nil
	}
}

// storeState is name → resourceVersion of the configmaps of ns, read from
// the store itself.
func storeState(t *testing.T, ctx context.Context, etcd *clientv3.Client, ns string) map[string]string {
	t.Helper()
	prefix := "/registry/configmaps/" + ns + "/"
	resp, err := etcd.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		t.Fatalf("etcd list: %v", err)
	}
	out := map[string]string{}
	for _, kv := range resp.Kvs {
		out[strings.TrimPrefix(string(kv.Key), prefix)] = strconv.FormatInt(kv.ModRevision, 10)
	}
	return out
}

func informerState(inf cache.SharedIndexInformer) map[string]string {
	out := map[string]string{}
	for _, o := range inf.GetStore().List() {
		cm := o.(*corev1.ConfigMap)
		out[cm.Name] = cm.ResourceVersion
	}
	return out
}

// retryWrite repeats a write through a failover until it succeeds; ok
// also accepts the answers that mean an earlier attempt already did.
func retryWrite(t *testing.T, ctx context.Context, what string, write func(context.Context) error, ok func(error) bool) {
	t.Helper()
	var last error
	if err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 40*time.Second, true, func(ctx context.Context) (bool, error) {
		last = write(ctx)
		return last == nil || (ok != nil && ok(last)), nil
	}); err != nil {
		t.Fatalf("%s: %v (last error %v)", what, err, last)
	}
}

// moveLeaderOff makes sure the store leader is not peer keep, and returns
// the leader.
func moveLeaderOff(t *testing.T, ctx context.Context, c *apitest.Cluster, keep int) int {
	t.Helper()
	l := c.Store.WaitLeader()
	if l != keep {
		return l
	}
	to := (keep + 1) % len(c.Store.Members)
	members, err := c.Store.Client().MemberList(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range members.Members {
		if m.Name == c.Store.Members[to].Name {
			if _, err := c.Store.Client(keep).MoveLeader(ctx, m.ID); err != nil {
				t.Fatalf("move leader: %v", err)
			}
		}
	}
	if l = c.Store.WaitLeader(); l == keep {
		t.Fatalf("leadership stayed on peer %d", keep)
	}
	return l
}

// TestInformerFailover runs a client-go shared informer against one API
// server of three while that server restarts and while the store leader
// dies: without being restarted it keeps delivering events and converges
// to exactly what the store holds.
func TestInformerFailover(t *testing.T) {
	c := apitest.New(t, 3, apiOnly())
	ctx := boundedCtx(t, 120*time.Second)
	const ns = "informed"
	leader := c.Store.WaitLeader()
	srv := (leader + 1) % 3   // the informer's API server
	other := (leader + 2) % 3 // writes while srv is down
	cutter := &connCutter{}
	cfg := c.Config(srv)
	cfg.Dial = cutter.dial
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	admin := c.Client(other)
	mkNamespace(t, ctx, admin, ns)
	cms := cs.CoreV1().ConfigMaps(ns)
	adminCMs := admin.CoreV1().ConfigMaps(ns)

	log := newInformerLog()
	factory := informers.NewSharedInformerFactoryWithOptions(cs, 0, informers.WithNamespace(ns))
	inf := factory.Core().V1().ConfigMaps().Informer()
	if _, err := inf.AddEventHandler(log.handler()); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	factory.Start(stop)
	defer factory.Shutdown()
	defer close(stop)
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		t.Fatal("informer never synced")
	}
	converged := func(etcd *clientv3.Client) func() bool {
		return func() bool { return maps.Equal(informerState(inf), storeState(t, ctx, etcd, ns)) }
	}

	t.Run("events", func(t *testing.T) {
		a, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "a"}, Data: map[string]string{"v": "1"}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		log.waitFor(t, ctx, "ADD a", func() bool { return log.has("ADD a " + a.ResourceVersion) })
		a.Data["v"] = "2"
		if a, err = cms.Update(ctx, a, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		log.waitFor(t, ctx, "UPDATE a", func() bool { return log.has("UPDATE a " + a.ResourceVersion) })
		if err := cms.Delete(ctx, "a", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		log.waitFor(t, ctx, "DELETE a", func() bool { return log.has("DELETE a") })
		for _, n := range []string{"keep", "gone", "steady"} {
			if _, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: n}, Data: map[string]string{"v": "1"}}, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		log.waitFor(t, ctx, "the store's state", converged(c.Store.Client()))
	})

	t.Run("API server restart", func(t *testing.T) {
		// The server goes away as a crashed process would: its client
		// connections drop with it. (A graceful stop alone waits for open
		// watches up to the request timeout, as Kubernetes' does.)
		cutter.setCut(true)
		c.StopAPI(srv)
		// Changes the informer's server never saw being made.
		var b, keep *corev1.ConfigMap
		var err error
		if b, err = adminCMs.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "b"}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err = adminCMs.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "c"}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if keep, err = adminCMs.Get(ctx, "keep", metav1.GetOptions{}); err != nil {
			t.Fatal(err)
		}
		keep.Data["v"] = "2"
		if keep, err = adminCMs.Update(ctx, keep, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		if err = adminCMs.Delete(ctx, "gone", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		c.StartAPI(srv)
		cutter.setCut(false)
		log.waitFor(t, ctx, "the store's state after the restart", converged(c.Store.Client()))
		for _, e := range []string{"ADD b " + b.ResourceVersion, "UPDATE keep " + keep.ResourceVersion, "DELETE gone"} {
			if !log.has(e) {
				t.Errorf("handlers were not told %q", e)
			}
		}
		// And it keeps watching.
		d, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "d"}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		log.waitFor(t, ctx, "ADD d", func() bool { return log.has("ADD d " + d.ResourceVersion) })
	})

	t.Run("store leader killed", func(t *testing.T) {
		dead := moveLeaderOff(t, ctx, c, srv)
		c.KillPeer(dead)
		etcd := c.Store.Client() // the surviving peers
		t.Logf("killed store leader %d; informer on API server %d", dead, srv)

		retryWrite(t, ctx, "create e", func(ctx context.Context) error {
			_, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "e"}}, metav1.CreateOptions{})
			return err
		}, apierrors.IsAlreadyExists)
		retryWrite(t, ctx, "update keep", func(ctx context.Context) error {
			cm, err := cms.Get(ctx, "keep", metav1.GetOptions{})
			if err != nil {
				return err
			}
			if cm.Data["v"] == "3" {
				return nil
			}
			cm.Data["v"] = "3"
			_, err = cms.Update(ctx, cm, metav1.UpdateOptions{})
			return err
		}, nil)
		retryWrite(t, ctx, "delete b", func(ctx context.Context) error {
			return cms.Delete(ctx, "b", metav1.DeleteOptions{})
		}, apierrors.IsNotFound)
		log.waitFor(t, ctx, "the store's state after failover", converged(etcd))
		want := map[string]bool{"c": true, "d": true, "e": true, "keep": true, "steady": true}
		got := informerState(inf)
		delete(got, rootCAConfigMap)
		if len(got) != len(want) {
			t.Errorf("informer holds %v, want %v", got, want)
		}
		for n := range want {
			if _, ok := got[n]; !ok {
				t.Errorf("informer lacks %s: %v", n, got)
			}
		}
		if cm, err := cms.Get(ctx, "keep", metav1.GetOptions{}); err != nil || cm.Data["v"] != "3" {
			t.Errorf("keep after failover: %v %v", cm, err)
		}
	})
}
