package agent

import (
	"strings"
	"testing"
)

func TestExpandSubPath(t *testing.T) {
	env := map[string]string{"POD_NAME": "foo", "ANNOTATION": "mypath", "EMPTY": ""}
	tests := []struct {
		expr, want, wantErr string
	}{
		{expr: "$(ANNOTATION)/$(POD_NAME)", want: "mypath/foo"},
		{expr: "logs/$(POD_NAME)", want: "logs/foo"},
		{expr: "plain", want: "plain"},
		{expr: "$$(POD_NAME)", want: "$(POD_NAME)"},
		// What conformance's "failing subpath expansion" spec starts with:
		// an annotation that is not there yet.
		{expr: "$(MISSING)/$(POD_NAME)", wantErr: `subPathExpr "$(MISSING)/$(POD_NAME)": missing value for MISSING`},
		{expr: "$(EMPTY)/$(MISSING)/$(EMPTY)", wantErr: "missing value for EMPTY, MISSING"},
	}
	for _, tt := range tests {
		got, err := expandSubPath(tt.expr, env)
		switch {
		case tt.wantErr != "":
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%q: err %v, want %q", tt.expr, err, tt.wantErr)
			}
		case err != nil || got != tt.want:
			t.Errorf("%q: %q, %v; want %q", tt.expr, got, err, tt.want)
		}
	}
}
