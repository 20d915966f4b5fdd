package apiserver_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/barge-dev/barge/raftstore/pki"
)

// TestSecurityAnonymousRejected: with neither a client certificate nor a
// token, every request is 401, as in a Kubernetes cluster with anonymous
// authentication off; a certificate from a CA the cluster does not trust
// authenticates nobody, whatever it claims.
func testSecurityAnonymousRejected(t *testing.T, s *surface) {
	ctx := s.c.Ctx()
	anon := s.c.TokenConfig(0, "") // trusts the cluster CA, presents nothing

	for _, tc := range []struct{ method, path string }{
		{http.MethodGet, "/api"},
		{http.MethodGet, "/apis"},
		{http.MethodGet, "/version"},
		{http.MethodGet, "/api/v1/namespaces/default/pods"},
		{http.MethodGet, "/apis/apps/v1/deployments"},
		{http.MethodPost, "/api/v1/namespaces/default/configmaps"},
	} {
		t.Run(tc.method+tc.path, func(t *testing.T) {
			code, _, body, err := s.raw(ctx, anon, tc.method, tc.path, "application/json")
			if err != nil {
				t.Fatal(err)
			}
			if code != http.StatusUnauthorized {
				t.Fatalf("anonymous %s %s: status %d, want 401; body %s", tc.method, tc.path, code, body)
			}
		})
	}
	_, err := s.clientset(anon).CoreV1().Pods("default").List(ctx, metav1.ListOptions{})
	if !apierrors.IsUnauthorized(err) {
		t.Fatalf("anonymous list pods via client-go: %v, want Unauthorized", err)
	}

	// A certificate for system:masters, signed by a CA of the attacker's.
	other, err := pki.NewCA("not-the-cluster-ca", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := other.IssueClient("admin", []string{"system:masters"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	forged := s.c.TokenConfig(0, "")
	forged.CertData, forged.KeyData = leaf.CertPEM, leaf.KeyPEM
	_, err = s.clientset(forged).CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	switch {
	case err == nil:
		t.Fatal("a client certificate from a foreign CA was accepted")
	case apierrors.IsUnauthorized(err):
		t.Logf("foreign CA certificate: 401 (%v)", err)
	case strings.Contains(err.Error(), "tls") || strings.Contains(err.Error(), "certificate"):
		t.Logf("foreign CA certificate: TLS error (%v)", err)
	default:
		t.Fatalf("foreign CA certificate: %v, want 401 or a TLS error", err)
	}
}

func (s *surface) bindClusterRole(ctx context.Context, name, role string, subject rbacv1.Subject) {
	s.t.Helper()
	crb := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Subjects:   []rbacv1.Subject{subject},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
	}
	if _, err := s.admin(0).RbacV1().ClusterRoleBindings().Create(ctx, crb, metav1.CreateOptions{}); err != nil {
		s.t.Fatalf("bind %s to %s: %v", role, subject.Name, err)
	}
}

// TestSecurityViewRole: a user bound to the built-in view ClusterRole may
// read workloads and config but not secrets, and may write nothing; every
// refusal is a 403 whose message is kube-apiserver's, word for word.
func testSecurityViewRole(t *testing.T, s *surface) {
	ctx := s.c.Ctx()
	admin := s.admin(0)
	const ns = "default"

	if _, err := admin.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cm1"}, Data: map[string]string{"k": "v"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "s1"}, StringData: map[string]string{"k": "v"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.CoreV1().Pods(ns).Create(ctx, s.pod("p1", ""), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.AppsV1().Deployments(ns).Create(ctx, s.deployment("d1", 1), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	viewer := s.user(0, "viewer")
	// Before any binding the user is known but may do nothing.
	_, err := viewer.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if !apierrors.IsForbidden(err) {
		t.Fatalf("unbound user lists pods: %v, want Forbidden", err)
	}
	s.bindClusterRole(ctx, "viewer-view", "view", rbacv1.Subject{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "viewer"})
	s.waitAllowed(ctx, viewer, authorizationv1.ResourceAttributes{Namespace: ns, Verb: "list", Resource: "pods"})

	watchOK := func(w interface{ Stop() }, err error) error {
		if err == nil {
			w.Stop()
		}
		return err
	}
	reads := []struct {
		name string
		do   func() error
	}{
		{"get pod", func() error { _, err := viewer.CoreV1().Pods(ns).Get(ctx, "p1", metav1.GetOptions{}); return err }},
		{"list pods", func() error { _, err := viewer.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{}); return err }},
		{"watch pods", func() error { return watchOK(viewer.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{})) }},
		{"get deployment", func() error {
			_, err := viewer.AppsV1().Deployments(ns).Get(ctx, "d1", metav1.GetOptions{})
			return err
		}},
		{"list deployments", func() error {
			_, err := viewer.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{})
			return err
		}},
		{"watch deployments", func() error { return watchOK(viewer.AppsV1().Deployments(ns).Watch(ctx, metav1.ListOptions{})) }},
		{"get configmap", func() error {
			_, err := viewer.CoreV1().ConfigMaps(ns).Get(ctx, "cm1", metav1.GetOptions{})
			return err
		}},
		{"list configmaps", func() error {
			_, err := viewer.CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{})
			return err
		}},
		{"watch configmaps", func() error { return watchOK(viewer.CoreV1().ConfigMaps(ns).Watch(ctx, metav1.ListOptions{})) }},
		{"get deployment scale", func() error {
			_, err := viewer.AppsV1().Deployments(ns).GetScale(ctx, "d1", metav1.GetOptions{})
			return err
		}},
	}
	for _, tc := range reads {
		t.Run("allowed/"+tc.name, func(t *testing.T) {
			if err := tc.do(); err != nil {
				t.Fatalf("viewer %s: %v", tc.name, err)
			}
		})
	}

	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cm2"}}
	denied := []struct {
		name string
		do   func() error
		want string
	}{
		{"list secrets", func() error { _, err := viewer.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{}); return err },
			`secrets is forbidden: User "viewer" cannot list resource "secrets" in API group "" in the namespace "default"`},
		{"get secret", func() error { _, err := viewer.CoreV1().Secrets(ns).Get(ctx, "s1", metav1.GetOptions{}); return err },
			`secrets "s1" is forbidden: User "viewer" cannot get resource "secrets" in API group "" in the namespace "default"`},
		{"create configmap", func() error {
			_, err := viewer.CoreV1().ConfigMaps(ns).Create(ctx, cm, metav1.CreateOptions{})
			return err
		},
			`configmaps is forbidden: User "viewer" cannot create resource "configmaps" in API group "" in the namespace "default"`},
		{"update configmap", func() error {
			_, err := viewer.CoreV1().ConfigMaps(ns).Update(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cm1"}}, metav1.UpdateOptions{})
			return err
		}, `configmaps "cm1" is forbidden: User "viewer" cannot update resource "configmaps" in API group "" in the namespace "default"`},
		{"patch configmap", func() error {
			_, err := viewer.CoreV1().ConfigMaps(ns).Patch(ctx, "cm1", types.MergePatchType, []byte(`{"data":{"k":"x"}}`), metav1.PatchOptions{})
			return err
		}, `configmaps "cm1" is forbidden: User "viewer" cannot patch resource "configmaps" in API group "" in the namespace "default"`},
		{"delete configmap", func() error { return viewer.CoreV1().ConfigMaps(ns).Delete(ctx, "cm1", metav1.DeleteOptions{}) },
			`configmaps "cm1" is forbidden: User "viewer" cannot delete resource "configmaps" in API group "" in the namespace "default"`},
		{"delete pod", func() error { return viewer.CoreV1().Pods(ns).Delete(ctx, "p1", metav1.DeleteOptions{}) },
			`pods "p1" is forbidden: User "viewer" cannot delete resource "pods" in API group "" in the namespace "default"`},
		{"create deployment", func() error {
			_, err := viewer.AppsV1().Deployments(ns).Create(ctx, s.deployment("d2", 1), metav1.CreateOptions{})
			return err
		}, `deployments.apps is forbidden: User "viewer" cannot create resource "deployments" in API group "apps" in the namespace "default"`},
		{"scale deployment", func() error {
			sc, err := admin.AppsV1().Deployments(ns).GetScale(ctx, "d1", metav1.GetOptions{})
			if err != nil {
				return err
			}
			_, err = viewer.AppsV1().Deployments(ns).UpdateScale(ctx, "d1", sc, metav1.UpdateOptions{})
			return err
		}, `deployments.apps "d1" is forbidden: User "viewer" cannot update resource "deployments/scale" in API group "apps" in the namespace "default"`},
		{"create namespace", func() error {
			_, err := viewer.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "mine"}}, metav1.CreateOptions{})
			return err
		}, `namespaces is forbidden: User "viewer" cannot create resource "namespaces" in API group "" at the cluster scope`},
		{"create clusterrolebinding", func() error {
			_, err := viewer.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
				ObjectMeta: metav1.ObjectMeta{Name: "escalate"},
				Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "viewer"}},
				RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "cluster-admin"},
			}, metav1.CreateOptions{})
			return err
		}, `clusterrolebindings.rbac.authorization.k8s.io is forbidden: User "viewer" cannot create resource "clusterrolebindings" in API group "rbac.authorization.k8s.io" at the cluster scope`},
	}
	for _, tc := range denied {
		t.Run("denied/"+tc.name, func(t *testing.T) {
			err := tc.do()
			if !apierrors.IsForbidden(err) {
				t.Fatalf("viewer %s: %v, want Forbidden", tc.name, err)
			}
			if err.Error() != tc.want {
				t.Errorf("viewer %s:\n got  %s\n want %s", tc.name, err.Error(), tc.want)
			}
		})
	}
	// Nothing the viewer tried changed anything.
	got, err := admin.CoreV1().ConfigMaps(ns).Get(ctx, "cm1", metav1.GetOptions{})
	if err != nil || got.Data["k"] != "v" {
		t.Fatalf("cm1 after the viewer's attempts: %v %v", got, err)
	}
	if _, err := admin.CoreV1().ConfigMaps(ns).Get(ctx, "cm2", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("cm2 exists after a forbidden create: %v", err)
	}
}

