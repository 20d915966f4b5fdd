package plane_test

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"

	"github.com/barge-dev/barge/control/apitest"
	"github.com/barge-dev/barge/node/hollow"
)

const hollowNodes = 3

// TestWorkloads runs Kubernetes' own controllers and scheduler, on the
// Raft leader, against hollow nodes: every workload kind reaches its
// goal, each garbage collection policy does what it says, a PDB blocks an
// eviction, node IPAM gives each node its own /24, and after a kill of
// the leader a new leader's components carry on.
func TestWorkloads(t *testing.T) {
	c := apitest.New(t, 3)
	// The hollow nodes and the test talk to a server that is not the
	// leader, which the last step kills.
	server := (c.Store.WaitLeader() + 1) % 3
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- hollow.Run(ctx, hollow.Config{Client: c.Config(server), Prefix: "h", Count: hollowNodes, JobRuntime: 500 * time.Millisecond})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("hollow nodes: %v", err)
		}
	})
	cs := c.Client(server)
	waitFor(t, "every hollow node Ready with a pod CIDR", func(ctx context.Context) (bool, error) {
		nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: hollow.HollowLabel})
		if err != nil || len(nodes.Items) != hollowNodes {
			return false, nil
		}
		for _, n := range nodes.Items {
			if n.Spec.PodCIDR == "" || !nodeReady(&n) {
				return false, nil
			}
		}
		return true, nil
	})

	// A CronJob fires at the next minute; it runs beside the rest.
	cronNS := mkns(t, cs, "cron")
	cron := &batchv1.CronJob{ObjectMeta: metav1.ObjectMeta{Name: "tick"}, Spec: batchv1.CronJobSpec{
		Schedule: "* * * * *", JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: podTemplate(nil)}}}}
	cron.Spec.JobTemplate.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyOnFailure
	if _, err := cs.BatchV1().CronJobs(cronNS).Create(context.Background(), cron, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	t.Run("node IPAM", func(t *testing.T) { testNodeIPAM(t, cs) })
	t.Run("deployment rollout and rollback", func(t *testing.T) { testDeployment(t, cs) })
	t.Run("pod marked not ready recovers", func(t *testing.T) { testReadyAgain(t, cs) })
	t.Run("statefulset in order", func(t *testing.T) { testStatefulSet(t, cs) })
	t.Run("daemonset on every node", func(t *testing.T) { testDaemonSet(t, cs) })
	t.Run("job completes", func(t *testing.T) { testJob(t, cs) })
	t.Run("garbage collection", func(t *testing.T) { testGarbageCollection(t, cs) })
	t.Run("pdb blocks eviction", func(t *testing.T) { testDisruptionBudget(t, cs) })
	t.Run("after a leader kill", func(t *testing.T) {
		leader := c.Store.WaitLeader()
		if leader == server {
			leader = moveLeader(t, c.Ctx(), c, server)
			waitReady(t, c.Ctx(), c, leader)
		}
		c.KillPeer(leader)
		t.Logf("killed leader %d; asking server %d", leader, server)
		testDeploymentScale(t, cs, "after-kill")
	})
	t.Run("cronjob fires", func(t *testing.T) {
		waitFor(t, "a job of the cron job succeeded", func(ctx context.Context) (bool, error) {
			cj, err := cs.BatchV1().CronJobs(cronNS).Get(ctx, "tick", metav1.GetOptions{})
			return err == nil && cj.Status.LastSuccessfulTime != nil, err
		})
	})
}

func waitFor(t *testing.T, what string, cond func(context.Context) (bool, error)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var last error
	err := wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		ok, err := cond(ctx)
		last = err
		return ok, nil
	})
	if err != nil {
		t.Fatalf("%s: %v (last error: %v)", what, err, last)
	}
}

func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func mkns(t *testing.T, cs kubernetes.Interface, name string) string {
	t.Helper()
	if _, err := cs.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// Pods need the namespace's default service account (admission).
	waitFor(t, "service account of "+name, func(ctx context.Context) (bool, error) {
		_, err := cs.CoreV1().ServiceAccounts(name).Get(ctx, "default", metav1.GetOptions{})
		return err == nil, err
	})
	return name
}

func podTemplate(labels map[string]string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: labels},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox:1"}}},
	}
}

