package load

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
)

// cujStats counts one CUJ's requests as they happen, without locks except the
// histogram's.
type cujStats struct {
	name      string
	sent      atomic.Uint64
	late      atomic.Uint64
	dropped   atomic.Uint64
	cancelled atomic.Uint64
	class     [6]atomic.Uint64 // 1xx..5xx by first digit; [0] for anything else
	errors    atomic.Uint64
	latency   *histogram

	mu        sync.Mutex
	lastError string
}

func (s *cujStats) status(code int) {
	c := code / 100
	if c < 1 || c > 5 {
		c = 0
	}
	s.class[c].Add(1)
}

func (s *cujStats) fail(err error) {
	s.errors.Add(1)
	msg := errorText(err)
	s.mu.Lock()
	s.lastError = msg
	s.mu.Unlock()
}

// errorText names an error the way an operator reads it.
func errorText(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	}
	return err.Error()
}
