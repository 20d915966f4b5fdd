package podnet

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// DefaultNetnsDir is where iproute2 (`ip netns`) and CNI runtimes pin
// named network namespaces.
const DefaultNetnsDir = "/run/netns"

// CreateNetns makes a new network namespace and pins it with a bind mount
// at dir/name (dir "" is DefaultNetnsDir), returning that path. The
// namespace lives until DeleteNetns, whether or not a process is in it.
func CreateNetns(dir, name string) (string, error) {
	if dir == "" {
		dir = DefaultNetnsDir
	}
	if name == "" || name == "." || name == ".." || strings.ContainsRune(name, '/') {
		return "", fmt.Errorf("podnet: netns name %q: want a plain file name", name)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("podnet: netns directory: %w", err)
	}
	path := filepath.Join(dir, name)
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o444)
	if err != nil {
		return "", fmt.Errorf("podnet: create netns %s: %w", path, err)
	}
	f.Close()
	errc := make(chan error, 1)
	// unshare moves only the calling thread, so the work runs on a thread
	// of its own, locked; if that thread cannot be put back it stays
	// locked and the runtime discards it when the goroutine ends, so no
	// other goroutine ever runs in the wrong namespace.
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("podnet: current netns: %w", err)
			return
		}
		defer orig.Close()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("podnet: unshare: %w", err)
			return
		}
		merr := unix.Mount(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()), path, "none", unix.MS_BIND, "")
		if err := netns.Set(orig); err != nil {
			errc <- errors.Join(merr, fmt.Errorf("podnet: return to the original netns: %w", err))
			return
		}
		runtime.UnlockOSThread()
		errc <- merr
	}()
	if err := <-errc; err != nil {
		os.Remove(path)
		return "", fmt.Errorf("podnet: create netns %s: %w", path, err)
	}
	return path, nil
}

// DeleteNetns unpins the network namespace at path and removes the file.
// The namespace itself goes when its last process and link leave it.
// Deleting a path that does not exist is not an error.
func DeleteNetns(path string) error {
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("podnet: delete netns %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("podnet: delete netns %s: %w", path, err)
	}
	return nil
}