func testNodeIPAM(t *testing.T, cs kubernetes.Interface) {
	nodes, err := cs.CoreV1().Nodes().List(context.Background(), metav1.ListOptions{LabelSelector: hollow.HollowLabel})
	if err != nil {
		t.Fatal(err)
	}
	cluster := netip.MustParsePrefix("10.244.0.0/16")
	seen := map[string]string{}
	for _, n := range nodes.Items {
		p, err := netip.ParsePrefix(n.Spec.PodCIDR)
		if err != nil || p.Bits() != 24 || !cluster.Contains(p.Addr()) {
			t.Errorf("node %s: pod CIDR %q, want a /24 of %s", n.Name, n.Spec.PodCIDR, cluster)
		}
		if other, dup := seen[n.Spec.PodCIDR]; dup {
			t.Errorf("nodes %s and %s share %s", other, n.Name, n.Spec.PodCIDR)
		}
		seen[n.Spec.PodCIDR] = n.Name
	}
}

func deploymentDone(ctx context.Context, cs kubernetes.Interface, ns, name string) (bool, error) {
	d, err := cs.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return false, err
	}
	// kubectl rollout status's own test.
	want := ptr.Deref(d.Spec.Replicas, 1)
	return d.Status.ObservedGeneration >= d.Generation && d.Status.UpdatedReplicas == want &&
		d.Status.Replicas == want && d.Status.AvailableReplicas == want, nil
}

func testDeployment(t *testing.T, cs kubernetes.Interface) {
	ns := mkns(t, cs, "deploy")
	labels := map[string]string{"app": "web"}
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web"}, Spec: appsv1.DeploymentSpec{
		Replicas: ptr.To[int32](4), Selector: &metav1.LabelSelector{MatchLabels: labels}, Template: podTemplate(labels)}}
	ctx := context.Background()
	if _, err := cs.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "first rollout", func(ctx context.Context) (bool, error) { return deploymentDone(ctx, cs, ns, "web") })
	pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pods.Items {
		if p.Spec.NodeName == "" || p.Status.Phase != corev1.PodRunning {
			t.Errorf("pod %s on %q in phase %s, want bound and Running", p.Name, p.Spec.NodeName, p.Status.Phase)
		}
	}
	// A rolling update, then the rollback kubectl rollout undo makes: the
	// previous ReplicaSet's template becomes the Deployment's again.
	updateDeployment(ctx, t, cs, ns, "web", func(d *appsv1.Deployment) {
		d.Spec.Template.Spec.Containers[0].Image = "busybox:2"
	})
	waitFor(t, "rolling update", func(ctx context.Context) (bool, error) { return deploymentDone(ctx, cs, ns, "web") })
	rss, err := cs.AppsV1().ReplicaSets(ns).List(ctx, metav1.ListOptions{})
	if err != nil || len(rss.Items) != 2 {
		t.Fatalf("replica sets after the update: %v, %v; want the old and the new", rss, err)
	}
	var old *appsv1.ReplicaSet
	for i := range rss.Items {
		if rss.Items[i].Spec.Template.Spec.Containers[0].Image == "busybox:1" {
			old = &rss.Items[i]
			if ptr.Deref(old.Spec.Replicas, -1) != 0 {
				t.Errorf("old replica set still wants %d pods", *old.Spec.Replicas)
			}
		}
	}
	if old == nil {
		t.Fatal("no replica set of the first template")
	}
	updateDeployment(ctx, t, cs, ns, "web", func(d *appsv1.Deployment) {
		d.Spec.Template = *old.Spec.Template.DeepCopy()
		delete(d.Spec.Template.Labels, appsv1.DefaultDeploymentUniqueLabelKey)
	})
	waitFor(t, "rollback", func(ctx context.Context) (bool, error) {
		ok, err := deploymentDone(ctx, cs, ns, "web")
		if !ok || err != nil {
			return ok, err
		}
		r, err := cs.AppsV1().ReplicaSets(ns).Get(ctx, old.Name, metav1.GetOptions{})
		return err == nil && ptr.Deref(r.Spec.Replicas, 0) == 4, err
	})
}

// updateDeployment changes a Deployment as kubectl does: read, change,
// write, and again on a conflict, since the controllers write its status
// meanwhile.
func updateDeployment(ctx context.Context, t *testing.T, cs kubernetes.Interface, ns, name string, change func(*appsv1.Deployment)) {
	t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		d, err := cs.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		change(d)
		_, err = cs.AppsV1().Deployments(ns).Update(ctx, d, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatalf("update deployment %s/%s: %v", ns, name, err)
	}
}

