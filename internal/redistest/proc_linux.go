package redistest

import (
	"os/exec"
	"runtime"
	"sync"
	"syscall"
)

// startCmd starts cmd so that the kernel kills it when the test binary
// dies (prctl(2) PR_SET_PDEATHSIG): a run that crashes, times out or is
// interrupted leaves no redis-server behind. Call exited once cmd's Wait
// has returned.
//
// The parent-death signal fires when the thread that forked the child
// exits, not the process, and Go ends threads (those of goroutines that
// exit while locked to them, as RTP pacers do). So every child is forked
// on one locked thread that lives until the last child has exited.
func startCmd(cmd *exec.Cmd) error {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	forker.mu.Lock()
	if forker.req == nil {
		forker.req = make(chan forkRequest)
		go fork(forker.req)
	}
	forker.children++
	req := forker.req
	forker.mu.Unlock()

	done := make(chan error, 1)
	req <- forkRequest{cmd, done}
	err := <-done
	if err != nil {
		exited()
	}
	return err
}

// exited tells the forker that a child started by startCmd is gone.
func exited() {
	forker.mu.Lock()
	defer forker.mu.Unlock()
	forker.children--
	if forker.children == 0 {
		close(forker.req)
		forker.req = nil
	}
}

var forker struct {
	mu       sync.Mutex
	req      chan forkRequest // nil while no child lives
	children int
}

type forkRequest struct {
	cmd  *exec.Cmd
	done chan<- error
}

func fork(req <-chan forkRequest) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	for r := range req {
		r.done <- r.cmd.Start()
	}
}
