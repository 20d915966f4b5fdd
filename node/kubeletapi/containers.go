package kubeletapi

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/namespaces"
)

// errNotFound marks a request for a pod or container the node does not
// have; handlers answer it with 404.
var errNotFound = errors.New("not found")

// ctrInfo is one containerd container of a pod, read from its labels.
type ctrInfo struct {
	c            containerd.Container
	id           string
	podNamespace string
	podName      string
	podUID       string
	name         string // container name; empty for a sandbox
	kind         string
	restartCount int
	logPath      string
	netns        string
}

// filterQuote quotes a value for containerd's filter syntax.
func filterQuote(s string) string { return strconv.Quote(s) }

// podContainers lists the containerd containers of one pod; uid, when
// not empty, selects one incarnation of a pod name.
func (s *Server) podContainers(ctx context.Context, namespace, pod, uid string) ([]ctrInfo, error) {
	ctx = namespaces.WithNamespace(ctx, s.cfg.Namespace)
	f := []string{
		fmt.Sprintf("labels.%s==%s", filterQuote(LabelPodNamespace), filterQuote(namespace)),
		fmt.Sprintf("labels.%s==%s", filterQuote(LabelPodName), filterQuote(pod)),
	}
	if uid != "" {
		f = append(f, fmt.Sprintf("labels.%s==%s", filterQuote(LabelPodUID), filterQuote(uid)))
	}
	cs, err := s.cfg.Client.Containers(ctx, strings.Join(f, ","))
	if err != nil {
		return nil, fmt.Errorf("list containers of pod %s/%s in containerd namespace %s: %w", namespace, pod, s.cfg.Namespace, err)
	}
	out := make([]ctrInfo, 0, len(cs))
	for _, c := range cs {
		labels, err := c.Labels(ctx)
		if err != nil {
			// Removed between the list and now.
			continue
		}
		out = append(out, infoFrom(c, labels))
	}
	return out, nil
}

func infoFrom(c containerd.Container, labels map[string]string) ctrInfo {
	rc, err := strconv.Atoi(labels[LabelRestartCount])
	if err != nil {
		rc = 0
	}
	return ctrInfo{
		c:            c,
		id:           c.ID(),
		podNamespace: labels[LabelPodNamespace],
		podName:      labels[LabelPodName],
		podUID:       labels[LabelPodUID],
		name:         labels[LabelContainerName],
		kind:         labels[LabelKind],
		restartCount: rc,
		logPath:      labels[LabelLogPath],
		netns:        labels[LabelNetns],
	}
}

// pickContainer chooses, among a pod's containers, the one named name:
// its latest run, or with previous the run before it. Several pod UIDs
// (a pod deleted and made again under its name) resolve to uid when it
// is given, else to the one whose latest run has the most restarts,
// which is as good a guess as the kubelet's.
func pickContainer(all []ctrInfo, name, uid string, previous bool) (ctrInfo, error) {
	var runs []ctrInfo
	for _, c := range all {
		if c.kind == KindSandbox || c.name != name {
			continue
		}
		if uid != "" && c.podUID != uid {
			continue
		}
		runs = append(runs, c)
	}
	if len(runs) == 0 {
		return ctrInfo{}, fmt.Errorf("container %q: %w", name, errNotFound)
	}
	sort.Slice(runs, func(i, j int) bool { return runs[i].restartCount > runs[j].restartCount })
	if !previous {
		return runs[0], nil
	}
	want := runs[0].restartCount - 1
	for _, r := range runs[1:] {
		if r.restartCount == want && r.podUID == runs[0].podUID {
			return r, nil
		}
	}
	return ctrInfo{}, fmt.Errorf("previous terminated container %q: %w", name, errNotFound)
}

// sandboxOf returns the pod's sandbox, or any of its containers when the
// runtime made none, for what is shared by the pod (its network
// namespace).
func sandboxOf(all []ctrInfo, uid string) (ctrInfo, error) {
	var fallback *ctrInfo
	for i, c := range all {
		if uid != "" && c.podUID != uid {
			continue
		}
		if c.kind == KindSandbox {
			return c, nil
		}
		if fallback == nil && c.netns != "" {
			fallback = &all[i]
		}
	}
	if fallback != nil {
		return *fallback, nil
	}
	return ctrInfo{}, fmt.Errorf("pod sandbox: %w", errNotFound)
}
