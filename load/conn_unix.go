//go:build unix

package load

import (
	"errors"
	"syscall"

	"golang.org/x/sys/unix"
)

// alive reports whether an idle connection is still open: a peek at the
// socket without waiting finds nothing to read. A server that closed it
// shows as end of file; one that wrote without being asked (a 408 before
// closing) has ended the exchange too.
func (c *h1Conn) alive() bool {
	if c.r.Buffered() > 0 {
		return false
	}
	sc, ok := c.nc.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	var buf [1]byte
	var perr error
	err = rc.Read(func(fd uintptr) bool {
		_, _, perr = unix.Recvfrom(int(fd), buf[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
		return true
	})
	return err == nil && errors.Is(perr, unix.EAGAIN)
}
