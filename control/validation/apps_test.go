package validation

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func TestDeploymentCreate(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(*appsv1.Deployment)
		want   []string
	}{
		{name: "valid", mutate: func(*appsv1.Deployment) {}},
		{
			name:   "negative replicas",
			mutate: func(d *appsv1.Deployment) { d.Spec.Replicas = ptr(int32(-1)) },
			want:   []string{`spec.replicas: Invalid value: -1: must be greater than or equal to 0`},
		},
		{name: "absent replicas read as zero", mutate: func(d *appsv1.Deployment) { d.Spec.Replicas = nil }},
		{
			name:   "selector required",
			mutate: func(d *appsv1.Deployment) { d.Spec.Selector = nil },
			// As in Kubernetes, a nil selector selects nothing, so the
			// template's labels are reported as unmatched too.
			want: []string{
				`spec.selector: Required value`,
				"spec.template.metadata.labels: Invalid value: {\"app\":\"web\"}: `selector` does not match template `labels`",
			},
		},
		{
			name:   "empty selector",
			mutate: func(d *appsv1.Deployment) { d.Spec.Selector = &metav1.LabelSelector{} },
			want:   []string{`spec.selector: Invalid value: {}: empty selector is invalid for deployment`},
		},
		{
			name:   "selector does not match template",
			mutate: func(d *appsv1.Deployment) { d.Spec.Template.Labels = map[string]string{"app": "db"} },
			want:   []string{"spec.template.metadata.labels: Invalid value: {\"app\":\"db\"}: `selector` does not match template `labels`"},
		},
		{
			name:   "template image required",
			mutate: func(d *appsv1.Deployment) { d.Spec.Template.Spec.Containers[0].Image = "" },
			want:   []string{`spec.template.spec.containers[0].image: Required value`},
		},
		{
			name:   "template restart policy",
			mutate: func(d *appsv1.Deployment) { d.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyOnFailure },
			want:   []string{`spec.template.spec.restartPolicy: Unsupported value: "OnFailure": supported values: "Always"`},
		},
		{
			name: "rolling update both zero",
			mutate: func(d *appsv1.Deployment) {
				d.Spec.Strategy.RollingUpdate.MaxSurge = ptr(intstr.FromInt32(0))
				d.Spec.Strategy.RollingUpdate.MaxUnavailable = ptr(intstr.FromString("0%"))
			},
			want: []string{"spec.strategy.rollingUpdate.maxUnavailable: Invalid value: \"0%\": may not be 0 when `maxSurge` is 0"},
		},
		{
			name: "rolling update bad values",
			mutate: func(d *appsv1.Deployment) {
				d.Spec.Strategy.RollingUpdate.MaxSurge = ptr(intstr.FromString("ten"))
				d.Spec.Strategy.RollingUpdate.MaxUnavailable = ptr(intstr.FromString("150%"))
			},
			want: []string{
				`spec.strategy.rollingUpdate.maxSurge: Invalid value: "ten": a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')`,
				`spec.strategy.rollingUpdate.maxUnavailable: Invalid value: "150%": must not be greater than 100%`,
			},
		},
		{
			name:   "strategy enum",
			mutate: func(d *appsv1.Deployment) { d.Spec.Strategy = appsv1.DeploymentStrategy{Type: "BlueGreen"} },
			want:   []string{`spec.strategy: Unsupported value: {"type":"BlueGreen"}: supported values: "Recreate", "RollingUpdate"`},
		},
		{
			name: "recreate with rolling update",
			mutate: func(d *appsv1.Deployment) {
				d.Spec.Strategy.Type = appsv1.RecreateDeploymentStrategyType
			},
			want: []string{"spec.strategy.rollingUpdate: Forbidden: may not be specified when strategy `type` is 'Recreate'"},
		},
		{
			name:   "progress deadline",
			mutate: func(d *appsv1.Deployment) { d.Spec.MinReadySeconds = 600 },
			want:   []string{`spec.progressDeadlineSeconds: Invalid value: 600: must be greater than minReadySeconds`},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := validDeployment()
			tc.mutate(d)
			expect(t, Create(d), tc.want)
		})
	}
}

func TestDeploymentUpdate(t *testing.T) {
	old := validDeployment()
	old.ObjectMeta = stored(old.ObjectMeta)
	d := old.DeepCopy()
	d.Spec.Replicas = ptr(int32(3))
	d.Spec.Template.Spec.Containers[0].Image = "nginx:1.28"
	expect(t, Update(d, old), nil)

	d = old.DeepCopy()
	d.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web", "tier": "front"}}
	d.Spec.Template.Labels["tier"] = "front"
	expect(t, Update(d, old), []string{`spec.selector: Invalid value: {"matchLabels":{"app":"web","tier":"front"}}: field is immutable`})
}

func TestDeploymentStatus(t *testing.T) {
	old := validDeployment()
	old.ObjectMeta = stored(old.ObjectMeta)
	old.Status.CollisionCount = ptr(int32(2))
	d := old.DeepCopy()
	d.Status = appsv1.DeploymentStatus{Replicas: 3, UpdatedReplicas: 3, ReadyReplicas: 2, AvailableReplicas: 2, CollisionCount: ptr(int32(2))}
	expect(t, Status(d, old), nil)

	d.Status = appsv1.DeploymentStatus{Replicas: 1, ReadyReplicas: 2, AvailableReplicas: 3, UnavailableReplicas: -1}
	expect(t, Status(d, old), []string{
		`status.unavailableReplicas: Invalid value: -1: must be greater than or equal to 0`,
		`status.readyReplicas: Invalid value: 2: cannot be greater than status.replicas`,
		`status.availableReplicas: Invalid value: 3: cannot be greater than status.replicas`,
		`status.availableReplicas: Invalid value: 3: cannot be greater than readyReplicas`,
		`status.collisionCount: Invalid value: 0: cannot be decremented`,
	})
}

func TestReplicaSet(t *testing.T) {
	rs := validReplicaSet()
	expect(t, Create(rs), nil)

	rs.Spec.Replicas = ptr(int32(-2))
	rs.Spec.Template.Spec.ActiveDeadlineSeconds = ptr(int64(10))
	expect(t, Create(rs), []string{
		`spec.replicas: Invalid value: -2: must be greater than or equal to 0`,
		`spec.template.spec.activeDeadlineSeconds: Forbidden: activeDeadlineSeconds in ReplicaSet is not Supported`,
	})

	old := validReplicaSet()
	old.ObjectMeta = stored(old.ObjectMeta)
	upd := old.DeepCopy()
	upd.Spec.Selector.MatchLabels = map[string]string{"app": "web2"}
	upd.Spec.Template.Labels = map[string]string{"app": "web2"}
	expect(t, Update(upd, old), []string{`spec.selector: Invalid value: {"matchLabels":{"app":"web2"}}: field is immutable`})

	st := old.DeepCopy()
	st.Status = appsv1.ReplicaSetStatus{Replicas: 1, FullyLabeledReplicas: 2}
	expect(t, Status(st, old), []string{`status.fullyLabeledReplicas: Invalid value: 2: cannot be greater than status.replicas`})
}

func TestScale(t *testing.T) {
	s := &autoscalingv1.Scale{ObjectMeta: meta("web"), Spec: autoscalingv1.ScaleSpec{Replicas: 3}}
	expect(t, Create(s), nil)
	s.Spec.Replicas = -1
	expect(t, Update(s, s.DeepCopy()), []string{`spec.replicas: Invalid value: -1: must be greater than or equal to 0`})
}
