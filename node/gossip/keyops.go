package gossip

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"sort"
	"strings"
	"sync"

	"github.com/hashicorp/memberlist"
)

// KeyOp is a keyring operation, as `consul keyring` has them. Rotation is
// install (every member can decrypt with the new key), use (every member
// encrypts with it), remove (the old key is gone).
type KeyOp string

const (
	KeyInstall KeyOp = "install"
	KeyUse     KeyOp = "use"
	KeyRemove  KeyOp = "remove"
	KeyList    KeyOp = "list"
)

// ParseKeyOp checks an operation name.
func ParseKeyOp(s string) (KeyOp, error) {
	switch op := KeyOp(s); op {
	case KeyInstall, KeyUse, KeyRemove, KeyList:
		return op, nil
	}
	return "", fmt.Errorf("keyring operation %q: want install, use, remove or list", s)
}

// MemberResult is one member's answer to a keyring operation.
type MemberResult struct {
	Name  string `json:"name"`
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
	// Keys are the member's keys after the operation, primary first.
	Keys []string `json:"keys,omitempty"`
}

// KeyCount says on how many members a key is installed, and on how many
// it is the primary.
type KeyCount struct {
	Key       string `json:"key"`
	Installed int    `json:"installed"`
	Primary   int    `json:"primary"`
}

// KeyringResult is what a keyring operation did across the pool.
type KeyringResult struct {
	Op KeyOp `json:"op"`
	// Members are every member asked, this one included, by name.
	Members []MemberResult `json:"members"`
	// Keys counts the keys the members reported, most installed first.
	Keys []KeyCount `json:"keys"`
}

// Failed lists the members that did not apply the operation.
func (r *KeyringResult) Failed() []MemberResult {
	var out []MemberResult
	for _, m := range r.Members {
		if !m.OK {
			out = append(out, m)
		}
	}
	return out
}

// wire messages: the first byte says which, the rest is JSON.
const (
	msgKeyRequest  = 1
	msgKeyResponse = 2 // also the acknowledgement of msgLeave
	msgLeave       = 3
)

// leaveNotice tells a member, before the goodbye, that From is leaving:
// memberlist's goodbye and a failure look the same to the others.
type leaveNotice struct {
	ID   uint64 `json:"id"`
	From string `json:"from"`
}

type keyRequest struct {
	ID   uint64 `json:"id"`
	From string `json:"from"`
	Op   KeyOp  `json:"op"`
	Key  string `json:"key,omitempty"`
}

type keyResponse struct {
	ID    uint64   `json:"id"`
	From  string   `json:"from"`
	Error string   `json:"error,omitempty"`
	Keys  []string `json:"keys,omitempty"`
}

// decodeMsg parses a user message; malformed ones are an error, never a
// panic.
func decodeMsg(b []byte) (any, error) {
	if len(b) == 0 {
		return nil, errors.New("empty message")
	}
	switch b[0] {
	case msgKeyRequest:
		var r keyRequest
		if err := json.Unmarshal(b[1:], &r); err != nil {
			return nil, fmt.Errorf("keyring request: %w", err)
		}
		if r.From == "" {
			return nil, errors.New("keyring request without a sender")
		}
		if _, err := ParseKeyOp(string(r.Op)); err != nil {
			return nil, fmt.Errorf("keyring request from %s: %w", r.From, err)
		}
		return r, nil
	case msgLeave:
		var r leaveNotice
		if err := json.Unmarshal(b[1:], &r); err != nil {
			return nil, fmt.Errorf("leave notice: %w", err)
		}
		if r.From == "" {
			return nil, errors.New("leave notice without a sender")
		}
		return r, nil
	case msgKeyResponse:
		var r keyResponse
		if err := json.Unmarshal(b[1:], &r); err != nil {
			return nil, fmt.Errorf("keyring response: %w", err)
		}
		if r.From == "" {
			return nil, errors.New("keyring response without a sender")
		}
		return r, nil
	}
	return nil, fmt.Errorf("unknown message type %d", b[0])
}

func encodeMsg(kind byte, v any) []byte {
	b, _ := json.Marshal(v) // plain structs of strings: cannot fail
	return append([]byte{kind}, b...)
}

type rpcTable struct {
	mu      sync.Mutex
	next    uint64
	pending map[uint64]chan keyResponse
}

func newRPCTable() *rpcTable { return &rpcTable{pending: map[uint64]chan keyResponse{}} }

func (t *rpcTable) open(n int) (uint64, chan keyResponse) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.next++
	ch := make(chan keyResponse, n)
	t.pending[t.next] = ch
	return t.next, ch
}

func (t *rpcTable) close(id uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.pending, id)
}

func (t *rpcTable) deliver(r keyResponse) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	ch, ok := t.pending[r.ID]
	if !ok {
		return false
	}
	select {
	case ch <- r:
	default: // more answers than members asked: a duplicate
	}
	return true
}

