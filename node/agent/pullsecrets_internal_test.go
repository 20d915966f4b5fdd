package agent

import (
	"context"
	"encoding/base64"
	"fmt"
	"log/slog"
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/barge-dev/barge/node/image"
)

// TestPullCredentials: which credentials of a pod's pull secrets the
// agent offers for an image (upstream's keyring matching), over a fake
// API (the agent test pulls from a registry with users for real).
func TestPullCredentials(t *testing.T) {
	dockerConfigJSON := func(name string, auths map[string][2]string) *corev1.Secret {
		b := `{"auths":{`
		first := true
		for host, up := range auths {
			if !first {
				b += ","
			}
			first = false
			b += fmt.Sprintf("%q:{\"auth\":%q}", host, base64.StdEncoding.EncodeToString([]byte(up[0]+":"+up[1])))
		}
		b += "}}"
		return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns"}, Type: corev1.SecretTypeDockerConfigJson,
			Data: map[string][]byte{corev1.DockerConfigJsonKey: []byte(b)}}
	}
	objs := []*corev1.Secret{
		dockerConfigJSON("reg", map[string][2]string{"reg.example:5000": {"alice", "pw1"}}),
		dockerConfigJSON("other", map[string][2]string{"other.example": {"bob", "pw2"}}),
		dockerConfigJSON("repo", map[string][2]string{"reg.example:5000/team": {"carol", "pw3"}}),
		dockerConfigJSON("hub", map[string][2]string{"https://index.docker.io/v1/": {"dave", "pw4"}}),
		{ObjectMeta: metav1.ObjectMeta{Name: "opaque", Namespace: "ns"}, Data: map[string][]byte{"x": []byte("y")}},
		{ObjectMeta: metav1.ObjectMeta{Name: "broken", Namespace: "ns"}, Type: corev1.SecretTypeDockerConfigJson,
			Data: map[string][]byte{corev1.DockerConfigJsonKey: []byte("{not json")}},
	}
	client := fake.NewClientset()
	for _, s := range objs {
		if _, err := client.CoreV1().Secrets("ns").Create(context.Background(), s, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	a := &Agent{client: client, log: slog.New(slog.DiscardHandler)}
	cases := []struct {
		name    string
		image   string
		secrets []string
		want    []image.Credentials
	}{
		{"no secrets", "reg.example:5000/app:v1", nil, nil},
		{"matching host", "reg.example:5000/app:v1", []string{"reg"}, []image.Credentials{{Username: "alice", Password: "pw1"}}},
		{"other host only", "reg.example:5000/app:v1", []string{"other"}, nil},
		{"best match first", "reg.example:5000/team/app@sha256:" + fmt.Sprintf("%064d", 0), []string{"reg", "repo"},
			[]image.Credentials{{Username: "carol", Password: "pw3"}, {Username: "alice", Password: "pw1"}}},
		{"repository prefix does not match elsewhere", "reg.example:5000/solo/app", []string{"repo"}, nil},
		{"docker hub short name", "busybox", []string{"hub", "reg"}, []image.Credentials{{Username: "dave", Password: "pw4"}}},
		{"missing secret skipped", "reg.example:5000/app", []string{"gone", "reg"}, []image.Credentials{{Username: "alice", Password: "pw1"}}},
		{"opaque secret ignored", "reg.example:5000/app", []string{"opaque"}, nil},
		{"unparsable secret: none", "reg.example:5000/app", []string{"broken", "reg"}, nil},
		{"bad image name", "UPPER/Case::", []string{"reg"}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns"}}
			for _, s := range c.secrets {
				pod.Spec.ImagePullSecrets = append(pod.Spec.ImagePullSecrets, corev1.LocalObjectReference{Name: s})
			}
			got := a.pullCredentials(context.Background(), pod, c.image)
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("credentials for %s with %v: %+v, want %+v", c.image, c.secrets, got, c.want)
			}
		})
	}
}
