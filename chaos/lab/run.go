package lab

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
)

// run executes one command and returns its stdout. The error names the
// command and carries its stderr, since ip and nft explain themselves
// only there.
func run(ctx context.Context, stdin string, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// ip runs the ip command, inside netns when it is not empty.
func ip(ctx context.Context, netns string, args ...string) (string, error) {
	if netns != "" {
		args = append([]string{"-n", netns}, args...)
	}
	return run(ctx, "", "ip", args...)
}

// nft loads an nftables script inside netns.
func nft(ctx context.Context, netns, script string) error {
	_, err := run(ctx, script, "ip", "netns", "exec", netns, "nft", "-f", "-")
	return err
}
