package scheme

import (
	"net/url"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

func TestInternalVersionIsTheExternalType(t *testing.T) {
	s, _, err := New()
	if err != nil {
		t.Fatal(err)
	}
	d := &appsv1.Deployment{}
	d.Name = "x"
	internal := schema.GroupVersion{Group: "apps", Version: runtime.APIVersionInternal}
	out, err := s.UnsafeConvertToVersion(d, internal)
	if err != nil {
		t.Fatalf("convert to internal: %v", err)
	}
	if got, ok := out.(*appsv1.Deployment); !ok || got.Name != "x" {
		t.Fatalf("internal form is %T, want the same *appsv1.Deployment", out)
	}
	back, err := s.ConvertToVersion(out, appsv1.SchemeGroupVersion)
	if err != nil {
		t.Fatalf("convert back: %v", err)
	}
	if gvk := back.GetObjectKind().GroupVersionKind(); gvk != appsv1.SchemeGroupVersion.WithKind("Deployment") {
		t.Fatalf("external kind %v", gvk)
	}
}

func TestPodLogOptionsFromQuery(t *testing.T) {
	for _, tc := range []struct {
		query   string
		want    func(*corev1.PodLogOptions) bool
		wantErr string
	}{
		{query: "container=c&follow=true&tailLines=10", want: func(o *corev1.PodLogOptions) bool {
			return o.Container == "c" && o.Follow && o.TailLines != nil && *o.TailLines == 10
		}},
		{query: "sinceTime=2026-01-02T03:04:05Z", want: func(o *corev1.PodLogOptions) bool { return o.SinceTime != nil && o.SinceTime.Year() == 2026 }},
		{query: "follow=maybe", wantErr: "query parameter follow"},
		{query: "limitBytes=x", wantErr: "query parameter limitBytes"},
		{query: "sinceTime=yesterday", wantErr: "query parameter sinceTime"},
	} {
		t.Run(tc.query, func(t *testing.T) {
			q, err := url.ParseQuery(tc.query)
			if err != nil {
				t.Fatal(err)
			}
			var o corev1.PodLogOptions
			err = podLogOptionsFromQuery(q, &o)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one mentioning %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || !tc.want(&o) {
				t.Fatalf("got %+v, %v", o, err)
			}
		})
	}
}
