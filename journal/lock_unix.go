//go:build unix

package journal

import (
	"os"
	"syscall"
)

// lock takes an exclusive advisory lock on f, failing at once when another
// process holds one: two nodes sharing a state directory would replay each
// other's entries and hand out the same appeal numbers.
func lock(f *os.File) error {
	return syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
}
