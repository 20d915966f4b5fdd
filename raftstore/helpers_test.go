package raftstore

import (
	"io"
	"log/slog"

	"github.com/barge-dev/barge/raftstore/watch"
)

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func watchConfigForTest() watch.Config { return watch.Config{} }
