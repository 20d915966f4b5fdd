package main

import (
	"fmt"
	"runtime"

	"github.com/barge-dev/barge/raftstore"
	"github.com/spf13/cobra"
)

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the barge version and the etcd API version it serves",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintf(cmd.OutOrStdout(), "barge %s (etcd API %s, %s)\n", raftstore.Version, raftstore.EtcdAPIVersion, runtime.Version())
			return nil
		},
	}
}
