package conformance

import (
	"os"
	"strings"
	"testing"
)

func TestParseJUnit(t *testing.T) {
	f, err := os.Open("testdata/junit.xml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rep, err := ParseJUnit(f)
	if err != nil {
		t.Fatal(err)
	}
	total, bySIG := rep.Counts()
	if want := (Counts{Total: 5, Passed: 2, Failed: 2, Skipped: 1}); total != want {
		t.Errorf("total %+v, want %+v (suite nodes are not specs)", total, want)
	}
	for _, tc := range []struct {
		sig  string
		want Counts
	}{
		{"sig-node", Counts{Total: 2, Passed: 1, Failed: 1}},
		{"sig-api-machinery", Counts{Total: 1, Passed: 1}},
		{"sig-network", Counts{Total: 1, Failed: 1}},
		{"sig-storage", Counts{Total: 1, Skipped: 1}},
	} {
		if got := bySIG[tc.sig]; got != tc.want {
			t.Errorf("%s: %+v, want %+v", tc.sig, got, tc.want)
		}
	}
	fails := rep.Failures()
	if len(fails) != 2 || fails[0].SIG != "sig-network" || fails[0].Message != "runtime error: index out of range" ||
		fails[1].Message != "[FAILED] timed out waiting for the condition" {
		t.Errorf("failures %+v", fails)
	}
	md := rep.Markdown("test")
	for _, want := range []string{"| sig-node | 2 | 1 | 1 | 0 |", "| **all** | **5** | **2** | **2** | **1** |", "DNS should provide DNS"} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
}

func TestParseJUnitRejectsGarbage(t *testing.T) {
	for _, in := range []string{"", "not xml", "<testsuites><testsuite>"} {
		if _, err := ParseJUnit(strings.NewReader(in)); err == nil {
			t.Errorf("%q: parsed, want an error", in)
		}
	}
}

func TestGinkgoArgs(t *testing.T) {
	args := ginkgoArgs(Config{E2E: "bin/e2e.test", Kubeconfig: "k", Procs: 4, Skip: "Flaky"}, "/r")
	joined := strings.Join(args, " ")
	for _, want := range []string{`--focus=\[Conformance\]`, "--procs=4", "--skip=Flaky", "bin/e2e.test -- --kubeconfig=k", "--output-dir=/r"} {
		if !strings.Contains(joined, want) {
			t.Errorf("args lack %q: %s", want, joined)
		}
	}
}
