package nodehealth_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"path/filepath"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/barge-dev/barge/control/apitest"
	"github.com/barge-dev/barge/control/controllers"
	"github.com/barge-dev/barge/control/nodehealth"
	"github.com/barge-dev/barge/node/gossip"
	"github.com/barge-dev/barge/raftstore"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// newController builds a controller on client, with its own informers on
// the admin client, started and synced.
func newController(t *testing.T, c *apitest.Cluster, pool nodehealth.Pool, client *rest.Config) *nodehealth.Controller {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	cs, err := kubernetes.NewForConfig(c.Config(0))
	if err != nil {
		t.Fatal(err)
	}
	in := informers.NewSharedInformerFactory(cs, 0)
	ctl, err := nodehealth.New(pool, in, client, quiet)
	if err != nil {
		t.Fatal(err)
	}
	in.Start(ctx.Done())
	// Shutdown waits for the informers, which stop when ctx does: cancel
	// first (cleanups run last-in first-out, so one function holds both).
	t.Cleanup(func() { cancel(); in.Shutdown() })
	in.WaitForCacheSync(ctx.Done())
	return ctl
}

// startPool starts a lone gossip member: the controllers under test
// follow their own pools, apart from anything the cluster runs.
func startPool(t *testing.T, c *apitest.Cluster, name string, role gossip.Role, join ...string) *gossip.Pool {
	t.Helper()
	keyring, _, err := gossip.InitKeyring(filepath.Join(c.Store.CertsDir))
	if err != nil {
		t.Fatal(err)
	}
	p, err := gossip.Start(gossip.Config{Name: name, Role: role, BindAddr: "127.0.0.1", KeyringFile: keyring, Join: join, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Shutdown() })
	return p
}

func readyNode(name string, status corev1.ConditionStatus, reason string) *corev1.Node {
	now := metav1.Now()
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}, Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{
		{Type: corev1.NodeReady, Status: status, Reason: reason, LastHeartbeatTime: now, LastTransitionTime: now}}}}
}

