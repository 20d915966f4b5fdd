package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/barge-dev/barge/node/gossip"
	"github.com/barge-dev/barge/raftstore/pki"
	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
)

func newGossipCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "gossip",
		Short: "Inspect the gossip pool and rotate its encryption key",
		Long: `Servers and agents form one encrypted memberlist pool that tracks node
health and carries each node's overlay metadata. These commands ask a
server (--endpoints, its client URL) about the pool.`,
	}
	cmd.AddCommand(newGossipMembersCmd(), newGossipKeyringCmd(), newGossipKeygenCmd(), newGossipBenchCmd(), newGossipRunCmd())
	return cmd
}

// gossipCall runs fn against the first endpoint that serves the gossip
// admin service.
func gossipCall(ctx context.Context, cf *clientFlags, fn func(ctx context.Context, cc grpc.ClientConnInterface) error) error {
	if err := cf.resolve(); err != nil {
		return err
	}
	tlsCfg, err := pki.ClientTLS(cf.certs)
	if err != nil {
		return err
	}
	var errs []error
	for _, ep := range cf.hostPorts() {
		cc, err := grpc.NewClient(ep, grpc.WithTransportCredentials(credentials.NewTLS(tlsCfg)))
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", ep, err))
			continue
		}
		cctx, cancel := cf.ctx(ctx)
		err = fn(cctx, cc)
		cancel()
		cc.Close()
		switch status.Code(err) {
		case codes.OK:
			return nil
		case codes.Unavailable, codes.DeadlineExceeded:
			errs = append(errs, fmt.Errorf("%s: %w", ep, err))
			continue
		case codes.Unimplemented:
			errs = append(errs, fmt.Errorf("%s runs no gossip pool (started without gossip?)", ep))
			continue
		}
		return fmt.Errorf("%s: %w", ep, err)
	}
	return errors.Join(errs...)
}

func newGossipMembersCmd() *cobra.Command {
	var (
		cf     clientFlags
		output string
	)
	cmd := &cobra.Command{
		Use:     "members",
		Short:   "List the pool's members as a server sees them: name, address, state, role, metadata",
		Example: `  barge gossip members --endpoints https://127.0.0.1:2379 --certs ./certs -o json`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "table" && output != "json" {
				return fmt.Errorf("-o %q: want table or json", output)
			}
			return gossipCall(cmd.Context(), &cf, func(ctx context.Context, cc grpc.ClientConnInterface) error {
				infos, err := gossip.RemoteMembers(ctx, cc)
				if err != nil {
					return err
				}
				if output == "json" {
					enc := json.NewEncoder(cmd.OutOrStdout())
					enc.SetIndent("", "  ")
					return enc.Encode(infos)
				}
				tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "NAME\tADDRESS\tSTATE\tROLE\tUNDERLAY IP\tPOD CIDR\tOVERLAY\tVTEP MAC")
				for _, i := range infos {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", i.Name, i.Address, i.State, dash(string(i.Role)),
						dash(i.UnderlayIP), dash(i.PodCIDR), dash(string(i.Overlay)), dash(i.VTEPMAC))
				}
				return tw.Flush()
			})
		},
	}
	cf.register(cmd)
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table or json")
	return cmd
}

func newGossipKeyringCmd() *cobra.Command {
	var (
		cf      clientFlags
		output  string
		members time.Duration
	)
	cmd := &cobra.Command{
		Use:   "keyring install|use|remove KEY | list",
		Short: "Rotate the pool's encryption key on every member, as `consul keyring`",
		Long: `Change the keyring of every alive member through a server, which sends the
operation to each member and reports who applied it. Each member writes its
keyring file (` + gossip.KeyringFile + ` in its certificate directory).

Rotation is three steps, each checked on every member before the next:
  install NEW   every member can decrypt with NEW
  use NEW       every member encrypts with NEW
  remove OLD    OLD is gone; members set up with it alone can no longer join
Removing the primary key and using a key that is not installed are refused.
New keys come from 'barge gossip keygen'.`,
		Example: `  barge gossip keyring list
  barge gossip keyring install "$(barge gossip keygen)"
  barge gossip keyring use KEY
  barge gossip keyring remove OLDKEY`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return errors.New("want an operation: install, use, remove or list")
			}
			op, err := gossip.ParseKeyOp(args[0])
			if err != nil {
				return err
			}
			if op == gossip.KeyList && len(args) != 1 {
				return errors.New("list takes no key")
			}
			if op != gossip.KeyList && len(args) != 2 {
				return fmt.Errorf("%s takes exactly one KEY (base64)", op)
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			op, _ := gossip.ParseKeyOp(args[0])
			key := ""
			if len(args) == 2 {
				key = args[1]
				if _, err := gossip.ParseKey(key); err != nil {
					return err
				}
			}
			if output != "table" && output != "json" {
				return fmt.Errorf("-o %q: want table or json", output)
			}
			if cf.timeout < members+2*time.Second {
				cf.timeout = members + 2*time.Second
			}
			var (
				res    *gossip.KeyringResult
				resErr error
			)
			err := gossipCall(cmd.Context(), &cf, func(ctx context.Context, cc grpc.ClientConnInterface) error {
				res, resErr = gossip.RemoteKeyring(ctx, cc, op, key, members)
				if res != nil {
					return nil // reached the members; resErr tells how it went
				}
				return resErr
			})
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if output == "json" {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				if err := enc.Encode(res); err != nil {
					return err
				}
				return resErr
			}
			printKeyring(out, res)
			return resErr
		},
	}
	cf.register(cmd)
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table or json")
	cmd.Flags().DurationVar(&members, "member-timeout", gossip.DefaultKeyringTimeout, "how long the server waits for the members' answers")
	return cmd
}

