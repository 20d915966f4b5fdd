package registry

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apiresource "k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	genericregistry "k8s.io/apiserver/pkg/registry/generic/registry"
	"k8s.io/apiserver/pkg/registry/rest"
	"k8s.io/apiserver/pkg/storage"
	storeerr "k8s.io/apiserver/pkg/storage/errors"
)

// podDeleteStrategy makes pod deletion graceful the way Kubernetes does: a
// pod on a node gets its grace period so the node agent can stop it and
// then finish the delete; a pod that never ran, or already finished, goes
// at once because no agent would ever confirm it.
type podDeleteStrategy struct{ *strategy }

func (s *podDeleteStrategy) CheckGracefulDelete(_ context.Context, obj runtime.Object, options *metav1.DeleteOptions) bool {
	if options == nil {
		return false
	}
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return false
	}
	period := int64(corev1.DefaultTerminationGracePeriodSeconds)
	if options.GracePeriodSeconds != nil {
		period = *options.GracePeriodSeconds
	} else if pod.Spec.TerminationGracePeriodSeconds != nil {
		period = *pod.Spec.TerminationGracePeriodSeconds
	}
	if pod.Spec.NodeName == "" || pod.Status.Phase == corev1.PodFailed || pod.Status.Phase == corev1.PodSucceeded {
		period = 0
	}
	options.GracePeriodSeconds = &period
	return true
}

// qosClass computes a pod's QoS class from its containers' resources.
func qosClass(spec *corev1.PodSpec) corev1.PodQOSClass {
	requests, limits := corev1.ResourceList{}, corev1.ResourceList{}
	guaranteed := true
	containers := append(append([]corev1.Container(nil), spec.InitContainers...), spec.Containers...)
	for _, c := range containers {
		for name, q := range c.Resources.Requests {
			if name == corev1.ResourceCPU || name == corev1.ResourceMemory {
				addQuantity(requests, name, q)
			}
		}
		for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			q, ok := c.Resources.Limits[name]
			if !ok {
				guaranteed = false
				continue
			}
			addQuantity(limits, name, q)
			if r, ok := c.Resources.Requests[name]; ok && r.Cmp(q) != 0 {
				guaranteed = false
			}
		}
	}
	if len(requests) == 0 && len(limits) == 0 {
		return corev1.PodQOSBestEffort
	}
	if guaranteed && len(limits) == 2 {
		return corev1.PodQOSGuaranteed
	}
	return corev1.PodQOSBurstable
}

func addQuantity(list corev1.ResourceList, name corev1.ResourceName, q apiresource.Quantity) {
	sum := list[name]
	sum.Add(q)
	list[name] = sum
}

// bindingREST is pods/binding: the scheduler's way to place a pod. The
// node is set once; binding a bound pod is a conflict.
type bindingREST struct{ pods *genericregistry.Store }

func (r *bindingREST) New() runtime.Object { return &corev1.Binding{} }
func (r *bindingREST) Destroy()            {}
func (r *bindingREST) NamespaceScoped() bool {
	return true
}

func (r *bindingREST) Create(ctx context.Context, name string, obj runtime.Object, createValidation rest.ValidateObjectFunc, options *metav1.CreateOptions) (runtime.Object, error) {
	binding, ok := obj.(*corev1.Binding)
	if !ok {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("not a Binding: %T", obj))
	}
	if binding.Name != name {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("name in URL %q does not match the binding's name %q", name, binding.Name))
	}
	if binding.Target.Kind != "" && binding.Target.Kind != "Node" {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("target.kind: a pod can only be bound to a Node, not %q", binding.Target.Kind))
	}
	if binding.Target.Name == "" {
		return nil, apierrors.NewBadRequest("target.name: the node to bind to is required")
	}
	if createValidation != nil {
		if err := createValidation(ctx, binding.DeepCopyObject()); err != nil {
			return nil, err
		}
	}
	key, err := r.pods.KeyFunc(ctx, name)
	if err != nil {
		return nil, err
	}
	var preconditions *storage.Preconditions
	if binding.UID != "" || binding.ResourceVersion != "" {
		preconditions = &storage.Preconditions{}
		if binding.UID != "" {
			preconditions.UID = &binding.UID
		}
		if binding.ResourceVersion != "" {
			preconditions.ResourceVersion = &binding.ResourceVersion
		}
	}
	dryRun := options != nil && len(options.DryRun) > 0
	err = r.pods.Storage.GuaranteedUpdate(ctx, key, &corev1.Pod{}, false, preconditions, storage.SimpleUpdate(func(obj runtime.Object) (runtime.Object, error) {
		pod := obj.(*corev1.Pod)
		if pod.DeletionTimestamp != nil {
			return nil, apierrors.NewConflict(corev1.Resource("pods/binding"), name, fmt.Errorf("pod %s is being deleted, cannot be assigned to a host", name))
		}
		if pod.Spec.NodeName != "" {
			return nil, apierrors.NewConflict(corev1.Resource("pods/binding"), name, fmt.Errorf("pod %s is already assigned to node %q", name, pod.Spec.NodeName))
		}
		pod.Spec.NodeName = binding.Target.Name
		for k, v := range binding.Annotations {
			if pod.Annotations == nil {
				pod.Annotations = map[string]string{}
			}
			pod.Annotations[k] = v
		}
		setPodScheduled(pod)
		return pod, nil
	}), dryRun, nil)
	if err != nil {
		// Storage errors become API errors: a missing pod is 404.
		return nil, storeerr.InterpretUpdateError(err, corev1.Resource("pods"), name)
	}
	return &metav1.Status{Status: metav1.StatusSuccess, Code: 201}, nil
}

