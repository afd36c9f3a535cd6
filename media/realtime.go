package media

import (
	"fmt"
	"runtime"
	"time"

	"golang.org/x/sys/unix"
)

// setRealtime puts the calling OS thread under SCHED_FIFO at prio.
func setRealtime(prio int) error {
	if prio < 1 || prio > 99 {
		return fmt.Errorf("media: real-time priority %d is outside 1–99", prio)
	}
	attr := unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_FIFO, Priority: uint32(prio)}
	if err := unix.SchedSetAttr(0, &attr, 0); err != nil {
		return fmt.Errorf("media: SCHED_FIFO priority %d: %w", prio, err)
	}
	return nil
}

// CheckRealtime reports whether this process may run threads under
// SCHED_FIFO at prio, by trying on a thread of its own that is then
// discarded.
func CheckRealtime(prio int) error {
	errc := make(chan error, 1)
	go func() {
		// Exiting while locked ends the thread and its priority with it.
		runtime.LockOSThread()
		errc <- setRealtime(prio)
	}()
	return <-errc
}

// sleepUntil blocks the OS thread until t on CLOCK_MONOTONIC, the clock
// behind Go's monotonic readings.
func sleepUntil(t time.Time) {
	var now unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &now); err != nil {
		time.Sleep(time.Until(t))
		return
	}
	at := unix.NsecToTimespec(now.Nano() + int64(time.Until(t)))
	for unix.ClockNanosleep(unix.CLOCK_MONOTONIC, unix.TIMER_ABSTIME, &at, nil) == unix.EINTR {
	}
}