// testReadyAgain marks a Deployment's pod not ready as the node
// lifecycle controller does while a node is Unknown, and waits for the
// hollow kubelet to report it Ready again and the ReplicaSet to count
// it: without that a node's brief Unknown left Deployments short of Ready
// for good.
func testReadyAgain(t *testing.T, cs kubernetes.Interface) {
	ns := mkns(t, cs, "ready-again")
	labels := map[string]string{"app": "ready-again"}
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web"}, Spec: appsv1.DeploymentSpec{
		Replicas: ptr.To[int32](2), Selector: &metav1.LabelSelector{MatchLabels: labels}, Template: podTemplate(labels)}}
	ctx := context.Background()
	if _, err := cs.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "rollout", func(ctx context.Context) (bool, error) { return deploymentDone(ctx, cs, ns, "web") })
	pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil || len(pods.Items) == 0 {
		t.Fatalf("pods: %v, %v", pods, err)
	}
	p := pods.Items[0].DeepCopy()
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == corev1.PodReady {
			p.Status.Conditions[i].Status = corev1.ConditionFalse
		}
	}
	if _, err := cs.CoreV1().Pods(ns).UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the pod Ready again and the Deployment whole", func(ctx context.Context) (bool, error) {
		got, err := cs.CoreV1().Pods(ns).Get(ctx, p.Name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, c := range got.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status != corev1.ConditionTrue {
				return false, nil
			}
		}
		return deploymentDone(ctx, cs, ns, "web")
	})
}

func testDeploymentScale(t *testing.T, cs kubernetes.Interface, ns string) {
	ns = mkns(t, cs, ns)
	labels := map[string]string{"app": ns}
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web"}, Spec: appsv1.DeploymentSpec{
		Replicas: ptr.To[int32](3), Selector: &metav1.LabelSelector{MatchLabels: labels}, Template: podTemplate(labels)}}
	if _, err := cs.AppsV1().Deployments(ns).Create(context.Background(), d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "pods bound and available", func(ctx context.Context) (bool, error) { return deploymentDone(ctx, cs, ns, "web") })
}

func testStatefulSet(t *testing.T, cs kubernetes.Interface) {
	ns := mkns(t, cs, "sts")
	ctx := context.Background()
	labels := map[string]string{"app": "db"}
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "db"}, Spec: corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone, Selector: labels,
		Ports: []corev1.ServicePort{{Port: 5432}}}}
	if _, err := cs.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	s := &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: "db"}, Spec: appsv1.StatefulSetSpec{
		ServiceName: "db", Replicas: ptr.To[int32](3), Selector: &metav1.LabelSelector{MatchLabels: labels}, Template: podTemplate(labels)}}
	if _, err := cs.AppsV1().StatefulSets(ns).Create(ctx, s, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "3 ready replicas", func(ctx context.Context) (bool, error) {
		s, err := cs.AppsV1().StatefulSets(ns).Get(ctx, "db", metav1.GetOptions{})
		return err == nil && s.Status.ReadyReplicas == 3, err
	})
	// OrderedReady: each ordinal is created only once the one before runs.
	var prev time.Time
	for i := range 3 {
		p, err := cs.CoreV1().Pods(ns).Get(ctx, fmt.Sprintf("db-%d", i), metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		created := p.CreationTimestamp.Time
		if i > 0 && created.Before(prev) {
			t.Errorf("db-%d created at %v, before db-%d became ready at %v", i, created, i-1, prev)
		}
		prev = readySince(p)
	}
}

func readySince(p *corev1.Pod) time.Time {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.LastTransitionTime.Time
		}
	}
	return time.Time{}
}

func testDaemonSet(t *testing.T, cs kubernetes.Interface) {
	ns := mkns(t, cs, "ds")
	labels := map[string]string{"app": "agent"}
	ds := &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: "agent"}, Spec: appsv1.DaemonSetSpec{
		Selector: &metav1.LabelSelector{MatchLabels: labels}, Template: podTemplate(labels)}}
	ds.Spec.Template.Spec.NodeSelector = map[string]string{hollow.HollowLabel: "true"}
	if _, err := cs.AppsV1().DaemonSets(ns).Create(context.Background(), ds, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "one ready pod per node", func(ctx context.Context) (bool, error) {
		d, err := cs.AppsV1().DaemonSets(ns).Get(ctx, "agent", metav1.GetOptions{})
		return err == nil && d.Status.DesiredNumberScheduled == hollowNodes && d.Status.NumberReady == hollowNodes, err
	})
	pods, err := cs.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	perNode := map[string]int{}
	for _, p := range pods.Items {
		perNode[p.Spec.NodeName]++
	}
	if len(perNode) != hollowNodes {
		t.Errorf("pods per node %v, want one on each of %d nodes", perNode, hollowNodes)
	}
	for n, k := range perNode {
		if k != 1 {
			t.Errorf("node %s runs %d pods of the daemon set", n, k)
		}
	}
}

