package conformance

import (
	"encoding/xml"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Outcome is what became of one spec.
type Outcome string

const (
	Passed  Outcome = "passed"
	Failed  Outcome = "failed"
	Skipped Outcome = "skipped"
)

// Spec is one conformance spec's result.
type Spec struct {
	Name     string        `json:"name"`
	SIG      string        `json:"sig"`
	Outcome  Outcome       `json:"outcome"`
	Duration time.Duration `json:"duration"`
	// Message is the first line of the failure (or skip) message.
	Message string `json:"message,omitempty"`
}

// Counts are the outcomes of a set of specs.
type Counts struct {
	Total   int `json:"total"`
	Passed  int `json:"passed"`
	Failed  int `json:"failed"`
	Skipped int `json:"skipped"`
}

func (c *Counts) add(o Outcome) {
	c.Total++
	switch o {
	case Passed:
		c.Passed++
	case Failed:
		c.Failed++
	default:
		c.Skipped++
	}
}

// Report is a parsed run.
type Report struct {
	Specs []Spec `json:"specs"`
}

// Counts totals the report, and per SIG.
func (r *Report) Counts() (total Counts, bySIG map[string]Counts) {
	bySIG = map[string]Counts{}
	for _, s := range r.Specs {
		total.add(s.Outcome)
		c := bySIG[s.SIG]
		c.add(s.Outcome)
		bySIG[s.SIG] = c
	}
	return total, bySIG
}

// Failures are the failed specs, by SIG then name.
func (r *Report) Failures() []Spec {
	var out []Spec
	for _, s := range r.Specs {
		if s.Outcome == Failed {
			out = append(out, s)
		}
	}
	slices.SortFunc(out, func(a, b Spec) int {
		if c := strings.Compare(a.SIG, b.SIG); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	return out
}

type junitSuites struct {
	Suites []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Cases []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name    string        `xml:"name,attr"`
	Status  string        `xml:"status,attr"`
	Time    float64       `xml:"time,attr"`
	Failure *junitMessage `xml:"failure"`
	Error   *junitMessage `xml:"error"`
	Skipped *junitMessage `xml:"skipped"`
}

type junitMessage struct {
	Message string `xml:"message,attr"`
	Text    string `xml:",chardata"`
}

// sigPattern finds a spec's SIG: ginkgo 2 names a JUnit test case after
// its node type first ("[It] [sig-node] Pods ..."), older reports did
// not.
var sigPattern = regexp.MustCompile(`^(?:\[[A-Za-z]+\] )?\[(sig-[a-z0-9-]+)\]`)

// suiteNode matches ginkgo's own entries ([SynchronizedBeforeSuite],
// [ReportAfterSuite] ...), which are not specs.
var suiteNode = regexp.MustCompile(`^\[[A-Za-z]+Suite\]`)

// ParseJUnit reads ginkgo's JUnit report.
func ParseJUnit(r io.Reader) (*Report, error) {
	var doc junitSuites
	if err := xml.NewDecoder(r).Decode(&doc); err != nil {
		return nil, fmt.Errorf("conformance: junit report: %w", err)
	}
	rep := &Report{}
	for _, suite := range doc.Suites {
		for _, c := range suite.Cases {
			if suiteNode.MatchString(c.Name) {
				if c.Failure != nil || c.Error != nil {
					// A failed suite node fails every spec behind it; keep
					// it visible.
					rep.Specs = append(rep.Specs, Spec{Name: c.Name, SIG: "suite", Outcome: Failed, Message: firstLine(c.Failure, c.Error)})
				}
				continue
			}
			s := Spec{Name: c.Name, SIG: "other", Duration: time.Duration(c.Time * float64(time.Second))}
			if m := sigPattern.FindStringSubmatch(c.Name); m != nil {
				s.SIG = m[1]
			}
			switch {
			case c.Failure != nil || c.Error != nil || c.Status == "failed" || c.Status == "panicked" || c.Status == "timedout" || c.Status == "interrupted" || c.Status == "aborted":
				s.Outcome, s.Message = Failed, firstLine(c.Failure, c.Error)
			case c.Skipped != nil || c.Status == "skipped" || c.Status == "pending":
				s.Outcome, s.Message = Skipped, firstLine(c.Skipped)
			default:
				s.Outcome = Passed
			}
			rep.Specs = append(rep.Specs, s)
		}
	}
	return rep, nil
}

func firstLine(msgs ...*junitMessage) string {
	for _, m := range msgs {
		if m == nil {
			continue
		}
		text := strings.TrimSpace(m.Message)
		if text == "" {
			text = strings.TrimSpace(m.Text)
		}
		if i := strings.IndexByte(text, '\n'); i >= 0 {
			text = text[:i]
		}
		if len(text) > 200 {
			text = text[:200] + "…"
		}
		return text
	}
	return ""
}

// Markdown renders the counts and the failures as a section of
// docs/conformance.md. setup says what the suite ran against.
func (r *Report) Markdown(setup string) string {
	var b strings.Builder
	total, bySIG := r.Counts()
	fmt.Fprintf(&b, "Run against: %s\n\n", setup)
	fmt.Fprintf(&b, "| SIG | specs | passed | failed | skipped |\n|---|---:|---:|---:|---:|\n")
	sigs := make([]string, 0, len(bySIG))
	for s := range bySIG {
		sigs = append(sigs, s)
	}
	slices.Sort(sigs)
	for _, s := range sigs {
		c := bySIG[s]
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %d |\n", s, c.Total, c.Passed, c.Failed, c.Skipped)
	}
	fmt.Fprintf(&b, "| **all** | **%d** | **%d** | **%d** | **%d** |\n", total.Total, total.Passed, total.Failed, total.Skipped)
	if f := r.Failures(); len(f) > 0 {
		fmt.Fprintf(&b, "\nFailures (first line of each):\n\n")
		for _, s := range f {
			fmt.Fprintf(&b, "- %s — %s\n", s.Name, mdEscape(s.Message))
		}
	}
	return b.String()
}

func mdEscape(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ", "<", "&lt;", ">", "&gt;").Replace(s)
}
