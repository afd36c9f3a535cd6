package main

import (
	"context"
	"io"
	"os/signal"
	"syscall"

	"github.com/hotline12345/hotline/caller"
)

// call places a test call; Ctrl-C hangs it up.
func call(args []string, stdout, stderr io.Writer) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if code := caller.Main(ctx, args, stdout, stderr); code != 0 {
		return exitError{code: code}
	}
	return nil
}
