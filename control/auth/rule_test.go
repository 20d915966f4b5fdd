package auth

import (
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apiserver/pkg/authorization/authorizer"
)

func TestRuleAllows(t *testing.T) {
	res := func(verb, group, resource, sub, name string) authorizer.AttributesRecord {
		return authorizer.AttributesRecord{Verb: verb, APIGroup: group, Resource: resource, Subresource: sub, Name: name, ResourceRequest: true}
	}
	url := func(verb, path string) authorizer.AttributesRecord {
		return authorizer.AttributesRecord{Verb: verb, Path: path}
	}
	tests := []struct {
		name  string
		rule  rbacv1.PolicyRule
		attrs authorizer.AttributesRecord
		want  bool
	}{
		{"exact", rule([]string{"get"}, []string{""}, []string{"pods"}), res("get", "", "pods", "", ""), true},
		{"other verb", rule([]string{"get"}, []string{""}, []string{"pods"}), res("delete", "", "pods", "", ""), false},
		{"verb star", rule([]string{"*"}, []string{""}, []string{"pods"}), res("delete", "", "pods", "", ""), true},
		{"other group", rule([]string{"get"}, []string{""}, []string{"deployments"}), res("get", "apps", "deployments", "", ""), false},
		{"group star", rule([]string{"get"}, []string{"*"}, []string{"deployments"}), res("get", "apps", "deployments", "", ""), true},
		{"resource star", rule([]string{"get"}, []string{"apps"}, []string{"*"}), res("get", "apps", "deployments", "scale", ""), true},
		{"parent does not grant subresource", rule([]string{"get"}, []string{""}, []string{"pods"}), res("get", "", "pods", "log", ""), false},
		{"subresource exact", rule([]string{"get"}, []string{""}, []string{"pods/log"}), res("get", "", "pods", "log", ""), true},
		{"subresource does not grant parent", rule([]string{"get"}, []string{""}, []string{"pods/log"}), res("get", "", "pods", "", ""), false},
		{"star subresource", rule([]string{"update"}, []string{"apps"}, []string{"*/scale"}), res("update", "apps", "deployments", "scale", ""), true},
		{"star subresource other sub", rule([]string{"update"}, []string{"apps"}, []string{"*/scale"}), res("update", "apps", "deployments", "status", ""), false},
		{"star subresource not parent", rule([]string{"update"}, []string{"apps"}, []string{"*/scale"}), res("update", "apps", "deployments", "", ""), false},
		{"resource name match", rbacv1.PolicyRule{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"configmaps"}, ResourceNames: []string{"a"}}, res("get", "", "configmaps", "", "a"), true},
		{"resource name mismatch", rbacv1.PolicyRule{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"configmaps"}, ResourceNames: []string{"a"}}, res("get", "", "configmaps", "", "b"), false},
		{"resource names never grant list", rbacv1.PolicyRule{Verbs: []string{"list"}, APIGroups: []string{""}, Resources: []string{"configmaps"}, ResourceNames: []string{"a"}}, res("list", "", "configmaps", "", ""), false},
		{"url rule ignores resource request", rbacv1.PolicyRule{Verbs: []string{"get"}, NonResourceURLs: []string{"*"}}, res("get", "", "pods", "", ""), false},
		{"url exact", rbacv1.PolicyRule{Verbs: []string{"get"}, NonResourceURLs: []string{"/healthz"}}, url("get", "/healthz"), true},
		{"url exact is not prefix", rbacv1.PolicyRule{Verbs: []string{"get"}, NonResourceURLs: []string{"/healthz"}}, url("get", "/healthz/etcd"), false},
		{"url prefix", rbacv1.PolicyRule{Verbs: []string{"get"}, NonResourceURLs: []string{"/apis/*"}}, url("get", "/apis/apps/v1"), true},
		{"url prefix needs slash", rbacv1.PolicyRule{Verbs: []string{"get"}, NonResourceURLs: []string{"/apis/*"}}, url("get", "/apis"), false},
		{"url star", rbacv1.PolicyRule{Verbs: []string{"*"}, NonResourceURLs: []string{"*"}}, url("post", "/anything"), true},
		{"url verb", rbacv1.PolicyRule{Verbs: []string{"get"}, NonResourceURLs: []string{"/healthz"}}, url("post", "/healthz"), false},
		{"resource rule ignores urls", rule([]string{"*"}, []string{"*"}, []string{"*"}), url("get", "/healthz"), false},
		{"inner star is literal", rbacv1.PolicyRule{Verbs: []string{"get"}, NonResourceURLs: []string{"/a/*/b"}}, url("get", "/a/x/b"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ruleAllows(tt.attrs, &tt.rule); got != tt.want {
				t.Errorf("ruleAllows = %v, want %v", got, tt.want)
			}
		})
	}
}