// TestSecurityEditRoleBindingIsNamespaced: a RoleBinding to the edit
// ClusterRole grants writes in its own namespace and nowhere else.
func testSecurityEditRoleBindingIsNamespaced(t *testing.T, s *surface) {
	ctx := s.c.Ctx()
	admin := s.admin(0)
	s.namespace(ctx, "team-a")
	s.namespace(ctx, "team-b")

	dev := s.user(0, "dev", "developers")
	cm := func(name string) *corev1.ConfigMap {
		return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}, Data: map[string]string{"k": "v"}}
	}
	if _, err := dev.CoreV1().ConfigMaps("team-a").Create(ctx, cm("before"), metav1.CreateOptions{}); !apierrors.IsForbidden(err) {
		t.Fatalf("create before the binding: %v, want Forbidden", err)
	}
	rb := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "dev-edit", Namespace: "team-a"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "dev"}},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "edit"},
	}
	if _, err := admin.RbacV1().RoleBindings("team-a").Create(ctx, rb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	s.waitAllowed(ctx, dev, authorizationv1.ResourceAttributes{Namespace: "team-a", Verb: "create", Resource: "configmaps"})

	allowed := []struct {
		name string
		do   func() error
	}{
		{"create configmap", func() error {
			_, err := dev.CoreV1().ConfigMaps("team-a").Create(ctx, cm("mine"), metav1.CreateOptions{})
			return err
		}},
		{"update configmap", func() error {
			_, err := dev.CoreV1().ConfigMaps("team-a").Update(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "mine"}, Data: map[string]string{"k": "w"}}, metav1.UpdateOptions{})
			return err
		}},
		{"create deployment", func() error {
			_, err := dev.AppsV1().Deployments("team-a").Create(ctx, s.deployment("web", 1), metav1.CreateOptions{})
			return err
		}},
		{"create secret", func() error {
			_, err := dev.CoreV1().Secrets("team-a").Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "sec"}}, metav1.CreateOptions{})
			return err
		}},
		{"list secrets", func() error { _, err := dev.CoreV1().Secrets("team-a").List(ctx, metav1.ListOptions{}); return err }},
		{"delete configmap", func() error { return dev.CoreV1().ConfigMaps("team-a").Delete(ctx, "mine", metav1.DeleteOptions{}) }},
	}
	for _, tc := range allowed {
		t.Run("team-a/"+tc.name, func(t *testing.T) {
			if err := tc.do(); err != nil {
				t.Fatalf("dev %s in team-a: %v", tc.name, err)
			}
		})
	}
	denied := []struct {
		name string
		do   func() error
		want string
	}{
		{"create configmap in team-b", func() error {
			_, err := dev.CoreV1().ConfigMaps("team-b").Create(ctx, cm("mine"), metav1.CreateOptions{})
			return err
		}, `configmaps is forbidden: User "dev" cannot create resource "configmaps" in API group "" in the namespace "team-b"`},
		{"create configmap in default", func() error {
			_, err := dev.CoreV1().ConfigMaps("default").Create(ctx, cm("mine"), metav1.CreateOptions{})
			return err
		}, `configmaps is forbidden: User "dev" cannot create resource "configmaps" in API group "" in the namespace "default"`},
		{"list pods in team-b", func() error { _, err := dev.CoreV1().Pods("team-b").List(ctx, metav1.ListOptions{}); return err },
			`pods is forbidden: User "dev" cannot list resource "pods" in API group "" in the namespace "team-b"`},
		{"list pods in all namespaces", func() error { _, err := dev.CoreV1().Pods("").List(ctx, metav1.ListOptions{}); return err },
			`pods is forbidden: User "dev" cannot list resource "pods" in API group "" at the cluster scope`},
		// edit, unlike admin, does not manage who may act in the namespace.
		{"create rolebinding in team-a", func() error {
			rb := rb.DeepCopy()
			rb.Name = "more"
			_, err := dev.RbacV1().RoleBindings("team-a").Create(ctx, rb, metav1.CreateOptions{})
			return err
		}, `rolebindings.rbac.authorization.k8s.io is forbidden: User "dev" cannot create resource "rolebindings" in API group "rbac.authorization.k8s.io" in the namespace "team-a"`},
	}
	for _, tc := range denied {
		t.Run("denied/"+tc.name, func(t *testing.T) {
			err := tc.do()
			if !apierrors.IsForbidden(err) {
				t.Fatalf("dev %s: %v, want Forbidden", tc.name, err)
			}
			if err.Error() != tc.want {
				t.Errorf("dev %s:\n got  %s\n want %s", tc.name, err.Error(), tc.want)
			}
		})
	}
}

