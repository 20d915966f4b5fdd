package check

import (
	"sync"
	"time"
)

// OpKind is the kind of a client operation.
type OpKind int

const (
	Get OpKind = iota
	Put
	CAS
)

func (k OpKind) String() string {
	switch k {
	case Get:
		return "get"
	case Put:
		return "put"
	case CAS:
		return "cas"
	}
	return "op?"
}

// Outcome is what the client learned about an operation.
type Outcome int

const (
	// OK: the store answered.
	OK Outcome = iota
	// Failed: the operation definitely did not take effect.
	Failed
	// Unknown: the operation may or may not have taken effect (timeout,
	// connection lost).
	Unknown
)

func (o Outcome) String() string {
	switch o {
	case OK:
		return "ok"
	case Failed:
		return "failed"
	case Unknown:
		return "unknown"
	}
	return "outcome?"
}

// Op is one client operation on one key, as the client saw it.
type Op struct {
	ClientID int
	Kind     OpKind
	Key      string
	// Value is the value written by a Put or CAS. Values must be unique per
	// write so that a read identifies the write it observed.
	Value string
	// Expected is the value a CAS compares against; "" means the key is
	// absent.
	Expected string
	// Call and Return are nanoseconds since the run started. Return is
	// ignored for Unknown outcomes.
	Call, Return int64
	Outcome      Outcome
	// Result is the value a Get read ("" when absent).
	Result string
	// Found reports whether the key existed for a Get.
	Found bool
	// Succeeded reports whether a CAS's compare held.
	Succeeded bool
}

// History collects operations from concurrent clients.
type History struct {
	start time.Time

	mu  sync.Mutex
	ops []Op
}

// NewHistory returns an empty history whose run starts now.
func NewHistory() *History {
	return &History{start: time.Now()}
}

// Start is the instant Call and Return are measured from. Clients should
// compute offsets with time.Since(h.Start()) so that the monotonic clock is
// used and intervals from different goroutines are comparable.
func (h *History) Start() time.Time { return h.start }

// Add records one operation.
func (h *History) Add(op Op) {
	h.mu.Lock()
	h.ops = append(h.ops, op)
	h.mu.Unlock()
}

// Ops returns a copy of the operations recorded so far.
func (h *History) Ops() []Op {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Op(nil), h.ops...)
}
