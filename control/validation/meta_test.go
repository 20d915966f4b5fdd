package validation

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestObjectMeta(t *testing.T) {
	cases := []struct {
		name string
		meta metav1.ObjectMeta
		want []string
	}{
		{name: "valid", meta: metav1.ObjectMeta{Name: "cfg", Namespace: "default", Labels: map[string]string{"app.kubernetes.io/name": "web"}, Annotations: map[string]string{"example.com/note": "x"}, Finalizers: []string{"example.com/cleanup", "orphan"}}},
		{
			name: "name required",
			meta: metav1.ObjectMeta{Namespace: "default"},
			want: []string{`metadata.name: Required value: name or generateName is required`},
		},
		{
			name: "bad generateName",
			meta: metav1.ObjectMeta{Name: "cfg-abcde", GenerateName: "CFG-", Namespace: "default"},
			want: []string{`metadata.generateName: Invalid value: "CFG-": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')`},
		},
		{
			name: "bad label key",
			meta: metav1.ObjectMeta{Name: "cfg", Namespace: "default", Labels: map[string]string{"bad key": "v"}},
			want: []string{`metadata.labels: Invalid value: "bad key": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')`},
		},
		{
			name: "annotations too large",
			meta: metav1.ObjectMeta{Name: "cfg", Namespace: "default", Annotations: map[string]string{"a": strings.Repeat("x", 256*1024)}},
			want: []string{`metadata.annotations: Too long: may not be more than 262144 bytes`},
		},
		{
			name: "negative generation",
			meta: metav1.ObjectMeta{Name: "cfg", Namespace: "default", Generation: -1},
			want: []string{`metadata.generation: Invalid value: -1: must be greater than or equal to 0`},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			expect(t, Create(&corev1.ConfigMap{ObjectMeta: tc.meta}), tc.want)
		})
	}
}

func TestObjectMetaUpdate(t *testing.T) {
	old := &corev1.ConfigMap{ObjectMeta: stored(meta("cfg"))}
	old.Generation = 3
	cm := old.DeepCopy()
	cm.Namespace = "other"
	cm.UID = "different"
	cm.Generation = 2
	expect(t, Update(cm, old), []string{
		`metadata.generation: Invalid value: 2: must not be decremented`,
		`metadata.namespace: Invalid value: "other": field is immutable`,
		`metadata.uid: Invalid value: "different": field is immutable`,
	})
}
