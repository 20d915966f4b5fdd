package auth

import (
	"context"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
)

func newIndexer(t *testing.T, objs ...runtime.Object) cache.Indexer {
	t.Helper()
	idx := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	for _, o := range objs {
		if err := idx.Add(o); err != nil {
			t.Fatal(err)
		}
	}
	return idx
}

func TestListerGetter(t *testing.T) {
	cachedSA, liveSA := testSA("ns1", "cached", "u1"), testSA("ns1", "fresh", "u2")
	cachedPod, livePod := testPod("ns1", "cached", "p1"), testPod("ns1", "fresh", "p2")
	tests := []struct {
		name      string
		withPods  bool
		withLive  bool
		sa, pod   string
		wantSAUID string // "" means NotFound
		wantPodOK bool
	}{
		{name: "cache hit", withPods: true, sa: "cached", pod: "cached", wantSAUID: "u1", wantPodOK: true},
		{name: "cache miss without live", withPods: true, sa: "fresh", pod: "fresh"},
		{name: "cache miss confirmed live", withPods: true, withLive: true, sa: "fresh", pod: "fresh", wantSAUID: "u2", wantPodOK: true},
		{name: "missing everywhere", withPods: true, withLive: true, sa: "nope", pod: "nope"},
		{name: "no pod lister, no live", sa: "cached", pod: "cached", wantSAUID: "u1"},
		{name: "no pod lister, live", withLive: true, sa: "cached", pod: "fresh", wantSAUID: "u1", wantPodOK: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var pods corelisters.PodLister
			if tt.withPods {
				pods = corelisters.NewPodLister(newIndexer(t, cachedPod))
			}
			var live kubernetes.Interface
			if tt.withLive {
				live = fake.NewClientset(liveSA, livePod)
			}
			g := NewListerGetter(corelisters.NewServiceAccountLister(newIndexer(t, cachedSA)), pods, live)

			sa, err := g.Get("ns1", tt.sa)
			switch {
			case tt.wantSAUID == "" && !apierrors.IsNotFound(err):
				t.Errorf("Get: err = %v, want NotFound", err)
			case tt.wantSAUID != "" && (err != nil || string(sa.UID) != tt.wantSAUID):
				t.Errorf("Get = %v, %v; want uid %s", sa, err, tt.wantSAUID)
			}
			pod, err := g.GetPod("ns1", tt.pod)
			if tt.wantPodOK != (err == nil && pod != nil) {
				t.Errorf("GetPod = %v, %v; want found %v", pod, err, tt.wantPodOK)
			}
		})
	}
}

// TestListerGetterWithAuthenticator checks the adapter satisfies what the
// authenticator needs, pod binding included.
func TestListerGetterWithAuthenticator(t *testing.T) {
	key := testKey(t)
	sa, pod := testSA("ns1", "builder", "uid-1"), testPod("ns1", "web-0", "pod-uid-1")
	tok, _, err := NewTokenIssuer(key, testIssuer).IssueBound(sa,
		&authenticationv1.BoundObjectReference{Kind: "Pod", Name: pod.Name, UID: pod.UID}, nil, time.Hour, testNow())
	if err != nil {
		t.Fatal(err)
	}
	g := NewListerGetter(
		corelisters.NewServiceAccountLister(newIndexer(t, sa)),
		corelisters.NewPodLister(newIndexer(t, pod)),
		nil)
	resp, ok, err := NewTokenAuthenticator(&key.PublicKey, testIssuer, g, testNow).AuthenticateToken(context.Background(), tok)
	if err != nil || !ok || resp.User.GetName() != "system:serviceaccount:ns1:builder" {
		t.Fatalf("AuthenticateToken = %v, %v, %v", resp, ok, err)
	}
}
