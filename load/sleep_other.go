//go:build !linux

package load

import "time"

// fineTimer is Linux's timerfd; elsewhere waits use the runtime's timers.
type fineTimer struct{}

func newFineTimer() *fineTimer               { return nil }
func (t *fineTimer) wait(time.Duration) bool { return false }
func (t *fineTimer) close()                  {}
