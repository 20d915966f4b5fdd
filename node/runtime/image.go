package runtime

import (
	"context"
	"errors"
	"fmt"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/errdefs"
	"github.com/containerd/containerd/reference/docker"
	corev1 "k8s.io/api/core/v1"

	"github.com/barge-dev/barge/node/image"
)

// ErrImageNeverPull is returned for an absent image whose pull policy is
// Never.
var ErrImageNeverPull = errors.New("image is not present and the pull policy is Never")

// NormalizeImage turns a pod spec's image into a full reference
// (busybox → docker.io/library/busybox:latest), as containerd's CRI does.
func NormalizeImage(ref string) (string, error) {
	n, err := docker.ParseDockerRef(ref)
	if err != nil {
		return "", fmt.Errorf("image %q: %w", ref, err)
	}
	return n.String(), nil
}

// EnsureImage returns the image, pulling it through the registry host
// configuration as the pull policy says.
func (r *Runtime) EnsureImage(ctx context.Context, ref string, policy corev1.PullPolicy) (containerd.Image, error) {
	return r.EnsureImageWithAuth(ctx, ref, policy, nil)
}

// EnsureImageWithAuth is EnsureImage pulling with the first of auths the
// registry accepts, as the kubelet tries a pod's pull secrets in turn
// (the best-matching first); with none it pulls anonymously.
func (r *Runtime) EnsureImageWithAuth(ctx context.Context, ref string, policy corev1.PullPolicy, auths []image.Credentials) (containerd.Image, error) {
	ctx = r.ctx(ctx)
	name, err := NormalizeImage(ref)
	if err != nil {
		return nil, err
	}
	if policy != corev1.PullAlways {
		img, err := r.client.GetImage(ctx, name)
		if err == nil {
			if ok, _ := img.IsUnpacked(ctx, ""); !ok {
				if err := img.Unpack(ctx, ""); err != nil {
					return nil, fmt.Errorf("unpack %s: %w", name, err)
				}
			}
			return img, nil
		}
		if !errdefs.IsNotFound(err) {
			return nil, fmt.Errorf("image %s: %w", name, err)
		}
		if policy == corev1.PullNever {
			return nil, fmt.Errorf("%s: %w", ref, ErrImageNeverPull)
		}
	}
	if len(auths) == 0 {
		return image.Pull(ctx, r.client, name, r.cfg.HostsDir)
	}
	var errs []error
	for i := range auths {
		img, err := image.PullWithAuth(ctx, r.client, name, r.cfg.HostsDir, &auths[i])
		if err == nil {
			return img, nil
		}
		errs = append(errs, err)
	}
	return nil, errors.Join(errs...)
}

// Images lists the node's images as a Node's status reports them.
func (r *Runtime) Images(ctx context.Context) ([]corev1.ContainerImage, error) {
	imgs, err := image.List(r.ctx(ctx), r.client)
	if err != nil {
		return nil, err
	}
	var out []corev1.ContainerImage
	for _, i := range imgs {
		out = append(out, corev1.ContainerImage{Names: []string{i.Name}, SizeBytes: i.Size})
	}
	return out, nil
}