func setPodScheduled(pod *corev1.Pod) {
	cond := corev1.PodCondition{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: metav1.Now()}
	for i := range pod.Status.Conditions {
		if pod.Status.Conditions[i].Type == corev1.PodScheduled {
			pod.Status.Conditions[i] = cond
			return
		}
	}
	pod.Status.Conditions = append(pod.Status.Conditions, cond)
}

// evictionREST is pods/eviction. With no PodDisruptionBudgets served, an
// eviction is a delete with the eviction's options.
type evictionREST struct{ pods *genericregistry.Store }

func (r *evictionREST) New() runtime.Object   { return &policyv1.Eviction{} }
func (r *evictionREST) Destroy()              {}
func (r *evictionREST) NamespaceScoped() bool { return true }

// GroupVersionKind tells discovery the subresource speaks policy/v1.
func (r *evictionREST) GroupVersionKind(schema.GroupVersion) schema.GroupVersionKind {
	return policyv1.SchemeGroupVersion.WithKind("Eviction")
}

func (r *evictionREST) Create(ctx context.Context, name string, obj runtime.Object, createValidation rest.ValidateObjectFunc, _ *metav1.CreateOptions) (runtime.Object, error) {
	eviction, ok := obj.(*policyv1.Eviction)
	if !ok {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("not an Eviction: %T", obj))
	}
	if eviction.Name != name {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("name in URL %q does not match the eviction's name %q", name, eviction.Name))
	}
	if createValidation != nil {
		if err := createValidation(ctx, eviction.DeepCopyObject()); err != nil {
			return nil, err
		}
	}
	opts := eviction.DeleteOptions
	if opts == nil {
		opts = &metav1.DeleteOptions{}
	}
	if _, _, err := r.pods.Delete(ctx, name, rest.ValidateAllObjectFunc, opts); err != nil {
		return nil, err
	}
	return &metav1.Status{Status: metav1.StatusSuccess}, nil
}

// logREST is pods/log. Logs live on the node that runs the pod, and no
// node agent serves them yet, so the answer is a clear error naming why.
type logREST struct{ pods *genericregistry.Store }

func (r *logREST) New() runtime.Object   { return &corev1.Pod{} }
func (r *logREST) Destroy()              {}
func (r *logREST) NamespaceScoped() bool { return true }

func (r *logREST) NewGetOptions() (runtime.Object, bool, string) {
	return &corev1.PodLogOptions{}, false, ""
}

func (r *logREST) ProducesMIMETypes(string) []string {
	return []string{"text/plain"}
}

func (r *logREST) ProducesObject(string) interface{} { return "" }

func (r *logREST) Get(ctx context.Context, name string, opts runtime.Object) (runtime.Object, error) {
	obj, err := r.pods.Get(ctx, name, &metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	pod := obj.(*corev1.Pod)
	ns, _ := genericapirequest.NamespaceFrom(ctx)
	if pod.Spec.NodeName == "" {
		// Kubernetes' wording, which scripts match on.
		return nil, apierrors.NewBadRequest(fmt.Sprintf("pod %s does not have a host assigned", name))
	}
	return nil, apierrors.NewServiceUnavailable(fmt.Sprintf("logs of pod %s/%s are kept by the barge agent on node %q, which does not serve logs in this version", ns, name, pod.Spec.NodeName))
}
