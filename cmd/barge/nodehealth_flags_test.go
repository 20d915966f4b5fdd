package main

import (
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

func TestNodeHealthFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		err  string // "" = valid
	}{
		{nil, ""},
		{[]string{"--node-unreachable-toleration=30s", "--node-eviction-rate=0.1"}, ""},
		{[]string{"--node-unreachable-toleration=1500ms"}, "--node-unreachable-toleration 1.5s: want a whole number of seconds"},
		{[]string{"--node-not-ready-toleration=0s"}, "--node-not-ready-toleration 0s"},
		{[]string{"--node-eviction-rate=0"}, "--node-eviction-rate 0 must be positive"},
		{[]string{"--node-monitor-period=0s"}, "--node-monitor-period 0s must be positive"},
		{[]string{"--node-monitor-period=50s"}, "--node-monitor-grace-period 40s must be longer than --node-monitor-period 50s"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) { checkFlags(t, &nodeHealthFlags{}, tc.args, tc.err) })
	}
}

func TestPodNetFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		err  string // "" = valid
	}{
		{nil, ""},
		{[]string{"--cluster-cidr=10.64.0.0/12"}, ""},
		{[]string{"--cluster-cidr=10.244.0.0/16", "--node-cidr-mask-size=26"}, ""},
		{[]string{"--cluster-cidr=10.244.0.0"}, `--cluster-cidr "10.244.0.0"`},
		{[]string{"--cluster-cidr=fd00::/48"}, "IPv4 only"},
		{[]string{"--cluster-cidr=10.244.1.0/16"}, "did you mean 10.244.0.0/16"},
		{[]string{"--node-cidr-mask-size=16"}, "want 17-30"},
		{[]string{"--node-cidr-mask-size=31"}, "want 17-30"},
		{[]string{"--cluster-cidr=10.0.0.0/8", "--node-cidr-mask-size=26"}, "more than 65536"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) { checkFlags(t, &podNetFlags{}, tc.args, tc.err) })
	}
}

// checkFlags parses args into flags and wants validate to fail with an
// error containing want, or to pass when want is empty.
func checkFlags(t *testing.T, flags interface {
	register(*pflag.FlagSet)
	validate() error
}, args []string, want string) {
	t.Helper()
	f := pflag.NewFlagSet("server", pflag.ContinueOnError)
	flags.register(f)
	if err := f.Parse(args); err != nil {
		t.Fatal(err)
	}
	err := flags.validate()
	switch {
	case want == "" && err != nil:
		t.Fatalf("validate: %v", err)
	case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
		t.Fatalf("validate: %v, want an error with %q", err, want)
	}
}