func printKeyring(w io.Writer, res *gossip.KeyringResult) {
	ok := len(res.Members) - len(res.Failed())
	fmt.Fprintf(w, "%s: %d/%d members ok\n", res.Op, ok, len(res.Members))
	if len(res.Keys) > 0 {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "KEY\tINSTALLED\tPRIMARY")
		for _, k := range res.Keys {
			fmt.Fprintf(tw, "%s\t%d/%d\t%d/%d\n", k.Key, k.Installed, len(res.Members), k.Primary, len(res.Members))
		}
		tw.Flush()
	}
	for _, f := range res.Failed() {
		fmt.Fprintf(w, "failed on %s: %s\n", f.Name, f.Error)
	}
}

func newGossipKeygenCmd() *cobra.Command {
	var certs string
	cmd := &cobra.Command{
		Use:   "keygen",
		Short: "Print a new gossip key, or with --certs create the certificate directory's keyring",
		Example: `  barge gossip keygen
  barge gossip keygen --certs ./certs    # writes ./certs/` + gossip.KeyringFile + ` unless it exists`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if certs == "" {
				k, err := gossip.GenerateKey()
				if err != nil {
					return err
				}
				fmt.Fprintln(cmd.OutOrStdout(), k)
				return nil
			}
			path, created, err := gossip.InitKeyring(certs)
			if err != nil {
				return err
			}
			if created {
				fmt.Fprintf(cmd.OutOrStdout(), "Wrote %s with a new key.\n", path)
			} else {
				fmt.Fprintf(cmd.OutOrStdout(), "%s exists; left as it is.\n", path)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&certs, "certs", "", "certificate directory to create the keyring in")
	return cmd
}

// gossipRunFlags run one member by itself: the benchmark's members are
// separate processes so that SIGKILL and SIGSTOP are real.
type gossipRunFlags struct {
	name, role, bind, advertise, keyring, profile string
	port                                          int
	join                                          []string
	podCIDR, overlay                              string
}

func newGossipRunCmd() *cobra.Command {
	var f gossipRunFlags
	cmd := &cobra.Command{
		Use:    "run",
		Short:  "Run a bare gossip member until SIGTERM (for benchmarks and labs)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			timing, err := gossip.TimingProfile(f.profile)
			if err != nil {
				return err
			}
			meta := gossip.Meta{Role: gossip.Role(f.role), Overlay: gossip.OverlayMode(f.overlay)}
			if f.podCIDR != "" {
				if meta.PodCIDR, err = netip.ParsePrefix(f.podCIDR); err != nil {
					return fmt.Errorf("--pod-cidr: %w", err)
				}
			}
			p, err := gossip.Start(gossip.Config{
				Name: f.name, Role: gossip.Role(f.role), BindAddr: f.bind, AdvertiseAddr: f.advertise, Port: f.port,
				KeyringFile: f.keyring, Meta: meta, Join: f.join, Timing: timing, Logger: newQuietLogger(),
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "gossip member %s at %s\n", p.Name(), p.Addr())
			sig := make(chan os.Signal, 1)
			signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
			<-sig
			return p.Leave(2 * time.Second)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.name, "name", "", "member name")
	fl.StringVar(&f.role, "role", "agent", "server or agent")
	fl.StringVar(&f.bind, "bind", "127.0.0.1", "bind IP")
	fl.StringVar(&f.advertise, "advertise", "", "advertise IP (default --bind)")
	fl.IntVar(&f.port, "port", gossip.DefaultPort, "TCP and UDP port (0: any free port)")
	fl.StringVar(&f.keyring, "keyring", "", "keyring file")
	fl.StringSliceVar(&f.join, "join", nil, "members to join, IP:PORT")
	fl.StringVar(&f.profile, "profile", gossip.ProfileBarge, "timing profile: barge, lan or local")
	fl.StringVar(&f.podCIDR, "pod-cidr", "", "pod CIDR metadata")
	fl.StringVar(&f.overlay, "overlay", "", "overlay metadata: vxlan or ipip")
	return cmd
}

func newQuietLogger() *slog.Logger {
	l, _ := newLogger("warn", "text")
	return l
}

func newGossipBenchCmd() *cobra.Command {
	var o gossipBenchOptions
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure how fast the pool declares a SIGKILLed member dead, and whether a paused one survives",
		Long: `Start a pool on loopback: this process as the observing server and
--members-1 member processes ('barge gossip run'). Each kill SIGKILLs one
member and times how long until the observer declares it dead (the member is
then restarted); each pause SIGSTOPs one for --pause, then SIGCONTs it, and
counts whether anyone declared it dead. Profiles are compared in one run.`,
		Example: `  barge gossip bench --members 5 --kills 10 --pauses 5 --profiles barge,lan,local`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.out = cmd.OutOrStdout()
			return runGossipBench(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.members, "members", 5, "pool size, the observer included")
	f.IntVar(&o.kills, "kills", 10, "SIGKILL trials per profile")
	f.IntVar(&o.pauses, "pauses", 5, "SIGSTOP trials per profile")
	f.DurationVar(&o.pause, "pause", time.Second, "how long each paused member stays stopped")
	f.StringSliceVar(&o.profiles, "profiles", []string{gossip.ProfileBarge}, "timing profiles to measure: barge, lan, local")
	f.StringVar(&o.jsonPath, "json", "", "also write the results as JSON to this file")
	return cmd
}

type gossipBenchOptions struct {
	members, kills, pauses int
	pause                  time.Duration
	profiles               []string
	jsonPath               string
	out                    io.Writer
}

// GossipBenchResult is one profile's figures.
type GossipBenchResult struct {
	Profile string        `json:"profile"`
	Members int           `json:"members"`
	Timing  gossip.Timing `json:"timing"`
	// Detect are the SIGKILL → declared-dead times seen by the observer.
	Detect []time.Duration `json:"detectNanos"`
	Min    time.Duration   `json:"minNanos"`
	P50    time.Duration   `json:"p50Nanos"`
	Max    time.Duration   `json:"maxNanos"`
	// Pauses members were SIGSTOPped for Pause; PausedDead of them were
	// declared dead meanwhile (a false positive).
	Pauses     int           `json:"pauses"`
	Pause      time.Duration `json:"pauseNanos"`
	PausedDead int           `json:"pausedDead"`
}

func runGossipBench(ctx context.Context, o gossipBenchOptions) error {
	if o.members < 3 {
		return fmt.Errorf("--members %d: want at least 3", o.members)
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "barge-gossip-bench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	keyring, _, err := gossip.InitKeyring(dir)
	if err != nil {
		return err
	}
	var results []GossipBenchResult
	for _, profile := range o.profiles {
		timing, err := gossip.TimingProfile(profile)
		if err != nil {
			return err
		}
		fmt.Fprintf(o.out, "profile %s: %d members, %d kills, %d pauses of %v\n", profile, o.members, o.kills, o.pauses, o.pause)
		r, err := benchProfile(ctx, o, self, keyring, profile, timing)
		if err != nil {
			return fmt.Errorf("profile %s: %w", profile, err)
		}
		results = append(results, r)
	}
	tw := tabwriter.NewWriter(o.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PROFILE\tMEMBERS\tPROBE\tSUSPICION\tKILLS\tDETECT MIN\tP50\tMAX\tPAUSES\tDECLARED DEAD")
	for _, r := range results {
		fmt.Fprintf(tw, "%s\t%d\t%v/%v\t%dx\t%d\t%v\t%v\t%v\t%d x %v\t%d\n", r.Profile, r.Members,
			r.Timing.ProbeInterval, r.Timing.ProbeTimeout, r.Timing.SuspicionMult, len(r.Detect),
			r.Min.Round(10*time.Millisecond), r.P50.Round(10*time.Millisecond), r.Max.Round(10*time.Millisecond),
			r.Pauses, r.Pause, r.PausedDead)
	}
	tw.Flush()
	if o.jsonPath != "" {
		b, _ := json.MarshalIndent(results, "", "  ")
		return os.WriteFile(o.jsonPath, append(b, '\n'), 0o644)
	}
	return nil
}

// eventLog keeps every event the observer sees, for the trials to search.
type eventLog struct {
	mu     sync.Mutex
	events []gossip.Event
	wake   chan struct{}
}

func (l *eventLog) run(sub *gossip.Subscription) {
	for ev := range sub.C() {
		l.mu.Lock()
		l.events = append(l.events, ev)
		old := l.wake
		l.wake = make(chan struct{})
		l.mu.Unlock()
		close(old)
	}
}

// wait returns the first event from index from on for name of kind, or
// false at the deadline.
func (l *eventLog) wait(from int, name string, kind gossip.EventKind, deadline time.Time) (gossip.Event, bool) {
	for {
		l.mu.Lock()
		for _, ev := range l.events[from:] {
			if ev.Member.Name == name && ev.Kind == kind {
				l.mu.Unlock()
				return ev, true
			}
		}
		from = len(l.events)
		wake := l.wake
		l.mu.Unlock()
		select {
		case <-wake:
		case <-time.After(time.Until(deadline)):
			return gossip.Event{}, false
		}
	}
}

func (l *eventLog) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.events)
}

func benchProfile(ctx context.Context, o gossipBenchOptions, self, keyring, profile string, timing gossip.Timing) (GossipBenchResult, error) {
	res := GossipBenchResult{Profile: profile, Members: o.members, Timing: timing, Pause: o.pause}
	obs, err := gossip.Start(gossip.Config{
		Name: "observer", Role: gossip.RoleServer, BindAddr: "127.0.0.1", Port: 0,
		KeyringFile: keyring, Timing: timing, Logger: newQuietLogger(),
	})
	if err != nil {
		return res, err
	}
	defer obs.Shutdown()
	_, sub := obs.Subscribe()
	defer sub.Close()
	log := &eventLog{wake: make(chan struct{})}
	go log.run(sub)

	procs := map[string]*exec.Cmd{}
	defer func() {
		for _, c := range procs {
			_ = c.Process.Kill()
			_ = c.Wait()
		}
	}()
	gen := 0
	spawn := func() (string, error) {
		gen++
		name := "m" + strconv.Itoa(gen)
		from := log.len()
		c := exec.CommandContext(ctx, self, "gossip", "run", "--name", name, "--port", "0", "--keyring", keyring,
			"--join", obs.Addr().String(), "--profile", profile)
		c.Stderr = os.Stderr
		if err := c.Start(); err != nil {
			return "", err
		}
		procs[name] = c
		if _, ok := log.wait(from, name, gossip.EventJoin, time.Now().Add(30*time.Second)); !ok {
			return "", fmt.Errorf("member %s did not join within 30s", name)
		}
		return name, nil
	}
	var names []string
	for range o.members - 1 {
		n, err := spawn()
		if err != nil {
			return res, err
		}
		names = append(names, n)
	}
	// Let every member learn every other before measuring: a member
	// probes only those it knows of.
	settle := 3 * timing.PushPullInterval / 15
	settle = max(settle, 2*time.Second)
	sleep := func(d time.Duration) error {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(d):
			return nil
		}
	}
	if err := sleep(settle); err != nil {
		return res, err
	}
	limit := 60 * time.Second
	for k := range o.kills {
		victim := names[k%len(names)]
		from := log.len()
		c := procs[victim]
		t0 := time.Now()
		if err := c.Process.Signal(syscall.SIGKILL); err != nil {
			return res, err
		}
		_ = c.Wait()
		delete(procs, victim)
		ev, ok := log.wait(from, victim, gossip.EventFail, t0.Add(limit))
		if !ok {
			return res, fmt.Errorf("killed member %s not declared dead within %v", victim, limit)
		}
		d := ev.Member.Since.Sub(t0)
		res.Detect = append(res.Detect, d)
		fmt.Fprintf(o.out, "  kill %d: %s declared dead after %v\n", k+1, victim, d.Round(time.Millisecond))
		n, err := spawn()
		if err != nil {
			return res, err
		}
		names[k%len(names)] = n
		if err := sleep(settle); err != nil {
			return res, err
		}
	}
	for k := range o.pauses {
		victim := names[rand.IntN(len(names))]
		from := log.len()
		c := procs[victim]
		if err := c.Process.Signal(syscall.SIGSTOP); err != nil {
			return res, err
		}
		if err := sleep(o.pause); err != nil {
			_ = c.Process.Signal(syscall.SIGCONT)
			return res, err
		}
		if err := c.Process.Signal(syscall.SIGCONT); err != nil {
			return res, err
		}
		// Long enough for any suspicion raised during the pause to run
		// out, had the member not refuted it.
		watch := time.Duration(timing.SuspicionMaxTimeoutMult*timing.SuspicionMult)*timing.ProbeInterval + 2*time.Second
		_, dead := log.wait(from, victim, gossip.EventFail, time.Now().Add(watch))
		res.Pauses++
		verdict := "stayed alive"
		if dead {
			res.PausedDead++
			verdict = "was declared dead"
		}
		fmt.Fprintf(o.out, "  pause %d: %s stopped for %v %s\n", k+1, victim, o.pause, verdict)
	}
	if len(res.Detect) > 0 {
		s := slices.Clone(res.Detect)
		slices.Sort(s)
		res.Min, res.P50, res.Max = s[0], s[len(s)/2], s[len(s)-1]
	}
	return res, nil
}
