package main

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

// peerStatus is one row of `barge status`.
type peerStatus struct {
	Name      string `json:"name"`
	Endpoint  string `json:"endpoint"`
	ID        string `json:"id"`
	Role      string `json:"role"`
	Term      uint64 `json:"term"`
	Applied   uint64 `json:"appliedIndex"`
	Committed uint64 `json:"commitIndex"`
	Revision  int64  `json:"revision"`
	DiskBytes int64  `json:"diskBytes"`
	DataBytes int64  `json:"dataBytes"`
	Leader    string `json:"leader"`
	Version   string `json:"version"`
	Error     string `json:"error,omitempty"`
}

func newStatusCmd() *cobra.Command {
	var (
		cf     clientFlags
		output string
	)
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show every store peer: role, term, applied index, revision, size",
		Long: `Ask each endpoint for its status and print one row per peer. Peers that
do not answer are shown with their error, so the command is useful exactly
when something is wrong.`,
		Example: `  barge status --endpoints https://127.0.0.1:2379,https://127.0.0.1:22379 --certs ./certs
  BARGE_ENDPOINTS=https://127.0.0.1:2379 BARGE_CERTS=./certs barge status -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "table" && output != "json" {
				return fmt.Errorf("-o %q: want table or json", output)
			}
			cli, err := cf.client()
			if err != nil {
				return err
			}
			defer cli.Close()
			names := map[uint64]string{}
			ctx, cancel := cf.ctx(cmd.Context())
			defer cancel()
			if ml, err := cli.MemberList(ctx); err == nil {
				for _, m := range ml.Members {
					names[m.ID] = m.Name
				}
			}
			var rows []peerStatus
			for _, ep := range cf.hostPorts() {
				row := peerStatus{Endpoint: "https://" + ep}
				st, err := cli.Status(ctx, ep)
				if err != nil {
					row.Error = err.Error()
					row.Role = "unreachable"
					rows = append(rows, row)
					continue
				}
				row.ID = fmt.Sprintf("%016x", st.Header.MemberId)
				row.Name = names[st.Header.MemberId]
				row.Term, row.Applied, row.Committed = st.RaftTerm, st.RaftAppliedIndex, st.RaftIndex
				row.Revision, row.DiskBytes, row.DataBytes = st.Header.Revision, st.DbSize, st.DbSizeInUse
				row.Version = st.StorageVersion
				row.Leader = names[st.Leader]
				switch {
				case st.Leader == st.Header.MemberId:
					row.Role = "leader"
				case st.IsLearner:
					row.Role = "learner"
				default:
					row.Role = "follower"
				}
				if len(st.Errors) > 0 {
					row.Error = fmt.Sprint(st.Errors)
				}
				rows = append(rows, row)
			}
			sort.SliceStable(rows, func(i, j int) bool { return rows[i].Name < rows[j].Name })
			if output == "json" {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(rows)
			}
			printStatusTable(cmd.OutOrStdout(), rows)
			for _, r := range rows {
				if r.Error != "" {
					return fmt.Errorf("%s: %s", r.Endpoint, r.Error)
				}
			}
			return nil
		},
	}
	cf.register(cmd)
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table or json")
	return cmd
}

func printStatusTable(w io.Writer, rows []peerStatus) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tENDPOINT\tID\tROLE\tTERM\tAPPLIED\tREVISION\tDISK\tDATA\tERROR")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%d\t%s\t%s\t%s\n", dash(r.Name), r.Endpoint, dash(r.ID), r.Role,
			r.Term, r.Applied, r.Revision, humanBytes(r.DiskBytes), humanBytes(r.DataBytes), r.Error)
	}
	tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
