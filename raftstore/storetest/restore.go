package storetest

import (
	"context"
	"os"
	"time"

	"github.com/barge-dev/barge/raftstore"
	"github.com/barge-dev/barge/raftstore/pki"
	"github.com/barge-dev/barge/raftstore/snapfile"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

// TryRestoreLive uploads a snapshot file to the leader over the admin
// service, exactly as `barge snapshot restore --live` does.
func (c *Cluster) TryRestoreLive(path string) error {
	_, err := c.restoreLive(path)
	return err
}

// RestoreLive is TryRestoreLive that fails the test on error.
func (c *Cluster) RestoreLive(path string) snapfile.Metadata {
	c.t.Helper()
	meta, err := c.restoreLive(path)
	if err != nil {
		c.t.Fatalf("live restore: %v", err)
	}
	return meta
}

func (c *Cluster) restoreLive(path string) (snapfile.Metadata, error) {
	f, err := os.Open(path)
	if err != nil {
		return snapfile.Metadata{}, err
	}
	defer f.Close()
	tlsCfg, err := pki.ClientTLS(c.CertsDir)
	if err != nil {
		return snapfile.Metadata{}, err
	}
	leader := c.Members[c.Leader()]
	cc, err := grpc.NewClient(leader.ClientAddr, grpc.WithTransportCredentials(credentials.NewTLS(tlsCfg)))
	if err != nil {
		return snapfile.Metadata{}, err
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return raftstore.RestoreLiveRemote(ctx, cc, f, nil)
}
