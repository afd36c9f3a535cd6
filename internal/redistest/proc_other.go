//go:build !linux

package redistest

import "os/exec"

// startCmd starts cmd; outside Linux there is no parent-death signal, and
// cleanup stops the servers of a run that ends normally.
func startCmd(cmd *exec.Cmd) error { return cmd.Start() }

func exited() {}
