package agent

import (
	"context"
	"fmt"

	"github.com/containerd/containerd/reference/docker"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/kubernetes/pkg/credentialprovider"
	"k8s.io/kubernetes/pkg/credentialprovider/secrets"

	"github.com/barge-dev/barge/node/image"
)

// pullCredentials are the credentials of the pod's imagePullSecrets that
// match ref, the best match first, from upstream's docker keyring as the
// kubelet builds it (kubernetes.io/dockerconfigjson and dockercfg
// secrets, registry globs). A secret that cannot be read is skipped with
// a warning, as the kubelet does: the pull may still work anonymously.
// The Node authorizer lets a node read the pull secrets of its own pods.
func (a *Agent) pullCredentials(ctx context.Context, pod *corev1.Pod, ref string) []image.Credentials {
	if len(pod.Spec.ImagePullSecrets) == 0 {
		return nil
	}
	var found []corev1.Secret
	for _, r := range pod.Spec.ImagePullSecrets {
		s, err := a.client.CoreV1().Secrets(pod.Namespace).Get(ctx, r.Name, metav1.GetOptions{})
		if err != nil {
			a.log.Warn("unable to retrieve pull secret; pulling without it", "pod", pod.Namespace+"/"+pod.Name, "secret", r.Name, "err", err)
			continue
		}
		found = append(found, *s)
	}
	keyring, err := secrets.MakeDockerKeyring(found, &credentialprovider.BasicDockerKeyring{})
	if err != nil {
		a.log.Warn("pull secrets unreadable; pulling without them", "pod", pod.Namespace+"/"+pod.Name, "err", err)
		return nil
	}
	repo, err := repository(ref)
	if err != nil {
		return nil
	}
	auths, _ := keyring.Lookup(repo)
	if len(auths) == 0 {
		return nil
	}
	out := make([]image.Credentials, 0, len(auths))
	for _, c := range auths {
		if c.IdentityToken != "" {
			// containerd takes an identity token as the secret of an
			// empty user name.
			out = append(out, image.Credentials{Password: c.IdentityToken})
			continue
		}
		out = append(out, image.Credentials{Username: c.Username, Password: c.Password})
	}
	return out
}

// repository is ref without tag or digest (the kubelet's keyring key):
// busybox:1 → docker.io/library/busybox.
func repository(ref string) (string, error) {
	n, err := docker.ParseDockerRef(ref)
	if err != nil {
		return "", fmt.Errorf("image %q: %w", ref, err)
	}
	return docker.TrimNamed(n).String(), nil
}
