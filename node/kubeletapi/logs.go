package kubeletapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/errdefs"
	"github.com/containerd/containerd/namespaces"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apiserver/pkg/util/flushwriter"
	internalapi "k8s.io/cri-api/pkg/apis"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	crilogs "k8s.io/cri-client/pkg/logs"
	"k8s.io/kubernetes/pkg/api/legacyscheme"
	"k8s.io/kubernetes/pkg/apis/core"
	_ "k8s.io/kubernetes/pkg/apis/core/install" // PodLogOptions' query conversions
	"k8s.io/kubernetes/pkg/apis/core/validation"
)

// logOptions decodes the query of /containerLogs as the kubelet does:
// v1.PodLogOptions through the API's own conversions, "tail" as an old
// spelling of tailLines, then the API's validation.
func logOptions(q url.Values) (*corev1.PodLogOptions, error) {
	if tail := q.Get("tail"); tail != "" {
		q["tailLines"] = []string{tail}
		if tail == "all" {
			delete(q, "tailLines")
		}
	}
	opts := &corev1.PodLogOptions{}
	if err := legacyscheme.ParameterCodec.DecodeParameters(q, corev1.SchemeGroupVersion, opts); err != nil {
		return nil, badRequest("log options %q: %v", q.Encode(), err)
	}
	if opts.Stream == nil {
		// Both streams unless one is asked for, as the kubelet defaults.
		all := corev1.LogStreamAll
		opts.Stream = &all
	}
	var internal core.PodLogOptions
	if err := legacyscheme.Scheme.Convert(opts, &internal, nil); err != nil {
		return nil, badRequest("log options: %v", err)
	}
	if errs := validation.ValidatePodLogOptions(&internal, true); len(errs) > 0 {
		return nil, badRequest("log options: %v", errs.ToAggregate())
	}
	return opts, nil
}

// criLogOptions is what ReadLogs takes, from the API's options at now.
func criLogOptions(o *corev1.PodLogOptions, now time.Time) *crilogs.LogOptions {
	lo := &crilogs.LogOptions{TailLines: o.TailLines, LimitBytes: o.LimitBytes, Follow: o.Follow, Timestamp: o.Timestamps}
	switch {
	case o.SinceTime != nil:
		lo.Since = o.SinceTime.Time
	case o.SinceSeconds != nil:
		lo.Since = now.Add(-time.Duration(*o.SinceSeconds) * time.Second)
	}
	return lo
}

func (s *Server) containerLogs(w http.ResponseWriter, r *http.Request) {
	opts, err := logOptions(r.URL.Query())
	if err != nil {
		s.httpError(w, r, err)
		return
	}
	c, err := s.target(r, opts.Previous)
	if err != nil {
		s.httpError(w, r, err)
		return
	}
	if c.logPath == "" {
		s.httpError(w, r, fmt.Errorf("container %s has no %s label: %w", c.id, LabelLogPath, errNotFound))
		return
	}
	fw := flushwriter.Wrap(w)
	var stdout, stderr io.Writer = fw, fw
	if opts.Stream != nil {
		switch *opts.Stream {
		case corev1.LogStreamStdout:
			stderr = io.Discard
		case corev1.LogStreamStderr:
			stdout = io.Discard
		case corev1.LogStreamAll:
		default:
			s.httpError(w, r, badRequest("invalid stream type %q", *opts.Stream))
			return
		}
	}
	w.Header().Set("Content-Type", "text/plain")
	w.Header().Set("Transfer-Encoding", "chunked")
	rs := &taskState{client: s.cfg.Client, namespace: s.cfg.Namespace}
	if err := crilogs.ReadLogs(r.Context(), c.logPath, c.id, criLogOptions(opts, time.Now()), rs, stdout, stderr); err != nil {
		if r.Context().Err() != nil {
			return // the client went away while following
		}
		// The header may have gone out with the first line; what is left
		// is to say so in the body, as the kubelet does.
		s.log.Warn("read logs", "container", c.id, "path", c.logPath, "err", err)
		_, _ = fmt.Fprintf(fw, "error reading logs of container %s: %v\n", c.id, err)
	}
}

// taskState answers the one question ReadLogs asks of a runtime while
// following a log — is the container still running? — from containerd.
// The rest of the CRI runtime service is never called by ReadLogs; the
// embedded nil interface makes any such call fail loudly.
type taskState struct {
	internalapi.RuntimeService
	client    *containerd.Client
	namespace string
}

func (t *taskState) ContainerStatus(ctx context.Context, id string, _ bool) (*runtimeapi.ContainerStatusResponse, error) {
	ctx = namespaces.WithNamespace(ctx, t.namespace)
	state := runtimeapi.ContainerState_CONTAINER_EXITED
	c, err := t.client.LoadContainer(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("container %s: %w", id, err)
	}
	task, err := c.Task(ctx, nil)
	if err == nil {
		st, err := task.Status(ctx)
		if err == nil && (st.Status == containerd.Running || st.Status == containerd.Paused || st.Status == containerd.Pausing) {
			state = runtimeapi.ContainerState_CONTAINER_RUNNING
		}
	} else if !isNotFound(err) {
		return nil, fmt.Errorf("task of container %s: %w", id, err)
	}
	return &runtimeapi.ContainerStatusResponse{Status: &runtimeapi.ContainerStatus{Id: id, State: state}}, nil
}

func isNotFound(err error) bool {
	return errors.Is(err, errNotFound) || errdefs.IsNotFound(err)
}
