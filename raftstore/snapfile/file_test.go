package snapfile

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

func TestWriteFileAtomic(t *testing.T) {
	snap := smallFile(t)
	tests := []struct {
		name    string
		old     []byte // existing content at path; nil for none
		fill    func(w io.Writer) error
		wantErr error
		panics  bool
	}{
		{name: "new file", fill: func(w io.Writer) error { _, err := w.Write(snap); return err }},
		{name: "replaces", old: []byte("old"), fill: func(w io.Writer) error { _, err := w.Write(snap); return err }},
		{name: "fill fails", fill: func(w io.Writer) error { w.Write(snap[:20]); return errFail }, wantErr: errFail},
		{name: "fill fails, old kept", old: []byte("old"), fill: func(w io.Writer) error { w.Write(snap[:20]); return errFail }, wantErr: errFail},
		{name: "fill panics", old: []byte("old"), fill: func(w io.Writer) error { w.Write(snap[:20]); panic("boom") }, panics: true},
		{name: "fill closes the file", fill: func(w io.Writer) error { return w.(io.Closer).Close() }, wantErr: os.ErrClosed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "backup.snap")
			if tt.old != nil {
				if err := os.WriteFile(path, tt.old, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			var err error
			func() {
				defer func() {
					if r := recover(); (r != nil) != tt.panics {
						t.Fatalf("recovered %v, want a panic: %v", r, tt.panics)
					}
				}()
				err = WriteFileAtomic(path, tt.fill)
			}()
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("error %v, want %v", err, tt.wantErr)
			}
			if tt.wantErr == nil && !tt.panics && err != nil {
				t.Fatal(err)
			}
			entries, _ := os.ReadDir(dir)
			var names []string
			for _, e := range entries {
				names = append(names, e.Name())
			}
			got, rerr := os.ReadFile(path)
			switch {
			case err == nil && !tt.panics:
				if !bytes.Equal(got, snap) {
					t.Fatalf("path holds %d bytes, want the %d written", len(got), len(snap))
				}
				fi, _ := os.Stat(path)
				if fi.Mode().Perm() != 0o600 {
					t.Errorf("mode %v, want 0600", fi.Mode().Perm())
				}
			case tt.old != nil:
				if !bytes.Equal(got, tt.old) {
					t.Fatalf("old content replaced by %q", got)
				}
			default:
				if !errors.Is(rerr, os.ErrNotExist) {
					t.Fatalf("a failed write left a file at path: %v", rerr)
				}
			}
			if len(names) != 0 && !(len(names) == 1 && names[0] == "backup.snap") {
				t.Fatalf("directory holds %q; temporary files left behind", names)
			}
		})
	}
}

func TestWriteFileAtomicErrors(t *testing.T) {
	dir := t.TempDir()
	fill := func(w io.Writer) error { _, err := w.Write([]byte("x")); return err }
	if err := WriteFileAtomic(filepath.Join(dir, "missing", "f.snap"), fill); err == nil {
		t.Error("writing into a missing directory succeeded")
	}
	if err := WriteFileAtomic(dir+string(filepath.Separator), fill); err == nil {
		t.Error("writing to a directory path succeeded")
	}
	// Renaming over a non-empty directory fails after fill succeeded.
	target := filepath.Join(dir, "taken")
	if err := os.MkdirAll(filepath.Join(target, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := WriteFileAtomic(target, fill); err == nil {
		t.Error("renaming over a directory succeeded")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("directory holds %d entries, want only the directory in the way", len(entries))
	}
}

func TestWriteFileAtomicRelative(t *testing.T) {
	t.Chdir(t.TempDir())
	if err := WriteFileAtomic("rel.snap", func(w io.Writer) error { _, err := w.Write(smallFile(t)); return err }); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open("rel.snap")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, _, err := Verify(f); err != nil {
		t.Fatal(err)
	}
}
