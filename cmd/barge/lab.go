package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/barge-dev/barge/chaos/lab"
	"github.com/spf13/cobra"
)

// labStatusTimeout bounds `barge lab status`; each server gets a second,
// and they are asked in parallel.
const labStatusTimeout = 10 * time.Second

func newLabCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "lab",
		Short: "Run a multi-host cluster on this machine in network namespaces (root, Linux)",
		Long: `Build a cluster of "hosts" on one Linux machine, each host a network
namespace joined to a private bridge, and break it on purpose: kill, pause,
partition. Addresses come from 198.18.0.0/15 (the benchmarking range) and
never leave the machine; the root namespace gets one veth (.254 of the
lab's /24) and only that /24's on-link route, so barge, etcdctl and kubectl
on this machine reach every host directly.

Everything lives in --dir (default $BARGE_LAB_DIR, else ./lab): lab.json,
certs/, data/, logs/ and admin.kubeconfig. Kernel objects are named from a
hash of that directory, so 'barge lab down' cleans up even after a crash,
and labs in different directories run side by side.`,
		Example: `  sudo barge lab up --servers 3 --dir /tmp/lab
  sudo barge lab status --dir /tmp/lab
  etcdctl --endpoints $(jq -r '.endpoints|join(",")' /tmp/lab/lab.json) \
    --cacert /tmp/lab/certs/ca.crt --cert /tmp/lab/certs/admin.crt --key /tmp/lab/certs/admin.key get / --prefix
  sudo barge lab partition --dir /tmp/lab s1
  sudo barge lab heal --dir /tmp/lab
  sudo barge lab down --dir /tmp/lab`,
	}
	cmd.AddCommand(
		newLabUpCmd(),
		newLabDownCmd(),
		newLabStatusCmd(),
		newLabExecCmd(),
		newLabHostCmd("kill", "Crash a server, node agent, the registry or containerd with SIGKILL",
			"The process (its whole process group) dies at once, without a graceful\nhand-over. A server's data directory stays, so 'barge lab start' brings it\nback as the same member; a node agent's state stays, and its pods keep\nrunning in containerd. 'kill containerd' kills the shared containerd daemon\n(its shims and containers live on), the fault a containerd restart is.",
			(*lab.Lab).Kill),
		newLabHostCmd("start", "Restart a killed server, node agent, registry or containerd",
			"Start the process again with the flags it was first started with. A server\nrejoins the cluster from its data directory; an agent re-adopts its pods.",
			(*lab.Lab).Start),
		newLabHostCmd("pause", "Freeze a server, node agent, registry or containerd with SIGSTOP",
			"The process stops but keeps its sockets: peers and clients see something that\naccepts connections and never answers, like a long GC pause or a hung VM.",
			(*lab.Lab).Pause),
		newLabHostCmd("resume", "Continue a paused process with SIGCONT", "Continue a process frozen by 'barge lab pause'.", (*lab.Lab).Resume),
		newLabKubeconfigCmd(),
		newLabPartitionCmd(),
		newLabHealCmd(),
	)
	return cmd
}

func labDirFlag(cmd *cobra.Command, dir *string) {
	def := os.Getenv("BARGE_LAB_DIR")
	if def == "" {
		def = "./lab"
	}
	cmd.Flags().StringVar(dir, "dir", def, "lab directory; $BARGE_LAB_DIR sets the default")
}

func labLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

func loadLab(dir string) (*lab.Lab, error) {
	l, err := lab.Load(dir)
	if err != nil {
		return nil, err
	}
	l.SetLogger(labLogger())
	return l, nil
}

