package runtime

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

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
	return r.pullShared(ctx, name, auths)
}

// pullShared pulls name once for all the callers that want it at the
// same moment with the same credentials (the pods of a Deployment
// landing on a node together): without it each pulls and unpacks the
// same layers concurrently, and they contend for the same snapshots. A
// caller that gives up (its ctx ends) leaves the pull to the others.
func (r *Runtime) pullShared(ctx context.Context, name string, auths []image.Credentials) (containerd.Image, error) {
	key := name
	if len(auths) > 0 {
		h := sha256.New()
		for _, a := range auths {
			fmt.Fprintf(h, "%q %q\n", a.Username, a.Password)
		}
		key += "\x00" + hex.EncodeToString(h.Sum(nil))
	}
	ch := r.pulls.DoChan(key, func() (any, error) {
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), pullTimeout)
		defer cancel()
		return r.pull(pctx, name, auths)
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			return nil, res.Err
		}
		return res.Val.(containerd.Image), nil
	case <-ctx.Done():
		return nil, fmt.Errorf("pull %s: %w", name, ctx.Err())
	}
}

// pullTimeout bounds a shared pull, which outlives the caller that
// started it.
const pullTimeout = 10 * time.Minute

func (r *Runtime) pull(ctx context.Context, name string, auths []image.Credentials) (containerd.Image, error) {
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