func (p *Pool) handleMsg(b []byte) {
	msg, err := decodeMsg(b)
	if err != nil {
		p.logger.Warn("gossip: dropping a malformed message", "err", err)
		return
	}
	switch m := msg.(type) {
	case keyRequest:
		// memberlist waits for NotifyMsg to return; the file write and
		// the answer's TCP connection happen elsewhere.
		p.goFn(func() { p.serveKeyRequest(m) })
	case leaveNotice:
		// Marked before the acknowledgement goes out, so the goodbye that
		// follows it is read as one.
		p.view.markLeaving(m.From)
		p.goFn(func() { p.answer(m.From, keyResponse{ID: m.ID, From: p.cfg.Name}) })
	case keyResponse:
		if !p.rpc.deliver(m) {
			p.logger.Debug("gossip: keyring answer for no pending request", "from", m.From, "id", m.ID)
		}
	}
}

func (p *Pool) serveKeyRequest(r keyRequest) {
	resp := keyResponse{ID: r.ID, From: p.cfg.Name}
	from, ok := p.view.member(r.From)
	switch {
	case !ok || from.State == StateDead || from.State == StateLeft:
		p.logger.Warn("gossip: keyring request from a member not in the pool", "from", r.From)
		return // nobody to answer
	case from.Meta.Role != RoleServer:
		resp.Error = fmt.Sprintf("keyring operations are taken from servers only, and %s is a %s", r.From, from.Meta.Role)
	default:
		keys, err := p.applyKeyOp(r.Op, r.Key)
		if err != nil {
			resp.Error = err.Error()
		}
		resp.Keys = keys
		p.logger.Info("gossip keyring operation", "op", string(r.Op), "from", r.From, "err", err)
	}
	p.answer(r.From, resp)
}

// answer sends resp to the member named to, at the address this member
// knows for it.
func (p *Pool) answer(to string, resp keyResponse) {
	m, ok := p.view.member(to)
	if !ok {
		p.logger.Warn("gossip: cannot answer a member not in the pool", "to", to)
		return
	}
	node := &memberlist.Node{Name: m.Name, Addr: net.IP(m.Addr.Addr().AsSlice()), Port: m.Addr.Port()}
	if err := p.ml.SendReliable(node, encodeMsg(msgKeyResponse, resp)); err != nil {
		p.logger.Warn("gossip: could not answer", "to", to, "err", err)
	}
}

// announceLeave tells every alive member that this one is leaving and
// waits for their acknowledgements until ctx ends. It returns the members
// that did not acknowledge.
func (p *Pool) announceLeave(ctx context.Context) []string {
	var targets []Member
	for _, m := range p.view.members() {
		if m.Name != p.cfg.Name && (m.State == StateAlive || m.State == StateSuspect) {
			targets = append(targets, m)
		}
	}
	id, answers := p.rpc.open(len(targets))
	defer p.rpc.close(id)
	msg := encodeMsg(msgLeave, leaveNotice{ID: id, From: p.cfg.Name})
	waiting := map[string]bool{}
	for _, m := range targets {
		waiting[m.Name] = true
		to := &memberlist.Node{Name: m.Name, Addr: net.IP(m.Addr.Addr().AsSlice()), Port: m.Addr.Port()}
		go func() {
			if err := p.ml.SendReliable(to, msg); err != nil {
				p.logger.Debug("gossip: leave notice not sent", "to", to.Name, "err", err)
			}
		}()
	}
	for len(waiting) > 0 {
		select {
		case a := <-answers:
			delete(waiting, a.From)
		case <-ctx.Done():
			var missed []string
			for name := range waiting {
				missed = append(missed, name)
			}
			sort.Strings(missed)
			return missed
		}
	}
	return nil
}

// applyKeyOp changes this member's keyring and writes it to the keyring
// file, returning the keys after the operation.
func (p *Pool) applyKeyOp(op KeyOp, keyB64 string) ([]string, error) {
	p.keyMu.Lock()
	defer p.keyMu.Unlock()
	var err error
	if op != KeyList {
		var key []byte
		key, err = ParseKey(keyB64)
		if err == nil {
			switch op {
			case KeyInstall:
				err = p.keyring.AddKey(key)
			case KeyUse:
				if !p.hasKeyLocked(key) {
					err = fmt.Errorf("key %s is not installed: install it on every member first", redact(keyB64))
				} else {
					err = p.keyring.UseKey(key)
				}
			case KeyRemove:
				switch {
				case bytes.Equal(p.keyring.GetPrimaryKey(), key):
					err = fmt.Errorf("key %s is the primary key: use another key first", redact(keyB64))
				case !p.hasKeyLocked(key):
					err = fmt.Errorf("key %s is not installed", redact(keyB64))
				default:
					err = p.keyring.RemoveKey(key)
				}
			default:
				err = fmt.Errorf("unknown keyring operation %q", op)
			}
		}
		if err == nil {
			if werr := WriteKeyring(p.cfg.KeyringFile, p.keyring.GetKeys()); werr != nil {
				err = fmt.Errorf("applied in memory but not saved, so a restart undoes it: %w", werr)
			}
		}
	}
	keys := p.keyring.GetKeys()
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = EncodeKey(k)
	}
	return out, err
}

