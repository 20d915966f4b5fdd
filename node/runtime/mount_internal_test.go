package runtime

import "testing"

func TestUnescapeMount(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"/tmp/lab/data", "/tmp/lab/data"},
		{`/tmp/my\040lab/x`, "/tmp/my lab/x"},
		{`/a\011b`, "/a\tb"},
		{`/trailing\04`, `/trailing\04`},
		{`/back\\slash`, `/back\\slash`},
	} {
		if got := unescapeMount(tc.in); got != tc.want {
			t.Errorf("unescapeMount(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
