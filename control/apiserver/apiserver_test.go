package apiserver_test

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/barge-dev/barge/control/apitest"
)

func TestSmoke(t *testing.T) {
	c := apitest.New(t, 1, apiOnly())
	cs := c.Client(0)
	ctx := c.Ctx()
	ns, err := cs.CoreV1().Namespaces().Get(ctx, "default", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("default namespace: %v", err)
	}
	t.Logf("default ns: %+v", ns.Status)
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "a", Namespace: "default"}, Data: map[string]string{"k": "v"}}
	got, err := cs.CoreV1().ConfigMaps("default").Create(ctx, cm, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if got.ResourceVersion == "" || got.UID == "" {
		t.Fatalf("create returned %+v", got.ObjectMeta)
	}
	cm.Namespace = "nope"
	_, err = cs.CoreV1().ConfigMaps("nope").Create(ctx, cm, metav1.CreateOptions{})
	if !apierrors.IsNotFound(err) {
		t.Fatalf("create in missing namespace: %v", err)
	}
}
