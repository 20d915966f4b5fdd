package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/barge-dev/barge/raftstore"
	"github.com/barge-dev/barge/raftstore/pki"
	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// clientFlags are the flags every command that talks to a cluster shares.
type clientFlags struct {
	endpoints []string
	certs     string
	timeout   time.Duration
}

func (f *clientFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringSliceVar(&f.endpoints, "endpoints", nil, "client URLs of the cluster, https://IP:PORT,... (env BARGE_ENDPOINTS)")
	cmd.Flags().StringVar(&f.certs, "certs", "", "certificate directory from `barge certs init` (env BARGE_CERTS)")
	cmd.Flags().DurationVar(&f.timeout, "timeout", 10*time.Second, "timeout for each request")
}

func (f *clientFlags) resolve() error {
	if len(f.endpoints) == 0 {
		if env := os.Getenv("BARGE_ENDPOINTS"); env != "" {
			f.endpoints = strings.Split(env, ",")
		}
	}
	if f.certs == "" {
		f.certs = os.Getenv("BARGE_CERTS")
	}
	var errs []error
	if len(f.endpoints) == 0 {
		errs = append(errs, errors.New("no endpoints: give --endpoints https://IP:PORT,... or set BARGE_ENDPOINTS"))
	}
	if f.certs == "" {
		errs = append(errs, errors.New("no certificates: give --certs DIR or set BARGE_CERTS"))
	}
	return errors.Join(errs...)
}

// hostPorts strips the scheme: the gRPC client wants host:port.
func (f *clientFlags) hostPorts() []string {
	out := make([]string, 0, len(f.endpoints))
	for _, e := range f.endpoints {
		if e = strings.TrimSpace(e); e != "" {
			out = append(out, raftstore.StripScheme(e))
		}
	}
	return out
}

func (f *clientFlags) client(endpoints ...string) (*clientv3.Client, error) {
	if err := f.resolve(); err != nil {
		return nil, err
	}
	tlsCfg, err := pki.ClientTLS(f.certs)
	if err != nil {
		return nil, err
	}
	if len(endpoints) == 0 {
		endpoints = f.hostPorts()
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   endpoints,
		TLS:         tlsCfg,
		DialTimeout: f.timeout,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", strings.Join(endpoints, ","), err)
	}
	return cli, nil
}

func (f *clientFlags) ctx(parent context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(parent, f.timeout)
}

// isTerminal reports whether f is a terminal, for progress output.
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// run connects to the cluster, bounds the work by --timeout, and calls fn.
func (f *clientFlags) run(parent context.Context, fn func(ctx context.Context, cli *clientv3.Client) error) error {
	cli, err := f.client()
	if err != nil {
		return err
	}
	defer cli.Close()
	ctx, cancel := f.ctx(parent)
	defer cancel()
	return fn(ctx, cli)
}
