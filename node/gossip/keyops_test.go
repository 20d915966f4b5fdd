package gossip

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"
)

// keysOnDisk reads a member's keyring file.
func keysOnDisk(t *testing.T, p *Pool) []string {
	t.Helper()
	raw, err := ReadKeyring(p.cfg.KeyringFile)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]string, len(raw))
	for i, k := range raw {
		out[i] = EncodeKey(k)
	}
	return out
}

func keyring(t *testing.T, p *Pool, op KeyOp, key string) *KeyringResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	res, err := p.Keyring(ctx, op, key)
	if err != nil {
		t.Fatalf("keyring %s: %v (result %+v)", op, err, res)
	}
	return res
}

func TestGossipKeyringRotation(t *testing.T) {
	k1, k2 := newKey(t), newKey(t)
	pools := startPools(t, 4, k1)
	// A second server, so that rotation works from any server.
	s2 := startPool(t, "s2", RoleServer, Meta{}, keyringFile(t, k1), pools[0].Addr().String())
	pools = append(pools, s2)
	for _, p := range pools {
		waitMembers(t, p, func(ms []Member) bool { return countState(ms, StateAlive) == 5 })
	}

	res := keyring(t, pools[0], KeyList, "")
	if len(res.Members) != 5 || len(res.Keys) != 1 || res.Keys[0] != (KeyCount{Key: k1, Installed: 5, Primary: 5}) {
		t.Fatalf("list before rotation: %+v", res)
	}

	res = keyring(t, pools[0], KeyInstall, k2)
	for _, m := range res.Members {
		if !m.OK || !slices.Equal(m.Keys, []string{k1, k2}) {
			t.Errorf("install on %s: %+v", m.Name, m)
		}
	}
	for _, p := range pools {
		if got := keysOnDisk(t, p); !slices.Equal(got, []string{k1, k2}) {
			t.Errorf("%s's keyring file after install: %v", p.Name(), got)
		}
	}

	// Using from the other server works the same.
	res = keyring(t, s2, KeyUse, k2)
	if len(res.Members) != 5 {
		t.Fatalf("use reached %d members", len(res.Members))
	}
	res = keyring(t, pools[0], KeyList, "")
	if res.Keys[0] != (KeyCount{Key: k2, Installed: 5, Primary: 5}) || res.Keys[1] != (KeyCount{Key: k1, Installed: 5}) {
		t.Fatalf("list after use: %+v", res.Keys)
	}
	for _, p := range pools {
		if got := keysOnDisk(t, p); got[0] != k2 {
			t.Errorf("%s's keyring file after use: %v", p.Name(), got)
		}
	}

	// The old primary goes; what the pool says is now encrypted with k2.
	keyring(t, pools[0], KeyRemove, k1)
	for _, p := range pools {
		if got := keysOnDisk(t, p); !slices.Equal(got, []string{k2}) {
			t.Errorf("%s's keyring file after remove: %v", p.Name(), got)
		}
		if got := p.Keys(); !slices.Equal(got, []string{k2}) {
			t.Errorf("%s's keyring after remove: %v", p.Name(), got)
		}
	}

	// A node set up with the old key alone is refused; one with the new
	// key joins.
	old := startPool(t, "old", RoleAgent, agentMeta(7), keyringFile(t, k1))
	if _, err := old.Join(pools[0].Addr().String()); err == nil {
		t.Fatal("a member with the removed key joined")
	}
	late := startPool(t, "late", RoleAgent, agentMeta(8), keyringFile(t, k2))
	if _, err := late.Join(pools[3].Addr().String()); err != nil {
		t.Fatalf("a member with the new key: %v", err)
	}
	waitMembers(t, pools[0], func(ms []Member) bool { return countState(ms, StateAlive) == 6 })
	res = keyring(t, pools[0], KeyList, "")
	if len(res.Members) != 6 {
		t.Fatalf("list after the late join: %+v", res)
	}
}