func newLabUpCmd() *cobra.Command {
	var (
		dir       string
		servers   int
		nodes     int
		lateNodes int
		registry  bool
		capacity  string
		overlay   string
		tokenBoot bool
		agentArgs []string
	)
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Create the namespaces, certificates and servers, and wait for a leader",
		Long: `Create the lab: an underlay namespace with a bridge, one namespace per host,
a fresh CA and certificates in DIR/certs, and one 'barge server' per server
host, started in the background (logs in DIR/logs). The command returns
once the servers have elected a leader (at most 30 s) and leaves them
running; 'barge lab down' removes everything.

With --nodes (or --registry) it also starts one containerd for the whole
lab (root, state and socket under DIR/containerd, in the root network
namespace), and the registry host (namespace bgID-registry, .200 of the
lab's /24: Debian's docker-registry with a certificate from the lab CA),
builds busybox from busybox-static and pushes it as REGISTRY/busybox:latest.
Each node gets a credential from 'barge certs node' and runs 'barge agent'
in its namespace, with its own containerd namespace and a 1/N share of
the machine as --capacity, joining the servers' gossip pool (every server
gossips on its address, port 7946) and carrying pods' traffic over
--overlay; up then returns when every node is Ready (at
most 120 s more).

If up fails, the namespaces and processes it made are removed again but
DIR/logs stays, to explain why; run 'barge lab down' to remove the rest.`,
		Example: `  sudo barge lab up --servers 3 --dir /tmp/lab
  sudo BARGE_LAB_DIR=/tmp/lab5 barge lab up --servers 5 --nodes 2`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			self, err := os.Executable()
			if err != nil {
				return fmt.Errorf("find the barge binary: %w", err)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			start := time.Now()
			l, err := lab.Up(ctx, lab.Config{Dir: dir, Servers: servers, Nodes: nodes, LateNodes: lateNodes, Registry: registry,
				NodeCapacity: capacity, Overlay: overlay, TokenBootstrap: tokenBoot, AgentArgs: agentArgs, Barge: self, Logger: labLogger()})
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "lab %s up in %s (subnet %s) after %s\n", l.ID, l.Dir, l.Subnet, time.Since(start).Round(time.Millisecond))
			fmt.Fprintf(w, "endpoints:  %s\n", strings.Join(l.Endpoints, ","))
			fmt.Fprintf(w, "certs:      %s\n", l.Certs)
			fmt.Fprintf(w, "kubeconfig: %s\n", l.Kubeconfig)
			if l.Registry != "" {
				fmt.Fprintf(w, "registry:   %s (image %s/%s)\n", l.Registry, l.Registry, lab.BusyboxImage)
				fmt.Fprintf(w, "containerd: %s\n", l.Containerd.Socket)
			}
			return nil
		},
	}
	labDirFlag(cmd, &dir)
	cmd.Flags().IntVar(&servers, "servers", 3, "store servers: 1, 3 or 5")
	cmd.Flags().IntVar(&nodes, "nodes", 0, "worker nodes running 'barge agent' (0 to 100)")
	cmd.Flags().IntVar(&lateNodes, "late-nodes", 0, "more nodes, named after the others, whose agents start only at 'barge lab start NAME' (also without quorum: each has a fixed --pod-cidr, 10.244.201.0/24 and up)")
	cmd.Flags().BoolVar(&registry, "registry", false, "start the registry and containerd even with --nodes 0")
	cmd.Flags().StringVar(&capacity, "node-capacity", "", "each node's --capacity, e.g. cpu=1,memory=2Gi,pods=110 (default: the machine divided by --nodes)")
	cmd.Flags().BoolVar(&tokenBoot, "token-bootstrap", false, "nodes join with a bootstrap token and ask for their credentials by CSR, instead of 'barge certs node'")
	cmd.Flags().StringVar(&overlay, "overlay", "vxlan", "the agents' pod overlay between nodes: vxlan or ipip (userspace IPIP where the kernel has none)")
	cmd.Flags().StringArrayVar(&agentArgs, "agent-arg", nil, "extra 'barge agent' flag (--name=value), repeatable")
	return cmd
}