// TestSecurityStaticToken: a token from the token file authenticates its
// user with the file's groups; any other token is 401.
func testSecurityStaticToken(t *testing.T, s *surface) {
	ctx := s.c.Ctx()
	alice := s.clientset(s.c.TokenConfig(0, "tok123"))

	// Authenticated (403, not 401) and known by name.
	_, err := alice.CoreV1().Pods("default").List(ctx, metav1.ListOptions{})
	want := `pods is forbidden: User "alice" cannot list resource "pods" in API group "" in the namespace "default"`
	if !apierrors.IsForbidden(err) || err.Error() != want {
		t.Fatalf("alice lists pods before any binding: %v, want %q", err, want)
	}
	// Every authenticated user may ask what it may do (system:basic-user).
	review, err := s.selfAccess(ctx, alice, &authorizationv1.ResourceAttributes{Namespace: "default", Verb: "list", Resource: "pods"}, nil)
	if err != nil || review.Status.Allowed {
		t.Fatalf("alice's access review before the binding: %+v %v", review, err)
	}

	// Bind view to one of the groups the token file gives her.
	s.bindClusterRole(ctx, "ops-view", "view", rbacv1.Subject{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: "ops"})
	s.waitAllowed(ctx, alice, authorizationv1.ResourceAttributes{Namespace: "default", Verb: "list", Resource: "pods"})
	if _, err := alice.CoreV1().Pods("default").List(ctx, metav1.ListOptions{}); err != nil {
		t.Fatalf("alice (group ops) lists pods after ops was bound to view: %v", err)
	}
	// A group she is not in grants nothing.
	s.bindClusterRole(ctx, "qa-edit", "edit", rbacv1.Subject{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: "qa"})
	review, err = s.selfAccess(ctx, alice, &authorizationv1.ResourceAttributes{Namespace: "default", Verb: "create", Resource: "configmaps"}, nil)
	if err != nil || review.Status.Allowed {
		t.Fatalf("alice may create configmaps through group qa she is not in: %+v %v", review.Status, err)
	}

	for _, bad := range []string{"tok124", "TOK123", "tok123x", "alice"} {
		t.Run("wrong token "+bad, func(t *testing.T) {
			_, err := s.clientset(s.c.TokenConfig(0, bad)).CoreV1().Pods("default").List(ctx, metav1.ListOptions{})
			if !apierrors.IsUnauthorized(err) {
				t.Fatalf("token %q: %v, want Unauthorized", bad, err)
			}
		})
	}
}

