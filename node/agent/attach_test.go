package agent_test

import (
	"bytes"
	"context"
	"io"
	"strings"
	"sync"
	"testing"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// testAttach: a container with stdin gets what an attached client writes
// and the client gets its output, which also lands in the log; the
// container's stdin stays open for the next client. (The kubelet API
// server calls Runtime.Attach the same way.)
func testAttach(t *testing.T, h *harness, n1 *node) {
	ns := h.namespace(t)
	p := h.pod("attach", "n1", "")
	p.Spec.Containers[0].Command = []string{"sh", "-c", "while read line; do echo got $line; done"}
	p.Spec.Containers[0].Stdin = true
	h.createPod(t, ns, p)
	p = h.waitPod(t, ns, "attach", "running", running)
	id := strings.TrimPrefix(p.Status.ContainerStatuses[0].ContainerID, "containerd://")
	rt := n1.agent(t).Runtime()
	for _, word := range []string{"one", "two"} {
		ctx, cancel := context.WithCancel(context.Background())
		inR, inW := io.Pipe()
		var out syncBuffer
		done := make(chan error, 1)
		go func() { done <- rt.Attach(ctx, id, inR, &out, &out, false, nil) }()
		if _, err := inW.Write([]byte(word + "\n")); err != nil {
			t.Fatal(err)
		}
		h.eventually(t, "attached client sees the reply to "+word, func() (bool, string) {
			return strings.Contains(out.String(), "got "+word), out.String()
		})
		inW.Close()
		cancel()
		<-done
	}
	h.eventually(t, "replies in the log", func() (bool, string) {
		l := logOf(t, n1, p, "main", 0)
		return l == "got one\ngot two\n", l
	})
}