func TestGossipKeyringRefusals(t *testing.T) {
	k1, k2 := newKey(t), newKey(t)
	pools := startPools(t, 3, k1)
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		p    *Pool
		op   KeyOp
		key  string
		want string
	}{
		{"remove primary", pools[0], KeyRemove, k1, "primary key"},
		{"use uninstalled", pools[0], KeyUse, k2, "not installed"},
		{"remove uninstalled", pools[0], KeyRemove, k2, "not installed"},
		{"not base64", pools[0], KeyInstall, "not a key!", "not base64"},
		{"short key", pools[0], KeyInstall, EncodeKey([]byte("0123456789")), "16, 24 or 32"},
		{"bad op", pools[0], "rotate", k2, `"rotate"`},
		{"from an agent", pools[1], KeyList, "", "only servers"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := tc.p.Keyring(ctx, tc.op, tc.key)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one mentioning %q", err, tc.want)
			}
			if res != nil {
				t.Fatalf("refused outright, yet a result: %+v", res)
			}
		})
	}
	for _, p := range pools {
		if got := keysOnDisk(t, p); !slices.Equal(got, []string{k1}) {
			t.Errorf("%s's keyring changed by refused operations: %v", p.Name(), got)
		}
	}

	// A member that refuses (k2 not installed on it, although installed on
	// the initiator) is reported by name, the others succeed.
	if _, err := pools[0].applyKeyOp(KeyInstall, k2); err != nil {
		t.Fatal(err)
	}
	uctx, ucancel := context.WithTimeout(ctx, waitLimit)
	defer ucancel()
	res, err := pools[0].Keyring(uctx, KeyUse, k2)
	if err == nil || !strings.Contains(err.Error(), "2 of 3 members failed") {
		t.Fatalf("use of a key only one member has: %v", err)
	}
	for _, m := range res.Members {
		if (m.Name == "s1") != m.OK {
			t.Errorf("%+v", m)
		}
		if m.Name != "s1" && !strings.Contains(m.Error, "not installed") {
			t.Errorf("%s's error: %q", m.Name, m.Error)
		}
	}
	if _, err := pools[0].applyKeyOp(KeyUse, k1); err != nil {
		t.Fatal(err)
	}

	// A member that crashed but is not yet declared dead cannot answer;
	// the initiator says so instead of waiting forever.
	pools[2].Shutdown()
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	res, err = pools[0].Keyring(cctx, KeyList, "")
	if err == nil {
		// Declared dead already, and so not asked: also correct.
		if len(res.Members) != 2 {
			t.Fatalf("list with a crashed member: %+v", res)
		}
		return
	}
	failed := res.Failed()
	if len(failed) != 1 || failed[0].Name != pools[2].Name() {
		t.Fatalf("failed members %+v, want just %s", failed, pools[2].Name())
	}
}

func TestGossipMessageDecode(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []byte
		want string
	}{
		{"empty", nil, "empty message"},
		{"unknown type", []byte{9, '{', '}'}, "unknown message type 9"},
		{"bad json", []byte{msgKeyRequest, '{'}, "keyring request"},
		{"no sender", append([]byte{msgKeyRequest}, `{"id":1,"op":"list"}`...), "without a sender"},
		{"bad op", append([]byte{msgKeyRequest}, `{"id":1,"from":"x","op":"zap"}`...), `"zap"`},
		{"response without sender", append([]byte{msgKeyResponse}, `{"id":1}`...), "without a sender"},
	} {
		if _, err := decodeMsg(tc.in); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
	m, err := decodeMsg(encodeMsg(msgKeyRequest, keyRequest{ID: 3, From: "s1", Op: KeyInstall, Key: "k"}))
	if err != nil || m.(keyRequest).ID != 3 {
		t.Fatalf("round trip: %v %v", m, err)
	}
}

func FuzzGossipDecodeMessage(f *testing.F) {
	f.Add(encodeMsg(msgKeyRequest, keyRequest{ID: 1, From: "s1", Op: KeyList}))
	f.Add(encodeMsg(msgKeyResponse, keyResponse{ID: 1, From: "a1", Keys: []string{"x"}}))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = decodeMsg(b)
	})
}
