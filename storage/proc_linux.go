package storage

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// childSysProcAttr puts the redis-server child in its own process group, so
// a terminal's Ctrl-C reaches hotline alone and hotline stops the child in
// order, and asks the kernel to send it SIGTERM when its parent dies
// (prctl(2) PR_SET_PDEATHSIG): a crashed hotline leaves no server behind,
// and SIGTERM lets the server fsync its append-only file on the way out.
func childSysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}

// lockDir takes an exclusive flock(2) on a file in dir, so two hotline
// processes never run servers on the same append-only file. The kernel
// drops the lock when the process dies, so a crash leaves no stale lock.
func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, "hotline.lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("storage: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s", ErrDataDirInUse, dir)
		}
		return nil, fmt.Errorf("storage: lock %s: %w", dir, err)
	}
	return f, nil
}
