package apiserver_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/barge-dev/barge/control/apitest"
)

// surface wraps an apitest cluster with the few helpers the security,
// subresource and discovery tests share. Everything hangs off this one
// type so the package namespace, shared with other test files, gains only
// the names surface, newSurface and warningRecorder.
type surface struct {
	t *testing.T
	c *apitest.Cluster
}

func newSurface(t *testing.T, n int, opts ...apitest.Options) *surface {
	t.Helper()
	return &surface{t: t, c: apitest.New(t, n, append(opts, apiOnly())...)}
}

// surfaceTokens are the static tokens of the shared surface cluster.
var surfaceTokens = apitest.Options{Tokens: map[string]string{"tok123": `alice,uid1,"devs,ops"`}}

// TestSurface runs the security, subresource and discovery tests on one
// shared single-server cluster: starting kube-apiserver costs seconds,
// and each test keeps to its own namespaces and users.
func TestSurface(t *testing.T) {
	shared := newSurface(t, 1, surfaceTokens)
	for _, tc := range []struct {
		name string
		fn   func(*testing.T, *surface)
	}{
		{"DiscoveryAPI", testDiscoveryAPI},
		{"DiscoveryOpenAPI", testDiscoveryOpenAPI},
		{"DiscoveryHealthAndTables", testDiscoveryHealthAndTables},
		{"SecurityAnonymousRejected", testSecurityAnonymousRejected},
		{"SecurityViewRole", testSecurityViewRole},
		{"SecurityEditRoleBindingIsNamespaced", testSecurityEditRoleBindingIsNamespaced},
		{"SecurityStaticToken", testSecurityStaticToken},
		{"SecuritySelfSubjectReviews", testSecuritySelfSubjectReviews},
		{"SecurityBootstrapPolicy", testSecurityBootstrapPolicy},
		{"SubresourceScale", testSubresourceScale},
		{"SubresourcePodBindingEvictionLog", testSubresourcePodBindingEvictionLog},
		{"SubresourceNamespaceDeletion", testSubresourceNamespaceDeletion},
		{"SubresourceStatus", testSubresourceStatus},
		{"SubresourcePodGracefulDeletion", testSubresourcePodGracefulDeletion},
		{"PatchTypes", testPatchTypes},
		{"PatchServerSideApply", testPatchServerSideApply},
		{"RequestDryRun", testRequestDryRun},
		{"RequestFieldValidation", testRequestFieldValidation},
		{"RequestBodyLimit", testRequestBodyLimit},
		{"RequestValidationStatus", testRequestValidationStatus},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, &surface{t: t, c: shared.c}) })
	}
}

// admin is the system:masters clientset of API server i.
func (s *surface) admin(i int) kubernetes.Interface { return s.c.Client(i) }

// clientset builds a clientset for cfg.
func (s *surface) clientset(cfg *rest.Config) kubernetes.Interface {
	s.t.Helper()
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		s.t.Fatal(err)
	}
	return cs
}

// user is a clientset authenticating with a client certificate for name in
// groups, on API server i.
func (s *surface) user(i int, name string, groups ...string) kubernetes.Interface {
	s.t.Helper()
	return s.clientset(s.c.UserConfig(i, name, groups...))
}

func (s *surface) namespace(ctx context.Context, name string) {
	s.t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if _, err := s.admin(0).CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		s.t.Fatalf("create namespace %s: %v", name, err)
	}
}

// eventually polls cond until it holds or ctx ends; the RBAC and token
// caches of the API server are informers, so a binding or deletion takes
// effect a moment after the write returns.
func (s *surface) eventually(ctx context.Context, what string, cond func(ctx context.Context) (bool, error)) {
	s.t.Helper()
	var last error
	err := wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 20*time.Second, true, func(ctx context.Context) (bool, error) {
		ok, err := cond(ctx)
		last = err
		return ok, nil
	})
	if err != nil {
		s.t.Fatalf("waiting for %s: %v (last error: %v)", what, err, last)
	}
}

// waitAllowed waits until cs may do attrs, asking the API server itself.
func (s *surface) waitAllowed(ctx context.Context, cs kubernetes.Interface, attrs authorizationv1.ResourceAttributes) {
	s.t.Helper()
	s.eventually(ctx, "RBAC to allow "+attrs.Verb+" "+attrs.Resource+" in "+attrs.Namespace, func(ctx context.Context) (bool, error) {
		review, err := s.selfAccess(ctx, cs, &attrs, nil)
		if err != nil {
			return false, err
		}
		return review.Status.Allowed, nil
	})
}

func (s *surface) selfAccess(ctx context.Context, cs kubernetes.Interface, ra *authorizationv1.ResourceAttributes, nra *authorizationv1.NonResourceAttributes) (*authorizationv1.SelfSubjectAccessReview, error) {
	return cs.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authorizationv1.SelfSubjectAccessReview{
		Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: ra, NonResourceAttributes: nra},
	}, metav1.CreateOptions{})
}

// raw sends one HTTP request through cfg's transport (TLS and
// credentials included) and returns status, Content-Type and body.
func (s *surface) raw(ctx context.Context, cfg *rest.Config, method, path, accept string) (int, string, []byte, error) {
	s.t.Helper()
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		s.t.Fatal(err)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(cfg.Host, "/")+path, nil)
	if err != nil {
		s.t.Fatal(err)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, "", nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Content-Type"), body, err
}

// statusOf is the metav1.Status an API error carries, or fails the test.
func (s *surface) statusOf(err error) metav1.Status {
	s.t.Helper()
	var se apierrors.APIStatus
	if !errors.As(err, &se) {
		s.t.Fatalf("not an API status error: %T %v", err, err)
	}
	return se.Status()
}

// hasCause reports whether st carries a cause of type typ on field.
func (s *surface) hasCause(st metav1.Status, typ metav1.CauseType, field string) bool {
	if st.Details == nil {
		return false
	}
	for _, c := range st.Details.Causes {
		if c.Type == typ && c.Field == field {
			return true
		}
	}
	return false
}

// warningRecorder keeps the Warning headers client-go hands it.
type warningRecorder struct {
	mu   sync.Mutex
	msgs []string
}

func (w *warningRecorder) HandleWarningHeader(_ int, _ string, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.msgs = append(w.msgs, text)
}

// take returns and forgets the warnings seen so far.
func (w *warningRecorder) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := w.msgs
	w.msgs = nil
	return out
}

func (s *surface) pod(name, node string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": name}},
		Spec: corev1.PodSpec{
			NodeName:   node,
			Containers: []corev1.Container{{Name: "app", Image: "nginx:1"}},
		},
	}
}

func (s *surface) podTemplate(app string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": app}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "nginx:1"}}},
	}
}

func (s *surface) deployment(name string, replicas int32) *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: s.podTemplate(name),
		},
	}
}

func (s *surface) replicaSet(name string, replicas int32) *appsv1.ReplicaSet {
	return &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.ReplicaSetSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: s.podTemplate(name),
		},
	}
}
