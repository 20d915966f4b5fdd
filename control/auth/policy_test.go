package auth

import (
	"context"
	"errors"
	"fmt"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// bootstrapRBAC evaluates the bootstrap policy plus namespace bindings of the
// aggregate roles, the way an administrator would hand them out.
func bootstrapRBAC(t *testing.T) *RBAC {
	var objs []runtime.Object
	for _, r := range BootstrapClusterRoles() {
		objs = append(objs, &r)
	}
	for _, b := range BootstrapClusterRoleBindings() {
		objs = append(objs, &b)
	}
	objs = append(objs,
		roleBinding("ns1", "viewer", "ClusterRole", "view", userSubject("viewer")),
		roleBinding("ns1", "editor", "ClusterRole", "edit", userSubject("editor")),
		roleBinding("ns1", "admin", "ClusterRole", "admin", userSubject("admin")),
		clusterRoleBinding("boss", "cluster-admin", userSubject("boss")),
	)
	return newTestRBAC(t, objs...)
}

func TestBootstrapPolicyGrants(t *testing.T) {
	r := bootstrapRBAC(t)
	authed := func(name string) user.Info { return testUser(name, user.AllAuthenticated) }
	anon := testUser(user.Anonymous, user.AllUnauthenticated)
	res := func(u user.Info, verb, group, resource, sub string) authorizer.AttributesRecord {
		return authorizer.AttributesRecord{User: u, Verb: verb, Namespace: "ns1", APIGroup: group, Resource: resource, Subresource: sub, ResourceRequest: true}
	}
	url := func(u user.Info, verb, path string) authorizer.AttributesRecord {
		return authorizer.AttributesRecord{User: u, Verb: verb, Path: path}
	}
	tests := []struct {
		attrs authorizer.AttributesRecord
		want  bool
	}{
		// view
		{res(authed("viewer"), "get", "", "pods", ""), true},
		{res(authed("viewer"), "get", "", "pods", "log"), true},
		{res(authed("viewer"), "get", "", "pods", "status"), true},
		{res(authed("viewer"), "watch", "", "namespaces", ""), true},
		{res(authed("viewer"), "list", "discovery.k8s.io", "endpointslices", ""), true},
		{res(authed("viewer"), "get", "coordination.k8s.io", "leases", ""), true},
		{res(authed("viewer"), "get", "apps", "deployments", "scale"), true},
		{res(authed("viewer"), "list", "apps", "replicasets", ""), true},
		{res(authed("viewer"), "list", "", "events", ""), true},
		{res(authed("viewer"), "get", "", "secrets", ""), false},
		{res(authed("viewer"), "create", "", "pods", ""), false},
		{res(authed("viewer"), "create", "", "pods", "eviction"), false},
		{res(authed("viewer"), "create", "", "serviceaccounts", "token"), false},
		{res(authed("viewer"), "list", "rbac.authorization.k8s.io", "rolebindings", ""), false},
		// edit
		{res(authed("editor"), "create", "", "pods", ""), true},
		{res(authed("editor"), "deletecollection", "", "pods", ""), true},
		{res(authed("editor"), "create", "", "pods", "eviction"), true},
		{res(authed("editor"), "get", "", "secrets", ""), true},
		{res(authed("editor"), "update", "", "secrets", ""), true},
		{res(authed("editor"), "create", "", "serviceaccounts", "token"), true},
		{res(authed("editor"), "impersonate", "", "serviceaccounts", ""), true},
		{res(authed("editor"), "patch", "apps", "deployments", "scale"), true},
		{res(authed("editor"), "update", "coordination.k8s.io", "leases", ""), true},
		{res(authed("editor"), "update", "", "pods", "status"), false},
		{res(authed("editor"), "update", "", "endpoints", ""), false},
		{res(authed("editor"), "create", "discovery.k8s.io", "endpointslices", ""), false},
		{res(authed("editor"), "create", "rbac.authorization.k8s.io", "rolebindings", ""), false},
		{res(authed("editor"), "delete", "", "namespaces", ""), false},
		// admin
		{res(authed("admin"), "create", "rbac.authorization.k8s.io", "rolebindings", ""), true},
		{res(authed("admin"), "update", "rbac.authorization.k8s.io", "roles", ""), true},
		{res(authed("admin"), "create", "", "serviceaccounts", "token"), true},
		{res(authed("admin"), "get", "", "secrets", ""), true},
		{res(authed("admin"), "create", "rbac.authorization.k8s.io", "clusterroles", ""), false},
		// cluster-admin
		{res(authed("boss"), "escalate", "rbac.authorization.k8s.io", "clusterroles", ""), true},
		{url(authed("boss"), "post", "/anything"), true},
		// every authenticated user
		{url(authed("u"), "get", "/api"), true},
		{url(authed("u"), "get", "/apis/apps/v1"), true},
		{url(authed("u"), "get", "/openapi/v3"), true},
		{url(authed("u"), "get", "/version/"), true},
		{url(authed("u"), "get", "/readyz"), true},
		{url(authed("u"), "post", "/api"), false},
		{res(authed("u"), "create", "authorization.k8s.io", "selfsubjectaccessreviews", ""), true},
		{res(authed("u"), "create", "authorization.k8s.io", "selfsubjectrulesreviews", ""), true},
		{res(authed("u"), "list", "", "pods", ""), false},
		// anonymous
		{url(anon, "get", "/healthz"), true},
		{url(anon, "get", "/livez"), true},
		{url(anon, "get", "/version"), true},
		{url(anon, "get", "/api"), false},
		{url(anon, "get", "/openapi/v2"), false},
		{res(anon, "create", "authorization.k8s.io", "selfsubjectaccessreviews", ""), false},
	}
	for _, tt := range tests {
		a := tt.attrs
		name := fmt.Sprintf("%s %s %s/%s/%s%s", a.User.GetName(), a.Verb, a.APIGroup, a.Resource, a.Subresource, a.Path)
		t.Run(name, func(t *testing.T) {
			d, reason, err := r.Authorize(context.Background(), a)
			if err != nil {
				t.Fatalf("Authorize: %v", err)
			}
			if got := d == authorizer.DecisionAllow; got != tt.want {
				t.Errorf("allowed = %v, want %v (reason %q)", got, tt.want, reason)
			}
		})
	}
}

func TestBootstrapPolicyShape(t *testing.T) {
	roles := BootstrapClusterRoles()
	names := map[string]bool{}
	for _, r := range roles {
		if names[r.Name] {
			t.Errorf("duplicate clusterrole %q", r.Name)
		}
		names[r.Name] = true
		checkBootstrapMeta(t, "clusterrole "+r.Name, r.ObjectMeta)
		if len(r.Rules) == 0 {
			t.Errorf("clusterrole %q has no rules", r.Name)
		}
		if r.AggregationRule != nil {
			t.Errorf("clusterrole %q aggregates; nothing here would fill it in", r.Name)
		}
	}
	for _, want := range []string{"cluster-admin", "admin", "edit", "view", "system:discovery", "system:public-info-viewer", "system:basic-user"} {
		if !names[want] {
			t.Errorf("missing clusterrole %q", want)
		}
	}
	for _, b := range BootstrapClusterRoleBindings() {
		checkBootstrapMeta(t, "clusterrolebinding "+b.Name, b.ObjectMeta)
		if b.RoleRef.Kind != "ClusterRole" || b.RoleRef.APIGroup != rbacv1.GroupName || !names[b.RoleRef.Name] {
			t.Errorf("clusterrolebinding %q refers to %+v, not a bootstrap ClusterRole", b.Name, b.RoleRef)
		}
	}
}

func checkBootstrapMeta(t *testing.T, what string, m metav1.ObjectMeta) {
	t.Helper()
	if m.Labels[BootstrappingLabelKey] != BootstrappingLabelValue {
		t.Errorf("%s: label %s = %q", what, BootstrappingLabelKey, m.Labels[BootstrappingLabelKey])
	}
	if m.Annotations[rbacv1.AutoUpdateAnnotationKey] != "true" {
		t.Errorf("%s: annotation %s = %q", what, rbacv1.AutoUpdateAnnotationKey, m.Annotations[rbacv1.AutoUpdateAnnotationKey])
	}
}

func TestBootstrapPolicyIsFreshEachCall(t *testing.T) {
	first := BootstrapClusterRoles()
	for i := range first {
		for j := range first[i].Rules {
			first[i].Rules[j].Verbs[0] = "mutated"
		}
		first[i].Labels["x"] = "y"
	}
	for _, r := range BootstrapClusterRoles() {
		for _, rule := range r.Rules {
			if rule.Verbs[0] == "mutated" {
				t.Fatalf("clusterrole %q shares rule slices between calls", r.Name)
			}
		}
		if _, ok := r.Labels["x"]; ok {
			t.Fatalf("clusterrole %q shares labels between calls", r.Name)
		}
	}
}

func TestEnsureBootstrapPolicy(t *testing.T) {
	customView := clusterRole("view", rule([]string{"get"}, []string{""}, []string{"pods"}))
	injected := errors.New("injected")
	tests := []struct {
		name      string
		existing  []runtime.Object
		failRole  string // create of this clusterrole fails with injected
		cancelled bool
		wantErrIs error
	}{
		{name: "empty cluster"},
		{name: "keeps user changes", existing: []runtime.Object{customView}},
		{name: "create failure is reported and others still created", failRole: "edit", wantErrIs: injected},
		{name: "cancelled", cancelled: true, wantErrIs: context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := fake.NewClientset(tt.existing...)
			if tt.failRole != "" {
				c.PrependReactor("create", "clusterroles", func(a k8stesting.Action) (bool, runtime.Object, error) {
					obj := a.(k8stesting.CreateAction).GetObject().(*rbacv1.ClusterRole)
					return obj.Name == tt.failRole, nil, injected
				})
			}
			ctx, cancel := context.WithCancel(context.Background())
			if tt.cancelled {
				cancel()
			}
			defer cancel()

			err := EnsureBootstrapPolicy(ctx, c)
			if tt.wantErrIs == nil && err != nil {
				t.Fatalf("EnsureBootstrapPolicy: %v", err)
			}
			if !errors.Is(err, tt.wantErrIs) {
				t.Fatalf("err = %v, want errors.Is %v", err, tt.wantErrIs)
			}
			if tt.cancelled {
				return
			}

			roles, err := c.RbacV1().ClusterRoles().List(context.Background(), metav1.ListOptions{})
			if err != nil {
				t.Fatal(err)
			}
			wantRoles := len(BootstrapClusterRoles())
			if tt.failRole != "" {
				wantRoles--
			}
			if len(roles.Items) != wantRoles {
				t.Errorf("%d clusterroles exist, want %d", len(roles.Items), wantRoles)
			}
			bindings, err := c.RbacV1().ClusterRoleBindings().List(context.Background(), metav1.ListOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if len(bindings.Items) != len(BootstrapClusterRoleBindings()) {
				t.Errorf("%d clusterrolebindings exist, want %d", len(bindings.Items), len(BootstrapClusterRoleBindings()))
			}
			if tt.wantErrIs != nil {
				return
			}

			// A second run (a restart, or another server) changes nothing.
			if err := EnsureBootstrapPolicy(context.Background(), c); err != nil {
				t.Fatalf("second EnsureBootstrapPolicy: %v", err)
			}
			view, err := c.RbacV1().ClusterRoles().Get(context.Background(), "view", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if len(tt.existing) > 0 && len(view.Rules) != 1 {
				t.Errorf("view was overwritten: %d rules", len(view.Rules))
			}
		})
	}
}

func TestEnsureBootstrapPolicyWrapsAPIErrors(t *testing.T) {
	c := fake.NewClientset()
	c.PrependReactor("create", "clusterrolebindings", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(schema.GroupResource{Group: rbacv1.GroupName, Resource: "clusterrolebindings"}, "x", errors.New("no"))
	})
	err := EnsureBootstrapPolicy(context.Background(), c)
	if !apierrors.IsForbidden(err) {
		t.Fatalf("err = %v, want a wrapped Forbidden", err)
	}
}
