package runtime

import (
	"regexp"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// containerdID is containerd's identifier grammar
// (containerd/identifiers): what every ID barge makes must match.
var containerdID = regexp.MustCompile(`^[A-Za-z0-9]+(?:[._-](?:[A-Za-z0-9]+))*$`)

func TestIDs(t *testing.T) {
	tests := []struct {
		name, container string
		wantSandbox     string // "" when only validity is checked
	}{
		{name: "web-0", container: "app", wantSandbox: "sb-web-0-"},
		// A cut at 40 bytes that ends in a separator (conformance's
		// affinity-nodeport-transition pods).
		{name: "affinity-nodeport-transition-58d9fdc949-7xgfk", container: "affinity-nodeport-transition", wantSandbox: "sb-affinity-nodeport-transition-58d9fdc949-"},
		{name: "a--b..c", container: "x--y", wantSandbox: "sb-a-b.c-"},
		{name: "db.example.com", container: "c-", wantSandbox: "sb-db.example.com-"},
		{name: strings.Repeat("a", 39) + "-b", container: strings.Repeat("c", 39) + "-d"},
		{name: "---", container: "..."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: tt.name, UID: types.UID("uid-" + tt.name)}}
			sb, ctr := SandboxID(pod), ContainerID(pod, tt.container, 3)
			for _, id := range []string{sb, ctr} {
				if !containerdID.MatchString(id) {
					t.Errorf("%q is not a valid containerd identifier", id)
				}
				if len(id) > 76 {
					t.Errorf("%q: %d bytes, over containerd's 76", id, len(id))
				}
			}
			if tt.wantSandbox != "" && !strings.HasPrefix(sb, tt.wantSandbox) {
				t.Errorf("sandbox ID %q, want prefix %q", sb, tt.wantSandbox)
			}
		})
	}
}
