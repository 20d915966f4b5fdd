package v3rpc

import "context"

// receive runs a stream's Recv loop in its own goroutine, so a handler can
// select on requests and on its context at once: Recv itself does not
// return when a derived context ends. The error channel gets Recv's final
// error (io.EOF on half-close).
func receive[T any](ctx context.Context, recv func() (T, error)) (<-chan T, <-chan error) {
	reqs := make(chan T)
	recvErr := make(chan error, 1)
	go func() {
		for {
			req, err := recv()
			if err != nil {
				recvErr <- err
				return
			}
			select {
			case reqs <- req:
			case <-ctx.Done():
				return
			}
		}
	}()
	return reqs, recvErr
}
