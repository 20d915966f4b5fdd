package mvcc

import "errors"

var (
	// ErrCompacted is returned for a revision older than the compaction point.
	ErrCompacted = errors.New("mvcc: required revision has been compacted")
	// ErrFutureRev is returned for a revision newer than the store's.
	ErrFutureRev = errors.New("mvcc: required revision is a future revision")
)
