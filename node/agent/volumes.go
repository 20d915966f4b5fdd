package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/kubernetes/third_party/forked/golang/expansion"
	"k8s.io/utils/ptr"

	"github.com/barge-dev/barge/node/runtime"
)

func (a *Agent) volumeDir(pod *corev1.Pod, name string) string {
	return filepath.Join(a.rt.PodDataDir(string(pod.UID)), "volumes", name)
}

// prepareVolumes makes every volume of the pod ready on the node: empty
// directories (tmpfs for medium Memory), host paths, and the files of
// configMap, secret, downwardAPI and projected volumes, rewritten
// atomically when their sources change (and tokens when they near
// expiry). It runs on every sync.
func (a *Agent) prepareVolumes(ctx context.Context, pod *corev1.Pod) error {
	var errs []error
	for i := range pod.Spec.Volumes {
		v := &pod.Spec.Volumes[i]
		if err := a.prepareVolume(ctx, pod, v); err != nil {
			errs = append(errs, fmt.Errorf("volume %q: %w", v.Name, err))
		}
	}
	return errors.Join(errs...)
}

func (a *Agent) prepareVolume(ctx context.Context, pod *corev1.Pod, v *corev1.Volume) error {
	dir := a.volumeDir(pod, v.Name)
	src := v.VolumeSource
	switch {
	case src.EmptyDir != nil:
		if err := os.MkdirAll(dir, 0o777); err != nil {
			return err
		}
		if src.EmptyDir.Medium == corev1.StorageMediumMemory {
			opts := "mode=1777"
			if src.EmptyDir.SizeLimit != nil && !src.EmptyDir.SizeLimit.IsZero() {
				opts += ",size=" + strconv.FormatInt(src.EmptyDir.SizeLimit.Value(), 10)
			}
			return ensureTmpfs(dir, opts)
		}
		return os.Chmod(dir, 0o777)
	case src.HostPath != nil:
		return prepareHostPath(src.HostPath)
	case src.ConfigMap != nil:
		files, err := a.configMapFiles(ctx, pod, src.ConfigMap.Name, src.ConfigMap.Items, src.ConfigMap.Optional, modeOr(src.ConfigMap.DefaultMode, 0o644))
		if err != nil {
			return err
		}
		return writeAtomic(dir, files)
	case src.Secret != nil:
		files, err := a.secretFiles(ctx, pod, src.Secret.SecretName, src.Secret.Items, src.Secret.Optional, modeOr(src.Secret.DefaultMode, 0o644))
		if err != nil {
			return err
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		// Secrets live in memory only, as the kubelet keeps them.
		if err := ensureTmpfs(dir, "mode=0755"); err != nil {
			return err
		}
		return writeAtomic(dir, files)
	case src.DownwardAPI != nil:
		files, err := a.downwardFiles(pod, src.DownwardAPI.Items, modeOr(src.DownwardAPI.DefaultMode, 0o644))
		if err != nil {
			return err
		}
		return writeAtomic(dir, files)
	case src.Projected != nil:
		files, err := a.projectedFiles(ctx, pod, src.Projected)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		if err := ensureTmpfs(dir, "mode=0755"); err != nil {
			return err
		}
		return writeAtomic(dir, files)
	}
	return fmt.Errorf("volume type not supported by barge's agent")
}

func modeOr(m *int32, def os.FileMode) os.FileMode {
	if m != nil {
		return os.FileMode(*m)
	}
	return def
}

func ensureTmpfs(dir, opts string) error {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err == nil && st.Type == unix.TMPFS_MAGIC {
		// Already mounted (or the state directory itself is on tmpfs and
		// a mount here is a new one: tell them apart by the device).
		if mounted, _ := isMountPoint(dir); mounted {
			return nil
		}
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, opts); err != nil {
		return fmt.Errorf("mount tmpfs on %s: %w", dir, err)
	}
	return nil
}

func isMountPoint(dir string) (bool, error) {
	var a, b unix.Stat_t
	if err := unix.Stat(dir, &a); err != nil {
		return false, err
	}
	if err := unix.Stat(filepath.Dir(dir), &b); err != nil {
		return false, err
	}
	return a.Dev != b.Dev, nil
}

func prepareHostPath(hp *corev1.HostPathVolumeSource) error {
	t := corev1.HostPathUnset
	if hp.Type != nil {
		t = *hp.Type
	}
	fi, err := os.Stat(hp.Path)
	switch t {
	case corev1.HostPathUnset:
		return nil
	case corev1.HostPathDirectoryOrCreate:
		if os.IsNotExist(err) {
			return os.MkdirAll(hp.Path, 0o755)
		}
		if err == nil && !fi.IsDir() {
			return fmt.Errorf("hostPath %s exists and is not a directory", hp.Path)
		}
		return err
	case corev1.HostPathFileOrCreate:
		if os.IsNotExist(err) {
			if err := os.MkdirAll(filepath.Dir(hp.Path), 0o755); err != nil {
				return err
			}
			f, err := os.OpenFile(hp.Path, os.O_CREATE|os.O_WRONLY, 0o644)
			if err != nil {
				return err
			}
			return f.Close()
		}
		if err == nil && fi.IsDir() {
			return fmt.Errorf("hostPath %s exists and is a directory", hp.Path)
		}
		return err
	}
	if err != nil {
		return fmt.Errorf("hostPath %s: %w", hp.Path, err)
	}
	ok := true
	switch t {
	case corev1.HostPathDirectory:
		ok = fi.IsDir()
	case corev1.HostPathFile:
		ok = fi.Mode().IsRegular()
	case corev1.HostPathSocket:
		ok = fi.Mode()&os.ModeSocket != 0
	case corev1.HostPathCharDev:
		ok = fi.Mode()&os.ModeCharDevice != 0
	case corev1.HostPathBlockDev:
		ok = fi.Mode()&os.ModeDevice != 0 && fi.Mode()&os.ModeCharDevice == 0
	}
	if !ok {
		return fmt.Errorf("hostPath %s is not a %s", hp.Path, t)
	}
	return nil
}

type file struct {
	data []byte
	mode os.FileMode
}

func keyFiles(data map[string][]byte, items []corev1.KeyToPath, mode os.FileMode, kind, ns, name string, optional bool) (map[string]file, error) {
	out := map[string]file{}
	if len(items) == 0 {
		for k, v := range data {
			out[k] = file{v, mode}
		}
		return out, nil
	}
	for _, it := range items {
		v, ok := data[it.Key]
		if !ok {
			if optional {
				continue
			}
			return nil, fmt.Errorf("%s %s/%s has no key %q", kind, ns, name, it.Key)
		}
		out[it.Path] = file{v, modeOr(it.Mode, mode)}
	}
	return out, nil
}

func (a *Agent) configMapFiles(ctx context.Context, pod *corev1.Pod, name string, items []corev1.KeyToPath, optional *bool, mode os.FileMode) (map[string]file, error) {
	cm, err := a.client.CoreV1().ConfigMaps(pod.Namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		if apierrors.IsNotFound(err) && optional != nil && *optional {
			return map[string]file{}, nil
		}
		return nil, fmt.Errorf("configmap %q: %w", name, err)
	}
	data := map[string][]byte{}
	for k, v := range cm.Data {
		data[k] = []byte(v)
	}
	for k, v := range cm.BinaryData {
		data[k] = v
	}
	return keyFiles(data, items, mode, "configmap", pod.Namespace, name, optional != nil && *optional)
}

func (a *Agent) secretFiles(ctx context.Context, pod *corev1.Pod, name string, items []corev1.KeyToPath, optional *bool, mode os.FileMode) (map[string]file, error) {
	s, err := a.client.CoreV1().Secrets(pod.Namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		if apierrors.IsNotFound(err) && optional != nil && *optional {
			return map[string]file{}, nil
		}
		return nil, fmt.Errorf("secret %q: %w", name, err)
	}
	return keyFiles(s.Data, items, mode, "secret", pod.Namespace, name, optional != nil && *optional)
}

func (a *Agent) downwardFiles(pod *corev1.Pod, items []corev1.DownwardAPIVolumeFile, mode os.FileMode) (map[string]file, error) {
	out := map[string]file{}
	for _, it := range items {
		var v string
		var err error
		switch {
		case it.FieldRef != nil:
			v, err = a.podField(pod, it.FieldRef.FieldPath)
		case it.ResourceFieldRef != nil:
			c := findContainer(pod, it.ResourceFieldRef.ContainerName)
			if c == nil {
				return nil, fmt.Errorf("downwardAPI %s: no container %q", it.Path, it.ResourceFieldRef.ContainerName)
			}
			v, err = a.resourceField(pod, c, it.ResourceFieldRef)
		}
		if err != nil {
			return nil, fmt.Errorf("downwardAPI %s: %w", it.Path, err)
		}
		out[it.Path] = file{[]byte(v), modeOr(it.Mode, mode)}
	}
	return out, nil
}

func (a *Agent) projectedFiles(ctx context.Context, pod *corev1.Pod, p *corev1.ProjectedVolumeSource) (map[string]file, error) {
	mode := modeOr(p.DefaultMode, 0o644)
	out := map[string]file{}
	merge := func(m map[string]file) {
		for k, v := range m {
			out[k] = v
		}
	}
	for _, s := range p.Sources {
		switch {
		case s.ConfigMap != nil:
			m, err := a.configMapFiles(ctx, pod, s.ConfigMap.Name, s.ConfigMap.Items, s.ConfigMap.Optional, mode)
			if err != nil {
				return nil, err
			}
			merge(m)
		case s.Secret != nil:
			m, err := a.secretFiles(ctx, pod, s.Secret.Name, s.Secret.Items, s.Secret.Optional, mode)
			if err != nil {
				return nil, err
			}
			merge(m)
		case s.DownwardAPI != nil:
			m, err := a.downwardFiles(pod, s.DownwardAPI.Items, mode)
			if err != nil {
				return nil, err
			}
			merge(m)
		case s.ServiceAccountToken != nil:
			tok, err := a.tokens.get(ctx, pod, s.ServiceAccountToken)
			if err != nil {
				return nil, err
			}
			m := mode
			if p.DefaultMode == nil {
				m = 0o600
			}
			out[s.ServiceAccountToken.Path] = file{[]byte(tok), m}
		}
	}
	return out, nil
}

// containerMounts are the container's bind mounts: its volumeMounts, the
// pod's resolv.conf, hosts and hostname, and its termination log.
// env is the container's environment, which subPathExpr expands from.
func (a *Agent) containerMounts(pod *corev1.Pod, c *corev1.Container, restartCount int, env map[string]string) ([]specs.Mount, string, error) {
	data := a.rt.PodDataDir(string(pod.UID))
	var mounts []specs.Mount
	bind := func(src, dst string, ro bool) {
		opt := "rw"
		if ro {
			opt = "ro"
		}
		mounts = append(mounts, specs.Mount{Destination: dst, Type: "bind", Source: src, Options: []string{"rbind", "rprivate", opt}})
	}
	vols := map[string]*corev1.Volume{}
	for i := range pod.Spec.Volumes {
		vols[pod.Spec.Volumes[i].Name] = &pod.Spec.Volumes[i]
	}
	hasMount := map[string]bool{}
	for _, vm := range c.VolumeMounts {
		v, ok := vols[vm.Name]
		if !ok {
			return nil, "", fmt.Errorf("volumeMount %q: no such volume", vm.Name)
		}
		src := a.volumeDir(pod, vm.Name)
		if v.HostPath != nil {
			src = v.HostPath.Path
		}
		sub := vm.SubPath
		if vm.SubPathExpr != "" {
			var err error
			if sub, err = expandSubPath(vm.SubPathExpr, env); err != nil {
				return nil, "", fmt.Errorf("volumeMount %q: %w", vm.Name, err)
			}
		}
		if sub != "" {
			if filepath.IsAbs(sub) || strings.Contains(sub, "..") {
				return nil, "", fmt.Errorf("volumeMount %q: subPath %q must be a relative path without '..'", vm.Name, sub)
			}
			src = filepath.Join(src, sub)
			if _, err := os.Stat(src); os.IsNotExist(err) {
				if err := os.MkdirAll(src, 0o777); err != nil {
					return nil, "", err
				}
			}
		}
		bind(src, vm.MountPath, vm.ReadOnly)
		hasMount[vm.MountPath] = true
	}
	for _, f := range []struct{ name, dst string }{{"hosts", "/etc/hosts"}, {"resolv.conf", "/etc/resolv.conf"}, {"hostname", "/etc/hostname"}} {
		if !hasMount[f.dst] {
			bind(filepath.Join(data, f.name), f.dst, false)
		}
	}
	term := ""
	if path := c.TerminationMessagePath; path != "" || true {
		if path == "" {
			path = defaultTerminationLogDir
		}
		term = filepath.Join(data, "termination", fmt.Sprintf("%s-%d", c.Name, restartCount))
		if err := os.MkdirAll(filepath.Dir(term), 0o755); err != nil {
			return nil, "", err
		}
		if err := os.WriteFile(term, nil, 0o666); err != nil {
			return nil, "", err
		}
		_ = os.Chmod(term, 0o666)
		bind(term, path, false)
	}
	return mounts, term, nil
}

// writePodFiles writes the pod's /etc/hosts, /etc/resolv.conf (by its
// dnsPolicy) and /etc/hostname.
func (a *Agent) writePodFiles(pod *corev1.Pod, sb *runtime.Sandbox) error {
	dir := a.rt.PodDataDir(string(pod.UID))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	host := podHostname(pod)
	var hosts strings.Builder
	// The kubelet's header, word for word: conformance tells a managed
	// file by it. A hostNetwork pod gets the node's own file instead.
	hosts.WriteString("# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n")
	if pod.Spec.HostNetwork {
		host = a.cfg.NodeName
		hosts.Reset()
		b, err := os.ReadFile("/etc/hosts")
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("node /etc/hosts: %w", err)
		}
		hosts.Write(b)
	} else if pod.Spec.Subdomain != "" {
		fmt.Fprintf(&hosts, "%s\t%s.%s.%s.svc.%s\t%s\n", sb.IP, host, pod.Spec.Subdomain, pod.Namespace, a.cfg.ClusterDomain, host)
	} else {
		fmt.Fprintf(&hosts, "%s\t%s\n", sb.IP, host)
	}
	for _, ha := range pod.Spec.HostAliases {
		fmt.Fprintf(&hosts, "\n# Entries added by HostAliases.\n%s\t%s\n", ha.IP, strings.Join(ha.Hostnames, "\t"))
	}
	files := map[string]string{
		"hosts":       hosts.String(),
		"resolv.conf": a.resolvConf(pod),
		"hostname":    host + "\n",
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// resolvConf is the pod's resolv.conf by its dnsPolicy, as the kubelet
// writes it.
func (a *Agent) resolvConf(pod *corev1.Pod) string {
	var servers, searches, options []string
	policy := pod.Spec.DNSPolicy
	if policy == "" {
		policy = corev1.DNSClusterFirst
	}
	if policy == corev1.DNSClusterFirst && pod.Spec.HostNetwork {
		policy = corev1.DNSDefault
	}
	switch policy {
	case corev1.DNSClusterFirst, corev1.DNSClusterFirstWithHostNet:
		d := a.cfg.ClusterDomain
		servers = []string{a.cfg.ClusterDNS}
		searches = []string{pod.Namespace + ".svc." + d, "svc." + d, d}
		options = []string{"ndots:5"}
	case corev1.DNSDefault:
		if b, err := os.ReadFile("/etc/resolv.conf"); err == nil {
			for _, l := range strings.Split(string(b), "\n") {
				f := strings.Fields(l)
				if len(f) < 2 {
					continue
				}
				switch f[0] {
				case "nameserver":
					servers = append(servers, f[1])
				case "search":
					searches = append(searches, f[1:]...)
				case "options":
					options = append(options, f[1:]...)
				}
			}
		}
	}
	if dc := pod.Spec.DNSConfig; dc != nil {
		servers = append(servers, dc.Nameservers...)
		searches = append(searches, dc.Searches...)
		for _, o := range dc.Options {
			opt := o.Name
			if o.Value != nil {
				opt += ":" + *o.Value
			}
			replaced := false
			for i, have := range options {
				if strings.SplitN(have, ":", 2)[0] == o.Name {
					options[i], replaced = opt, true
				}
			}
			if !replaced {
				options = append(options, opt)
			}
		}
	}
	var b strings.Builder
	if len(searches) > 0 {
		b.WriteString("search " + strings.Join(searches, " ") + "\n")
	}
	for _, s := range servers {
		b.WriteString("nameserver " + s + "\n")
	}
	if len(options) > 0 {
		b.WriteString("options " + strings.Join(options, " ") + "\n")
	}
	return b.String()
}

// tokenCache holds the service account tokens of projected volumes,
// requested through TokenRequest bound to the pod, and renews one when
// 80% of its lifetime has passed or it is older than 24 h, as the
// kubelet's token manager does.
type tokenCache struct {
	client kubernetes.Interface
	mu     sync.Mutex
	tokens map[string]cachedToken
}

type cachedToken struct {
	token           string
	issued, expires time.Time
	uid             types.UID
}

func newTokenCache(c kubernetes.Interface) *tokenCache {
	return &tokenCache{client: c, tokens: map[string]cachedToken{}}
}

func (t *tokenCache) get(ctx context.Context, pod *corev1.Pod, p *corev1.ServiceAccountTokenProjection) (string, error) {
	exp := int64(3600)
	if p.ExpirationSeconds != nil {
		exp = *p.ExpirationSeconds
	}
	sa := pod.Spec.ServiceAccountName
	if sa == "" {
		sa = "default"
	}
	key := fmt.Sprintf("%s/%s/%s/%d", pod.UID, sa, p.Audience, exp)
	t.mu.Lock()
	ct, ok := t.tokens[key]
	t.mu.Unlock()
	now := time.Now()
	if ok {
		ttl := ct.expires.Sub(ct.issued)
		if now.Before(ct.issued.Add(ttl*8/10)) && now.Sub(ct.issued) < 24*time.Hour {
			return ct.token, nil
		}
	}
	req := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
		ExpirationSeconds: ptr.To(exp),
		BoundObjectRef:    &authenticationv1.BoundObjectReference{APIVersion: "v1", Kind: "Pod", Name: pod.Name, UID: pod.UID},
	}}
	if p.Audience != "" {
		req.Spec.Audiences = []string{p.Audience}
	}
	resp, err := t.client.CoreV1().ServiceAccounts(pod.Namespace).CreateToken(ctx, sa, req, metav1.CreateOptions{})
	if err != nil {
		if ok && now.Before(ct.expires) {
			return ct.token, nil // still valid; try again next sync
		}
		return "", fmt.Errorf("token for service account %s/%s: %w", pod.Namespace, sa, err)
	}
	exps := resp.Status.ExpirationTimestamp.Time
	t.mu.Lock()
	t.tokens[key] = cachedToken{token: resp.Status.Token, issued: now, expires: exps, uid: pod.UID}
	t.mu.Unlock()
	return resp.Status.Token, nil
}

func (t *tokenCache) forget(uid types.UID) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for k, v := range t.tokens {
		if v.uid == uid {
			delete(t.tokens, k)
		}
	}
}

// expandSubPath expands a subPathExpr from the container's environment
// as the kubelet does: a variable that is unset or empty is an error (the
// container waits in CreateContainerConfigError until the pod changes),
// never an empty path segment.
func expandSubPath(expr string, env map[string]string) (string, error) {
	var missing []string
	out := expansion.Expand(expr, func(key string) string {
		v := env[key]
		if v == "" && !slices.Contains(missing, key) {
			missing = append(missing, key)
		}
		return v
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("subPathExpr %q: missing value for %s", expr, strings.Join(missing, ", "))
	}
	return out, nil
}