func testJob(t *testing.T, cs kubernetes.Interface) {
	ns := mkns(t, cs, "job")
	j := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "once"}, Spec: batchv1.JobSpec{
		Completions: ptr.To[int32](2), Template: podTemplate(nil)}}
	j.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyNever
	if _, err := cs.BatchV1().Jobs(ns).Create(context.Background(), j, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the job complete", func(ctx context.Context) (bool, error) {
		j, err := cs.BatchV1().Jobs(ns).Get(ctx, "once", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, c := range j.Status.Conditions {
			if c.Type == batchv1.JobComplete && c.Status == corev1.ConditionTrue {
				return j.Status.Succeeded == 2, nil
			}
		}
		return false, nil
	})
}

// testGarbageCollection deletes three Deployments, one per propagation
// policy, and checks what becomes of their ReplicaSets.
func testGarbageCollection(t *testing.T, cs kubernetes.Interface) {
	ns := mkns(t, cs, "gc")
	ctx := context.Background()
	rsOf := func(ctx context.Context, app string) ([]appsv1.ReplicaSet, error) {
		l, err := cs.AppsV1().ReplicaSets(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=" + app})
		if err != nil {
			return nil, err
		}
		return l.Items, nil
	}
	for _, policy := range []metav1.DeletionPropagation{metav1.DeletePropagationBackground, metav1.DeletePropagationForeground, metav1.DeletePropagationOrphan} {
		app := "gc-" + strings.ToLower(string(policy))
		labels := map[string]string{"app": app}
		d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: app}, Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1), Selector: &metav1.LabelSelector{MatchLabels: labels}, Template: podTemplate(labels)}}
		if _, err := cs.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, app+" available", func(ctx context.Context) (bool, error) { return deploymentDone(ctx, cs, ns, app) })
		if err := cs.AppsV1().Deployments(ns).Delete(ctx, app, metav1.DeleteOptions{PropagationPolicy: &policy}); err != nil {
			t.Fatal(err)
		}
		switch policy {
		case metav1.DeletePropagationOrphan:
			waitFor(t, "the orphaned replica set freed of its owner", func(ctx context.Context) (bool, error) {
				rss, err := rsOf(ctx, app)
				if err != nil || len(rss) != 1 {
					return false, err
				}
				_, gone := cs.AppsV1().Deployments(ns).Get(ctx, app, metav1.GetOptions{})
				return len(rss[0].OwnerReferences) == 0 && apierrors.IsNotFound(gone), nil
			})
		default:
			waitFor(t, app+": deployment, replica sets and pods gone", func(ctx context.Context) (bool, error) {
				rss, err := rsOf(ctx, app)
				if err != nil || len(rss) != 0 {
					return false, err
				}
				pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=" + app})
				if err != nil || len(pods.Items) != 0 {
					return false, err
				}
				_, gone := cs.AppsV1().Deployments(ns).Get(ctx, app, metav1.GetOptions{})
				return apierrors.IsNotFound(gone), nil
			})
		}
	}
}

func testDisruptionBudget(t *testing.T, cs kubernetes.Interface) {
	ns := mkns(t, cs, "pdb")
	ctx := context.Background()
	labels := map[string]string{"app": "guarded"}
	pdb := &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Name: "guard"}, Spec: policyv1.PodDisruptionBudgetSpec{
		MinAvailable: ptr.To(intstr.FromInt32(2)), Selector: &metav1.LabelSelector{MatchLabels: labels}}}
	if _, err := cs.PolicyV1().PodDisruptionBudgets(ns).Create(ctx, pdb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "guarded"}, Spec: appsv1.DeploymentSpec{
		Replicas: ptr.To[int32](2), Selector: &metav1.LabelSelector{MatchLabels: labels}, Template: podTemplate(labels)}}
	if _, err := cs.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the budget observing 2 healthy pods", func(ctx context.Context) (bool, error) {
		p, err := cs.PolicyV1().PodDisruptionBudgets(ns).Get(ctx, "guard", metav1.GetOptions{})
		return err == nil && p.Status.ObservedGeneration == p.Generation && p.Status.CurrentHealthy == 2, err
	})
	pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=guarded"})
	if err != nil || len(pods.Items) == 0 {
		t.Fatalf("pods: %v %v", pods, err)
	}
	err = cs.CoreV1().Pods(ns).EvictV1(ctx, &policyv1.Eviction{ObjectMeta: metav1.ObjectMeta{Name: pods.Items[0].Name, Namespace: ns}})
	if !apierrors.IsTooManyRequests(err) {
		t.Fatalf("evicting below the budget: %v, want 429 TooManyRequests", err)
	}
	t.Logf("eviction refused: %v", err)
}
