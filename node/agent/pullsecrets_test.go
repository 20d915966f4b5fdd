package agent_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/barge-dev/barge/node/image"
	"github.com/barge-dev/barge/raftstore/loopport"
	"github.com/barge-dev/barge/raftstore/pki"
)

// testImagePullSecrets runs a registry that serves only a user with a
// password (htpasswd): a pod without pull secrets, or with a secret
// holding the wrong password, gets ErrImagePull saying so; one whose
// kubernetes.io/dockerconfigjson secret holds the user's password runs.
// Then the pull policies on that registry: Never runs a present image
// and refuses an absent one; after the tag moves, IfNotPresent keeps the
// node's copy and Always pulls the new one.
func testImagePullSecrets(t *testing.T, h *harness) {
	ctx := context.Background()
	ns := h.namespace(t)
	ca := filepath.Join(h.api.Store.CertsDir, pki.CACertFile)
	const user, password = "puller", "s3cret-pw"
	reg, err := image.StartRegistry(ctx, image.RegistryConfig{Dir: filepath.Join(t.TempDir(), "registry"), Addr: loopport.Addr(t), CertsDir: h.api.Store.CertsDir,
		Users: map[string]string{user: password}, Output: io.Discard, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = reg.Stop() })
	if err := image.WriteHostsConfig(h.ctrd.HostsDir, reg.Addr(), ca); err != nil {
		t.Fatal(err)
	}
	busybox, err := image.Fetch(ctx, h.busybox, ca)
	if err != nil {
		t.Fatal(err)
	}
	private := reg.Addr() + "/private/busybox:v1"
	auth := remote.WithAuth(&authn.Basic{Username: user, Password: password})
	if _, err := image.Push(ctx, busybox, private, ca); err == nil {
		t.Fatal("an anonymous push to the registry with users was accepted")
	}
	first, err := image.Push(ctx, busybox, private, ca, auth)
	if err != nil {
		t.Fatal(err)
	}
	secret := func(name, pw string) {
		cfg, _ := json.Marshal(map[string]any{"auths": map[string]any{reg.Addr(): map[string]string{
			"auth": base64.StdEncoding.EncodeToString([]byte(user + ":" + pw)),
		}}})
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name}, Type: corev1.SecretTypeDockerConfigJson, Data: map[string][]byte{corev1.DockerConfigJsonKey: cfg}}
		if _, err := h.admin.CoreV1().Secrets(ns).Create(ctx, s, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	secret("good", password)
	secret("wrong", "not-the-password")
	mk := func(name, img string, policy corev1.PullPolicy, secrets ...string) {
		p := h.pod(name, "n1", "exec sleep 3600")
		p.Spec.Containers[0].Image = img
		p.Spec.Containers[0].ImagePullPolicy = policy
		for _, s := range secrets {
			p.Spec.ImagePullSecrets = append(p.Spec.ImagePullSecrets, corev1.LocalObjectReference{Name: s})
		}
		h.createPod(t, ns, p)
	}
	waiting := func(name, reason, says string) {
		t.Helper()
		h.waitPod(t, ns, name, reason, func(p *corev1.Pod) bool {
			if len(p.Status.ContainerStatuses) == 0 {
				return false
			}
			w := p.Status.ContainerStatuses[0].State.Waiting
			if w != nil && w.Reason == reason && !strings.Contains(w.Message, says) {
				t.Errorf("pod %s: %s message %q does not say %q", name, reason, w.Message, says)
			}
			return w != nil && w.Reason == reason
		})
	}
	del := func(name string) {
		if err := h.admin.CoreV1().Pods(ns).Delete(ctx, name, metav1.DeleteOptions{GracePeriodSeconds: new(int64)}); err != nil {
			t.Fatal(err)
		}
	}
	imageID := func(name string) string {
		t.Helper()
		p := h.waitPod(t, ns, name, "running", running)
		return p.Status.ContainerStatuses[0].ImageID
	}

	// Until a pod with the good secret pulls it, the node has no copy.
	mk("anonymous", private, corev1.PullIfNotPresent)
	mk("wrong-secret", private, corev1.PullIfNotPresent, "wrong")
	mk("missing-secret", private, corev1.PullIfNotPresent, "no-such-secret")
	waiting("anonymous", "ErrImagePull", "requires authentication")
	waiting("wrong-secret", "ErrImagePull", "refused the credentials")
	waiting("missing-secret", "ErrImagePull", "requires authentication")
	mk("never-absent", private, corev1.PullNever)
	waiting("never-absent", "ErrImageNeverPull", "not present")
	for _, n := range []string{"anonymous", "wrong-secret", "missing-secret", "never-absent"} {
		del(n)
	}
	// The wrong secret first: the kubelet tries each in turn.
	mk("authed", private, corev1.PullIfNotPresent, "wrong", "good")
	if got := imageID("authed"); !strings.HasSuffix(got, "@"+first.String()) {
		t.Errorf("imageID %q, want the pushed digest %s", got, first)
	}

	// The node has it now: Never runs it.
	mk("never-present", private, corev1.PullNever)
	imageID("never-present")

	// The tag moves to another image.
	cf, err := busybox.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	c := cf.Config
	c.Env = append(c.Env, "BARGE_VARIANT=2")
	changed, err := mutate.Config(busybox, c)
	if err != nil {
		t.Fatal(err)
	}
	second, err := image.Push(ctx, changed, private, ca, auth)
	if err != nil {
		t.Fatal(err)
	}
	if second == first {
		t.Fatal("the changed image has the first one's digest")
	}
	mk("if-not-present", private, corev1.PullIfNotPresent, "good")
	mk("always", private, corev1.PullAlways, "good")
	if got := imageID("if-not-present"); !strings.HasSuffix(got, "@"+first.String()) {
		t.Errorf("IfNotPresent after the tag moved: imageID %q, want the node's copy %s", got, first)
	}
	if got := imageID("always"); !strings.HasSuffix(got, "@"+second.String()) {
		t.Errorf("Always after the tag moved: imageID %q, want the new digest %s", got, second)
	}
	// Always needs the registry to let it in, even for an image present.
	mk("always-anonymous", private, corev1.PullAlways)
	waiting("always-anonymous", "ErrImagePull", "requires authentication")
}
