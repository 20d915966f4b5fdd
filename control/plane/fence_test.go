package plane_test

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/barge-dev/barge/control/apiserver"
	"github.com/barge-dev/barge/control/apitest"
	"github.com/barge-dev/barge/control/controllers"
	"github.com/barge-dev/barge/raftstore"
)

// TestFencing: a write a leader-only component sends during its term,
// held back until another server leads and has committed its first
// entry, is refused once let go, through the deposed leader's own API
// server; the same write without the fence lands. This is the write
// Kubernetes' Lease election cannot stop.
func TestFencing(t *testing.T) {
	if apiserver.FenceMetadata != raftstore.FenceMetadataKey || apiserver.FenceHeader != controllers.FenceHeader {
		t.Fatal("the API server, the controllers and the store disagree on the fence's names")
	}
	c := apitest.New(t, 3)
	for _, tc := range []struct {
		name   string
		fenced bool
	}{
		{"fenced", true},
		{"unfenced", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := c.Ctx()
			old := c.Store.WaitLeader()
			term, ok := c.Store.Members[old].Server.LeaderTerm()
			if !ok {
				t.Fatalf("peer %d leads but is not ready", old)
			}
			if !tc.fenced {
				term = 0
			}
			// The component's client on the leader's own API server, with a
			// transport that holds the write until told.
			held, release := make(chan struct{}), make(chan struct{})
			cfg := controllers.FencedConfig(c.Config(old), term)
			cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper {
				return holdWrites{rt: rt, once: &sync.Once{}, held: held, release: release}
			})
			cs, err := kubernetes.NewForConfig(cfg)
			if err != nil {
				t.Fatal(err)
			}
			name := "decision-" + tc.name
			result := make(chan error, 1)
			go func() {
				cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}, Data: map[string]string{"term": "old"}}
				_, err := cs.CoreV1().ConfigMaps("default").Create(context.Background(), cm, metav1.CreateOptions{})
				result <- err
			}()
			<-held

			next := moveLeader(t, ctx, c, old)
			waitReady(t, ctx, c, next)
			close(release)
			err = <-result
			got, gerr := c.Client(next).CoreV1().ConfigMaps("default").Get(ctx, name, metav1.GetOptions{})
			if tc.fenced {
				if !raftstore.IsFenced(err) {
					t.Fatalf("the deposed leader's held write: %v, want it refused by its fence", err)
				}
				if !apierrors.IsNotFound(gerr) {
					t.Fatalf("the fenced write landed: %v %v", got, gerr)
				}
				t.Logf("refused: %v", err)
				return
			}
			// Without the fence the old term's decision lands after the new
			// leader took over: what fencing prevents.
			if err != nil || gerr != nil {
				t.Fatalf("unfenced write: %v; read back: %v", err, gerr)
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
func moveLeader(t *testing.T, ctx context.Context, c *apitest.Cluster, from int) int {
	t.Helper()
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

// waitReady waits until peer i leads and has committed an entry of its
// term, the moment its components may start.
func waitReady(t *testing.T, ctx context.Context, c *apitest.Cluster, i int) {
	t.Helper()
	srv := c.Store.Members[i].Server
	for {
		changed := srv.LeaderChange()
		if _, ok := srv.LeaderTerm(); ok {
			return
		}
		select {
		case <-changed:
		case <-ctx.Done():
			t.Fatalf("peer %d never became a ready leader", i)
		case <-time.After(time.Second):
		}
	}
}
