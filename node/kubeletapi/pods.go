package kubeletapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/namespaces"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// pods serves the agent's pods as a v1 PodList, as the kubelet's /pods.
func (s *Server) pods(w http.ResponseWriter, r *http.Request) {
	list := corev1.PodList{TypeMeta: metav1.TypeMeta{Kind: "PodList", APIVersion: "v1"}}
	if s.cfg.Pods != nil {
		pods, err := s.cfg.Pods(r.Context())
		if err != nil {
			s.httpError(w, r, fmt.Errorf("list pods of node %s: %w", s.cfg.NodeName, err))
			return
		}
		for _, p := range pods {
			list.Items = append(list.Items, *p)
		}
	}
	writeJSON(w, list)
}

// runningPods serves what runs in containerd, grouped by pod, as the
// kubelet's /runningpods/: names, UIDs and running containers only.
func (s *Server) runningPods(w http.ResponseWriter, r *http.Request) {
	running, err := s.runningContainers(r.Context())
	if err != nil {
		s.httpError(w, r, err)
		return
	}
	byUID := map[string]*corev1.Pod{}
	var order []string
	for _, c := range running {
		p := byUID[c.podUID]
		if p == nil {
			p = &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: c.podName, Namespace: c.podNamespace, UID: types.UID(c.podUID)}}
			byUID[c.podUID] = p
			order = append(order, c.podUID)
		}
		if c.kind != KindSandbox {
			p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: c.name})
		}
	}
	sort.Strings(order)
	list := corev1.PodList{TypeMeta: metav1.TypeMeta{Kind: "PodList", APIVersion: "v1"}}
	for _, uid := range order {
		list.Items = append(list.Items, *byUID[uid])
	}
	writeJSON(w, list)
}

// runningContainers are the pod containers of the namespace whose task
// runs, with the task.
func (s *Server) runningContainers(ctx context.Context) ([]runningCtr, error) {
	ctx = namespaces.WithNamespace(ctx, s.cfg.Namespace)
	cs, err := s.cfg.Client.Containers(ctx, fmt.Sprintf("labels.%s", filterQuote(LabelPodUID)))
	if err != nil {
		return nil, fmt.Errorf("list containers in containerd namespace %s: %w", s.cfg.Namespace, err)
	}
	var out []runningCtr
	for _, c := range cs {
		info, err := c.Info(ctx, containerd.WithoutRefreshedMetadata)
		if err != nil {
			continue
		}
		task, err := c.Task(ctx, nil)
		if err != nil {
			continue
		}
		st, err := task.Status(ctx)
		if err != nil || st.Status != containerd.Running {
			continue
		}
		out = append(out, runningCtr{ctrInfo: infoFrom(c, info.Labels), task: task, created: info.CreatedAt})
	}
	return out, nil
}
