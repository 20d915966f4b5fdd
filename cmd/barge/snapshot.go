package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/barge-dev/barge/raftstore"
	"github.com/barge-dev/barge/raftstore/pki"
	"github.com/barge-dev/barge/raftstore/snapfile"
	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

func newSnapshotCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "snapshot",
		Short: "Back up and restore the store: save, inspect, restore",
		Long: `Snapshot files hold every key with its history back to the compaction
point, the leases and the member names, with a header (revision, key count,
cluster ID, time, barge version) and a SHA-256 checksum over everything.`,
	}
	cmd.AddCommand(newSnapshotSaveCmd(), newSnapshotInspectCmd(), newSnapshotRestoreCmd())
	return cmd
}

// progress prints a running byte count on a terminal and nothing otherwise.
type progress struct {
	out   *os.File
	on    bool
	verb  string
	last  time.Time
	total int64
}

func newProgress(verb string) *progress {
	return &progress{out: os.Stderr, on: isTerminal(os.Stderr), verb: verb}
}

func (p *progress) update(n int64) {
	p.total = n
	if !p.on || time.Since(p.last) < 200*time.Millisecond {
		return
	}
	p.last = time.Now()
	fmt.Fprintf(p.out, "\r%s %s...", p.verb, humanBytes(n))
}

func (p *progress) done() {
	if p.on && !p.last.IsZero() {
		fmt.Fprintf(p.out, "\r%s %s.   \n", p.verb, humanBytes(p.total))
	}
}

type progressWriter struct {
	w io.Writer
	p *progress
	n int64
}

func (pw *progressWriter) Write(b []byte) (int, error) {
	n, err := pw.w.Write(b)
	pw.n += int64(n)
	pw.p.update(pw.n)
	return n, err
}

func newSnapshotSaveCmd() *cobra.Command {
	var cf clientFlags
	cmd := &cobra.Command{
		Use:   "save FILE",
		Short: "Stream a consistent point-in-time snapshot from the cluster into FILE",
		Long: `Save streams a snapshot from one endpoint into a temporary file next to
FILE, verifies its checksum, fsyncs it and renames it into place. A failed
or interrupted save never leaves a partial file at FILE.`,
		Example: `  barge snapshot save backup.snap --endpoints https://127.0.0.1:2379 --certs ./certs`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cli, err := cf.client()
			if err != nil {
				return err
			}
			defer cli.Close()
			ctx, cancel := context.WithCancel(cmd.Context())
			defer cancel()
			var meta snapfile.Metadata
			var stats snapfile.Stats
			prog := newProgress("saved")
			err = snapfile.WriteFileAtomic(args[0], func(w io.Writer) error {
				rc, err := cli.Snapshot(ctx)
				if err != nil {
					return err
				}
				defer rc.Close()
				// Verify while writing: the checksum and every record are
				// checked before the file is renamed into place.
				pr, pw := io.Pipe()
				verified := make(chan error, 1)
				go func() {
					var verr error
					meta, stats, verr = snapfile.Verify(pr)
					_, _ = io.Copy(io.Discard, pr)
					verified <- verr
				}()
				_, cerr := io.Copy(io.MultiWriter(&progressWriter{w: w, p: prog}, pw), rc)
				pw.CloseWithError(cerr)
				verr := <-verified
				if cerr != nil {
					return fmt.Errorf("receive snapshot: %w", cerr)
				}
				if verr != nil {
					return fmt.Errorf("received snapshot is invalid: %w", verr)
				}
				return nil
			})
			prog.done()
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Snapshot saved to %s: revision %d, %d keys, %s.\n", args[0], meta.Revision, meta.KeyCount, humanBytes(stats.Bytes))
			return nil
		},
	}
	cf.register(cmd)
	return cmd
}

func newSnapshotInspectCmd() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:     "inspect FILE",
		Short:   "Verify a snapshot file's checksum and print what it holds (offline)",
		Example: `  barge snapshot inspect backup.snap -o json`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := os.Open(args[0])
			if err != nil {
				return err
			}
			defer f.Close()
			meta, stats, err := snapfile.Verify(f)
			if err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			switch output {
			case "json":
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(struct {
					File     string            `json:"file"`
					Metadata snapfile.Metadata `json:"metadata"`
					Stats    snapfile.Stats    `json:"stats"`
					Checksum string            `json:"checksum"`
				}{args[0], meta, stats, "ok"})
			case "table":
				tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintf(tw, "FILE\t%s\n", args[0])
				fmt.Fprintf(tw, "CHECKSUM\tok (SHA-256)\n")
				fmt.Fprintf(tw, "REVISION\t%d\n", meta.Revision)
				fmt.Fprintf(tw, "COMPACT REVISION\t%d\n", meta.CompactRevision)
				fmt.Fprintf(tw, "KEYS\t%d\n", meta.KeyCount)
				fmt.Fprintf(tw, "KEY VERSIONS\t%d\n", stats.KeyVersions)
				fmt.Fprintf(tw, "LEASES\t%d\n", stats.Leases)
				fmt.Fprintf(tw, "MEMBERS\t%d\n", stats.Members)
				fmt.Fprintf(tw, "CLUSTER ID\t%016x\n", meta.ClusterID)
				fmt.Fprintf(tw, "TAKEN AT\t%s\n", meta.CreatedAt.Format(time.RFC3339))
				fmt.Fprintf(tw, "BARGE VERSION\t%s\n", meta.BargeVersion)
				fmt.Fprintf(tw, "SIZE\t%s\n", humanBytes(stats.Bytes))
				return tw.Flush()
			}
			return fmt.Errorf("-o %q: want table or json", output)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table or json")
	return cmd
}