func createNode(t *testing.T, cs kubernetes.Interface, n *corev1.Node) {
	t.Helper()
	ctx := context.Background()
	created, err := cs.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	created.Status = n.Status
	if _, err := cs.CoreV1().Nodes().UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// waitListed waits until the controller's cache holds node name with
// its Ready condition at status.
func waitListed(t *testing.T, ctl *nodehealth.Controller, name string, status corev1.ConditionStatus) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if n, err := ctl.Cached(name); err == nil {
			if r := nodehealth.ReadyCondition(n); r != nil && r.Status == status {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("node %s never reached the controller's cache", name)
}

// TestSync: what one node's condition becomes for each state of its
// member.
func TestSync(t *testing.T) {
	c := apitest.New(t, 3, apitest.Options{Plane: apitest.APIOnly()})
	pool := startPool(t, c, "observer", gossip.RoleServer)
	ctl := newController(t, c, pool, c.Config(0))
	cs := c.Client(0)
	since := time.Now().Add(-time.Second)
	agent := func(name string, state gossip.State) *gossip.Member {
		return &gossip.Member{Name: name, State: state, Since: since, Addr: netip.MustParseAddrPort("127.0.0.1:7946"), Meta: gossip.Meta{Role: gossip.RoleAgent}}
	}
	for _, tc := range []struct {
		name       string
		ready      corev1.ConditionStatus
		member     *gossip.Member
		wantStatus corev1.ConditionStatus
		wantReason string
	}{
		{"dead-ready", corev1.ConditionTrue, agent("dead-ready", gossip.StateDead), corev1.ConditionUnknown, nodehealth.ReasonDead},
		{"left-ready", corev1.ConditionTrue, agent("left-ready", gossip.StateLeft), corev1.ConditionUnknown, nodehealth.ReasonLeft},
		{"dead-notready", corev1.ConditionFalse, agent("dead-notready", gossip.StateDead), corev1.ConditionFalse, "KubeletNotReady"},
		{"alive-unknown", corev1.ConditionUnknown, agent("alive-unknown", gossip.StateAlive), corev1.ConditionUnknown, "KubeletNotReady"},
		{"suspect-ready", corev1.ConditionTrue, agent("suspect-ready", gossip.StateSuspect), corev1.ConditionTrue, "KubeletNotReady"},
		{"no-member", corev1.ConditionTrue, nil, corev1.ConditionTrue, "KubeletNotReady"},
		{"dead-server", corev1.ConditionTrue, &gossip.Member{Name: "dead-server", State: gossip.StateDead, Since: since, Meta: gossip.Meta{Role: gossip.RoleServer}}, corev1.ConditionTrue, "KubeletNotReady"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			createNode(t, cs, readyNode(tc.name, tc.ready, "KubeletNotReady"))
			waitListed(t, ctl, tc.name, tc.ready)
			if tc.member != nil {
				ctl.Observe(*tc.member)
			}
			if err := ctl.Sync(context.Background(), tc.name); err != nil {
				t.Fatal(err)
			}
			// Once per death: a second look writes nothing more.
			if err := ctl.Sync(context.Background(), tc.name); err != nil {
				t.Fatal(err)
			}
			n, err := cs.CoreV1().Nodes().Get(context.Background(), tc.name, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			r := nodehealth.ReadyCondition(n)
			if r.Status != tc.wantStatus || r.Reason != tc.wantReason {
				t.Fatalf("Ready %s (%s: %s), want %s (%s)", r.Status, r.Reason, r.Message, tc.wantStatus, tc.wantReason)
			}
		})
	}
}

// TestDeposedLeaderWrite: the controller of a term that ended cannot
// land its Ready=Unknown. A member really dies; the write it causes is
// held until another server leads, then refused by its fence. Unfenced,
// the same write lands: the stale decision fencing stops.
func TestDeposedLeaderWrite(t *testing.T) {
	c := apitest.New(t, 3, apitest.Options{Plane: apitest.APIOnly()})
	observer := startPool(t, c, "observer", gossip.RoleServer)
	_, sub := observer.Subscribe()
	defer sub.Close()
	for _, tc := range []struct {
		name   string
		fenced bool
	}{{"fenced", true}, {"unfenced", false}} {
		t.Run(tc.name, func(t *testing.T) {
			node := "victim-" + tc.name
			agent := startPool(t, c, node, gossip.RoleAgent, observer.Addr().String())
			createNode(t, c.Client(0), readyNode(node, corev1.ConditionTrue, "KubeletReady"))
			_ = agent.Shutdown() // as kill -9: no goodbye
			var dead gossip.Member
			for dead.Name == "" {
				select {
				case ev := <-sub.C():
					if ev.Member.Name == node && ev.Kind == gossip.EventFail {
						dead = ev.Member
					}
				case <-time.After(60 * time.Second):
					t.Fatalf("member %s never declared dead", node)
				}
			}

			old := c.Store.WaitLeader()
			term, ok := c.Store.Members[old].Server.LeaderTerm()
			if !ok {
				t.Fatalf("peer %d leads but is not ready", old)
			}
			if !tc.fenced {
				term = 0
			}
			held, release := make(chan struct{}), make(chan struct{})
			cfg := controllers.FencedConfig(c.Config(old), term)
			cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper {
				return holdWrites{rt: rt, once: &sync.Once{}, held: held, release: release}
			})
			ctl := newController(t, c, observer, cfg)
			waitListed(t, ctl, node, corev1.ConditionTrue)
			ctl.Observe(dead)
			result := make(chan error, 1)
			go func() { result <- ctl.Sync(context.Background(), node) }()
			<-held
			next := moveLeader(t, c, old)
			waitLeading(t, c, next)
			close(release)
			err := <-result
			n, gerr := c.Client(next).CoreV1().Nodes().Get(context.Background(), node, metav1.GetOptions{})
			if gerr != nil {
				t.Fatal(gerr)
			}
			r := nodehealth.ReadyCondition(n)
			if tc.fenced {
				if !raftstore.IsFenced(err) {
					t.Fatalf("the deposed leader's write: %v, want it refused by its fence", err)
				}
				if r.Status != corev1.ConditionTrue {
					t.Fatalf("the fenced write landed: Ready %s %s", r.Status, r.Reason)
				}
				return
			}
			if err != nil || r.Status != corev1.ConditionUnknown || r.Reason != nodehealth.ReasonDead {
				t.Fatalf("unfenced write: %v; Ready %s %s", err, r.Status, r.Reason)
			}
		})
	}
}

// holdWrites lets reads through and holds writes until release.
type holdWrites struct {
	rt            http.RoundTripper
	once          *sync.Once
	held, release chan struct{}
}

func (h holdWrites) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method != http.MethodGet {
		h.once.Do(func() { close(h.held) })
		<-h.release
	}
	return h.rt.RoundTrip(r)
}

// moveLeader hands leadership from peer from to another and returns it.
func moveLeader(t *testing.T, c *apitest.Cluster, from int) int {
	t.Helper()
	ctx := c.Ctx()
	to := (from + 1) % len(c.Store.Members)
	members, err := c.Store.Client().MemberList(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range members.Members {
		if m.Name == c.Store.Members[to].Name {
			if _, err := c.Store.Client(from).MoveLeader(ctx, m.ID); err != nil {
				t.Fatalf("move leader: %v", err)
			}
			return to
		}
	}
	t.Fatalf("no member %s", c.Store.Members[to].Name)
	return -1
}

// waitLeading waits until peer i leads and has committed an entry of
// its term.
func waitLeading(t *testing.T, c *apitest.Cluster, i int) {
	t.Helper()
	srv := c.Store.Members[i].Server
	deadline := time.After(60 * time.Second)
	for {
		changed := srv.LeaderChange()
		if _, ok := srv.LeaderTerm(); ok {
			return
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("peer %d never became a ready leader", i)
		case <-time.After(time.Second):
		}
	}
}
