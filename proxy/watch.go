package proxy

import (
	"sync/atomic"
	"time"
)

// watch notices a client that leaves while its request waits: a goroutine
// reads from the client connection, which is otherwise unread until the
// response is written. Only requests that wait (an injected delay, a slow
// upstream) start one.
type watch struct {
	running   bool
	interrupt atomic.Pointer[upConn] // the upstream read to cut short when the client leaves
	done      chan struct{}
	gone      atomic.Int64 // when the client left, Unix nanoseconds; 0 while it is there
	peek      [1]byte
	peeked    bool // the watch read a byte: the next request's first
}

// start watches the client, unless a pipelined request is already buffered
// (then the client is there).
func (w *watch) start(c *conn) {
	if w.running || c.br.Buffered() > 0 || len(c.src.left) > 0 || c.upload != nil {
		return
	}
	w.running = true
	w.peeked = false
	w.gone.Store(0)
	w.done = make(chan struct{})
	c.setDeadline(time.Time{})
	go func() {
		defer close(w.done)
		n, err := c.nc.Read(w.peek[:])
		switch {
		case n == 1:
			w.peeked = true
		case isTimeout(err):
			// stopped
		case err != nil:
			w.gone.Store(time.Now().UnixNano())
			if uc := w.interrupt.Load(); uc != nil {
				_ = uc.nc.SetReadDeadline(aLongTimeAgo)
			}
		}
	}()
}

// ended is closed when the watch read returned: the client left, sent more,
// or the watch was stopped. Without a watch it never is.
func (w *watch) ended() <-chan struct{} {
	if !w.running {
		return nil
	}
	return w.done
}

// stop ends the watch and hands the client connection back to the reader.
func (w *watch) stop(c *conn) {
	if !w.running {
		return
	}
	w.interrupt.Store(nil)
	_ = c.nc.SetReadDeadline(aLongTimeAgo)
	<-w.done
	w.running = false
	c.setDeadline(time.Time{})
	if w.peeked {
		c.src.left = w.peek[:]
	}
}

// goneAt returns when the client left, or the zero time.
func (w *watch) goneAt() time.Time {
	if ns := w.gone.Load(); ns != 0 {
		return time.Unix(0, ns)
	}
	return time.Time{}
}
