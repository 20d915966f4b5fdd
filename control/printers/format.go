package printers

import (
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/duration"
)

// Placeholders kubectl users recognise; Kubernetes prints them verbatim.
const (
	none    = "<none>"
	unknown = "<unknown>"
	unset   = "<unset>"
)

// maxListed is how many entries Kubernetes lists in one cell before it
// switches to "+ N more...", keeping `kubectl get` lines readable.
const maxListed = 3

// age renders a timestamp the way every AGE column does; a zero timestamp
// means the server never set it, which Kubernetes shows as <unknown>.
func age(t metav1.Time, now time.Time) string {
	if t.IsZero() {
		return unknown
	}
	return duration.HumanDuration(now.Sub(t.Time))
}

func microAge(t metav1.MicroTime, now time.Time) string {
	if t.IsZero() {
		return unknown
	}
	return duration.HumanDuration(now.Sub(t.Time))
}

func orNone(s string) string {
	if s == "" {
		return none
	}
	return s
}

func orUnknown(s string) string {
	if s == "" {
		return unknown
	}
	return s
}

// containerCells lays every container of a template on one line, as the
// wide CONTAINERS and IMAGES columns do.
func containerCells(containers []corev1.Container) (names, images string) {
	n := make([]string, len(containers))
	im := make([]string, len(containers))
	for i, c := range containers {
		n[i], im[i] = c.Name, c.Image
	}
	return strings.Join(n, ","), strings.Join(im, ",")
}

// withMore joins the first maxListed entries (shown holds at most that
// many) and tells how many were left out of total.
func withMore(shown []string, total int) string {
	s := strings.Join(shown, ",")
	if total > maxListed {
		return fmt.Sprintf("%s + %d more...", s, total-maxListed)
	}
	return s
}

// appendCapped collects at most maxListed entries while the caller counts
// all of them.
func appendCapped(shown []string, s string) []string {
	if len(shown) < maxListed {
		return append(shown, s)
	}
	return shown
}
