package run

import (
	"context"
	"fmt"
	"sync"

	"github.com/barge-dev/barge/chaos/check"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// watcher records every event of the keys under test, across the client's
// own reconnects, as a user's watch would see them.
type watcher struct {
	id  int
	cli *clientv3.Client

	mu      sync.Mutex
	events  []check.WatchEvent
	err     error
	lastRev int64
	waiters map[int64][]chan struct{}
}

func (r *runner) startWatcher(ctx context.Context, id int, fromRev int64) (*watcher, error) {
	var cli *clientv3.Client
	var err error
	servers := r.cfg.Lab.Servers()
	if r.cfg.ReadConsistency == "serializable" {
		cli, err = r.client(r.cfg.Lab.ClientAddr(servers[id%len(servers)]))
	} else {
		cli, err = r.client()
	}
	if err != nil {
		return nil, err
	}
	w := &watcher{id: id, cli: cli, waiters: map[int64][]chan struct{}{}}
	wch := cli.Watch(ctx, prefix, clientv3.WithPrefix(), clientv3.WithRev(fromRev))
	go func() {
		defer cli.Close()
		for resp := range wch {
			if err := resp.Err(); err != nil {
				w.fail(err)
				return
			}
			w.mu.Lock()
			for _, ev := range resp.Events {
				w.events = append(w.events, check.WatchEvent{Revision: ev.Kv.ModRevision, Key: string(ev.Kv.Key), Value: string(ev.Kv.Value), Delete: ev.Type == clientv3.EventTypeDelete})
				w.lastRev = ev.Kv.ModRevision
			}
			w.release()
			w.mu.Unlock()
		}
		if ctx.Err() == nil {
			w.fail(fmt.Errorf("watch channel closed"))
		}
	}()
	return w, nil
}

func (w *watcher) fail(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err == nil {
		w.err = err
	}
}

// release wakes waiters whose revision has been seen; w.mu is held.
func (w *watcher) release() {
	for rev, chs := range w.waiters {
		if rev <= w.lastRev {
			for _, ch := range chs {
				close(ch)
			}
			delete(w.waiters, rev)
		}
	}
}

// reached returns a channel closed once the watcher has seen rev.
func (w *watcher) reached(rev int64) <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	ch := make(chan struct{})
	if w.lastRev >= rev {
		close(ch)
		return ch
	}
	w.waiters[rev] = append(w.waiters[rev], ch)
	return ch
}

func (w *watcher) result() ([]check.WatchEvent, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]check.WatchEvent(nil), w.events...), w.err
}
