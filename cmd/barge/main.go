// Command barge is the single binary of the barge control plane: the Raft
// store peer (server), the worker agent, and every operator command.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

func main() {
	if err := newRootCmd().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "Error:", err)
		os.Exit(1)
	}
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "barge",
		Short:         "A highly available container control plane with its own Raft store",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(
		newServerCmd(),
		newAgentCmd(),
		newCertsCmd(),
		newStatusCmd(),
		newMemberCmd(),
		newSnapshotCmd(),
		newVersionCmd(),
		newLabCmd(),
		newChaosCmd(),
		newBenchCmd(),
		newGossipCmd(),
		newImageCmd(),
		newHollowCmd(),
		newConformanceCmd(),
	)
	return root
}