func newLabDownCmd() *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "down",
		Short: "Remove the lab: processes, containers, mounts, cgroups, namespaces, files",
		Long: `Kill every server, agent and the registry, and every process in the lab's
namespaces; kill every task and delete every container, image and snapshot
in the lab's containerd namespaces through containerd (started again for
this if a crash killed it), then stop it; kill shims and container
processes a crash left; unmount everything under DIR (pod network
namespaces, volumes, root filesystems); remove the containers' cgroups;
delete the namespaces (with the nftables tables in them) and the root veth;
and remove lab.json, certs/, data/, logs/, containerd/, registry/ and
admin.kubeconfig from DIR (and DIR itself if that leaves it empty). It
prints what it removed. Works without lab.json (after a crash) and when
nothing is left to remove.`,
		Example: `  sudo barge lab down --dir /tmp/lab`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, err := lab.DownReport(dir)
			fmt.Fprint(cmd.OutOrStdout(), r.String())
			return err
		},
	}
	labDirFlag(cmd, &dir)
	return cmd
}

func newLabStatusCmd() *cobra.Command {
	var dir, output string
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show every host and containerd: role, address, process state, Raft role, node readiness",
		Long: `Print one row per host, and one for the shared containerd. STATE is running,
paused (SIGSTOP) or stopped (killed); RAFT is the server's own answer to a
Status call from this machine: leader, follower, no-leader, or unreachable
(stopped, paused, or not answering within a second), with its TERM; READY
is a node's Ready condition and PODS its unfinished pods, as the API
reports them ('-' when the API does not answer). -o json prints the same
as JSON.`,
		Example: `  sudo barge lab status --dir /tmp/lab
  sudo barge lab status --dir /tmp/lab -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "" && output != "json" && output != "table" {
				return fmt.Errorf("-o %q: want table or json", output)
			}
			l, err := loadLab(dir)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), labStatusTimeout)
			defer cancel()
			st, err := l.Status(ctx)
			if err != nil {
				return err
			}
			leader, lerr := l.Leader(ctx)
			if output == "json" {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(struct {
					ID       string           `json:"id"`
					Leader   string           `json:"leader,omitempty"`
					Registry string           `json:"registry,omitempty"`
					Hosts    []lab.HostStatus `json:"hosts"`
				}{l.ID, leader, l.Registry, st})
			}
			dash := func(s string) string {
				if s == "" {
					return "-"
				}
				return s
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "HOST\tROLE\tADDRESS\tSTATE\tPID\tRAFT\tTERM\tREADY\tPODS\tGOSSIP")
			for _, s := range st {
				pid, term, pods := "-", "-", "-"
				if s.PID > 0 {
					pid = strconv.Itoa(s.PID)
				}
				if s.Term > 0 {
					term = strconv.FormatUint(s.Term, 10)
				}
				if s.Pods != nil {
					pods = strconv.Itoa(*s.Pods)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.Name, s.Role, s.Address, s.State, pid, dash(s.Raft), term, dash(s.Ready), pods, dash(s.Gossip))
			}
			tw.Flush()
			if lerr == nil {
				fmt.Fprintf(cmd.OutOrStdout(), "leader: %s\n", leader)
			} else {
				fmt.Fprintln(cmd.OutOrStdout(), "leader: none")
			}
			if l.Registry != "" {
				fmt.Fprintf(cmd.OutOrStdout(), "registry: %s (%s/%s)\n", l.Registry, l.Registry, lab.BusyboxImage)
			}
			return nil
		},
	}
	labDirFlag(cmd, &dir)
	cmd.Flags().StringVarP(&output, "output", "o", "table", "table or json")
	return cmd
}

func newLabKubeconfigCmd() *cobra.Command {
	var (
		dir  string
		path bool
	)
	cmd := &cobra.Command{
		Use:   "kubeconfig",
		Short: "Print the lab's admin kubeconfig (or, with --path, where it is)",
		Long: `Print the admin kubeconfig of the lab (cluster-admin, the lab CA, the first
server's API address), or with --path only its file name, for
KUBECONFIG=$(barge lab kubeconfig --path).`,
		Example: `  sudo barge lab kubeconfig --dir /tmp/lab > lab.kubeconfig
  sudo kubectl --kubeconfig $(barge lab kubeconfig --path --dir /tmp/lab) get nodes`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			l, err := loadLab(dir)
			if err != nil {
				return err
			}
			if path {
				fmt.Fprintln(cmd.OutOrStdout(), l.Kubeconfig)
				return nil
			}
			b, err := os.ReadFile(l.Kubeconfig)
			if err != nil {
				return fmt.Errorf("lab kubeconfig: %w", err)
			}
			_, err = cmd.OutOrStdout().Write(b)
			return err
		},
	}
	labDirFlag(cmd, &dir)
	cmd.Flags().BoolVar(&path, "path", false, "print the file's path instead of its content")
	return cmd
}

func newLabExecCmd() *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "exec HOST -- COMMAND [ARG...]",
		Short: "Run a command inside a host's network namespace",
		Long: `Run COMMAND in HOST's network namespace with this terminal's stdin, stdout
and stderr. The command sees the host's eth0 and address, and the other
hosts on the lab bridge.`,
		Example: `  sudo barge lab exec --dir /tmp/lab s1 -- ip addr show eth0
  sudo barge lab exec --dir /tmp/lab s2 -- nft list ruleset`,
		Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if dash := cmd.ArgsLenAtDash(); dash != 1 {
				return errors.New("usage: barge lab exec HOST -- COMMAND [ARG...]")
			}
			l, err := loadLab(dir)
			if err != nil {
				return err
			}
			if _, err := l.Host(args[0]); err != nil {
				return err
			}
			c := l.Exec(cmd.Context(), args[0], args[1:])
			c.Stdin, c.Stdout, c.Stderr = os.Stdin, cmd.OutOrStdout(), cmd.ErrOrStderr()
			if err := c.Run(); err != nil {
				return fmt.Errorf("exec in %s: %s: %w", args[0], strings.Join(args[1:], " "), err)
			}
			return nil
		},
	}
	labDirFlag(cmd, &dir)
	return cmd
}

func newLabHostCmd(use, short, long string, act func(*lab.Lab, string) error) *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:     use + " HOST",
		Short:   short,
		Long:    long,
		Example: fmt.Sprintf("  sudo barge lab %s --dir /tmp/lab s2\n  sudo barge lab %s --dir /tmp/lab n1\n  sudo barge lab %s --dir /tmp/lab containerd", use, use, use),
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := loadLab(dir)
			if err != nil {
				return err
			}
			return act(l, args[0])
		},
	}
	labDirFlag(cmd, &dir)
	return cmd
}

func newLabPartitionCmd() *cobra.Command {
	var (
		dir    string
		from   string
		oneWay bool
	)
	cmd := &cobra.Command{
		Use:   "partition HOSTS",
		Short: "Cut hosts off from other hosts with nftables drops",
		Long: `Drop traffic between HOSTS (comma-separated) and --from (default: every other
host), with an nftables table 'inet barge' in each affected host's
namespace. --one-way drops only what --from sends to HOSTS, so HOSTS can
still send. Partitions add up until 'barge lab heal'.

This machine (the root namespace, address .254) is never cut off: clients
and 'barge lab status' still reach a partitioned host.`,
		Example: `  sudo barge lab partition --dir /tmp/lab s1
  sudo barge lab partition --dir /tmp/lab s1,s2 --from s3,s4,s5
  sudo barge lab partition --dir /tmp/lab s1 --from s2 --one-way`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := loadLab(dir)
			if err != nil {
				return err
			}
			return l.Partition(splitHosts(args[0]), splitHosts(from), oneWay)
		},
	}
	labDirFlag(cmd, &dir)
	cmd.Flags().StringVar(&from, "from", "", "comma-separated hosts to cut HOSTS off from (default: all others)")
	cmd.Flags().BoolVar(&oneWay, "one-way", false, "drop only packets from --from to HOSTS")
	return cmd
}

func splitHosts(s string) []string {
	var out []string
	for _, h := range strings.Split(s, ",") {
		if h = strings.TrimSpace(h); h != "" {
			out = append(out, h)
		}
	}
	return out
}

func newLabHealCmd() *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:     "heal",
		Short:   "Remove every partition",
		Long:    "Delete the 'inet barge' nftables table in every host of the lab.",
		Example: "  sudo barge lab heal --dir /tmp/lab",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			l, err := loadLab(dir)
			if err != nil {
				return err
			}
			return l.Heal()
		},
	}
	labDirFlag(cmd, &dir)
	return cmd
}
