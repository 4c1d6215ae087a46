package load

import (
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// fineTimer waits with a timerfd that the runtime's network poller watches:
// the kernel wakes the poller within microseconds of the deadline, where the
// runtime's own timers, in a process with nothing else to do, sleep in whole
// milliseconds. The waiting goroutine parks, so its P keeps running others.
type fineTimer struct {
	f   *os.File
	buf [8]byte
}

func newFineTimer() *fineTimer {
	fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		return nil
	}
	return &fineTimer{f: os.NewFile(uintptr(fd), "timerfd")}
}

// wait sleeps for d; false means the timer failed and the caller must wait
// some other way.
func (t *fineTimer) wait(d time.Duration) bool {
	if t == nil {
		return false
	}
	spec := unix.ItimerSpec{Value: unix.NsecToTimespec(int64(d))}
	if err := unix.TimerfdSettime(int(t.f.Fd()), 0, &spec, nil); err != nil {
		return false
	}
	_, err := t.f.Read(t.buf[:])
	return err == nil
}

func (t *fineTimer) close() {
	if t != nil {
		t.f.Close()
	}
}
