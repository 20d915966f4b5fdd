package auth

import (
	"context"
	"errors"
	"strings"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
)

func rbacFixture(t *testing.T) *RBAC {
	read := []string{"get", "list", "watch"}
	objs := []runtime.Object{
		clusterRole("pod-reader", rule(read, []string{""}, []string{"pods"})),
		clusterRole("secret-reader", rule(read, []string{""}, []string{"secrets"})),
		clusterRole("health", rbacv1.PolicyRule{Verbs: []string{"get"}, NonResourceURLs: []string{"/healthz", "/logs/*"}}),
		role("ns1", "cm-editor", rule([]string{"*"}, []string{""}, []string{"configmaps"})),

		clusterRoleBinding("alice-reads-pods", "pod-reader", userSubject("alice")),
		clusterRoleBinding("devs-health", "health", groupSubject("devs")),
		clusterRoleBinding("robot-secrets", "secret-reader", saSubject("ns2", "robot")),
		// A cluster binding cannot default a service account's namespace,
		// so this subject must match nobody.
		clusterRoleBinding("ghost", "secret-reader", saSubject("", "ghost")),
		roleBinding("ns1", "bob-cm", "Role", "cm-editor", userSubject("bob")),
		roleBinding("ns1", "builder-pods", "ClusterRole", "pod-reader", saSubject("", "builder")),
		roleBinding("ns1", "carol-missing", "ClusterRole", "missing", userSubject("carol")),
		roleBinding("ns1", "dave-bad-kind", "Foo", "whatever", userSubject("dave")),
		// A RoleBinding naming a Role from another namespace resolves in
		// its own namespace only.
		roleBinding("ns2", "erin-cm", "Role", "cm-editor", userSubject("erin")),
	}
	return newTestRBAC(t, objs...)
}

