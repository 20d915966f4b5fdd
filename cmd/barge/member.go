package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/barge-dev/barge/raftstore"
	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"
)

func newMemberCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "member",
		Short: "List and change the store's Raft membership",
		Long: `Manage the peers of the Raft group. Members are named by their name or
their hexadecimal ID, as shown by 'barge member list'.`,
	}
	cmd.AddCommand(newMemberListCmd(), newMemberAddCmd(), newMemberRemoveCmd(), newMemberPromoteCmd(), newMemberTransferCmd())
	return cmd
}

func newMemberListCmd() *cobra.Command {
	var (
		cf     clientFlags
		output string
	)
	cmd := &cobra.Command{
		Use:     "list",
		Short:   "List members: ID, name, peer and client URLs, voter or learner",
		Example: `  barge member list --endpoints https://127.0.0.1:2379 --certs ./certs -o json`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cf.run(cmd.Context(), func(ctx context.Context, cli *clientv3.Client) error {
				resp, err := cli.MemberList(ctx)
				if err != nil {
					return err
				}
				type row struct {
					ID         string   `json:"id"`
					Name       string   `json:"name"`
					PeerURLs   []string `json:"peerURLs"`
					ClientURLs []string `json:"clientURLs"`
					Learner    bool     `json:"learner"`
				}
				var rows []row
				for _, m := range resp.Members {
					rows = append(rows, row{ID: fmt.Sprintf("%016x", m.ID), Name: m.Name, PeerURLs: m.PeerURLs, ClientURLs: m.ClientURLs, Learner: m.IsLearner})
				}
				switch output {
				case "json":
					enc := json.NewEncoder(cmd.OutOrStdout())
					enc.SetIndent("", "  ")
					return enc.Encode(rows)
				case "table":
					tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
					fmt.Fprintln(tw, "ID\tNAME\tPEER URL\tCLIENT URL\tVOTER")
					for _, r := range rows {
						voter := "yes"
						if r.Learner {
							voter = "learner"
						}
						fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.ID, dash(r.Name), strings.Join(r.PeerURLs, ","), dash(strings.Join(r.ClientURLs, ",")), voter)
					}
					return tw.Flush()
				}
				return fmt.Errorf("-o %q: want table or json", output)
			})
		},
	}
	cf.register(cmd)
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table or json")
	return cmd
}

func newMemberAddCmd() *cobra.Command {
	var (
		cf       clientFlags
		peerAddr string
		learner  bool
	)
	cmd := &cobra.Command{
		Use:   "add NAME --peer-addr IP:PORT",
		Short: "Add a member to the Raft group, then start it with --join",
		Long: `Register a new peer's address with the cluster. Start the new peer with
'barge server --join' afterwards (or simply start it with --join, which
adds it itself). A learner receives the log but does not vote until
promoted.`,
		Example: `  barge member add s4 --peer-addr 10.0.0.4:2380 --learner --endpoints https://10.0.0.1:2379 --certs ./certs`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if peerAddr == "" {
				return fmt.Errorf("--peer-addr is required")
			}
			return cf.run(cmd.Context(), func(ctx context.Context, cli *clientv3.Client) error {
				urls := []string{"https://" + raftstore.StripScheme(peerAddr)}
				var (
					resp *clientv3.MemberAddResponse
					err  error
				)
				if learner {
					resp, err = cli.MemberAddAsLearner(ctx, urls)
				} else {
					resp, err = cli.MemberAdd(ctx, urls)
				}
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "Member %s added with ID %016x (learner=%v).\nStart it with:\n  barge server --name %s --peer-addr %s --join %s ...\n",
					args[0], resp.Member.ID, learner, args[0], raftstore.StripScheme(peerAddr), cf.endpoints[0])
				return nil
			})
		},
	}
	cf.register(cmd)
	cmd.Flags().StringVar(&peerAddr, "peer-addr", "", "the new member's peer address IP:PORT")
	cmd.Flags().BoolVar(&learner, "learner", false, "add as a non-voting learner")
	return cmd
}

// resolveMember turns a name or hex ID into a member ID.
func resolveMember(ctx context.Context, cli *clientv3.Client, ref string) (uint64, error) {
	resp, err := cli.MemberList(ctx)
	if err != nil {
		return 0, err
	}
	for _, m := range resp.Members {
		if m.Name == ref {
			return m.ID, nil
		}
	}
	if id, err := strconv.ParseUint(ref, 16, 64); err == nil {
		for _, m := range resp.Members {
			if m.ID == id {
				return id, nil
			}
		}
	}
	var known []string
	for _, m := range resp.Members {
		known = append(known, fmt.Sprintf("%s (%016x)", dash(m.Name), m.ID))
	}
	return 0, fmt.Errorf("no member named or with ID %q; members are %s", ref, strings.Join(known, ", "))
}

func memberAction(use, short, example string, act func(ctx context.Context, cli *clientv3.Client, id uint64) error, done string) *cobra.Command {
	var cf clientFlags
	cmd := &cobra.Command{
		Use:     use,
		Short:   short,
		Example: example,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return cf.run(cmd.Context(), func(ctx context.Context, cli *clientv3.Client) error {
				id, err := resolveMember(ctx, cli, args[0])
				if err != nil {
					return err
				}
				if err := act(ctx, cli, id); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "Member %s (%016x) %s.\n", args[0], id, done)
				return nil
			})
		},
	}
	cf.register(cmd)
	return cmd
}

func newMemberRemoveCmd() *cobra.Command {
	return memberAction("remove NAME|ID", "Remove a member from the Raft group",
		"  barge member remove s3 --endpoints https://127.0.0.1:2379 --certs ./certs",
		func(ctx context.Context, cli *clientv3.Client, id uint64) error {
			_, err := cli.MemberRemove(ctx, id)
			return err
		}, "removed")
}

func newMemberPromoteCmd() *cobra.Command {
	return memberAction("promote NAME|ID", "Promote a learner to a voting member",
		"  barge member promote s4 --endpoints https://127.0.0.1:2379 --certs ./certs",
		func(ctx context.Context, cli *clientv3.Client, id uint64) error {
			_, err := cli.MemberPromote(ctx, id)
			return err
		}, "promoted to voter")
}

func newMemberTransferCmd() *cobra.Command {
	return memberAction("transfer-leader NAME|ID", "Hand Raft leadership to another voting member",
		"  barge member transfer-leader s2 --endpoints https://127.0.0.1:2379 --certs ./certs",
		func(ctx context.Context, cli *clientv3.Client, id uint64) error {
			_, err := cli.MoveLeader(ctx, id)
			return err
		}, "is now the leader")
}
