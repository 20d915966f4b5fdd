package kubeletapi

import (
	"errors"
	"testing"
)

func TestPickContainer(t *testing.T) {
	all := []ctrInfo{
		{id: "sb", kind: KindSandbox, podUID: "u1"},
		{id: "app-0", name: "app", kind: KindContainer, podUID: "u1", restartCount: 0},
		{id: "app-2", name: "app", kind: KindContainer, podUID: "u1", restartCount: 2},
		{id: "app-1", name: "app", kind: KindContainer, podUID: "u1", restartCount: 1},
		{id: "init-0", name: "init", kind: KindInit, podUID: "u1"},
		{id: "side-3", name: "side", kind: KindContainer, podUID: "u1", restartCount: 3},
		{id: "old-app", name: "app", kind: KindContainer, podUID: "u0", restartCount: 0},
	}
	for _, tc := range []struct {
		name, uid string
		previous  bool
		want      string
		notFound  bool
	}{
		{name: "app", want: "app-2"},
		{name: "app", previous: true, want: "app-1"},
		{name: "app", uid: "u0", want: "old-app"},
		{name: "app", uid: "u0", previous: true, notFound: true},
		{name: "init", want: "init-0"},
		{name: "init", previous: true, notFound: true},
		// Only restart 3 is kept; 2 is gone.
		{name: "side", previous: true, notFound: true},
		{name: "nope", notFound: true},
		{name: "", notFound: true}, // never the sandbox
	} {
		got, err := pickContainer(all, tc.name, tc.uid, tc.previous)
		if tc.notFound {
			if !errors.Is(err, errNotFound) {
				t.Errorf("pick %q uid=%q previous=%v: %v %s, want not found", tc.name, tc.uid, tc.previous, err, got.id)
			}
			continue
		}
		if err != nil || got.id != tc.want {
			t.Errorf("pick %q uid=%q previous=%v: %s %v, want %s", tc.name, tc.uid, tc.previous, got.id, err, tc.want)
		}
	}
}

func TestSandboxOf(t *testing.T) {
	for _, tc := range []struct {
		all  []ctrInfo
		want string
	}{
		{[]ctrInfo{{id: "a", kind: KindContainer, netns: "/n"}, {id: "sb", kind: KindSandbox, netns: "/n"}}, "sb"},
		{[]ctrInfo{{id: "a", kind: KindContainer}, {id: "b", kind: KindContainer, netns: "/n"}}, "b"},
		{[]ctrInfo{{id: "a", kind: KindContainer}}, ""},
	} {
		got, err := sandboxOf(tc.all, "")
		if tc.want == "" {
			if !errors.Is(err, errNotFound) {
				t.Errorf("sandboxOf(%v): %v, want not found", tc.all, err)
			}
			continue
		}
		if err != nil || got.id != tc.want {
			t.Errorf("sandboxOf(%v) = %s %v, want %s", tc.all, got.id, err, tc.want)
		}
	}
}