// TestSecurityServiceAccountToken: a TokenRequest yields a bearer token for
// system:serviceaccount:<ns>:<name> that every API server of the cluster
// accepts, until the service account is deleted.
func TestSecurityServiceAccountToken(t *testing.T) {
	s := newSurface(t, 2)
	ctx := s.c.Ctx()
	admin := s.admin(0)
	const ns = "robots"
	s.namespace(ctx, ns)
	if _, err := admin.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "r2"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	tooShort := int64(60)
	_, err := admin.CoreV1().ServiceAccounts(ns).CreateToken(ctx, "r2", &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &tooShort}}, metav1.CreateOptions{})
	if !apierrors.IsInvalid(err) {
		t.Fatalf("token request for 60s: %v, want Invalid (Kubernetes requires at least 10 minutes)", err)
	}
	if _, err := admin.CoreV1().ServiceAccounts(ns).CreateToken(ctx, "nobody", &authenticationv1.TokenRequest{}, metav1.CreateOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("token for a missing service account: %v, want NotFound", err)
	}

	tr, err := admin.CoreV1().ServiceAccounts(ns).CreateToken(ctx, "r2", &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create token: %v", err)
	}
	if tr.Status.Token == "" {
		t.Fatal("token request returned no token")
	}
	if d := time.Until(tr.Status.ExpirationTimestamp.Time); d < 50*time.Minute || d > 70*time.Minute {
		t.Errorf("token expires in %v, want about the default hour", d)
	}

	const username = "system:serviceaccount:robots:r2"
	robots := []kubernetes.Interface{s.clientset(s.c.TokenConfig(0, tr.Status.Token)), s.clientset(s.c.TokenConfig(1, tr.Status.Token))}
	for i, robot := range robots {
		_, err := robot.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{})
		want := fmt.Sprintf(`secrets is forbidden: User %q cannot list resource "secrets" in API group "" in the namespace "robots"`, username)
		if !apierrors.IsForbidden(err) || err.Error() != want {
			t.Fatalf("server %d: service account lists secrets: %v, want %q", i, err, want)
		}
	}

	// The token carries the service account groups: binding view to
	// system:serviceaccounts:robots lets it read pods there.
	rb := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "robots-view", Namespace: ns},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: "system:serviceaccounts:robots"}},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "view"},
	}
	if _, err := admin.RbacV1().RoleBindings(ns).Create(ctx, rb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, robot := range robots {
		s.waitAllowed(ctx, robot, authorizationv1.ResourceAttributes{Namespace: ns, Verb: "list", Resource: "pods"})
		if _, err := robot.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{}); err != nil {
			t.Fatalf("service account lists pods after the group binding: %v", err)
		}
	}

	// A token whose signature does not verify is refused outright.
	sig := []byte(tr.Status.Token)
	for i := len(sig) - 4; i < len(sig); i++ {
		if sig[i] == 'A' {
			sig[i] = 'B'
		} else {
			sig[i] = 'A'
		}
	}
	tampered := string(sig)
	if _, err := s.clientset(s.c.TokenConfig(0, tampered)).CoreV1().Pods(ns).List(ctx, metav1.ListOptions{}); !apierrors.IsUnauthorized(err) {
		t.Fatalf("tampered token: %v, want Unauthorized", err)
	}

	if err := admin.CoreV1().ServiceAccounts(ns).Delete(ctx, "r2", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	for i, robot := range robots {
		s.eventually(ctx, fmt.Sprintf("server %d to reject the deleted account's token", i), func(ctx context.Context) (bool, error) {
			_, err := robot.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
			return apierrors.IsUnauthorized(err), err
		})
	}
	// A new account of the same name does not revive the old token.
	if _, err := admin.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "r2"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := robots[0].CoreV1().Pods(ns).List(ctx, metav1.ListOptions{}); !apierrors.IsUnauthorized(err) {
		t.Fatalf("old token after the account was recreated: %v, want Unauthorized", err)
	}
}

