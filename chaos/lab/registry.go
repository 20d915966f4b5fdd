package lab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/barge-dev/barge/node/image"
	"github.com/barge-dev/barge/raftstore/pki"
)

// The registry host: its own namespace, .200 of the lab's /24.
const (
	RegistryHost = "registry"
	RegistryPort = 5000
	registryLast = 200
)

// registryTimeout bounds the wait for the registry to answer.
const registryTimeout = 30 * time.Second

// BusyboxImage is the repository and tag Up pushes to the lab registry.
const BusyboxImage = "busybox:latest"

// startRegistry writes the registry's files (a serving certificate from
// the lab CA for the host's IP) and starts Debian's docker-registry
// detached inside the registry host, then waits until it answers over
// TLS trusted by the lab CA.
func (l *Lab) startRegistry(h *Host) error {
	bin, err := exec.LookPath(image.RegistryBinary)
	if err != nil {
		return fmt.Errorf("lab: %s not found: apt-get install docker-registry", image.RegistryBinary)
	}
	conf, err := image.WriteRegistryFiles(image.RegistryConfig{
		Dir:      h.DataDir,
		Addr:     net.JoinHostPort(h.Address, strconv.Itoa(RegistryPort)),
		CertsDir: l.Certs,
	})
	if err != nil {
		return fmt.Errorf("lab: registry: %w", err)
	}
	pid, err := startDetached(h.Log, h.Name, "ip", "netns", "exec", h.Netns, bin, "serve", conf)
	if err != nil {
		return err
	}
	h.PID = pid
	l.log.Info("started registry", "host", h.Name, "pid", pid, "addr", l.Registry)
	ctx, cancel := context.WithTimeout(context.Background(), registryTimeout)
	defer cancel()
	if err := l.waitRegistry(ctx, h); err != nil {
		return fmt.Errorf("lab: registry on %s (pid %d): %w; end of %s:\n%s", l.Registry, pid, err, h.Log, tailLog(h.Log, 2048))
	}
	return nil
}

func (l *Lab) waitRegistry(ctx context.Context, h *Host) error {
	tr, err := image.Transport(filepath.Join(l.Certs, pki.CACertFile))
	if err != nil {
		return err
	}
	client := &http.Client{Transport: tr, Timeout: 2 * time.Second}
	defer tr.CloseIdleConnections()
	url := "https://" + l.Registry + "/v2/"
	var last error
	for {
		if !alive(h.PID) {
			return fmt.Errorf("exited (last try: %v)", last)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last try: %v)", ctx.Err(), last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// pushImages builds busybox from Debian's busybox-static and pushes it as
// REGISTRY/busybox:latest, and makes the lab's containerd trust the
// registry with the lab CA (hosts.toml).
func (l *Lab) pushImages(ctx context.Context) error {
	if l.Registry == "" {
		return errors.New("lab: no registry")
	}
	ca := filepath.Join(l.Certs, pki.CACertFile)
	if l.Containerd != nil {
		if err := image.WriteHostsConfig(l.Containerd.HostsDir, l.Registry, ca); err != nil {
			return fmt.Errorf("lab: registry hosts.toml: %w", err)
		}
	}
	spec, ok := image.Recipe("busybox")
	if !ok {
		return errors.New("lab: no busybox recipe")
	}
	img, err := image.Build(ctx, spec, image.BuildOptions{Logger: l.log})
	if err != nil {
		return fmt.Errorf("lab: build busybox: %w", err)
	}
	ref := l.Registry + "/" + BusyboxImage
	digest, err := image.Push(ctx, img, ref, ca)
	if err != nil {
		return fmt.Errorf("lab: push busybox: %w", err)
	}
	l.log.Info("pushed image", "ref", ref, "digest", digest.String())
	return nil
}