func TestRBACAuthorize(t *testing.T) {
	r := rbacFixture(t)
	res := func(u user.Info, verb, ns, group, resource string) authorizer.AttributesRecord {
		return authorizer.AttributesRecord{User: u, Verb: verb, Namespace: ns, APIGroup: group, Resource: resource, ResourceRequest: true}
	}
	url := func(u user.Info, verb, path string) authorizer.AttributesRecord {
		return authorizer.AttributesRecord{User: u, Verb: verb, Path: path}
	}
	tests := []struct {
		name      string
		attrs     authorizer.AttributesRecord
		want      authorizer.Decision
		reason    string // exact, unless reasonHas is set
		reasonHas string
		wantErrIs error
	}{
		{name: "user via cluster binding", attrs: res(testUser("alice"), "get", "ns1", "", "pods"), want: authorizer.DecisionAllow,
			reason: `RBAC: allowed by ClusterRoleBinding "alice-reads-pods" of ClusterRole "pod-reader" to User "alice"`},
		{name: "cluster binding applies cluster-wide", attrs: res(testUser("alice"), "list", "", "", "pods"), want: authorizer.DecisionAllow,
			reasonHas: "alice-reads-pods"},
		{name: "verb not granted", attrs: res(testUser("alice"), "delete", "ns1", "", "pods"), want: authorizer.DecisionNoOpinion},
		{name: "unknown user", attrs: res(testUser("mallory"), "get", "ns1", "", "pods"), want: authorizer.DecisionNoOpinion},
		{name: "role binding in its namespace", attrs: res(testUser("bob"), "update", "ns1", "", "configmaps"), want: authorizer.DecisionAllow,
			reason: `RBAC: allowed by RoleBinding "bob-cm/ns1" of Role "cm-editor" to User "bob"`},
		{name: "role binding not in other namespace", attrs: res(testUser("bob"), "update", "ns2", "", "configmaps"), want: authorizer.DecisionNoOpinion},
		{name: "role binding not cluster-wide", attrs: res(testUser("bob"), "list", "", "", "configmaps"), want: authorizer.DecisionNoOpinion},
		{name: "service account defaults to binding namespace", attrs: res(testUser("system:serviceaccount:ns1:builder"), "get", "ns1", "", "pods"), want: authorizer.DecisionAllow,
			reason: `RBAC: allowed by RoleBinding "builder-pods/ns1" of ClusterRole "pod-reader" to ServiceAccount "builder/ns1"`},
		{name: "service account from other namespace", attrs: res(testUser("system:serviceaccount:ns2:builder"), "get", "ns1", "", "pods"), want: authorizer.DecisionNoOpinion},
		{name: "service account via cluster binding", attrs: res(testUser("system:serviceaccount:ns2:robot"), "get", "ns9", "", "secrets"), want: authorizer.DecisionAllow,
			reason: `RBAC: allowed by ClusterRoleBinding "robot-secrets" of ClusterRole "secret-reader" to ServiceAccount "robot/ns2"`},
		{name: "namespaceless service account subject matches nobody", attrs: res(testUser("system:serviceaccount::ghost"), "get", "", "", "secrets"), want: authorizer.DecisionNoOpinion},
		{name: "group", attrs: url(testUser("x", "devs"), "get", "/healthz"), want: authorizer.DecisionAllow,
			reason: `RBAC: allowed by ClusterRoleBinding "devs-health" of ClusterRole "health" to Group "devs"`},
		{name: "group url prefix", attrs: url(testUser("x", "devs"), "get", "/logs/kube"), want: authorizer.DecisionAllow, reasonHas: "devs-health"},
		{name: "group url verb", attrs: url(testUser("x", "devs"), "post", "/healthz"), want: authorizer.DecisionNoOpinion},
		{name: "not in group", attrs: url(testUser("devs"), "get", "/healthz"), want: authorizer.DecisionNoOpinion},
		{name: "missing role is reported", attrs: res(testUser("carol"), "get", "ns1", "", "pods"), want: authorizer.DecisionNoOpinion,
			reason: `RBAC: clusterrole.rbac.authorization.k8s.io "missing" not found`},
		{name: "missing role does not hide other grants", attrs: url(testUser("carol", "devs"), "get", "/healthz"), want: authorizer.DecisionAllow, reasonHas: "devs-health"},
		{name: "bad role kind is reported", attrs: res(testUser("dave"), "get", "ns1", "", "pods"), want: authorizer.DecisionNoOpinion,
			reasonHas: `unsupported role reference kind: "Foo"`},
		{name: "role from another namespace is not found", attrs: res(testUser("erin"), "get", "ns2", "", "configmaps"), want: authorizer.DecisionNoOpinion,
			reasonHas: `role.rbac.authorization.k8s.io "cm-editor" not found`},
		{name: "system:masters", attrs: res(testUser("root", user.SystemPrivilegedGroup), "delete", "kube-system", "apps", "deployments"), want: authorizer.DecisionAllow},
		{name: "system:masters non-resource", attrs: url(testUser("root", user.SystemPrivilegedGroup), "post", "/whatever"), want: authorizer.DecisionAllow},
		{name: "no user", attrs: authorizer.AttributesRecord{Verb: "get", Resource: "pods", ResourceRequest: true}, want: authorizer.DecisionNoOpinion, wantErrIs: ErrNoUser},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, reason, err := r.Authorize(context.Background(), tt.attrs)
			if !errors.Is(err, tt.wantErrIs) || (tt.wantErrIs == nil && err != nil) {
				t.Fatalf("err = %v, want %v", err, tt.wantErrIs)
			}
			if got != tt.want {
				t.Errorf("decision = %v, want %v (reason %q)", got, tt.want, reason)
			}
			switch {
			case tt.reasonHas != "":
				if !strings.Contains(reason, tt.reasonHas) {
					t.Errorf("reason = %q, want it to contain %q", reason, tt.reasonHas)
				}
			case reason != tt.reason:
				t.Errorf("reason = %q, want %q", reason, tt.reason)
			}

			cad := r.ConditionsAwareAuthorize(context.Background(), tt.attrs)
			if !cad.IsUnconditional() || (cad.IsAllow() != (tt.want == authorizer.DecisionAllow)) {
				t.Errorf("ConditionsAwareAuthorize = %v, want unconditional %v", cad, tt.want)
			}
		})
	}
}

