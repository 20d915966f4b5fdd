package gossip

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
)

// waitLimit only stops a test that would otherwise hang; nothing asserts
// how fast gossip is (that is `barge gossip bench`).
const waitLimit = 60 * time.Second

func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func newKey(t testing.TB) string {
	t.Helper()
	k, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// keyringFile writes a keyring of keys (primary first) in a fresh
// directory, as each member has its own certificate directory.
func keyringFile(t testing.TB, keys ...string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), KeyringFile)
	var raw [][]byte
	for _, k := range keys {
		b, err := ParseKey(k)
		if err != nil {
			t.Fatal(err)
		}
		raw = append(raw, b)
	}
	if err := WriteKeyring(path, raw); err != nil {
		t.Fatal(err)
	}
	return path
}

func agentMeta(i int) Meta {
	return Meta{
		Role:    RoleAgent,
		PodCIDR: netip.MustParsePrefix("10.244." + strconv.Itoa(i) + ".0/24"),
		Overlay: OverlayVXLAN,
		VTEPMAC: net.HardwareAddr{0x02, 0, 0, 0, 0, byte(i)},
		Tags:    map[string]string{"version": "test"},
	}
}

func startPool(t testing.TB, name string, role Role, meta Meta, keyring string, join ...string) *Pool {
	t.Helper()
	if meta.Role == "" {
		meta.Role = role
	}
	// memberlist's LAN timing: more patient than barge's, so that a busy
	// CI machine running -race does not make a slow member look dead.
	lan, _ := TimingProfile(ProfileLAN)
	p, err := Start(Config{
		Name: name, Role: role, BindAddr: "127.0.0.1", Port: 0, Timing: lan,
		KeyringFile: keyring, Meta: meta, Join: join,
		RetryJoinInterval: time.Hour, // tests join explicitly
		Logger:            testLogger(t).With("member", name),
	})
	if err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(func() { _ = p.Shutdown() })
	return p
}

// startPools starts a server s1 and agents a1..a(n-1), all joined to s1,
// sharing one key (each with its own keyring file).
func startPools(t testing.TB, n int, key string) []*Pool {
	t.Helper()
	pools := []*Pool{startPool(t, "s1", RoleServer, Meta{}, keyringFile(t, key))}
	for i := 1; i < n; i++ {
		p := startPool(t, "a"+strconv.Itoa(i), RoleAgent, agentMeta(i), keyringFile(t, key), pools[0].Addr().String())
		pools = append(pools, p)
	}
	for _, p := range pools {
		waitMembers(t, p, func(ms []Member) bool { return countState(ms, StateAlive) == n })
	}
	return pools
}

func countState(ms []Member, s State) int {
	n := 0
	for _, m := range ms {
		if m.State == s || (s == StateAlive && m.State == StateSuspect) {
			n++
		}
	}
	return n
}

// waitMembers waits, event by event, until cond holds for p's members.
func waitMembers(t testing.TB, p *Pool, cond func([]Member) bool) []Member {
	t.Helper()
	ms, sub := p.Subscribe()
	defer sub.Close()
	timer := time.NewTimer(waitLimit)
	defer timer.Stop()
	for !cond(ms) {
		select {
		case _, ok := <-sub.C():
			if !ok {
				t.Fatalf("%s: pool stopped while waiting", p.Name())
			}
			ms = p.Members()
		case <-timer.C:
			t.Fatalf("%s: gave up waiting; members are %+v", p.Name(), p.Members())
		}
	}
	return ms
}

// nextEvent waits for the first event on sub that match accepts.
func nextEvent(t testing.TB, sub *Subscription, match func(Event) bool) Event {
	t.Helper()
	timer := time.NewTimer(waitLimit)
	defer timer.Stop()
	for {
		select {
		case ev, ok := <-sub.C():
			if !ok {
				t.Fatal("subscription closed while waiting")
			}
			if match(ev) {
				return ev
			}
		case <-timer.C:
			t.Fatal("gave up waiting for an event")
		}
	}
}