// TestSecuritySelfSubjectReviews: access and rules reviews tell each user
// what the authoriser would decide for it.
func testSecuritySelfSubjectReviews(t *testing.T, s *surface) {
	ctx := s.c.Ctx()
	admin := s.admin(0)
	viewer := s.user(0, "reviewer")
	s.bindClusterRole(ctx, "reviewer-view", "view", rbacv1.Subject{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "reviewer"})
	s.waitAllowed(ctx, viewer, authorizationv1.ResourceAttributes{Namespace: "default", Verb: "get", Resource: "pods"})

	res := func(ns, verb, group, resource, sub string) *authorizationv1.ResourceAttributes {
		return &authorizationv1.ResourceAttributes{Namespace: ns, Verb: verb, Group: group, Resource: resource, Subresource: sub}
	}
	cases := []struct {
		name    string
		cs      kubernetes.Interface
		ra      *authorizationv1.ResourceAttributes
		nra     *authorizationv1.NonResourceAttributes
		allowed bool
	}{
		{"admin creates namespaces", admin, res("", "create", "", "namespaces", ""), nil, true},
		{"admin deletes secrets anywhere", admin, res("", "delete", "", "secrets", ""), nil, true},
		{"admin gets /metrics", admin, nil, &authorizationv1.NonResourceAttributes{Path: "/metrics", Verb: "get"}, true},
		{"viewer gets pods", viewer, res("default", "get", "", "pods", ""), nil, true},
		{"viewer watches deployments", viewer, res("kube-system", "watch", "apps", "deployments", ""), nil, true},
		{"viewer gets pod logs", viewer, res("default", "get", "", "pods", "log"), nil, true},
		{"viewer creates pods", viewer, res("default", "create", "", "pods", ""), nil, false},
		{"viewer lists secrets", viewer, res("default", "list", "", "secrets", ""), nil, false},
		{"viewer updates deployment scale", viewer, res("default", "update", "apps", "deployments", "scale"), nil, false},
		{"viewer gets /api (system:discovery)", viewer, nil, &authorizationv1.NonResourceAttributes{Path: "/api", Verb: "get"}, true},
		{"viewer posts /api", viewer, nil, &authorizationv1.NonResourceAttributes{Path: "/api", Verb: "post"}, false},
		{"viewer gets /metrics", viewer, nil, &authorizationv1.NonResourceAttributes{Path: "/metrics", Verb: "get"}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			review, err := s.selfAccess(ctx, tc.cs, tc.ra, tc.nra)
			if err != nil {
				t.Fatal(err)
			}
			if review.Status.Allowed != tc.allowed {
				t.Fatalf("allowed = %v, want %v (status %+v)", review.Status.Allowed, tc.allowed, review.Status)
			}
			if review.Status.Denied && review.Status.Allowed {
				t.Fatalf("both allowed and denied: %+v", review.Status)
			}
		})
	}

	t.Run("rules of viewer", func(t *testing.T) {
		rr, err := viewer.AuthorizationV1().SelfSubjectRulesReviews().Create(ctx, &authorizationv1.SelfSubjectRulesReview{
			Spec: authorizationv1.SelfSubjectRulesReviewSpec{Namespace: "default"},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if rr.Status.Incomplete || rr.Status.EvaluationError != "" {
			t.Errorf("incomplete rules review: %+v", rr.Status)
		}
		grants := func(verb, group, resource string) bool {
			for _, r := range rr.Status.ResourceRules {
				if (slices.Contains(r.Verbs, verb) || slices.Contains(r.Verbs, "*")) &&
					(slices.Contains(r.APIGroups, group) || slices.Contains(r.APIGroups, "*")) &&
					(slices.Contains(r.Resources, resource) || slices.Contains(r.Resources, "*")) {
					return true
				}
			}
			return false
		}
		for _, want := range [][3]string{
			{"get", "", "pods"}, {"list", "", "pods"}, {"watch", "", "pods"},
			{"list", "", "configmaps"}, {"list", "apps", "deployments"}, {"get", "apps", "deployments/scale"},
			{"create", "authorization.k8s.io", "selfsubjectaccessreviews"},
		} {
			if !grants(want[0], want[1], want[2]) {
				t.Errorf("rules review lacks %s %s/%s; rules: %+v", want[0], want[1], want[2], rr.Status.ResourceRules)
			}
		}
		for _, deny := range [][3]string{{"create", "", "configmaps"}, {"list", "", "secrets"}, {"delete", "apps", "deployments"}} {
			if grants(deny[0], deny[1], deny[2]) {
				t.Errorf("rules review grants %s %s/%s to a viewer", deny[0], deny[1], deny[2])
			}
		}
		discovery := false
		for _, r := range rr.Status.NonResourceRules {
			if slices.Contains(r.Verbs, "get") && slices.Contains(r.NonResourceURLs, "/api") {
				discovery = true
			}
		}
		if !discovery {
			t.Errorf("rules review lacks get /api from system:discovery: %+v", rr.Status.NonResourceRules)
		}
	})

	t.Run("rules of admin", func(t *testing.T) {
		rr, err := admin.AuthorizationV1().SelfSubjectRulesReviews().Create(ctx, &authorizationv1.SelfSubjectRulesReview{
			Spec: authorizationv1.SelfSubjectRulesReviewSpec{Namespace: "default"},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		all := false
		for _, r := range rr.Status.ResourceRules {
			if slices.Contains(r.Verbs, "*") && slices.Contains(r.APIGroups, "*") && slices.Contains(r.Resources, "*") {
				all = true
			}
		}
		if !all {
			t.Errorf("admin's rules review lacks */*/*: %+v", rr.Status.ResourceRules)
		}
	})
}

// TestSecurityBootstrapPolicy: the built-in roles exist after start with
// Kubernetes' bootstrapping label, system:masters is bound to
// cluster-admin, and any member of system:masters may do anything.
func testSecurityBootstrapPolicy(t *testing.T, s *surface) {
	ctx := s.c.Ctx()
	admin := s.admin(0)

	list, err := admin.RbacV1().ClusterRoles().List(ctx, metav1.ListOptions{LabelSelector: "kubernetes.io/bootstrapping=rbac-defaults"})
	if err != nil {
		t.Fatal(err)
	}
	labelled := map[string]rbacv1.ClusterRole{}
	for _, r := range list.Items {
		labelled[r.Name] = r
	}
	for _, name := range []string{"cluster-admin", "admin", "edit", "view", "system:discovery", "system:basic-user"} {
		t.Run("clusterrole "+name, func(t *testing.T) {
			role, err := admin.RbacV1().ClusterRoles().Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if role.Labels["kubernetes.io/bootstrapping"] != "rbac-defaults" {
				t.Errorf("labels %v, want kubernetes.io/bootstrapping=rbac-defaults", role.Labels)
			}
			if _, ok := labelled[name]; !ok {
				t.Errorf("not found by the label selector")
			}
			if len(role.Rules) == 0 {
				t.Errorf("no rules")
			}
		})
	}
	ca, err := admin.RbacV1().ClusterRoles().Get(ctx, "cluster-admin", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	wantRules := []rbacv1.PolicyRule{
		{Verbs: []string{"*"}, APIGroups: []string{"*"}, Resources: []string{"*"}},
		{Verbs: []string{"*"}, NonResourceURLs: []string{"*"}},
	}
	for _, w := range wantRules {
		found := false
		for _, r := range ca.Rules {
			if slices.Equal(r.Verbs, w.Verbs) && slices.Equal(r.APIGroups, w.APIGroups) && slices.Equal(r.Resources, w.Resources) && slices.Equal(r.NonResourceURLs, w.NonResourceURLs) {
				found = true
			}
		}
		if !found {
			t.Errorf("cluster-admin lacks rule %+v: %+v", w, ca.Rules)
		}
	}

	crb, err := admin.RbacV1().ClusterRoleBindings().Get(ctx, "cluster-admin", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if crb.RoleRef != (rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "cluster-admin"}) {
		t.Errorf("cluster-admin binding refers to %+v", crb.RoleRef)
	}
	if !slices.Contains(crb.Subjects, rbacv1.Subject{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: "system:masters"}) {
		t.Errorf("cluster-admin binding subjects %+v lack group system:masters", crb.Subjects)
	}
	if crb.Labels["kubernetes.io/bootstrapping"] != "rbac-defaults" {
		t.Errorf("cluster-admin binding labels %v", crb.Labels)
	}

	// A fresh user certificate in system:masters may do anything at once:
	// no binding for this user exists or is needed.
	root := s.user(0, "root-2", "system:masters")
	if _, err := root.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "by-root"}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("system:masters member creates a namespace: %v", err)
	}
	if _, err := root.CoreV1().Secrets("kube-system").List(ctx, metav1.ListOptions{}); err != nil {
		t.Fatalf("system:masters member lists secrets: %v", err)
	}
	code, _, body, err := s.raw(ctx, s.c.UserConfig(0, "root-3", "system:masters"), http.MethodGet, "/metrics", "")
	if err != nil || code == http.StatusForbidden || code == http.StatusUnauthorized {
		t.Fatalf("system:masters member GET /metrics: %d %v %.200s", code, err, body)
	}
}