func TestRBACAuthorizeNilAttributes(t *testing.T) {
	r := rbacFixture(t)
	if d, _, err := r.Authorize(context.Background(), nil); d != authorizer.DecisionNoOpinion || !errors.Is(err, ErrNoUser) {
		t.Fatalf("Authorize(nil) = %v, %v; want NoOpinion, ErrNoUser", d, err)
	}
}

func TestRBACEvaluateConditionsFailsClosed(t *testing.T) {
	r := rbacFixture(t)
	d, _, err := r.EvaluateConditions(context.Background(), authorizer.ConditionsAwareDecision{}, nil)
	if d != authorizer.DecisionDeny || !errors.Is(err, authorizer.ErrorConditionEvaluationNotSupported) {
		t.Fatalf("EvaluateConditions = %v, %v; want Deny, ErrorConditionEvaluationNotSupported", d, err)
	}
}

func TestRBACRulesFor(t *testing.T) {
	r := rbacFixture(t)
	type resRule struct{ verbs, groups, resources, names string }
	type urlRule struct{ verbs, urls string }
	j := func(s []string) string { return strings.Join(s, ",") }
	tests := []struct {
		name      string
		user      user.Info
		namespace string
		resources []resRule
		urls      []urlRule
		errHas    string
		wantErrIs error
	}{
		{name: "cluster binding only", user: testUser("alice"), namespace: "ns1",
			resources: []resRule{{"get,list,watch", "", "pods", ""}}},
		{name: "role binding", user: testUser("bob"), namespace: "ns1",
			resources: []resRule{{"*", "", "configmaps", ""}}},
		{name: "role binding other namespace", user: testUser("bob"), namespace: "ns2"},
		{name: "non-resource", user: testUser("x", "devs"), namespace: "ns1",
			urls: []urlRule{{"get", "/healthz,/logs/*"}}},
		{name: "partial with error", user: testUser("carol", "devs"), namespace: "ns1",
			urls: []urlRule{{"get", "/healthz,/logs/*"}}, errHas: `"missing" not found`},
		{name: "masters", user: testUser("root", user.SystemPrivilegedGroup), namespace: "ns1",
			resources: []resRule{{"*", "*", "*", ""}}, urls: []urlRule{{"*", "*"}}},
		{name: "no user", namespace: "ns1", wantErrIs: ErrNoUser},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, urls, incomplete, err := r.RulesFor(context.Background(), tt.user, tt.namespace)
			if incomplete {
				t.Errorf("incomplete = true; RBAC always knows its full rule set")
			}
			switch {
			case tt.wantErrIs != nil:
				if !errors.Is(err, tt.wantErrIs) {
					t.Fatalf("err = %v, want %v", err, tt.wantErrIs)
				}
				return
			case tt.errHas != "":
				if err == nil || !strings.Contains(err.Error(), tt.errHas) {
					t.Errorf("err = %v, want it to contain %q", err, tt.errHas)
				}
			case err != nil:
				t.Fatalf("unexpected err: %v", err)
			}
			var gotRes []resRule
			for _, r := range res {
				gotRes = append(gotRes, resRule{j(r.GetVerbs()), j(r.GetAPIGroups()), j(r.GetResources()), j(r.GetResourceNames())})
			}
			var gotURLs []urlRule
			for _, u := range urls {
				gotURLs = append(gotURLs, urlRule{j(u.GetVerbs()), j(u.GetNonResourceURLs())})
			}
			if len(gotRes) != len(tt.resources) {
				t.Fatalf("resource rules = %v, want %v", gotRes, tt.resources)
			}
			for i := range gotRes {
				if gotRes[i] != tt.resources[i] {
					t.Errorf("resource rule %d = %v, want %v", i, gotRes[i], tt.resources[i])
				}
			}
			if len(gotURLs) != len(tt.urls) {
				t.Fatalf("non-resource rules = %v, want %v", gotURLs, tt.urls)
			}
			for i := range gotURLs {
				if gotURLs[i] != tt.urls[i] {
					t.Errorf("non-resource rule %d = %v, want %v", i, gotURLs[i], tt.urls[i])
				}
			}
		})
	}
}
