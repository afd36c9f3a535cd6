//go:build !linux

package storage

import (
	"os"
	"path/filepath"
	"syscall"
)

// childSysProcAttr has no parent-death signal off Linux: a crashed hotline
// may leave its redis-server running, and the next Open shuts it down.
func childSysProcAttr() *syscall.SysProcAttr { return nil }

// lockDir takes no lock off Linux.
func lockDir(dir string) (*os.File, error) {
	return os.OpenFile(filepath.Join(dir, "hotline.lock"), os.O_RDWR|os.O_CREATE, 0o600)
}
