package proxy

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
)

// heldWrite is bytes held back to be written by the connection's next
// read, from inside the read's wait.
//
// Go's poller reads before it waits, and a read right after a request (or a
// response) has gone out finds nothing yet: a system call for nothing, on a
// path whose requests otherwise make four (two reads, two writes), on
// machines where a system call costs more than the work between them. So the bytes are written from
// inside the poller's raw read, after it has started to listen for
// readiness, and the read then waits before it tries. That is exact when no
// byte can have arrived before the write; where one can (a client's
// pipelined request, or its close), the caller bounds the wait and reads
// the usual way after it.
type heldWrite struct {
	nc      net.Conn
	rc      syscall.RawConn // nil when nc has no descriptor: run writes, then reads
	pending []byte
	buf     *[]byte // pooled; returned once the bytes are written
	step    func(uintptr) bool
	written func() bool // after the write: false ends the wait at once

	// One run's state, kept here so that the poller's callback allocates nothing.
	p          []byte
	n          int
	rerr, werr error
	wrote      bool
}

// heads are the buffers requests and held responses are written into.
var heads = sync.Pool{New: func() any { b := make([]byte, 0, 2<<10); return &b }}

func (h *heldWrite) init(nc net.Conn, written func() bool) {
	h.nc, h.written = nc, written
	if sc, ok := nc.(syscall.Conn); ok {
		h.rc, _ = sc.SyscallConn()
	}
	h.step = h.rawStep // one closure for the connection's life
}

// hold keeps b (in the pooled buffer bp) for the next run.
func (h *heldWrite) hold(b []byte, bp *[]byte) { h.pending, h.buf = b, bp }

func (h *heldWrite) held() bool { return h.pending != nil }

func (h *heldWrite) release() {
	h.pending = nil
	if h.buf != nil {
		heads.Put(h.buf)
		h.buf = nil
	}
}

// flush writes the held bytes the usual way.
func (h *heldWrite) flush() error {
	if h.pending == nil {
		return nil
	}
	_, err := h.nc.Write(h.pending)
	h.release()
	if err != nil {
		return writeError{err}
	}
	return nil
}

// run writes the held bytes and reads into p. begun is false when the read
// failed before it began (its deadline had passed, the connection was
// closed): the bytes are still held. A write error comes as a writeError.
func (h *heldWrite) run(p []byte) (n int, begun bool, err error) {
	if h.rc == nil {
		if err := h.flush(); err != nil {
			return 0, true, err
		}
		if h.written != nil && !h.written() {
			return 0, true, nil
		}
		n, err := h.nc.Read(p)
		return n, true, err
	}
	h.p, h.n, h.rerr, h.werr, h.wrote = p, 0, nil, nil, false
	err = h.rc.Read(h.step)
	h.p = nil
	if !h.wrote {
		return 0, false, err
	}
	partial := len(h.pending) > 0 && h.werr == nil && err == nil
	if !partial {
		h.release()
	}
	switch {
	case h.werr != nil:
		return 0, true, writeError{h.werr}
	case err != nil:
		return 0, true, err
	case partial: // a full socket buffer: the rest the usual way, then the read
		if err := h.flush(); err != nil {
			return 0, true, err
		}
		if h.written != nil && !h.written() {
			return 0, true, nil
		}
		n, err := h.nc.Read(p)
		return n, true, err
	case h.rerr != nil:
		return 0, true, os.NewSyscallError("read", h.rerr)
	case h.n < 0:
		return 0, true, nil // written said to stop waiting
	case h.n == 0:
		return 0, true, io.EOF
	}
	return h.n, true, nil
}

// rawStep is the poller's callback: first the write, then reads until one
// finds bytes. It returns false to wait for the descriptor to be readable.
func (h *heldWrite) rawStep(fd uintptr) bool {
	if !h.wrote {
		h.wrote = true
		for len(h.pending) > 0 {
			m, err := syscall.Write(int(fd), h.pending)
			if errors.Is(err, syscall.EINTR) {
				continue
			}
			if err != nil || m <= 0 {
				if !errors.Is(err, syscall.EAGAIN) {
					h.werr = os.NewSyscallError("write", err)
				}
				return true
			}
			h.pending = h.pending[m:]
		}
		if h.written != nil && !h.written() {
			h.n = -1
			return true
		}
		return false // wait for the answer
	}
	for {
		h.n, h.rerr = syscall.Read(int(fd), h.p)
		if !errors.Is(h.rerr, syscall.EINTR) {
			break
		}
	}
	return !errors.Is(h.rerr, syscall.EAGAIN)
}
