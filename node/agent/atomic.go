package agent

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// dataDir is the link a volume's visible files point through, swapped in
// one rename so a reader sees the old set of files or the new one, never
// a mix: the kubelet's AtomicWriter layout (..data → ..<timestamp>/).
const dataDir = "..data"

// writeAtomic makes dir hold exactly files (relative paths), rewriting
// nothing when they are already there.
func writeAtomic(dir string, files map[string]file) error {
	for p := range files {
		if p == "" || filepath.IsAbs(p) || strings.HasPrefix(p, "..") || strings.Contains(p, "/../") {
			return fmt.Errorf("volume file path %q: must be relative, without '..'", p)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if same(dir, files) {
		return nil
	}
	ts := filepath.Join(dir, ".."+time.Now().UTC().Format("2006_01_02_15_04_05.000000000"))
	if err := os.Mkdir(ts, 0o755); err != nil {
		return err
	}
	for p, f := range files {
		full := filepath.Join(ts, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(full, f.data, f.mode); err != nil {
			return err
		}
		if err := os.Chmod(full, f.mode); err != nil {
			return err
		}
	}
	old, _ := os.Readlink(filepath.Join(dir, dataDir))
	tmp := filepath.Join(dir, "..data_tmp")
	_ = os.Remove(tmp)
	if err := os.Symlink(filepath.Base(ts), tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(dir, dataDir)); err != nil {
		return err
	}
	// Top-level names link through ..data; names no longer present go.
	want := map[string]bool{}
	for p := range files {
		want[strings.SplitN(p, "/", 2)[0]] = true
	}
	for top := range want {
		link := filepath.Join(dir, top)
		if target, err := os.Readlink(link); err == nil && target == filepath.Join(dataDir, top) {
			continue
		}
		_ = os.RemoveAll(link)
		if err := os.Symlink(filepath.Join(dataDir, top), link); err != nil {
			return err
		}
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		n := e.Name()
		if strings.HasPrefix(n, "..") {
			continue
		}
		if !want[n] {
			_ = os.RemoveAll(filepath.Join(dir, n))
		}
	}
	if old != "" && old != filepath.Base(ts) {
		_ = os.RemoveAll(filepath.Join(dir, old))
	}
	return nil
}

// same reports whether dir's current data already equals files.
func same(dir string, files map[string]file) bool {
	cur := filepath.Join(dir, dataDir)
	if _, err := os.Stat(cur); err != nil {
		return false
	}
	var have []string
	_ = filepath.Walk(cur+"/", func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			rel, _ := filepath.Rel(cur, p)
			have = append(have, rel)
		}
		return nil
	})
	if len(have) != len(files) {
		return false
	}
	sort.Strings(have)
	for _, p := range have {
		f, ok := files[p]
		if !ok {
			return false
		}
		fi, err := os.Stat(filepath.Join(cur, p))
		if err != nil || fi.Mode().Perm() != f.mode.Perm() {
			return false
		}
		b, err := os.ReadFile(filepath.Join(cur, p))
		if err != nil || !bytes.Equal(b, f.data) {
			return false
		}
	}
	return true
}