func TestGossipJoinAndMetadata(t *testing.T) {
	pools := startPools(t, 3, newKey(t))
	for _, p := range pools {
		ms := p.Members()
		if len(ms) != 3 {
			t.Fatalf("%s sees %d members: %+v", p.Name(), len(ms), ms)
		}
		for _, m := range ms {
			if m.MetaErr != "" {
				t.Errorf("%s sees %s with bad metadata: %s", p.Name(), m.Name, m.MetaErr)
			}
			if m.Meta.UnderlayIP != netip.MustParseAddr("127.0.0.1") {
				t.Errorf("%s sees %s with underlay IP %v", p.Name(), m.Name, m.Meta.UnderlayIP)
			}
			switch m.Name {
			case "s1":
				if m.Meta.Role != RoleServer || m.Meta.PodCIDR.IsValid() {
					t.Errorf("%s sees s1 as %+v", p.Name(), m.Meta)
				}
			case "a1", "a2":
				want := agentMeta(int(m.Name[1] - '0'))
				if m.Meta.Role != RoleAgent || m.Meta.PodCIDR != want.PodCIDR || m.Meta.VTEPMAC.String() != want.VTEPMAC.String() || m.Meta.Overlay != OverlayVXLAN || m.Meta.Tags["version"] != "test" {
					t.Errorf("%s sees %s as %+v, want %+v", p.Name(), m.Name, m.Meta, want)
				}
			default:
				t.Errorf("%s sees unknown member %q", p.Name(), m.Name)
			}
			if m.Addr.Port() == 0 {
				t.Errorf("%s sees %s without a port", p.Name(), m.Name)
			}
		}
	}

	// An agent moves to IPIP and a new pod CIDR: every member hears it.
	_, sub := pools[0].Subscribe()
	defer sub.Close()
	m := pools[2].Meta()
	m.Overlay, m.VTEPMAC = OverlayIPIP, nil
	m.PodCIDR = netip.MustParsePrefix("10.244.200.0/24")
	if err := pools[2].UpdateMeta(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	ev := nextEvent(t, sub, func(ev Event) bool { return ev.Kind == EventUpdate && ev.Member.Name == pools[2].Name() })
	if ev.Member.Meta.Overlay != OverlayIPIP || ev.Member.Meta.PodCIDR != m.PodCIDR || ev.Member.State != StateAlive {
		t.Fatalf("update event %+v", ev)
	}
	waitMembers(t, pools[1], func(ms []Member) bool {
		for _, x := range ms {
			if x.Name == pools[2].Name() && x.Meta.PodCIDR == m.PodCIDR {
				return true
			}
		}
		return false
	})

	// Metadata that does not validate is refused before it is gossiped.
	bad := m
	bad.Overlay = "gre"
	if err := pools[2].UpdateMeta(context.Background(), bad); err == nil || !strings.Contains(err.Error(), `"gre"`) {
		t.Fatalf("bad overlay: %v", err)
	}
	bad = m
	bad.Role = RoleServer
	if err := pools[2].UpdateMeta(context.Background(), bad); err == nil {
		t.Fatal("an agent changed its role to server")
	}
}

func TestGossipLeaveAndFailure(t *testing.T) {
	pools := startPools(t, 4, newKey(t))
	_, sub := pools[0].Subscribe()
	defer sub.Close()

	// a1 leaves gracefully.
	if err := pools[1].Leave(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	// First the Leaving flag arrives as an update, then the goodbye.
	ev := nextEvent(t, sub, func(ev Event) bool { return ev.Member.Name == "a1" && ev.Kind != EventUpdate })
	if ev.Kind != EventLeave || ev.Member.State != StateLeft {
		t.Fatalf("after a graceful leave: %+v", ev)
	}

	// a2 crashes: its sockets close with no goodbye.
	if err := pools[2].Shutdown(); err != nil {
		t.Fatal(err)
	}
	ev = nextEvent(t, sub, func(ev Event) bool { return ev.Member.Name == "a2" })
	if ev.Kind != EventFail || ev.Member.State != StateDead {
		t.Fatalf("after a crash: %+v", ev)
	}
	if ev.Member.Meta.Role != RoleAgent || !ev.Member.Meta.PodCIDR.IsValid() {
		t.Errorf("a dead member keeps its last metadata, got %+v", ev.Member.Meta)
	}

	// Every survivor lists both, each with its reason.
	for _, p := range []*Pool{pools[0], pools[3]} {
		ms := waitMembers(t, p, func(ms []Member) bool {
			return countState(ms, StateLeft) == 1 && countState(ms, StateDead) == 1
		})
		for _, m := range ms {
			want := map[string]State{"s1": StateAlive, "a1": StateLeft, "a2": StateDead, "a3": StateAlive}[m.Name]
			if m.State != want && !(want == StateAlive && m.State == StateSuspect) {
				t.Errorf("%s sees %s %s, want %s", p.Name(), m.Name, m.State, want)
			}
		}
	}

	// a2 comes back (a new process, same name and address): it rejoins.
	addr := pools[2].Addr()
	back, err := Start(Config{
		Name: "a2", Role: RoleAgent, BindAddr: "127.0.0.1", Port: int(addr.Port()), Timing: pools[2].cfg.Timing,
		KeyringFile: pools[2].cfg.KeyringFile, Meta: agentMeta(2), Join: []string{pools[0].Addr().String()},
		RetryJoinInterval: 50 * time.Millisecond, Logger: testLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer back.Shutdown()
	ev = nextEvent(t, sub, func(ev Event) bool { return ev.Member.Name == "a2" })
	if ev.Kind != EventJoin || ev.Member.State != StateAlive {
		t.Fatalf("after a restart: %+v", ev)
	}
}

func TestGossipWrongKeyRefused(t *testing.T) {
	key := newKey(t)
	pools := startPools(t, 2, key)
	_, sub := pools[0].Subscribe()
	defer sub.Close()

	outsider := startPool(t, "intruder", RoleAgent, agentMeta(9), keyringFile(t, newKey(t)))
	if n, err := outsider.Join(pools[0].Addr().String()); err == nil {
		t.Fatalf("a member with another key joined (%d contacted)", n)
	}

	// Without any key, with plain memberlist: refused as well, since the
	// pool verifies that everything incoming is encrypted.
	mc := memberlist.DefaultLocalConfig()
	mc.Name, mc.BindAddr, mc.BindPort = "plaintext", "127.0.0.1", 0
	mc.LogOutput = io.Discard
	plain, err := memberlist.Create(mc)
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Shutdown()
	if n, err := plain.Join([]string{pools[0].Addr().String()}); err == nil {
		t.Fatalf("a plaintext member joined (%d contacted)", n)
	}

	// A member with the right key still joins: the pool was not harmed,
	// and the event stream shows it and nothing of the others.
	friend := startPool(t, "friend", RoleAgent, agentMeta(8), keyringFile(t, key))
	if _, err := friend.Join(pools[0].Addr().String()); err != nil {
		t.Fatal(err)
	}
	ev := nextEvent(t, sub, func(ev Event) bool { return ev.Kind == EventJoin })
	if ev.Member.Name != "friend" {
		t.Fatalf("join event for %q, want friend", ev.Member.Name)
	}
	for _, p := range pools {
		for _, m := range p.Members() {
			if m.Name == "intruder" || m.Name == "plaintext" {
				t.Errorf("%s lists %s", p.Name(), m.Name)
			}
		}
	}
	if got := len(outsider.Members()); got != 1 {
		t.Errorf("the intruder sees %d members", got)
	}
}

func TestGossipStartErrors(t *testing.T) {
	dir := t.TempDir()
	good := keyringFile(t, newKey(t))
	empty := filepath.Join(dir, "empty.json")
	os.WriteFile(empty, []byte("[]"), 0o600)
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"no name", Config{Role: RoleAgent, BindAddr: "127.0.0.1", KeyringFile: good}, "name is required"},
		{"bad role", Config{Name: "x", Role: "worker", BindAddr: "127.0.0.1", KeyringFile: good}, `role "worker"`},
		{"bad bind", Config{Name: "x", Role: RoleAgent, BindAddr: "localhost", KeyringFile: good}, `bind address "localhost"`},
		{"unspecified advertise", Config{Name: "x", Role: RoleAgent, BindAddr: "0.0.0.0", KeyringFile: good}, "unspecified"},
		{"no keyring", Config{Name: "x", Role: RoleAgent, BindAddr: "127.0.0.1"}, "always encrypted"},
		{"missing keyring", Config{Name: "x", Role: RoleAgent, BindAddr: "127.0.0.1", KeyringFile: filepath.Join(dir, "nope")}, "no such file"},
		{"empty keyring", Config{Name: "x", Role: RoleAgent, BindAddr: "127.0.0.1", KeyringFile: empty}, "no keys"},
		{"bad meta", Config{Name: "x", Role: RoleAgent, BindAddr: "127.0.0.1", KeyringFile: good, Meta: Meta{Overlay: "gre"}}, `overlay mode "gre"`},
		{"bad timing", Config{Name: "x", Role: RoleAgent, BindAddr: "127.0.0.1", KeyringFile: good, Timing: Timing{ProbeInterval: time.Second, ProbeTimeout: 2 * time.Second, GossipInterval: time.Second, SuspicionMult: 1, SuspicionMaxTimeoutMult: 1}}, "shorter than the probe interval"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Logger = testLogger(t)
			p, err := Start(tc.cfg)
			if err == nil {
				p.Shutdown()
				t.Fatal("started")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not mention %q", err, tc.want)
			}
		})
	}
}

// TestGossipSuspectFromOwnProbes checks the local suspicion bookkeeping:
// memberlist's log line marks a member suspect, an answered probe clears
// it, and events override it.
func TestGossipSuspectFromOwnProbes(t *testing.T) {
	pools := startPools(t, 2, newKey(t))
	p := pools[0]
	lb := &logBridge{p: p}
	lb.Write([]byte("[INFO] memberlist: Suspect a1 has failed, no acks received\n"))
	if m, _ := p.Member("a1"); m.State != StateSuspect {
		t.Fatalf("a1 is %s after a failed probe, want suspect", m.State)
	}
	lb.Write([]byte("[INFO] memberlist: Suspect nobody has failed, no acks received\n"))
	if _, ok := p.Member("nobody"); ok {
		t.Fatal("a suspicion of an unknown member invented it")
	}
	(*pings)(p).NotifyPingComplete(&memberlist.Node{Name: "a1"}, time.Millisecond, nil)
	if m, _ := p.Member("a1"); m.State != StateAlive {
		t.Fatalf("a1 is %s after an answered probe, want alive", m.State)
	}
}

func TestGossipProfiles(t *testing.T) {
	for _, name := range []string{"", ProfileBarge, ProfileLAN, ProfileLocal} {
		tm, err := TimingProfile(name)
		if err != nil {
			t.Fatal(err)
		}
		if err := tm.validate(); err != nil {
			t.Errorf("profile %q: %v", name, err)
		}
	}
	if lan, _ := TimingProfile(ProfileLAN); lan.ProbeInterval != memberlist.DefaultLANConfig().ProbeInterval {
		t.Errorf("lan profile %+v", lan)
	}
	if _, err := TimingProfile("wan"); err == nil || !strings.Contains(err.Error(), `"wan"`) {
		t.Fatalf("unknown profile: %v", err)
	}
}