func (p *Pool) hasKeyLocked(key []byte) bool {
	for _, k := range p.keyring.GetKeys() {
		if bytes.Equal(k, key) {
			return true
		}
	}
	return false
}

// Keys are this member's keys, primary first, base64.
func (p *Pool) Keys() []string {
	keys, _ := p.applyKeyOp(KeyList, "")
	return keys
}

// Keyring applies a keyring operation on every alive member (this one
// last) and collects their answers until each has answered or ctx ends.
// Refused outright, before any member is asked: a malformed key, using a
// key this member has not installed, removing this member's primary key.
// The error is non-nil when any member failed or did not answer; the
// result says which.
func (p *Pool) Keyring(ctx context.Context, op KeyOp, key string) (*KeyringResult, error) {
	if _, err := ParseKeyOp(string(op)); err != nil {
		return nil, err
	}
	if op != KeyList {
		k, err := ParseKey(key)
		if err != nil {
			return nil, err
		}
		key = EncodeKey(k) // canonical form, as the members compare
		p.keyMu.Lock()
		installed, primary := p.hasKeyLocked(k), bytes.Equal(p.keyring.GetPrimaryKey(), k)
		p.keyMu.Unlock()
		switch {
		case op == KeyUse && !installed:
			return nil, fmt.Errorf("gossip keyring: key %s is not installed: run install first", redact(key))
		case op == KeyRemove && primary:
			return nil, fmt.Errorf("gossip keyring: key %s is the primary key: use another key first", redact(key))
		case op == KeyRemove && !installed:
			return nil, fmt.Errorf("gossip keyring: key %s is not installed", redact(key))
		}
	}
	if p.Meta().Role != RoleServer {
		return nil, errors.New("gossip keyring: only servers start keyring operations")
	}

	res := &KeyringResult{Op: op}
	var targets []Member
	for _, m := range p.view.members() {
		if m.Name != p.cfg.Name && (m.State == StateAlive || m.State == StateSuspect) {
			targets = append(targets, m)
		}
	}
	id, answers := p.rpc.open(len(targets))
	defer p.rpc.close(id)
	req := encodeMsg(msgKeyRequest, keyRequest{ID: id, From: p.cfg.Name, Op: op, Key: key})
	waiting := map[string]bool{}
	sendErrs := make(chan MemberResult, len(targets))
	for _, m := range targets {
		waiting[m.Name] = true
		to := &memberlist.Node{Name: m.Name, Addr: net.IP(m.Addr.Addr().AsSlice()), Port: m.Addr.Port()}
		go func() {
			if err := p.ml.SendReliable(to, req); err != nil {
				sendErrs <- MemberResult{Name: to.Name, Error: "send: " + err.Error()}
			}
		}()
	}
	for len(waiting) > 0 {
		select {
		case a := <-answers:
			if !waiting[a.From] {
				continue
			}
			delete(waiting, a.From)
			res.Members = append(res.Members, MemberResult{Name: a.From, OK: a.Error == "", Error: a.Error, Keys: a.Keys})
		case f := <-sendErrs:
			if waiting[f.Name] {
				delete(waiting, f.Name)
				res.Members = append(res.Members, f)
			}
		case <-ctx.Done():
			for name := range waiting {
				res.Members = append(res.Members, MemberResult{Name: name, Error: "no answer: " + ctx.Err().Error()})
			}
			waiting = nil
		}
	}
	// This member changes last: the request went out encrypted with the
	// old primary key, which a member that lacks the new one can still
	// read (and refuse), and the answers come back in either key.
	keys, err := p.applyKeyOp(op, key)
	self := MemberResult{Name: p.cfg.Name, OK: err == nil, Keys: keys}
	if err != nil {
		self.Error = err.Error()
	}
	res.Members = append(res.Members, self)
	sort.Slice(res.Members, func(i, j int) bool { return res.Members[i].Name < res.Members[j].Name })
	res.Keys = countKeys(res.Members)
	if failed := res.Failed(); len(failed) > 0 {
		var parts []string
		for _, f := range failed {
			parts = append(parts, f.Name+": "+f.Error)
		}
		return res, fmt.Errorf("gossip keyring %s: %d of %d members failed: %s", op, len(failed), len(res.Members), strings.Join(parts, "; "))
	}
	return res, nil
}

func countKeys(members []MemberResult) []KeyCount {
	idx := map[string]*KeyCount{}
	var out []*KeyCount
	for _, m := range members {
		for i, k := range m.Keys {
			c, ok := idx[k]
			if !ok {
				c = &KeyCount{Key: k}
				idx[k] = c
				out = append(out, c)
			}
			c.Installed++
			if i == 0 {
				c.Primary++
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Primary != out[j].Primary {
			return out[i].Primary > out[j].Primary
		}
		return out[i].Installed > out[j].Installed
	})
	res := make([]KeyCount, len(out))
	for i, c := range out {
		res[i] = *c
	}
	return res
}
