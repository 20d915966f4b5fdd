package runtime

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLogTail(t *testing.T) {
	dir := t.TempDir()
	n := 0
	write := func(lines ...string) string {
		n++
		p := filepath.Join(dir, fmt.Sprintf("%d.log", n))
		if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	ts := "2026-12-08T01:00:00.000000000Z"
	tests := []struct {
		name  string
		path  string
		lines int
		max   int
		want  string
	}{
		{"partial line, no newline (echo -n DONE)", write(ts + " stdout P DONE"), 80, 2048, "DONE"},
		{"whole lines", write(ts+" stdout F one", ts+" stderr F two"), 80, 2048, "one\ntwo\n"},
		{"partial then its end", write(ts+" stdout P ab", ts+" stdout F cd", ts+" stdout F ef"), 80, 2048, "abcd\nef\n"},
		{"last lines only", write(ts+" stdout F 1", ts+" stdout F 2", ts+" stdout F 3"), 2, 2048, "2\n3\n"},
		{"last bytes only", write(ts + " stdout F 123456"), 80, 3, "56\n"},
		{"no file", filepath.Join(dir, "missing.log"), 80, 2048, ""},
	}
	for _, tt := range tests {
		if got := logTail(tt.path, tt.lines, tt.max); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
}