func newSnapshotRestoreCmd() *cobra.Command {
	var (
		cf             clientFlags
		live           bool
		dataDir, name  string
		initialCluster string
	)
	cmd := &cobra.Command{
		Use:   "restore FILE",
		Short: "Restore a snapshot into a new cluster (offline) or onto a running one (--live)",
		Long: `Offline: prepare the data directory of one member of a NEW cluster from
FILE. Run it once per member with the same --initial-cluster, then start each
member with 'barge server' and the same flags. The new cluster starts with
every key at the snapshot's revision, under a new cluster ID.

Live (--live): upload FILE to the running cluster's leader, which installs
it through Raft so every peer ends with the snapshot's keys. Membership is
kept. Revisions never go backwards: open watches are cancelled as
compacted, so clients re-list.

The file is verified completely before anything changes; a truncated,
corrupted or foreign file is refused and nothing is touched.`,
		Example: `  barge snapshot restore backup.snap --name s1 --data-dir /var/lib/barge/s1 \
    --initial-cluster s1=10.0.0.1:2380,s2=10.0.0.2:2380,s3=10.0.0.3:2380

  barge snapshot restore backup.snap --live --endpoints https://127.0.0.1:2379 --certs ./certs`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := os.Open(args[0])
			if err != nil {
				return err
			}
			defer f.Close()
			if live {
				if dataDir != "" || name != "" || initialCluster != "" {
					return errors.New("--live restores onto a running cluster; --data-dir, --name and --initial-cluster are for offline restores")
				}
				return restoreLive(cmd, &cf, f, args[0])
			}
			if dataDir == "" || name == "" || initialCluster == "" {
				return errors.New("offline restore needs --data-dir, --name and --initial-cluster (or use --live)")
			}
			peers, err := raftstore.ParseInitialCluster(initialCluster)
			if err != nil {
				return fmt.Errorf("--initial-cluster: %w", err)
			}
			meta, err := raftstore.PrepareRestore(f, raftstore.RestoreConfig{DataDir: dataDir, Name: name, InitialCluster: peers})
			if err != nil {
				return fmt.Errorf("restore %s: %w", args[0], err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Restored %s into %s for member %s: revision %d, %d keys, new cluster %016x.\n",
				args[0], dataDir, name, meta.Revision, meta.KeyCount, meta.ClusterID)
			return nil
		},
	}
	cf.register(cmd)
	cmd.Flags().BoolVar(&live, "live", false, "restore onto the running cluster at --endpoints")
	cmd.Flags().StringVar(&dataDir, "data-dir", "", "offline: the new member's data directory (must not exist or be empty)")
	cmd.Flags().StringVar(&name, "name", "", "offline: the new member's name")
	cmd.Flags().StringVar(&initialCluster, "initial-cluster", "", "offline: the new cluster's membership NAME=IP:PORT,...")
	return cmd
}

func restoreLive(cmd *cobra.Command, cf *clientFlags, f *os.File, path string) error {
	// Check the file locally first: a bad file must not reach the cluster.
	if _, _, err := snapfile.Verify(f); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	cli, err := cf.client()
	if err != nil {
		return err
	}
	defer cli.Close()
	ctx, cancel := cf.ctx(cmd.Context())
	defer cancel()
	leader := ""
	for _, ep := range cf.hostPorts() {
		st, err := cli.Status(ctx, ep)
		if err == nil && st.Leader == st.Header.MemberId {
			leader = ep
			break
		}
	}
	if leader == "" {
		return errors.New("no endpoint is the leader; include the leader's client URL in --endpoints")
	}
	tlsCfg, err := pki.ClientTLS(cf.certs)
	if err != nil {
		return err
	}
	cc, err := grpc.NewClient(leader, grpc.WithTransportCredentials(credentials.NewTLS(tlsCfg)))
	if err != nil {
		return err
	}
	defer cc.Close()
	prog := newProgress("uploaded")
	meta, err := raftstore.RestoreLiveRemote(cmd.Context(), cc, f, prog.update)
	prog.done()
	if err != nil {
		return fmt.Errorf("live restore: %w", err)
	}
	fmt.Fprintf(cmd.OutOrStdout(), "Live restore of %s complete: revision %d, %d keys.\n", path, meta.Revision, meta.KeyCount)
	return nil
}
