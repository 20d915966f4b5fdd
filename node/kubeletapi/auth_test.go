package kubeletapi

import (
	"net/http/httptest"
	"strings"
	"testing"

	"k8s.io/apiserver/pkg/authentication/user"
)

func TestRequestAttributes(t *testing.T) {
	u := &user.DefaultInfo{Name: "alice"}
	for _, tc := range []struct {
		method, path string
		verb         string
		subs         string
	}{
		{"GET", "/containerLogs/ns/pod/c", "get", "proxy"},
		{"POST", "/exec/ns/pod/c", "create", "proxy"},
		{"GET", "/exec/ns/pod/c", "get", "proxy"},
		{"POST", "/attach/ns/pod/c", "create", "proxy"},
		{"POST", "/portForward/ns/pod", "create", "proxy"},
		{"GET", "/stats/summary", "get", "stats"},
		{"GET", "/stats", "get", "stats"},
		{"GET", "/statsfoo", "get", "proxy"},
		{"GET", "/metrics/cadvisor", "get", "metrics"},
		{"GET", "/logs/messages", "get", "log"},
		{"GET", "/pods", "get", "pods,proxy"},
		{"GET", "/runningpods/", "get", "pods,proxy"},
		{"GET", "/healthz", "get", "healthz,proxy"},
		{"GET", "/healthz/ping", "get", "healthz,proxy"},
		{"PUT", "/x", "update", "proxy"},
		{"PATCH", "/x", "patch", "proxy"},
		{"DELETE", "/x", "delete", "proxy"},
	} {
		r := httptest.NewRequest(tc.method, tc.path, nil)
		attrs := requestAttributes("node-a", u, r)
		if got := subresources(attrs); got != tc.subs {
			t.Errorf("%s %s: subresources %s, want %s", tc.method, tc.path, got, tc.subs)
		}
		for _, a := range attrs {
			if a.Verb != tc.verb || a.Resource != "nodes" || a.Name != "node-a" || a.APIGroup != "" || a.APIVersion != "v1" ||
				!a.ResourceRequest || a.User.GetName() != "alice" || a.Path != tc.path {
				t.Errorf("%s %s: attributes %+v", tc.method, tc.path, a)
			}
		}
	}
}

func TestIsSubpath(t *testing.T) {
	for _, tc := range []struct {
		path, prefix string
		want         bool
	}{
		{"/stats", "/stats", true},
		{"/stats/", "/stats", true},
		{"/stats/summary", "/stats/", true},
		{"/statsx", "/stats", false},
		{"/", "/stats", false},
	} {
		if got := isSubpath(tc.path, tc.prefix); got != tc.want {
			t.Errorf("isSubpath(%q, %q) = %v", tc.path, tc.prefix, got)
		}
	}
}

func TestNewRefusesIncompleteConfig(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{}, "Client"},
	} {
		_, err := New(tc.cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%+v): %v, want an error naming %s", tc.cfg, err, tc.want)
		}
	}
}
