package lab

import (
	"strings"
	"testing"
)

func TestNodeCapacity(t *testing.T) {
	for _, n := range []int{0, 1, 3, 1000} {
		c := nodeCapacity(n)
		if !strings.HasPrefix(c, "cpu=") || !strings.Contains(c, "pods=110") {
			t.Errorf("nodeCapacity(%d) = %q", n, c)
		}
	}
	// A share is never below 100 millicores, however many nodes.
	if c := nodeCapacity(1000); !strings.HasPrefix(c, "cpu=100m,") {
		t.Errorf("nodeCapacity(1000) = %q, want cpu=100m", c)
	}
}

func TestRemovedString(t *testing.T) {
	for _, tc := range []struct {
		name string
		r    Removed
		want []string
	}{
		{"empty", Removed{}, []string{"nothing to remove"}},
		{"some", Removed{Processes: []string{"s1 (pid 1)"}, Tasks: 2, Containers: 2, ContainerdNamespaces: []string{"bgab12-n1"}, Cgroups: 4, Netns: []string{"bgab12-u"}},
			[]string{"processes (1): s1 (pid 1)", "containerd: 2 tasks, 2 containers, 0 images, 0 snapshots in bgab12-n1", "cgroups: 4", "network namespaces (1): bgab12-u"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.r.String()
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("String() = %q, want it to contain %q", got, w)
				}
			}
		})
	}
}

func TestContainerdPaths(t *testing.T) {
	c := newContainerd("/tmp/lab")
	if c.Socket != "/tmp/lab/containerd/c.sock" || !strings.Contains(c.config(), `address = "/tmp/lab/containerd/c.sock"`) {
		t.Fatalf("socket %s, config:\n%s", c.Socket, c.config())
	}
	long := newContainerd("/" + strings.Repeat("d", 120))
	if err := long.writeFiles(); err == nil || !strings.Contains(err.Error(), "unix socket limit") {
		t.Fatalf("writeFiles with a long dir: %v, want the socket limit named", err)
	}
}
